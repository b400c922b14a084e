"""Credentials kept out of what is shown, logged and recorded: URL passwords and tokens.

Feed, webhook and database URLs may carry a password (`user:pass@host`), a credential in
the query or fragment (`?token=…`, `#access_token=…`) or, in a web URL, a token in the path
(Slack's and Discord's webhooks; what counts as one is `monitor.pathsecrets`). The log is
append-only, so a URL that reaches an event is there for good: the URLs events, log lines and
commands show go through `redact_url`, and error messages, which quote URLs, through
`redacted_line`. Host and path shape stay readable:
`https://hooks.slack.com/services/T000/B000/<redacted>`.

Secret values themselves (an SMTP password, webhook secrets) are kept out of messages by
construction; `SecretScrubber` takes them out of log lines and of the server replies an
event records, as a second wall (a short one only where it stands alone: `SHORT_SECRET`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit

from monitor.oneline import printable_line
from monitor.pathsecrets import redact_path

REDACTED = "<redacted>"
# Words in the (decoded, case-folded) names of query and fragment parameters that commonly
# carry credentials in feed, webhook and database URLs: a name holding one ("keyword" too) has
# its value hidden where a URL is shown, as has every name `carries_credentials` refuses.
_SENSITIVE_PARAM = re.compile(
    r"token|key|secret|sig|pass|pwd|auth|code|credential|jwt|sess(?:ion)?[_-]?id"
)
# A URL in a message ends at white space or a quote, but a password may hold spaces
# (`postgresql://u:pass word@db/x`): after `scheme://user:` the URL runs on to the first '@'
# unless a line break, a quote or another URL's `://` comes first. Text between a `host:port`
# URL and an e-mail address later in its sentence is hidden with it: hiding too much only hides.
_URL_IN_TEXT = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://"
    r"(?:[^:/?#@\s'\"<>]*:(?:(?!://)[^@\r\n'\"<>])*@[^\s'\"<>]*|[^\s'\"<>]+)"
)


def redact_url(url: str, *, paths: bool = True) -> str:
    """`url` with any password, credential-like query and fragment values and, for http(s),
    secret path segments replaced by `<redacted>`; for http(s), a user name alone
    (`https://TOKEN@host/`) is taken for a credential too. `paths=False` leaves the path: an
    evidence page's public address, whose ids (`/news/cb912b3b-…`) are what it cites, not
    secrets."""
    # SQLAlchemy reads a password up to the first '@', with any '/', '?', '#' or space in it,
    # where urlsplit would end the host part and find no password: read it that way first.
    result = _USERINFO.sub(_hide_userinfo, url, count=1)
    try:
        parts = urlsplit(result)
    except ValueError:  # not a URL urlsplit can read (a broken IPv6 literal): show none of it
        return f"{url.partition(':')[0][:20]}:{REDACTED}"
    # split as urlsplit does, but on the text itself: urlsplit drops tabs and line breaks
    head, hash_mark, fragment = result.partition("#")
    head, question_mark, query = head.partition("?")
    result = head + question_mark + _hide_values(query) + hash_mark + _hide_values(fragment)
    if paths and parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        result = _WEB_PATH.sub(
            lambda found: found["head"] + redact_path(found["path"], host, mask=REDACTED),
            result,
            count=1,
        )
    return result


# Parameter names that say their value is a credential, compared whole (decoded and
# case-folded: `_param_name`), and the endings that say so ("csrf_token", "X-Amz-Signature",
# "client_secret"). Redaction hides more, any name that merely contains such a word
# ("keyword"): hiding too much only hides. Not "session": the Diet's pages number its
# sessions (`?session=213`).
_CREDENTIAL_NAMES = frozenset(
    {
        "auth", "authorization", "code_verifier", "credential", "credentials", "jwt", "key",
        "pass", "passwd", "password", "pwd", "sessionid", "session_id", "sig",
        "signature", "secret", "token",
    }
)  # fmt: skip
_CREDENTIAL_ENDINGS = (
    "token", "_key", "-key", ".key", "apikey", "secret", "signature", "password", "passwd",
    "credential", "credentials",
)  # fmt: skip


def _param_name(raw: str) -> str:
    """A query or fragment parameter's name as the server reads it, to compare: without the
    tabs and line breaks urlsplit drops, percent-decoded (`%74oken` is `token`), case-folded."""
    return unquote_plus(raw.translate(_DROPPED)).strip().casefold()


_DROPPED = str.maketrans("", "", "\t\r\n")
# between a query's or fragment's `name=value` pairs, kept when split
_PARAM_SEPARATOR = re.compile(r"([&;])")


def _names_credential(name: str) -> bool:
    return name in _CREDENTIAL_NAMES or name.endswith(_CREDENTIAL_ENDINGS)


def _hide_values(params: str) -> str:
    """A query or fragment with the value of every pair whose name may be a credential hidden:
    any name `carries_credentials` refuses, and any holding a `_SENSITIVE_PARAM` word."""
    if "=" not in params:
        return params
    pieces = _PARAM_SEPARATOR.split(params)  # pairs at even places, separators between
    for i in range(0, len(pieces), 2):
        raw, sep, _ = pieces[i].partition("=")
        name = _param_name(raw)
        if sep and (_SENSITIVE_PARAM.search(name) or _names_credential(name)):
            pieces[i] = f"{raw}={REDACTED}"
    return "".join(pieces)


def carries_credentials(url: str) -> bool:
    """Whether a URL holds user information (`user:pass@`, `TOKEN@`) or a query or fragment
    parameter whose name, percent-decoded, says it is a credential (`token`, `%74oken`,
    `api_key`, `X-Amz-Signature`, `#access_token=…`). What may not be kept in the log as a
    cited source; stricter than `redact_url`, which hides more when it shows a URL. `url` must
    be one urlsplit reads."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return True
    for text in (parts.query, parts.fragment):
        for pair in _PARAM_SEPARATOR.split(text)[::2]:
            name, sep, _ = pair.partition("=")
            if sep and _names_credential(_param_name(name)):
                return True
    return False


def shown_source(url: str) -> str:
    """A cited source as shown: whole when it carries no credential (the checks that let it
    into the log), else redacted as any URL (a log may hold one from before they did)."""
    try:
        if not carries_credentials(url):
            return url
    except ValueError:  # not a URL urlsplit reads
        pass
    return redact_url(url, paths=False)


# scheme://authority, then the path up to the query or fragment
_WEB_PATH = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(?P<path>/[^?#]*)")


# scheme://user:password@ or scheme://user@. The password is any text up to the first '@'
# (SQLAlchemy's reading: a space, a quote, a '/' are the password's), and on to a later '@'
# while no '/', '?' or '#' comes between (urlsplit's reading of an unescaped '@').
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@]*)"
    r"(?::(?P<pw>[^@]*(?:@[^@/?#]*(?=@))*))?@"
)


def _hide_userinfo(found: re.Match[str]) -> str:
    scheme, user = found["scheme"], found["user"]
    if found["pw"] is not None:
        return f"{scheme}{user}:{REDACTED}@"
    if scheme.lower() in ("http://", "https://") and user:
        return f"{scheme}{REDACTED}@"  # a feed or webhook does not need a bare user name shown
    return found.group(0)  # postgresql://monitor@db/…: a user name, not a secret


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (error messages quote the URLs they fail on). A
    password may hold spaces: after `scheme://user:` a URL runs to the '@' on its line."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_quoted, text)


def _redact_quoted(found: re.Match[str]) -> str:
    # a sentence's punctuation after a URL is not part of its last segment or query value
    url = found.group(0)
    core = url.rstrip(".,;:!?)]}")
    return redact_url(core) + url[len(core) :]


def redacted_line(text: str) -> str:
    """An error message as events, log lines and commands show it: URLs redacted, on one line
    (a server's broken status line or header can put newlines and controls into it)."""
    return printable_line(redact_text(text))


# --- secret values (an SMTP password, webhook secrets) in free text ---------------------------

SHORT_SECRET = 8
"""A secret value (or a form of one) shorter than this many characters is scrubbed only where
it stands alone: not where a letter, digit or '_' runs on from its first or last character.
Three letters, a password "abc", are in too many words ("abcdef") for each to lose them; where
the password is written on its own ("login as monitor:abc refused"), it goes. `monitor check`
and the daemon warn about a secret this short. A longer one is scrubbed wherever it is."""

_WORD = re.compile(r"\w")


class SecretScrubber:
    """Replaces secret values (each form given: plain, base64, URL-encoded …) in text by
    `<redacted>`, longest first, so that a shorter form inside a longer one leaves no part
    of the longer behind."""

    __slots__ = ("_alone", "forms")

    def __init__(self, forms: Iterable[str] = ()) -> None:
        self.forms: tuple[str, ...] = tuple(sorted({f for f in forms if f}, key=len, reverse=True))
        self._alone = {f: _standing_alone(f) for f in self.forms if len(f) < SHORT_SECRET}

    def __bool__(self) -> bool:
        return bool(self.forms)

    def __add__(self, more: Iterable[str]) -> SecretScrubber:
        return SecretScrubber([*self.forms, *more])

    def scrub(self, text: str) -> str:
        for form in self.forms:
            if form not in text:
                continue
            alone = self._alone.get(form)
            if alone is None:
                text = text.replace(form, REDACTED)
            else:
                text = alone.sub(REDACTED, text)
        return text


def _standing_alone(form: str) -> re.Pattern[str]:
    """`form` where no word character runs on from its first or last character (a form that
    starts or ends with punctuation is found whatever stands beside that end)."""
    before = r"(?<!\w)" if _WORD.match(form[0]) else ""
    after = r"(?!\w)" if _WORD.match(form[-1]) else ""
    return re.compile(before + re.escape(form) + after)

"""Credentials kept out of what is shown, logged and recorded: URL passwords and tokens.

Feed, webhook and database URLs may carry a password (`user:pass@host`) or a credential in
the query (`?token=…`). The log is append-only, so a URL that reaches an event is there for
good: every URL an event, a log line or a message shows goes through `redact_url`, and text
that may quote URLs (error messages) through `redact_text`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDACTED = "<redacted>"
# Query parameters that commonly carry credentials in feed, webhook and database URLs.
_SENSITIVE_PARAM = re.compile(r"(?i)token|key|secret|sig|pass|auth|code|credential")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """`url` with any password and credential-like query values replaced by `<redacted>`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL urlsplit can read (a broken IPv6 literal): show none of it
        return f"{url.partition(':')[0][:20]}:{REDACTED}"
    result = url
    # Replace pieces in place: urlunsplit would rewrite sqlite:////abs/path as sqlite://abs/path.
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
        result = result.replace(parts.netloc, netloc, 1)
    if parts.query:
        query = "&".join(
            f"{name}={REDACTED}" if sep and _SENSITIVE_PARAM.search(name) else f"{name}{sep}{value}"
            for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
        )
        result = result.replace(f"?{parts.query}", f"?{query}", 1)
    return result


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (error messages quote the URLs they fail on)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: redact_url(found.group(0)), text)


def shown(text: str) -> str:
    """An error message as events, log lines and commands show it: URLs redacted, on one line
    (a server's broken status line or header can put newlines and controls into it)."""
    return " ".join("".join(c if c.isprintable() else " " for c in redact_text(text)).split())

"""The configuration's value types: durations, ids, URLs, addresses, rule terms."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StrictInt,
    StrictStr,
)

from monitor.redact import carries_credentials, redact_url
from monitor.terms import TermError, check_term

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
DEFAULT_DATABASE_URL = "sqlite:///storage/events.db"
DURATION_EXAMPLES = "use e.g. 30s, 15m, 6h, 14d"
# A century: a time plus or minus it stays a datetime (a poll interval of 999999999d made the
# first poll's next poll time overflow), and it stays a socket's or a thread's timeout.
MAX_DURATION = timedelta(days=36525)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\s*\d+\s*[wdhms])+\s*")
_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# How monitor.terms.TermError words a pattern that does not compile; reworded to the sentence
# `monitor check` has always printed for it.
_BAD_REGEX = re.compile(r"bad regular expression \((.*)\)", re.DOTALL)
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]{2,}")


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for messages about wrong types."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    if isinstance(value, dict):
        return "table"
    if hasattr(value, "hour") and hasattr(value, "day"):
        return "date-time"
    if isinstance(value, date):
        return "date"
    return names.get(type(value), type(value).__name__)


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `6h`, `14d`, `1w` or a sum such as `1h30m` → a positive timedelta."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        shown = repr(text) if isinstance(text, str) else f"{toml_type(text)} {text!r}"
        raise ValueError(f"{shown} is not a duration ({DURATION_EXAMPLES})")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds == 0:
        raise ValueError(f"{text!r} is not a positive duration ({DURATION_EXAMPLES})")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is too long to be a duration (at most {MAX_DURATION.days}d)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest duration text that `parse_duration` reads back as `value`."""
    if value.microseconds or value <= timedelta(0):
        return f"{value.total_seconds():g}s"
    rest, parts = int(value.total_seconds()), []
    for unit in "dhms":
        count, rest = divmod(rest, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _duration(value: Any) -> Any:
    return value if isinstance(value, timedelta) else parse_duration(value)


# An alert is leased for deliver.LEASE_SECONDS (5 minutes) while it is attempted; an attempt
# that could outlast the lease would let another daemon claim and send it again meanwhile.
MAX_CHANNEL_TIMEOUT = timedelta(minutes=2)


def _channel_timeout(value: timedelta) -> timedelta:
    if value > MAX_CHANNEL_TIMEOUT:
        raise ValueError(
            f"{format_duration(value)} is longer than {format_duration(MAX_CHANNEL_TIMEOUT)}, "
            "the most a delivery attempt may take (an alert is leased for 5m while it is sent)"
        )
    return value


def timezone_name(name: str) -> str:
    """Accept an IANA time zone name that this system's zoneinfo knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Asia/Tokyo, UTC)") from None
    return name


def check_http_url(url: str) -> str:
    """An http(s) URL that can be fetched as written: checked here, not at every poll. The
    messages show it redacted: a URL is where a feed's or a channel's token sits."""
    if any(c.isspace() for c in url):
        raise ValueError(f"{redact_url(url)!r} contains white space (percent-encode it as %20)")
    try:
        parts = urlsplit(url)
        _ = parts.port  # reads the port: a port that is not a number in 0-65535 raises
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} is not an http:// or https:// URL")
    return url


CREDENTIALS = (
    "the URL carries credentials (a user name, password or token), which the log would keep "
    "forever; cite the evidence's public address"
)


def check_public_url(url: str) -> str:
    """An http(s) URL that the event log may keep for good, as the source a status cites:
    no user name, password or credential parameter (`redact.carries_credentials`). Its path is
    not judged: a cited page's address is its id. The message names no part of it."""
    check_http_url(url)
    if carries_credentials(url):
        raise ValueError(CREDENTIALS)
    return url


# the drivers this package installs: sqlite3 (the standard library's) and psycopg 3
_DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


# scheme://[user[:password]@][host or [ipv6]][:port]: SQLAlchemy's reading (sqlalchemy.engine.url)
_DATABASE_PORT = re.compile(
    r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?(?:\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?"
)


def check_database_url(url: str) -> str:
    """Accept SQLite and PostgreSQL URLs; errors name only the scheme (URLs hold passwords)."""
    scheme = url.partition(":")[0]
    if not re.fullmatch(r"[a-z0-9+]{1,30}", scheme) or "://" not in url:
        # a libpq keyword string ("host=db password=…") is not echoed: it may hold a password
        raise ValueError(
            "database URL is not a URL "
            "(use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)"
        )
    if scheme.partition("+")[0] == "postgres":
        raise ValueError(
            f"database URL scheme {scheme!r}: write postgresql:// (SQLAlchemy knows no 'postgres')"
        )
    if scheme not in _DATABASE_SCHEMES:
        raise ValueError(
            f"database URL scheme {scheme!r} is not supported "
            "(use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)"
        )
    port = _DATABASE_PORT.match(url)  # read as SQLAlchemy reads it; a broken one fails later
    if (
        port is not None
        and port["port"]
        and not (port["port"].isdigit() and 0 < int(port["port"]) < 65536)
    ):
        raise ValueError(
            f"database URL ({scheme}://…): its host's port is not a number from 1 to 65535 "
            "(an IPv6 address goes in brackets: postgresql+psycopg://user@[::1]:5432/db)"
        )
    if scheme.startswith("sqlite") and url.partition("://")[2] in ("", "/", "/:memory:"):
        raise ValueError(
            f"database URL {url!r} names no file: an in-memory log would lose every event "
            "(use sqlite:///path/to/file.db)"
        )
    return url


def _header_text(text: str) -> str:
    """A value sent as an HTTP header (the User-Agent): printable ASCII on one line."""
    if not re.fullmatch(r"[\x20-\x7e]{1,512}", text):
        raise ValueError(
            f"{text[:60]!r} is not an HTTP header value: use printable ASCII, one line, at "
            "most 512 characters (e.g. monitor/1.0 (+https://example.org/contact))"
        )
    return text


def _host(name: str) -> str:
    """A host name or IP address alone: no scheme, port, path or spaces."""
    if not re.fullmatch(
        r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*", name
    ):
        raise ValueError(f"{name[:60]!r} is not a host name or IP address (e.g. smtp.example.org)")
    return name


def _env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        # The value is not echoed: a secret pasted here by mistake must not reach the logs.
        raise ValueError(
            "must name an environment variable (e.g. MONITOR_SMTP_PASSWORD), "
            "in capitals, digits and '_'; the secret itself goes in that variable"
        )
    return name


def _email(address: str) -> str:
    if not _EMAIL.fullmatch(address):
        raise ValueError(f"{address!r} is not an email address")
    return address


def _domain(name: str) -> str:
    if not _DOMAIN.fullmatch(name):
        raise ValueError(f"{name!r} is not a registrable domain in lowercase (e.g. nedo.go.jp)")
    return name


def term_problem(term: str, aliases: Mapping[str, Sequence[str]]) -> str | None:
    """Why `term` cannot be compiled, as a sentence; `monitor.terms.check_term` decides."""
    try:
        check_term(term, aliases)
    except TermError as exc:
        regex = _BAD_REGEX.fullmatch(exc.reason)
        if regex is not None and exc.term is not None:
            return f"{exc.term!r} is not a valid regular expression: {regex.group(1)}"
        return str(exc)
    return None


def _term(term: str) -> str:
    """A rule term; compiled now so a bad one is a load-time problem (aliases: references.py)."""
    if not term.strip():
        raise ValueError("a term cannot be empty")
    if term == "@":
        raise ValueError("'@' names no alias (write @name)")
    if term.startswith("/") and (len(term) < 3 or not term.endswith("/")):
        # The matcher would take it as a literal; in a configuration it is almost surely a typo.
        raise ValueError(f"{term!r} starts a regular expression but does not end with '/'")
    problem = None if term.startswith("@") else term_problem(term, {})
    if problem is not None:
        raise ValueError(problem)
    return term


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
ChannelTimeout = Annotated[Duration, AfterValidator(_channel_timeout)]
NonEmpty = Annotated[StrictStr, Field(min_length=1)]
Id = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
HttpUrl = Annotated[StrictStr, AfterValidator(check_http_url)]
PublicUrl = Annotated[StrictStr, AfterValidator(check_public_url)]  # kept in the log
EnvName = Annotated[StrictStr, AfterValidator(_env_name)]
HeaderText = Annotated[StrictStr, AfterValidator(_header_text)]
Host = Annotated[StrictStr, AfterValidator(_host)]
Email = Annotated[StrictStr, AfterValidator(_email)]
Domain = Annotated[StrictStr, AfterValidator(_domain)]
Term = Annotated[StrictStr, AfterValidator(_term)]
Terms = Annotated[tuple[Term, ...], Field(min_length=1)]
# Beyond 32 bits a count means nothing here, and a 64-bit overflow would surface far from it.
Count = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
# A day whose midnight and next midnight exist in every timezone as a UTC datetime.
Day = Annotated[date, Strict(), Field(ge=date(1900, 1, 1), le=date(9998, 12, 31))]
RetrySchedule = Annotated[tuple[Duration, ...], Field(min_length=1)]
DEFAULT_RETRY_SCHEDULE = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000)
)

"""Logging for the daemon and the commands: text or JSON lines on stderr, secrets scrubbed.

Secrets are kept out of messages by construction; the scrubbing filter is a second wall: any
configured secret value, in plain, base64 or URL-encoded form, and any password or token in a
URL (`monitor.redact`) is replaced before a record is written, tracebacks included.
"""

from __future__ import annotations

import base64
import logging
import sys
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from monitor.redact import SecretScrubber, redact_text


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form in which a secret could leak: plain, base64, URL-encoded; each word of one
    holding spaces too (a rotation list's secrets), but for words under 4 characters, which
    are a passphrase's fragments (`a`, `of`), not secrets."""
    forms: set[str] = set()
    for secret in secrets:
        whole = secret.strip()
        for part in {secret, whole, *secret.split()}:
            if not part or (len(part) < 4 and part != whole):
                continue
            forms.add(part)
            forms.add(base64.b64encode(part.encode()).decode())
            forms.add(urllib.parse.quote(part, safe=""))
            forms.add(urllib.parse.quote_plus(part))
    return sorted(forms, key=len, reverse=True)


class ScrubSecrets(logging.Filter):
    """Replace secret values, and credentials in URLs, in the rendered message and traceback
    of every record. A short secret goes only where it stands alone (`redact.SHORT_SECRET`):
    a password "abc" leaves "abcdef" as it is."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = SecretScrubber(secret_forms(secrets))

    def scrub(self, text: str) -> str:
        return redact_text(self.secrets.scrub(text))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secrets or "://" in message or record.exc_info:
            record.msg = self.scrub(message)
            record.args = None
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def scrub_also(secrets: Iterable[str]) -> None:
    """Scrub these values too, from now on: a reload may name variables the start did not."""
    more = secret_forms(secrets)
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, ScrubSecrets):
                f.secrets += more


# what a line is about, given as `extra=` where it is logged: a log collector can filter on it
FIELDS = ("feed", "alert", "channel", "milestone")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update((k, str(v)) for k in FIELDS if (v := getattr(record, k, None)) is not None)
        if record.exc_text:
            data["exception"] = record.exc_text
        return orjson.dumps(data).decode()


def setup(*, fmt: str = "text", level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once, for the daemon or a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubSecrets(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp", "mail.log"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))

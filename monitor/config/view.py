"""Views of a loaded configuration: the effective config with secrets redacted, and what changed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from monitor.config.models import Config
from monitor.config.values import format_duration

REDACTED = "<redacted>"
URL_KEYS = frozenset({"url", "database_url", "source"})
# Query parameters that commonly carry credentials in webhook and database URLs.
_SENSITIVE_PARAM = re.compile(r"(?i)token|key|secret|sig|pass|auth|code|credential")

def redacted(config: Config) -> dict[str, Any]:
    """The effective configuration as JSON-ready data; `*_env` names kept, secret values hidden."""
    data = config.model_dump(mode="json")
    for feed, entry in zip(config.feeds, data["feeds"], strict=True):
        entry["interval"] = format_duration(feed.effective_interval(config.settings))
    redacted_data: dict[str, Any] = _redact(data, None)
    return redacted_data


def redact_url(url: str) -> str:
    """`url` with any password and credential-like query values replaced by `<redacted>`."""
    parts = urlsplit(url)
    result = url
    # Replace pieces in place: urlunsplit would rewrite sqlite:////abs/path as sqlite://abs/path.
    if parts.password is not None:
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


def _redact(value: Any, key: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    if isinstance(value, str) and key in URL_KEYS:
        return redact_url(value)
    return value

"""Views of a loaded configuration: the effective config with secrets redacted, and what changed."""

from __future__ import annotations

from typing import Any

from monitor.config.models import Config
from monitor.config.values import format_duration
from monitor.redact import redact_url, shown_source

URL_KEYS = frozenset({"url", "database_url", "source"})


def redacted(config: Config) -> dict[str, Any]:
    """The effective configuration as JSON-ready data; `*_env` names kept, secret values hidden."""
    data = config.model_dump(mode="json")
    for feed, entry in zip(config.feeds, data["feeds"], strict=True):
        entry["interval"] = format_duration(feed.effective_interval(config.settings))
    redacted_data: dict[str, Any] = _redact(data, None)
    return redacted_data


def _redact(value: Any, key: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    if isinstance(value, str) and key in URL_KEYS:
        # a source cites a public page, and config refuses one that carries credentials
        return shown_source(value) if key == "source" else redact_url(value)
    return value

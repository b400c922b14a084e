"""Views of a loaded configuration: the effective config with secrets redacted, and what changed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from monitor.config.models import Config, Milestone
from monitor.config.values import format_duration

REDACTED = "<redacted>"
URL_KEYS = frozenset({"url", "database_url", "source"})
# Query parameters that commonly carry credentials in webhook and database URLs.
_SENSITIVE_PARAM = re.compile(r"(?i)token|key|secret|sig|pass|auth|code|credential")
KINDS = ("feeds", "milestones", "channels")


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


def diff(old: Config, new: Config) -> dict[str, tuple[str, ...]]:
    """Ids added, removed and changed per kind, keyed like events.ConfigApplied's fields."""
    result: dict[str, tuple[str, ...]] = {}
    for kind in KINDS:
        before = _fingerprints(old, kind)
        after = _fingerprints(new, kind)
        result[f"{kind}_added"] = tuple(i for i in after if i not in before)
        result[f"{kind}_removed"] = tuple(i for i in before if i not in after)
        result[f"{kind}_changed"] = tuple(i for i in after if i in before and before[i] != after[i])
    return result


def _fingerprints(config: Config, kind: str) -> dict[str, Any]:
    """What decides whether an entry changed, including what it inherits from elsewhere."""
    if kind == "feeds":
        return {f.id: (f, f.effective_interval(config.settings)) for f in config.feeds}
    if kind == "milestones":
        return {m.id: (m, _aliases_used(config, m)) for m in config.milestones}
    return {c.id: c for c in config.channels}


def _aliases_used(config: Config, milestone: Milestone) -> dict[str, Any]:
    terms = [
        term
        for rule in (milestone.match, *milestone.setback)
        for term in (*(t for group in rule.all for t in group), *rule.any, *rule.none)
    ]
    return {t[1:]: config.aliases.get(t[1:]) for t in terms if t.startswith("@")}

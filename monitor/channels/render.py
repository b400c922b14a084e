"""Alert rendering: one AlertMessage → webhook JSON bytes or a text+HTML email (pure)."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.oneline import one_line

SUBJECT_MAX = 200


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What one channel is told about one transition; identical on every retry."""

    alert_id: str
    channel_id: str
    subject: str
    payload: Mapping[str, Any]
    queued_at: datetime
    test: bool = False


def webhook_body(alert: AlertMessage) -> bytes:
    """The exact bytes to sign and send: compact JSON, keys of `data` sorted."""
    data = _plain(alert.payload)
    data["test"] = alert.test
    document = {
        "type": "milestone.test" if alert.test else "milestone.status_changed",
        "timestamp": _iso_utc(alert.queued_at),
        "data": data,
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def email_message(
    alert: AlertMessage, *, sender: str, recipients: Sequence[str], timezone: str
) -> EmailMessage:
    """A multipart/alternative message whose bytes are the same on every retry."""
    view = _View.of(alert, ZoneInfo(timezone))
    msg = EmailMessage()
    msg["Subject"] = subject_line(alert)
    msg["From"] = one_line(sender)
    msg["To"] = ", ".join(one_line(r) for r in recipients)
    msg["Date"] = format_datetime(alert.queued_at.astimezone(UTC))
    msg["Message-ID"] = f"<{alert.alert_id}@milestone-monitor>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
    text, markup = _text(view), _html(view)
    msg.set_content(text)
    msg.add_alternative(markup, subtype="html")
    msg.set_boundary(_boundary(alert.alert_id, text + markup))
    return msg


def subject_line(alert: AlertMessage) -> str:
    """The Subject: one line, capped, `[TEST]`-prefixed for test alerts."""
    subject = one_line(alert.subject)
    if not subject:
        milestone = _mapping(alert.payload.get("milestone"))
        title = _str(milestone.get("title")) or _str(milestone.get("id"))
        subject = one_line(f"[milestone-monitor] {title} — {_state(alert.payload.get('to'))}")
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return f"[TEST] {subject}" if alert.test and not subject.startswith("[TEST]") else subject


@dataclass(frozen=True, slots=True)
class _Match:
    group: str
    term: str
    field: str
    text: str


@dataclass(frozen=True, slots=True)
class _Evidence:
    title: str
    url: str | None
    publisher: str
    published: str
    matches: tuple[_Match, ...]


@dataclass(frozen=True, slots=True)
class _View:
    """The alert reduced to display strings; both renderers read only this."""

    test: bool
    alert_id: str
    title: str
    milestone_id: str
    change: str
    reason: str
    source: str | None  # the page a baseline or an operator's note cited
    operator: str | None  # who declared the status with `monitor note`
    expected_by: str
    queued: str
    chain_head: str
    position: str
    evidence: tuple[_Evidence, ...]

    @classmethod
    def of(cls, alert: AlertMessage, zone: ZoneInfo) -> _View:
        p = alert.payload
        milestone, head = _mapping(p.get("milestone")), _mapping(p.get("chain_head"))
        return cls(
            test=alert.test,
            alert_id=alert.alert_id,
            title=one_line(_str(milestone.get("title")) or _str(milestone.get("id"))),
            milestone_id=one_line(_str(milestone.get("id"))),
            change=f"{_state(p.get('from'))} → {_state(p.get('to'))}",
            reason=one_line(_str(p.get("reason"))),
            source=one_line(_str(p.get("source"))) or None,
            operator=one_line(_str(p.get("operator"))) or None,
            expected_by=_str(milestone.get("expected_by")) or "not set",
            queued=_local(alert.queued_at, zone),
            chain_head=f"{_str(head.get('position'))}:{_str(head.get('hash'))}",
            position=_str(p.get("event_position")),
            evidence=tuple(_evidence(_mapping(e), zone) for e in _list(p.get("evidence"))),
        )


def _evidence(raw: Mapping[str, Any], zone: ZoneInfo) -> _Evidence:
    url = one_line(_str(raw.get("url")))
    published = _str(raw.get("published_at"))
    matches = tuple(
        _Match(
            group=f"all group {m['group']}" if m.get("group") is not None else "any",
            term=one_line(_str(m.get("term"))),
            field=one_line(_str(m.get("field"))),
            text=one_line(_str(m.get("text"))),
        )
        for m in map(_mapping, _list(raw.get("matched_terms")))
    )
    return _Evidence(
        title=one_line(_str(raw.get("title"))) or "(untitled)",
        url=url or None,
        publisher=one_line(_str(raw.get("publisher"))) or "unknown publisher",
        published=_local_text(published, zone) if published else "date unknown",
        matches=matches,
    )


TEST_NOTICE = "This is a TEST alert (monitor alerts test); no milestone changed."


def _text(v: _View) -> str:
    lines = [f"[TEST] {TEST_NOTICE}", ""] if v.test else []
    lines += [
        f"{v.title} — {v.change}",
        "",
        f"Milestone:   {v.milestone_id}",
        f"Change:      {v.change}",
        f"Why:         {v.reason}",
        *([f"Source:      {v.source}"] if v.source else []),
        *([f"Declared by: {v.operator}"] if v.operator else []),
        f"Expected by: {v.expected_by}",
        f"Queued at:   {v.queued}",
        "",
        f"Evidence ({len(v.evidence)})",
    ]
    for n, ev in enumerate(v.evidence, 1):
        lines += ["", f"{n}. {ev.title}", f"   {ev.url or '(no link)'}"]
        lines.append(f"   {ev.publisher}, published {ev.published}")
        lines += [f"   {_explain(m)}" for m in ev.matches]
    lines += [
        "",
        f"Event log position {v.position}; chain head {v.chain_head}",
        f"Alert {v.alert_id} (the same id on every retry)",
    ]
    return "\n".join(lines) + "\n"


def _explain(m: _Match) -> str:
    return f'matched "{m.term}" ({m.group}) in {m.field}: "{m.text}"'


def _html(v: _View) -> str:
    e = html.escape
    parts = ['<!DOCTYPE html>\n<html><body style="font-family: sans-serif">']
    if v.test:
        parts.append(f'<p style="color: #a00"><strong>[TEST]</strong> {e(TEST_NOTICE)}</p>')
    parts.append(f"<h2>{e(v.title)} — {e(v.change)}</h2>\n<table>")
    rows = [  # (heading, cell markup)
        ("Milestone", e(v.milestone_id)),
        ("Change", e(v.change)),
        ("Why", e(v.reason)),
        *([("Source", _anchor(v.source, v.source))] if v.source else []),
        *([("Declared by", e(v.operator))] if v.operator else []),
        ("Expected by", e(v.expected_by)),
        ("Queued at", e(v.queued)),
    ]
    parts += [f'<tr><th align="left">{e(k)}</th><td>{cell}</td></tr>' for k, cell in rows]
    parts.append(f"</table>\n<h3>Evidence ({len(v.evidence)})</h3>\n<ol>")
    for ev in v.evidence:
        parts.append(f"<li>{_link(ev)}<br>{e(ev.publisher)}, published {e(ev.published)}<ul>")
        parts += [f"<li>{e(_explain(m))}</li>" for m in ev.matches]
        parts.append("</ul></li>")
    parts.append(
        f"</ol>\n<p><small>Event log position {e(v.position)}; chain head "
        f"<code>{e(v.chain_head)}</code><br>Alert <code>{e(v.alert_id)}</code> "
        "(the same id on every retry)</small></p>\n</body></html>"
    )
    return "\n".join(parts) + "\n"


def _link(ev: _Evidence) -> str:
    return _anchor(ev.title, ev.url)


def _anchor(text: str, url: str | None) -> str:
    # Only web links become anchors: a feed may carry javascript: or data: URLs.
    if url and re.match(r"https?://", url, re.IGNORECASE):
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'
    if text == url:
        return html.escape(text)
    return f"{html.escape(text)} ({html.escape(url or 'no link')})"


def _boundary(alert_id: str, content: str) -> str:
    # Derived from the alert id so a retry sends identical bytes; re-derived on a collision.
    for n in range(100):
        digest = hashlib.sha256(f"{alert_id}/{n}".encode()).hexdigest()[:32]
        candidate = f"=_mm_{digest}"
        if candidate not in content:
            return candidate
    raise ValueError(f"alert {alert_id}: no MIME boundary absent from the content")


def _plain(value: Any) -> Any:
    """JSON-ready copy: mappings as dicts with sorted keys, sequences as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_plain(x) for x in value]
    if isinstance(value, datetime):
        return _iso_utc(value)
    return value


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({moment.astimezone(UTC):%H:%M} UTC)"


def _local_text(value: str, zone: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return one_line(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _local(moment, zone)


def _state(value: Any) -> str:
    return _str(value).replace("_", " ") or "unknown"


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []

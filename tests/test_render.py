"""Alert rendering: golden webhook JSON and email parts, escaping, header safety, determinism."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.channels.render import AlertMessage, email_message, webhook_body
from tests.kit import webhook_schema_errors

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).parent.parent / "docs"
SENDER = "Milestone Monitor <monitor@example.org>"
RECIPIENTS = ("ops@example.org", "lead@example.net")
QUEUED = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
HASH = "3f9a" * 16


def _evidence(**overrides: Any) -> dict[str, Any]:
    item = {
        "item_id": hashlib.sha256(b"nhk k1001").hexdigest(),
        "title": "Noetra begins training its first foundation model",
        "url": "https://www3.nhk.or.jp/news/html/20260630/k1001.html",
        "publisher": "nhk.or.jp",
        "published_at": "2026-06-30T01:15:00+00:00",
        "matched_terms": [
            {"group": 0, "term": "Noetra", "field": "title", "text": "Noetra"},
            {"group": 1, "term": "training", "field": "title", "text": "training"},
        ],
    }
    return item | overrides


def _payload(**overrides: Any) -> dict[str, Any]:
    payload = {
        "milestone": {
            "id": "training-start",
            "title": "Noetra starts training",
            "expected_by": "2027-03-31",
        },
        "from": "reported",
        "to": "confirmed",
        "reason": "2 independent publishers within 14 days: nhk.or.jp, nikkei.com",
        "source": None,
        "operator": None,
        "evidence": [
            _evidence(),
            _evidence(
                item_id=hashlib.sha256(b"nikkei").hexdigest(),
                title="ノエトラ、学習開始を発表",
                url=None,
                publisher="nikkei.com",
                published_at=None,
                matched_terms=[{"group": None, "term": "学習", "field": "summary", "text": "学習"}],
            ),
        ],
        "event_position": 1234,
        "chain_head": {"position": 1234, "hash": HASH},
        "test": False,
    }
    return payload | overrides


HOSTILE_TITLE = 'Noetra <script>alert("x")</script> & "friends"'
CASES: dict[str, AlertMessage] = {
    "confirmed": AlertMessage(
        alert_id="alt_" + "a1" * 16,
        channel_id="ops-mail",
        subject="[milestone-monitor] Noetra starts training — confirmed",
        payload=_payload(),
        queued_at=QUEUED,
    ),
    "test": AlertMessage(
        alert_id="alt_" + "b2" * 16,
        channel_id="ops-hook",
        subject="[milestone-monitor] Noetra starts training — confirmed",
        payload=_payload(),
        queued_at=QUEUED,
        test=True,
    ),
    "hostile": AlertMessage(
        alert_id="alt_" + "c3" * 16,
        channel_id="ops-mail",
        subject=f"[milestone-monitor] {HOSTILE_TITLE}\r\nBcc: victim@example.com — at_risk",
        payload=_payload(
            milestone={"id": "training-start", "title": HOSTILE_TITLE, "expected_by": None},
            to="at_risk",
            source='javascript:alert("x")',
            evidence=[_evidence(title=HOSTILE_TITLE, url="javascript:alert(1)")],
        ),
        queued_at=QUEUED,
    ),
    "noted": AlertMessage(  # an operator's note: no evidence, a cited source
        alert_id="alt_" + "d4" * 16,
        channel_id="ops-mail",
        subject="[milestone-monitor] Noetra starts training — at_risk",
        payload=_payload(
            to="at_risk",
            reason="budget cut announced",
            source="https://www.meti.go.jp/press/2026/11/20261120001/20261120001.html",
            operator="alice",
            evidence=[],
        ),
        queued_at=QUEUED,
    ),
}


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 and review the diff"
    assert actual == path.read_text(encoding="utf-8")


def _render(alert: AlertMessage) -> EmailMessage:
    return email_message(alert, sender=SENDER, recipients=RECIPIENTS, timezone="Asia/Tokyo")


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, markup = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and markup is not None
    return str(text.get_content()), str(markup.get_content())


def _headers_and_text(msg: EmailMessage) -> str:
    names = ("Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted")
    head = "".join(f"{name}: {msg[name]}\n" for name in names)
    return head + "\n" + _parts(msg)[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_webhook_body_matches_golden(case: str) -> None:
    _check_golden(f"webhook_{case}.json", webhook_body(CASES[case]).decode("utf-8") + "\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_email_text_and_headers_match_golden(case: str) -> None:
    _check_golden(f"email_{case}.txt", _headers_and_text(_render(CASES[case])))


@pytest.mark.parametrize("case", sorted(CASES))
def test_email_html_matches_golden(case: str) -> None:
    _check_golden(f"email_{case}.html", _parts(_render(CASES[case]))[1])


def test_documented_example_is_what_the_code_sends() -> None:
    example = DOCS / "webhook.example.json"
    body = json.loads(webhook_body(CASES["confirmed"]))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        example.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert json.loads(example.read_text(encoding="utf-8")) == body


@pytest.mark.parametrize("case", sorted(CASES))
def test_webhook_body_validates_against_documented_schema(case: str) -> None:
    assert webhook_schema_errors(webhook_body(CASES[case])) == []


def test_test_alert_is_marked_in_type_data_subject_and_both_parts() -> None:
    alert = CASES["test"]
    body = json.loads(webhook_body(alert))
    text, markup = _parts(_render(alert))
    assert (body["type"], body["data"]["test"]) == ("milestone.test", True)
    assert str(_render(alert)["Subject"]).startswith("[TEST] ")
    assert text.startswith("[TEST]") and "<strong>[TEST]</strong>" in markup


def test_real_alert_has_status_changed_type() -> None:
    body = json.loads(webhook_body(CASES["confirmed"]))
    assert (body["type"], body["data"]["test"]) == ("milestone.status_changed", False)
    assert body["timestamp"] == "2026-07-01T09:30:00Z"


def test_html_part_escapes_hostile_feed_text() -> None:
    _, markup = _parts(_render(CASES["hostile"]))
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;friends&quot;" in markup


def test_non_web_evidence_url_is_shown_but_not_linked() -> None:
    _, markup = _parts(_render(CASES["hostile"]))
    assert 'href="javascript:' not in markup
    assert "(javascript:alert(1))" in markup


def test_subject_line_breaks_cannot_inject_headers() -> None:
    raw = _render(CASES["hostile"]).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\r" not in str(parsed["Subject"]) and "\n" not in str(parsed["Subject"])
    assert "Bcc: victim@example.com" in str(parsed["Subject"])  # kept as harmless text


def test_retry_renders_identical_bytes_with_stable_message_id() -> None:
    first, again = _render(CASES["confirmed"]), _render(CASES["confirmed"])
    assert first.as_bytes() == again.as_bytes()
    assert first["Message-ID"] == f"<{CASES['confirmed'].alert_id}@milestone-monitor>"


def test_date_header_is_queued_at() -> None:
    msg = _render(CASES["confirmed"])
    assert msg["Date"].datetime == QUEUED


def test_text_part_explains_match_and_names_chain_head() -> None:
    text, _ = _parts(_render(CASES["confirmed"]))
    assert 'matched "Noetra" (all group 0) in title: "Noetra"' in text
    assert 'matched "学習" (any) in summary: "学習"' in text
    assert f"chain head 1234:{HASH}" in text
    assert "https://www3.nhk.or.jp/news/html/20260630/k1001.html" in text


LINE_BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"])
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=20), LINE_BREAKS), max_size=8).map("".join)


@given(subject=HOSTILE_TEXT, title=HOSTILE_TEXT)
def test_any_feed_text_renders_a_parseable_message_with_one_subject(
    subject: str, title: str
) -> None:
    alert = AlertMessage(
        alert_id="alt_" + "d4" * 16,
        channel_id="c",
        subject=subject,
        payload=_payload(evidence=[_evidence(title=title)]),
        queued_at=QUEUED,
    )
    parsed = message_from_bytes(_render(alert).as_bytes(), policy=policy.default)
    assert len(parsed.get_all("Subject") or []) == 1
    assert parsed["Bcc"] is None and len(parsed.get_all("To") or []) == 1


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5), st.booleans())
def test_webhook_data_round_trips_the_payload(payload: dict[str, Any], test: bool) -> None:
    alert = AlertMessage("alt_x", "c", "s", payload, QUEUED, test=test)
    body = webhook_body(alert)
    assert json.loads(body)["data"] == payload | {"test": test}
    assert body == webhook_body(alert)

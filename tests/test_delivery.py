"""Alerts end to end: one email and one signed webhook per transition, retries, abandonment,
alerts held for a missing secret, a channel disabled by a 410 and enabled again."""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import hashlib
import itertools
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from monitor import alertwork, deliver, runtime, workstate
from monitor.daemon import Daemon
from monitor.events import AlertQueued, ChannelDisabled
from monitor.fetch import guarded_client
from monitor.runtime import open_store
from monitor.store import NewEvent
from tests import kit
from tests.conftest import SECRET
from tests.feedserver import FeedServer
from tests.kit import cli, json_out, load, rss, run_once, webhook_schema_errors, write_config
from tests.receivers import Reply, SmtpServer, WebhookReceiver, silent_smtp_server

ENV = {"MONITOR_WEBHOOK_SECRET": SECRET}
NOW = datetime.now(UTC)
CONFIRMING = {"title": "NEDO: Noetra has started training the foundation model",
              "link": "https://www.nedo.go.jp/news/press/AA5_101999.html", "guid": "nedo",
              "published": NOW - timedelta(hours=2)}
SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def channels(smtp_port: int, hook_url: str, *, recipients: str = '["analyst@example.org"]',
             timeout: str = "5s") -> str:
    return f"""
[[channels]]
id = "team"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
allow_insecure = true
sender = "monitor@example.org"
recipients = {recipients}
timeout = "{timeout}"

[[channels]]
id = "hook"
type = "webhook"
url = "{hook_url}"
secret_env = "MONITOR_WEBHOOK_SECRET"
timeout = "{timeout}"
"""


def setup(tmp_path: Path, feed_server: FeedServer, smtp_port: int, hook_url: str,
          notify: tuple[str, ...] = ("team", "hook"), **kw: str) -> Path:
    feed_server.route("/news.xml", body=rss([CONFIRMING]))
    return write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                        channels=channels(smtp_port, hook_url, **kw), notify=notify)


deliver_at = functools.partial(kit.deliver_at, env=ENV)  # one dispatcher tick at a set time


def queue_hook_alert(path: Path, digit: str, when: datetime | None = None) -> AlertQueued:
    """An alert to the channel "hook", queued in the log of `path` for `when` (now)."""
    store = open_store(load(path, ENV))
    q = AlertQueued(alert_id="alt_" + digit * 32, channel_id="hook", milestone_id="m", subject="s",
                    payload={})
    with store.transaction() as tx:
        tx.append([NewEvent(q)])
        alertwork.queue_alert(tx.conn, q.alert_id, q.channel_id,
                              (when or datetime.now(UTC)).timestamp())
    store.close()
    return q


def assert_delivered_once_at_first_attempt(path: Path, receiver: WebhookReceiver,
                                           alert_id: str) -> None:
    """The receiver got one signed request for the alert, and the log says: delivered, at
    attempt 1 (the alert's only event after its queueing)."""
    assert receiver.count(alert_id) == 1
    [received] = receiver.received
    assert received.verified
    [(kind, data)] = alert_events(path)[1:]
    assert (kind, data["attempt"]) == ("AlertDelivered", 1), data


def alert_events(path: Path) -> list[tuple[str, dict[str, object]]]:
    store = open_store(load(path, ENV))
    try:
        return [(r.type, r.data) for r in store.read() if r.stream.startswith("alert:")]
    finally:
        store.close()


def test_confirmation_sends_one_email_and_one_verified_webhook(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        smtp: SmtpServer) -> None:
    path = setup(tmp_path, feed_server, smtp.port, receiver.url())
    run_once(path, ENV)
    run_once(path, ENV)
    [hook] = receiver.received
    assert hook.verified and webhook_schema_errors(hook.body) == []
    body = orjson.loads(hook.body)
    store = open_store(load(path, ENV))
    queued = {r.data["channel_id"]: r for r in store.read(types=("AlertQueued",))}
    [change] = list(store.read(types=("MilestoneStatusChanged",)))
    assert body["type"] == "milestone.status_changed"
    assert body["data"]["to"] == "confirmed" and body["data"]["from"] == "pending"
    assert body["data"]["event_position"] == change.position
    assert body["data"]["chain_head"] == {"position": change.position, "hash": change.hash}
    assert body["data"]["evidence"][0]["publisher"] == "nedo.go.jp"
    assert hook.webhook_id == queued["hook"].data["alert_id"]
    [mail] = smtp.messages
    message = email.message_from_bytes(mail.content)
    assert message["Message-ID"] == f"<{queued['team'].data['alert_id']}@milestone-monitor>"
    assert "confirmed" in message["Subject"]
    assert list(mail.rcpt_tos) == ["analyst@example.org"]
    delivered = [r.data["channel_id"] for r in store.read(types=("AlertDelivered",))]
    assert sorted(delivered) == ["hook", "team"]
    store.close()


def test_a_notes_alert_cites_its_source_in_the_webhook_and_the_email(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        smtp: SmtpServer) -> None:
    path = setup(tmp_path, feed_server, smtp.port, receiver.url())
    feed_server.route("/news.xml", body=rss([]))
    source = "https://www.meti.go.jp/press/2026/11/20261120001/20261120001.html"
    note = cli(path, "note", "training-start", "--status", "at_risk", "--source", source,
               "--reason", "budget cut announced", "--operator", "alice", env=ENV)
    assert note.returncode == 0, note.stderr
    run_once(path, ENV)
    [hook] = receiver.received
    assert hook.verified and webhook_schema_errors(hook.body) == []
    data = orjson.loads(hook.body)["data"]
    assert (data["to"], data["reason"], data["source"], data["operator"]) == (
        "at_risk", "budget cut announced", source, "alice")
    [mail] = smtp.messages
    text = email.message_from_bytes(mail.content, policy=email.policy.default)
    plain = text.get_body(("plain",))
    assert plain is not None and f"Source:      {source}\r\nDeclared by: alice\r\n" in (
        plain.get_content())


def test_receiver_failing_every_time_follows_the_schedule_then_abandons(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(*[Reply(status=500)] * 20)
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)  # attempt 1 fails at real time
    clock = NOW
    for _ in SCHEDULE:
        [(kind, data)] = [e for e in alert_events(path) if e[0] != "AlertQueued"][-1:]
        assert kind == "AlertAttemptFailed"
        clock = datetime.fromisoformat(str(data["retry_at"])) + timedelta(seconds=1)
        assert deliver_at(path, clock - timedelta(seconds=2)) == []  # not yet due
        deliver_at(path, clock)
    events = alert_events(path)
    failed = [d for k, d in events if k == "AlertAttemptFailed"]
    assert [d["attempt"] for d in failed] == list(range(1, 8))
    attempts = [datetime.fromisoformat(str(d["retry_at"])) for d in failed]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    for gap, base in zip(gaps, SCHEDULE[1:], strict=False):
        assert 0.8 * base - 2 <= gap <= 1.2 * base + 2
    assert events[-1][0] == "AlertAbandoned" and events[-1][1]["kind"] == "retries_exhausted"
    assert len(receiver.received) == 8
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert deliver_at(path, clock + timedelta(days=30)) == []


@pytest.mark.parametrize(
    "reply,kind,final",
    [
        (Reply(status=301, headers={"Location": "/elsewhere"}), "redirect", "AlertAttemptFailed"),
        (Reply(status=410), "gone", "AlertAbandoned"),
        (Reply(status=429, headers={"Retry-After": "120"}), "rate_limited",
         "AlertAttemptFailed"),
        (Reply(status=400, body=b'{"error":\n "unknown event type"}'), "http_4xx",
         "AlertAbandoned"),
        (Reply(status=503, body=b"down for maintenance"), "http_5xx", "AlertAttemptFailed"),
        (Reply(silent=True), "timeout", "AlertAttemptFailed"),
    ],
)
def test_webhook_answers_are_classified(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver, reply: Reply,
        kind: str, final: str) -> None:
    receiver.respond(reply)
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",), timeout="1s")
    run_once(path, ENV)
    events = alert_events(path)
    assert events[-1][0] == final and events[-1][1]["kind"] == kind
    assert receiver.requests_to("/elsewhere") == []
    if kind == "rate_limited":
        queued_at = NOW
        retry_at = datetime.fromisoformat(str(events[-1][1]["retry_at"]))
        assert retry_at - queued_at >= timedelta(seconds=59)
    answers = {"http_4xx": '400 Bad Request {"error": "unknown event type"}',
               "http_5xx": "503 Service Unavailable down for maintenance", "timeout": None}
    if kind in answers:  # the receiver's own words, for the operator who reads the log
        assert events[-1][1]["response"] == answers[kind], events[-1]
    if kind == "gone":
        store = open_store(load(path, ENV))
        assert [r.type for r in store.read() if r.stream == "channel:hook"] == [
            "ChannelDisabled"]
        store.close()


def test_a_token_in_a_webhook_path_or_its_redirect_shows_nowhere(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    """The channel's own path token and a Slack token in the receiver's Location are
    redacted in the events, `monitor check`, `alerts` and `status`."""
    token, slack = "k4GYn8fX19ugqko9vbmEJFC27Y0", "SlackTokenCanary"
    receiver.respond(Reply(status=301, headers={
        "Location": f"https://hooks.slack.com/services/T1/B2/{slack}"}))
    path = setup(tmp_path, feed_server, 1, receiver.url(f"/hook/{token}"), notify=("hook",))
    run_once(path, ENV)
    assert [r.path for r in receiver.received] == [f"/hook/{token}"]  # sent to the real URL
    kind, failed = alert_events(path)[-1]
    assert kind == "AlertAttemptFailed"
    assert "(to https://hooks.slack.com/services/T1/B2/<redacted>)" in str(failed["message"])
    store = open_store(load(path, ENV))
    recorded = [(r.data, r.meta) for r in store.read()]
    store.close()
    shown = [str(recorded)]
    for args in (["check"], ["alerts", "--json"], ["status", "--json"], ["log", "--json"]):
        done = cli(path, *args, env=ENV)
        assert done.returncode == 0, done.stderr
        shown.append(done.stdout + done.stderr)
    assert "/hook/<redacted>" in shown[1]  # monitor check keeps the path's shape
    for text in shown:
        assert token not in text and slack not in text


def test_smtp_outcomes_are_recorded_per_recipient(
        tmp_path: Path, feed_server: FeedServer, smtp: SmtpServer) -> None:
    smtp.rcpt_replies.update({"b@example.org": "550 5.1.1 no such user",
                              "c@example.org": "450 4.2.1 try later"})
    path = setup(tmp_path, feed_server, smtp.port, "http://127.0.0.1:9/", notify=("team",),
                 recipients='["a@example.org", "b@example.org", "c@example.org"]')
    run_once(path, ENV)
    kind, data = alert_events(path)[-1]
    assert kind == "AlertAttemptFailed"
    recipients = data["recipients"]
    assert isinstance(recipients, dict)
    assert recipients["a@example.org"].startswith("accepted")
    assert recipients["b@example.org"].startswith("refused: 550")
    assert recipients["c@example.org"].startswith("retry: 450")
    del smtp.rcpt_replies["c@example.org"]
    deliver_at(path, datetime.fromisoformat(str(data["retry_at"])) + timedelta(seconds=1))
    assert [list(m.rcpt_tos) for m in smtp.messages] == [["a@example.org"], ["c@example.org"]]
    kind, data = alert_events(path)[-1]
    assert kind == "AlertAbandoned" and data["kind"] == "recipients_refused"  # not "success"
    # the operator takes the refused address out, adds another, and retries: delivered
    path.write_text(path.read_text().replace('"b@example.org", ', '"d@example.org", '))
    assert cli(path, "alerts", "retry", str(data["alert_id"]), env=ENV).returncode == 0
    run_once(path, ENV)
    assert [list(m.rcpt_tos) for m in smtp.messages][2:] == [["d@example.org"]]
    kind, data = alert_events(path)[-1]
    assert kind == "AlertDelivered", data


@pytest.mark.parametrize("reply,final", [("451 4.3.0 try again", "AlertAttemptFailed"),
                                         ("554 5.6.0 rejected", "AlertAbandoned")])
def test_smtp_data_replies(tmp_path: Path, feed_server: FeedServer, smtp: SmtpServer,
                           reply: str, final: str) -> None:
    smtp.data_reply = reply
    path = setup(tmp_path, feed_server, smtp.port, "http://127.0.0.1:9/", notify=("team",))
    run_once(path, ENV)
    assert alert_events(path)[-1][0] == final


def test_silent_smtp_server_times_out_without_holding_the_webhook(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    with silent_smtp_server() as (_, port):
        path = setup(tmp_path, feed_server, port, receiver.url(), timeout="2s")
        run_once(path, ENV)
    events = alert_events(path)
    outcomes = [(k, d["channel_id"]) for k, d in events if k != "AlertQueued"]
    assert outcomes == [("AlertDelivered", "hook"), ("AlertAttemptFailed", "team")]
    assert events[-1][1]["kind"] == "timeout"


def test_a_silent_mail_server_leaves_the_threads_the_feeds_need(
        tmp_path: Path, feed_server: FeedServer) -> None:
    # More hanging SMTP sessions than asyncio's default executor has threads: on it, the
    # daemon's feed claims and writes (asyncio.to_thread) would wait for the mail to time out.
    sessions = min(32, (os.cpu_count() or 1) + 4) + 2
    with silent_smtp_server() as (_, port):
        mail = "".join(
            f'[[channels]]\nid = "mail{n}"\ntype = "email"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\nallow_insecure = true\n'
            f'sender = "m@example.org"\nrecipients = ["a@example.org"]\ntimeout = "8s"\n\n'
            for n in range(sessions))
        feed_server.route("/news.xml", body=rss([]))
        path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                            channels=mail, notify=[f"mail{n}" for n in range(sessions)])
        run_once(path)  # the feed's row; no alert yet
        noted = cli(path, "note", "training-start", "--status", "at_risk", "--operator", "t",
                    "--source", "https://www.nikkei.com/a/1")
        assert noted.returncode == 0, noted.stderr
        config = load(path, {})

        async def scenario() -> tuple[bool, list[deliver.Outcome]]:
            store = open_store(config)
            try:
                async with guarded_client(allow_private=True, timeout=30, user_agent="t") as c:
                    d = deliver.Dispatcher(config, store, {}, c, "test")
                    later = datetime.now(UTC) + timedelta(seconds=1)
                    sends = asyncio.create_task(deliver.deliver_due(d, now=later, limit=64))
                    await asyncio.sleep(1)  # every session has started, and hangs
                    rows = await asyncio.wait_for(asyncio.to_thread(workstate.feed_rows, store), 4)
                    assert list(rows) == ["news"]
                    hanging = not sends.done()
                    return hanging, await sends
            finally:
                store.close()

        hanging, outcomes = asyncio.run(scenario())
    assert hanging  # the read above did not wait for the mail
    assert [o.status for o in outcomes] == ["retry"] * sessions


def test_confirmation_by_two_publishers_explains_both_items(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    rumour = {"title": "Noetra reportedly begins training its first model",
              "link": "https://www3.nhk.or.jp/news/html/rumour.html", "guid": "r",
              "published": NOW - timedelta(hours=4)}
    second = {"title": "日本AI基盤モデル開発、基盤モデルの学習を開始",
              "link": "https://www.itmedia.co.jp/aiplus/articles/1.html", "guid": "s",
              "published": NOW - timedelta(hours=3)}
    feed_server.route("/news.xml", body=rss([rumour]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                        channels=channels(1, receiver.url()), notify=("hook",))
    run_once(path, ENV)
    feed_server.route("/news.xml", body=rss([rumour, second]))
    run_once(path, ENV)
    bodies = [orjson.loads(r.body)["data"] for r in receiver.received]
    assert [(b["from"], b["to"]) for b in bodies] == [("pending", "reported"),
                                                      ("reported", "confirmed")]
    evidence = bodies[1]["evidence"]
    assert [e["publisher"] for e in evidence] == ["nhk.or.jp", "itmedia.co.jp"]
    texts = [{t["text"] for t in e["matched_terms"]} for e in evidence]
    assert texts == [{"Noetra", "training"}, {"日本AI基盤モデル開発", "学習"}]


def test_webhooks_obey_the_private_address_rule(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)  # loopback allowed: one attempt, answered 503
    assert len(receiver.received) == 1
    path.write_text(path.read_text().replace("allow_private_networks = true",
                                             "allow_private_networks = false"))
    [(kind, data)] = alert_events(path)[-1:]
    deliver_at(path, datetime.fromisoformat(str(data["retry_at"])) + timedelta(seconds=1))
    assert len(receiver.received) == 1  # refused before connecting
    kind, data = alert_events(path)[-1]
    assert kind == "AlertAbandoned" and data["kind"] == "private_address"


def outbox_rows(path: Path) -> list[dict[str, object]]:
    store = open_store(load(path, ENV))
    try:
        return list(store.states("outbox").values())
    finally:
        store.close()


def test_a_missing_secret_holds_alerts_uncounted_until_it_is_set(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    # a schedule of one retry: were each tick without the secret an attempt, the second would
    # abandon the alert (retries_exhausted)
    path.write_text(path.read_text().replace(
        'secret_env = "MONITOR_WEBHOOK_SECRET"',
        'secret_env = "MONITOR_WEBHOOK_SECRET"\nretry_schedule = ["1s"]'))
    assert run_once(path, {}) == 0  # starts and polls with MONITOR_WEBHOOK_SECRET unset
    assert run_once(path, {}) == 0
    clock = NOW
    for _ in range(4):  # two days of dispatcher ticks, far past the schedule
        clock += timedelta(hours=12)
        assert deliver_at(path, clock, env={}) == []
    assert receiver.received == []
    assert [kind for kind, _ in alert_events(path)] == ["AlertQueued"]
    [row] = outbox_rows(path)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, None)
    [outcome] = deliver_at(path, clock)  # the variable is set now (ENV)
    assert outcome.status == "delivered"
    [hook] = receiver.received
    assert hook.verified and hook.webhook_id == row["alert_id"]
    kind, data = alert_events(path)[-1]
    assert (kind, data["attempt"]) == ("AlertDelivered", 1)


def test_a_held_alert_that_reaches_delivery_is_released_for_later_not_attempted(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, {})
    config = load(path, {})
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def deliver_without_secret() -> deliver.Outcome:
        store = open_store(config)
        try:
            # claimed without skipping the held channels, as a direct caller of deliver_one may
            [(alert_id, _)] = alertwork.claim_alerts(
                store, owner="earlier", now=now.timestamp(), lease=600, limit=10)
            async with guarded_client(allow_private=True, timeout=30, user_agent="t") as client:
                d = deliver.Dispatcher(config, store, {}, client, "test")
                return await deliver.deliver_one(d, alert_id, now)
        finally:
            store.close()

    outcome = asyncio.run(deliver_without_secret())
    assert outcome.status == "held" and "MONITOR_WEBHOOK_SECRET is not set" in outcome.detail
    assert receiver.received == [] and [k for k, _ in alert_events(path)] == ["AlertQueued"]
    store = open_store(config)
    try:
        claim = functools.partial(alertwork.claim_alerts, store, owner="o", lease=600, limit=10)
        held = deliver.HOLD_SECONDS
        assert claim(now=now.timestamp() + held - 1) == []  # released for later, not at once
        assert claim(now=now.timestamp() + held + 1) == [(outcome.alert_id, "hook")]
    finally:
        store.close()


def test_a_claim_leases_from_now_what_was_due_by_an_earlier_time(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)  # attempt 1 fails: the alert is due again at its retry time
    retry_at = datetime.fromisoformat(str(alert_events(path)[-1][1]["retry_at"])).timestamp()
    store = open_store(load(path, ENV))
    try:
        claim = functools.partial(alertwork.claim_alerts, store, owner="o", lease=300, limit=9)
        later = retry_at + 1000  # `run --once` still claiming, long after it started
        assert claim(now=later, due_by=retry_at - 1) == []  # not due when the run started
        assert len(claim(now=later, due_by=retry_at + 1)) == 1
        with store.engine.connect() as conn:
            lease = sa.select(alertwork.alert_work.c.lease_expires)
            assert conn.execute(lease).scalar_one() == later + 300  # from now, not the start
    finally:
        store.close()


def test_rebuild_beside_a_running_daemon_keeps_the_leases_of_alerts_being_sent(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)
    retry_at = datetime.fromisoformat(str(alert_events(path)[-1][1]["retry_at"])).timestamp()
    store = open_store(load(path, ENV))
    try:
        claim = functools.partial(alertwork.claim_alerts, store, lease=600, limit=9)
        assert len(claim(owner="sender", now=retry_at + 1)) == 1  # a daemon sends it
        rebuilt = cli(path, "rebuild", env=ENV)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert claim(owner="other", now=retry_at + 2) == []  # still the sender's
        assert len(claim(owner="other", now=retry_at + 602)) == 1  # once its lease ran out
    finally:
        store.close()


def test_a_channel_gone_410_is_enabled_again_by_an_operator(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=410))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)
    [gone] = outbox_rows(path)
    assert gone["status"] == "abandoned" and str(gone["last_error"]).startswith("gone:")
    refused = cli(path, "alerts", "test", "hook", env=ENV)
    assert refused.returncode == 1 and "channel_disabled" in refused.stderr
    assert "hint: fix the channel's url, or run `monitor alerts enable hook`" in refused.stderr
    assert len(receiver.received) == 1  # the disabled channel was not called
    early = cli(path, "alerts", "retry", gone["alert_id"], env=ENV)
    assert early.returncode == 2 and early.stderr.startswith(
        f"error: alert '{gone['alert_id']}': channel 'hook' is disabled: webhook http")
    assert "hint: `monitor alerts enable hook` first" in early.stderr

    enabled = cli(path, "alerts", "enable", "hook", env=ENV)
    assert enabled.returncode == 0, enabled.stderr
    assert enabled.stdout.splitlines() == [
        "channel 'hook' enabled: alerts to it are delivered again",
        # the milestone's alert, by its id; not the test alert, which is never sent again
        (f"alerts to it abandoned while it was disabled: 1 ({gone['alert_id']}); "
         "`monitor alerts retry ID` re-queues one"),
    ]
    [event] = json_out(path, "log", "--type", "ChannelEnabled", env=ENV)
    assert event["data"]["channel_id"] == "hook" and event["data"]["operator"]
    assert event["meta"]["operator"] == event["data"]["operator"]

    assert cli(path, "alerts", "test", "hook", env=ENV).returncode == 0  # answered 200
    assert cli(path, "alerts", "retry", gone["alert_id"], env=ENV).returncode == 0
    run_once(path, ENV)
    assert [(r.webhook_id, r.verified) for r in receiver.received][-1] == (gone["alert_id"], True)
    assert len(receiver.received) == 3
    again = cli(path, "alerts", "enable", "hook", env=ENV)
    assert (again.returncode, again.stderr) == (2, "error: channel 'hook' is not disabled\n")
    unknown = cli(path, "alerts", "enable", "pager", env=ENV)
    assert (unknown.returncode, unknown.stderr) == (2, "error: channel 'pager' is not configured\n")


def test_an_operator_disables_a_channel_until_enabling_it_and_status_says_so(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        smtp: SmtpServer) -> None:
    path = setup(tmp_path, feed_server, smtp.port, receiver.url("/old"))
    feed_server.route("/news.xml", body=rss([]))
    run_once(path, ENV)
    off = cli(path, "alerts", "disable", "hook", "--reason", "receiver maintenance",
              "--operator", "alice", env=ENV)
    assert off.returncode == 0, off.stderr
    assert off.stdout == ("channel 'hook' disabled: no alert goes to it until "
                          "`monitor alerts enable hook`\n")
    twice = cli(path, "alerts", "disable", "hook", env=ENV)
    assert (twice.returncode, twice.stderr) == (
        2, "error: channel 'hook' is already disabled: receiver maintenance\n")
    unknown = cli(path, "alerts", "disable", "pager", env=ENV)
    assert (unknown.returncode, unknown.stderr) == (2, "error: channel 'pager' is not configured\n")
    [event] = json_out(path, "log", "--type", "ChannelDisabled", env=ENV)
    assert event["data"] == {"channel_id": "hook", "reason": "receiver maintenance",
                             "url_sha256": None, "operator": "alice"}
    status = cli(path, "status", env=ENV)
    assert "disabled channel 'hook' since " in status.stdout
    assert "receiver maintenance; `monitor alerts enable hook` takes alerts again" in status.stdout
    [row] = [r for r in json_out(path, "status", env=ENV) if r["kind"] == "disabled_channel"]
    assert (row["channel_id"], row["reason"]) == ("hook", "receiver maintenance")

    # a transition alerts the email channel only; a new URL does not undo an operator's word
    path.write_text(path.read_text().replace(receiver.url("/old"), receiver.url("/new")))
    feed_server.route("/news.xml", body=rss([CONFIRMING]))
    run_once(path, ENV)
    assert receiver.received == [] and len(smtp.messages) == 1
    assert [r["channel_id"] for r in outbox_rows(path)] == ["team"]

    on = cli(path, "alerts", "enable", "hook", "--operator", "bob", env=ENV)
    assert on.returncode == 0, on.stderr
    assert "disabled_channel" not in [r["kind"] for r in json_out(path, "status", env=ENV)]
    assert cli(path, "alerts", "test", "hook", env=ENV).returncode == 0
    [received] = receiver.requests_to("/new")
    assert received.verified


def test_a_channel_gone_410_is_enabled_again_when_its_url_changes(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=410))
    path = setup(tmp_path, feed_server, 1, receiver.url("/old"), notify=("hook",))
    run_once(path, ENV)
    store = open_store(load(path, ENV))
    [disabled] = list(store.read(types=("ChannelDisabled",)))
    store.close()
    assert disabled.data["url_sha256"] == hashlib.sha256(receiver.url("/old").encode()).hexdigest()
    run_once(path, ENV)  # the same URL: still disabled
    assert json_out(path, "log", "--type", "ChannelEnabled", env=ENV) == []

    path.write_text(path.read_text().replace(receiver.url("/old"), receiver.url("/new")))
    run_once(path, ENV)  # a start (as a reload) with the new URL enables the channel, once
    run_once(path, ENV)
    [event] = json_out(path, "log", "--type", "ChannelEnabled", env=ENV)
    assert event["data"] == {"channel_id": "hook", "operator": None,
                             "reason": "its url changed after the channel was disabled"}
    [gone] = outbox_rows(path)
    assert cli(path, "alerts", "retry", gone["alert_id"], env=ENV).returncode == 0
    run_once(path, ENV)
    [received] = receiver.requests_to("/new")
    assert received.verified and received.webhook_id == gone["alert_id"]


def test_a_changed_url_enables_the_channel_for_a_test_alert_too(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=410))
    path = setup(tmp_path, feed_server, 1, receiver.url("/old"), notify=("hook",))
    run_once(path, ENV)
    path.write_text(path.read_text().replace(receiver.url("/old"), receiver.url("/new")))
    result = cli(path, "alerts", "test", "hook", env=ENV)
    assert result.returncode == 0 and ": delivered" in result.stdout, result.stderr
    [received] = receiver.requests_to("/new")
    assert received.verified


def test_a_disabling_recorded_without_its_url_waits_for_an_operator(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    config = load(path, ENV)
    store = open_store(config)
    try:  # as recorded before ChannelDisabled kept the URL's sha256
        store.append([NewEvent(ChannelDisabled(channel_id="hook", reason="410 gone"))])
        assert runtime.enable_moved_channels(store, config, instance="t") == []
        assert store.state("channels", "hook") is not None
        assert store.state("channels", "hook")["disabled"] is True  # type: ignore[index]
    finally:
        store.close()


def test_run_once_delivers_every_due_alert_not_one_batch(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        smtp: SmtpServer) -> None:
    path = setup(tmp_path, feed_server, smtp.port, receiver.url(), notify=())
    store = open_store(load(path, ENV))
    now = datetime.now(UTC)
    queued = [AlertQueued(alert_id=f"alt_many_{n:03}", channel_id="hook", milestone_id="m",
                          subject=f"alert {n}", payload={"n": n}) for n in range(120)]
    with store.transaction() as tx:
        tx.append([NewEvent(q, meta={"instance": "test"}) for q in queued])
        for q in queued:
            alertwork.queue_alert(tx.conn, q.alert_id, q.channel_id, now.timestamp())
    store.close()
    assert run_once(path, ENV) == 0
    assert len(receiver.received) == 120 and all(h.verified for h in receiver.received)


def test_json_log_lines_name_the_alert_and_channel_they_are_about(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    feed_server.route("/gone.xml", status=404)
    text = path.read_text()
    path.write_text(text + f'\n[[feeds]]\nid = "gone"\nurl = "{feed_server.url("/gone.xml")}"\n')
    done = cli(path, "run", "--once", "--log-format", "json", env=ENV)
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stderr.splitlines()]
    [failed] = [x for x in lines if "attempt 1 failed" in x["message"]]
    [alert_id] = [r["alert_id"] for r in outbox_rows(path)]
    assert (failed["level"], failed["alert"], failed["channel"]) == ("warning", alert_id, "hook")
    [gone] = [x for x in lines if x.get("feed") == "gone"]
    assert gone["level"] == "warning" and "404 Not Found" in gone["message"], gone
    assert all("feed" not in x for x in lines if "configuration" in x["message"])


def test_a_410_from_the_url_a_reload_replaced_does_not_disable_the_new_url(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    # An attempt begun before a reload gets its 410 from the old URL after the reload has
    # looked for moved channels: the channel's new URL must still take the next alert.
    gate = threading.Event()
    receiver.respond(Reply(status=410, hold=gate))
    path = setup(tmp_path, feed_server, 1, receiver.url("/old"), notify=("hook",))
    old = load(path, ENV)
    path.write_text(path.read_text().replace(receiver.url("/old"), receiver.url("/new")))
    new = load(path, ENV)
    now = datetime.now(UTC)
    store = open_store(new)
    ids = []
    with store.transaction() as tx:
        for n in range(2):
            q = AlertQueued(alert_id=f"alt_{n:032x}", channel_id="hook", milestone_id="m",
                            subject="s", payload={"n": n})
            tx.append([NewEvent(q)])
            alertwork.queue_alert(tx.conn, q.alert_id, q.channel_id, now.timestamp() + n)
            ids.append(q.alert_id)

    async def reload_during_dispatch() -> list[deliver.Outcome]:
        async with guarded_client(allow_private=True, timeout=30, user_agent="t") as client:
            before = deliver.Dispatcher(old, store, {"hook": SECRET}, client, "d")
            after = deliver.Dispatcher(new, store, {"hook": SECRET}, client, "d")
            first = asyncio.ensure_future(deliver.deliver_due(before, now=now, limit=1))
            while not receiver.received:
                await asyncio.sleep(0.01)
            assert runtime.enable_moved_channels(store, new, instance="d") == []  # the reload
            gate.set()
            assert [o.status for o in await first] == ["abandoned"]  # gone: as it happened
            return await deliver.deliver_due(after, now=now + timedelta(seconds=1))

    try:
        outcomes = asyncio.run(reload_during_dispatch())
    finally:
        gate.set()
        store.close()
    assert [(o.alert_id, o.status) for o in outcomes] == [(ids[1], "delivered")]
    [received] = receiver.requests_to("/new")
    assert received.verified and received.webhook_id == ids[1]
    [enabled] = json_out(path, "log", "--type", "ChannelEnabled", env=ENV)
    assert enabled["data"]["reason"] == "its url changed after the channel was disabled"


def test_a_reload_during_a_slow_send_closes_the_old_client_only_once_it_is_answered(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients a reload replaces are closed a lease later, and not before the alerts being
    sent through them are answered: a receiver slower than the lease gets one request, and the
    alert is delivered at its first attempt, not failed by a client closed under it."""
    receiver.respond(Reply(delay=2.0))  # four leases
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    monkeypatch.setattr(Daemon, "lease", lambda self: 0.5)
    q = queue_hook_alert(path, "5")

    async def reload_while_sending() -> bool:
        daemon = Daemon(load(path, ENV), ENV)
        await daemon.start()
        old = daemon.clients
        try:
            await daemon.deliver_tick()
            while not receiver.received:
                await asyncio.sleep(0.01)
            path.write_text(path.read_text().replace('timeout = "5s"', 'timeout = "6s"'))
            await daemon._reload("test")
            assert daemon.clients is not old
            await asyncio.gather(*daemon.inflight)
            # the send answered, the replaced clients close (they are not left open)
            await asyncio.wait_for(asyncio.gather(*daemon.retiring), timeout=5)
            return old.client.is_closed
        finally:
            for task in daemon.retiring:
                task.cancel()
            await asyncio.gather(*daemon.retiring, return_exceptions=True)
            await daemon.close()

    assert asyncio.run(reload_while_sending())
    assert_delivered_once_at_first_attempt(path, receiver, q.alert_id)


def test_a_claim_that_outlasts_a_reload_sends_through_the_new_client(
        tmp_path: Path, pg_url: str, feed_server: FeedServer, receiver: WebhookReceiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliver tick whose claim is still waiting when a reload's lease runs out sends through
    the clients of the configuration then in effect, not through those the reload closed: the
    alert is delivered at its first attempt, in one request."""
    feed_server.route("/news.xml", body=rss([]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")}, db_url=pg_url,
                        channels=channels(1, receiver.url()), notify=("hook",))
    monkeypatch.setattr(Daemon, "lease", lambda self: 0.5)
    q = queue_hook_alert(path, "6")
    # another connection's lock on alert_work keeps the tick's claim (a SELECT … FOR UPDATE)
    # waiting, and nothing the reload does
    engine = sa.create_engine(pg_url)
    locker = engine.connect()

    async def reload_while_claiming() -> bool:
        daemon = Daemon(load(path, ENV), ENV)
        await daemon.start()
        old = daemon.clients
        try:
            locker.exec_driver_sql("LOCK TABLE alert_work IN EXCLUSIVE MODE")
            tick = asyncio.ensure_future(daemon.deliver_tick())
            await asyncio.sleep(0.2)  # the tick has begun its claim, which waits for the lock
            assert not tick.done()
            path.write_text(path.read_text().replace('timeout = "5s"', 'timeout = "6s"'))
            await daemon._reload("test")
            assert daemon.clients is not old
            # the lease runs out and the old clients, idle, close while the claim still waits
            await asyncio.wait_for(asyncio.gather(*daemon.retiring), timeout=5)
            assert not tick.done()
            locker.rollback()
            await tick
            await asyncio.gather(*daemon.inflight)
            return old.client.is_closed
        finally:
            locker.rollback()
            for task in daemon.retiring:
                task.cancel()
            await asyncio.gather(*daemon.retiring, return_exceptions=True)
            await daemon.close()

    try:
        assert asyncio.run(reload_while_claiming())
    finally:
        locker.close()
        engine.dispose()
    assert_delivered_once_at_first_attempt(path, receiver, q.alert_id)


def test_a_slow_429_retries_a_minute_after_the_answer_not_after_the_claim(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=429, delay=1.0))  # no Retry-After: a minute at least
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    now = datetime.now(UTC)
    queue_hook_alert(path, "4", now)
    [outcome] = deliver_at(path, now)
    assert outcome.status == "retry"
    [(kind, data)] = alert_events(path)[1:]
    assert kind == "AlertAttemptFailed" and data["kind"] == "rate_limited"
    retry_at = datetime.fromisoformat(str(data["retry_at"]))
    assert retry_at >= now + timedelta(seconds=61)  # the answer came a second after the claim


def test_an_alert_abandoned_for_a_disabled_channel_is_logged_as_not_attempted_again(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
        caplog: pytest.LogCaptureFixture) -> None:
    receiver.respond(Reply(status=503))
    path = setup(tmp_path, feed_server, 1, receiver.url(), notify=("hook",))
    run_once(path, ENV)  # attempt 1 fails; attempt 2 is due later
    assert cli(path, "alerts", "disable", "hook", "--reason", "maintenance",
               env=ENV).returncode == 0
    sent = len(receiver.received)
    with caplog.at_level("ERROR", logger="monitor.deliver"):
        outcome, *_ = deliver_at(path, datetime.now(UTC) + timedelta(days=1))
    assert outcome.status == "abandoned" and len(receiver.received) == sent
    [line] = [m for m in caplog.messages if outcome.alert_id in m and "abandoned" in m]
    assert line == (f"alert {outcome.alert_id} on channel 'hook' abandoned before attempt 2: "
                    "channel_disabled: channel 'hook' is disabled: maintenance")

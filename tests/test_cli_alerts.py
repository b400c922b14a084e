"""`monitor alerts`, `alerts retry` and `alerts test` against a real receiver and SMTP server."""

from __future__ import annotations

import email
import functools
import io
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor import alertwork
from monitor.runtime import open_store
from tests import kit
from tests.conftest import SECRET
from tests.feedserver import FeedServer
from tests.kit import load, rss, run_once, write_config
from tests.receivers import Reply, SmtpServer, WebhookReceiver

ENV = {"MONITOR_WEBHOOK_SECRET": SECRET}
CONFIRMING = {"title": "NEDO: Noetra has started training the foundation model",
              "link": "https://www.nedo.go.jp/news/press/AA5_101999.html", "guid": "nedo",
              "published": datetime.now(UTC) - timedelta(hours=2)}
CHANNELS = """
[[channels]]
id = "team"
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"
allow_insecure = true
sender = "monitor@example.org"
recipients = ["analyst@example.org"]
timeout = "5s"

[[channels]]
id = "hook"
type = "webhook"
url = "{url}"
secret_env = "MONITOR_WEBHOOK_SECRET"
timeout = "5s"
"""


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver,
           smtp: SmtpServer) -> Path:
    feed_server.route("/news.xml", body=rss([CONFIRMING]))
    return write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                        channels=CHANNELS.format(port=smtp.port, url=receiver.url()),
                        notify=["team", "hook"])


cli = functools.partial(kit.cli, env=ENV)
json_out = functools.partial(kit.json_out, env=ENV)


def by_channel(path: Path) -> dict[str, dict[str, Any]]:
    return {row["channel_id"]: row for row in json_out(path, "alerts")}


def test_alerts_list_pending_abandoned_and_delivered(
        config: Path, receiver: WebhookReceiver, smtp: SmtpServer) -> None:
    receiver.respond(Reply(status=400))  # refused for good
    smtp.data_reply = "451 4.3.0 try again later"  # worth another attempt
    run_once(config, ENV)
    rows = by_channel(config)
    queued = {r["data"]["channel_id"]: r["data"]["alert_id"]
              for r in json_out(config, "log", "--type", "AlertQueued")}
    assert {c: r["alert_id"] for c, r in rows.items()} == queued
    assert (rows["hook"]["status"], rows["team"]["status"]) == ("abandoned", "pending")
    assert rows["team"]["attempts"] == 1
    table = cli(config, "alerts").stdout
    for channel, status in (("hook", "abandoned"), ("team", "pending")):
        line = next(x for x in table.splitlines() if x.startswith(queued[channel]))
        assert f"{channel}  " in line and status in line
    assert "JST" in next(x for x in table.splitlines() if x.startswith(queued["team"]))
    [subject, *_] = {r["data"]["subject"] for r in json_out(config, "log", "--type", "AlertQueued")}
    shown = subject if len(subject) <= 60 else subject[:59] + "…"  # cut, and marked so
    assert shown.split()[-1] in table  # 200 columns have room for it: its cut end is there
    # `alerts retry ID` sends people here for the id: whole on a narrow terminal too
    narrow = kit.monitor_cmd("--config", str(config), "alerts",
                             env={**ENV, "NO_COLOR": "1", "COLUMNS": "80"})
    assert narrow.returncode == 0 and "…" not in narrow.stdout.splitlines()[0]
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())
    for channel, status in (("hook", "abandoned"), ("team", "pending")):
        line = next(x for x in narrow.stdout.splitlines() if x.startswith(queued[channel]))
        assert re.match(rf"{queued[channel]}\s+{channel}\s+{status}\s", line), line
    smtp.data_reply = None  # the mail server takes it now: delivered, its old error not shown
    kit.deliver_at(config, datetime.now(UTC) + timedelta(hours=1), ENV)
    delivered = next(x for x in cli(config, "alerts").stdout.splitlines()
                     if x.startswith(queued["team"]))
    assert "delivered" in delivered and "451" not in delivered, delivered


GOLDEN = Path(__file__).parent / "golden"
LISTED = [  # outbox rows as the projection holds them: pending, abandoned, delivered
    {"alert_id": "alt_" + "a1" * 16, "channel_id": "team", "status": "pending", "attempts": 1,
     "due_at": "2026-07-01T09:35:00+00:00",
     "subject": "[milestone-monitor] Noetra starts training — confirmed",
     "last_error": "smtp: 127.0.0.1:2525: server answered 451 4.3.0 try again later"},
    {"alert_id": "alt_" + "b2" * 16, "channel_id": "ops-webhook-tokyo", "status": "abandoned",
     "attempts": 7, "due_at": None,
     "subject": "[milestone-monitor] [bold]SoftBank[/bold] Sakai AI data centre starts "
                "operating — at_risk",
     "last_error": "http_4xx: https://hooks.example.org/<redacted>: 400 Bad Request: "
                   '{"error":"unknown_event_type","detail":"milestone.status_changed"}'},
    {"alert_id": "alt_" + "c3" * 16, "channel_id": "team", "status": "delivered", "attempts": 2,
     "due_at": None, "subject": "[milestone-monitor] Noetra ships its first model — reported",
     "last_error": "timeout: 127.0.0.1:2525: no answer within 30 s"},
]


def listed(width: int, rows: list[dict[str, Any]] = LISTED) -> str:
    """`monitor alerts` as a terminal of `width` columns shows it (lines right-stripped)."""
    from rich.console import Console

    from monitor.cli.alertlisting import AlertListing

    console = Console(width=width, highlight=False, soft_wrap=True, no_color=True, record=True,
                      file=io.StringIO())
    console.print(AlertListing(rows, "Asia/Tokyo"))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


@pytest.mark.parametrize(("width", "golden"), [(80, "cli_alerts_80.txt"),
                                                (200, "cli_alerts_200.txt")])
def test_the_alerts_listing_reads_at_80_columns_and_at_a_wide_terminal(
        width: int, golden: str) -> None:
    shown = listed(width)
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(shown, encoding="utf-8")
    assert shown == path.read_text(encoding="utf-8")
    lines = shown.splitlines()
    assert all(len(line) <= width for line in lines)
    for row in LISTED:  # each alert starts a line with its whole id, channel and status
        [line] = [x for x in lines if x.startswith(row["alert_id"])]
        assert re.match(rf"{row['alert_id']}\s+{row['channel_id']}\s+{row['status']}\s", line)
    assert "[bold]SoftBank[/bold]" in shown  # feed text is not Rich markup
    assert "451 4.3.0 try again later" in shown and "timeout" not in shown  # delivered: no error


def test_the_alerts_listing_at_80_columns_gives_each_alert_a_few_whole_lines() -> None:
    lines = listed(80).splitlines()
    [header] = [x for x in lines if x.startswith(LISTED[0]["alert_id"])]
    assert header.split() == [LISTED[0]["alert_id"], "team", "pending", "1", "attempt"]
    start = lines.index(header)
    assert lines[start + 1].split() == ["next", "attempt", "2026-07-01", "18:35:00", "JST"]
    assert lines[start + 2] == "  subject       " + LISTED[0]["subject"]
    # a subject too long for the line is cut there, and says so
    [cut] = [x for x in lines if "SoftBank" in x]
    assert cut.startswith("  subject       [milestone-monitor]") and cut.endswith("…")
    assert listed(80, []) == "no alerts\n"


def test_the_alerts_listing_is_one_table_when_the_terminal_is_wide() -> None:
    lines = listed(200).splitlines()
    assert lines[0].split() == ["alert", "channel", "status", "attempts", "next", "attempt",
                                "subject", "last", "error"]
    first = lines.index(next(x for x in lines if x.startswith(LISTED[0]["alert_id"])))
    assert "2026-07-01 18:35:00 JST" in lines[first] and LISTED[0]["subject"] in lines[first]
    # the last error takes the rest of the line, and the lines below it in its column
    column = lines[0].index("last error")
    said = " ".join(x[column:] for x in lines[first:first + 2])
    assert said == LISTED[0]["last_error"]
    assert not lines[first + 1][:column].strip()
    assert listed(200, []) == "no alerts\n"


def test_retry_requeues_an_abandoned_alert_and_delivers_it_under_the_same_id(
        config: Path, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=400))
    run_once(config, ENV)
    alert_id = by_channel(config)["hook"]["alert_id"]
    result = cli(config, "alerts", "retry", alert_id)
    assert result.returncode == 0 and f"alert {alert_id} re-queued" in result.stdout
    [requeued] = json_out(config, "log", "--type", "AlertRequeued")
    assert requeued["data"]["alert_id"] == alert_id and requeued["meta"]["operator"]
    assert by_channel(config)["hook"]["status"] == "pending"
    run_once(config, ENV)
    assert [(r.webhook_id, r.verified) for r in receiver.received] == [(alert_id, True)] * 2
    assert by_channel(config)["hook"]["status"] == "delivered"
    again = cli(config, "alerts", "retry", alert_id)
    assert again.returncode == 2 and "is delivered, not abandoned" in again.stderr
    unknown = cli(config, "alerts", "retry", "alt_no_such_alert")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: alert 'alt_no_such")
    assert len(json_out(config, "log", "--type", "AlertRequeued")) == 1


def test_retry_refuses_an_alert_whose_channel_is_gone_and_operator_text_on_many_lines(
        config: Path, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=400))
    run_once(config, ENV)
    alert_id = by_channel(config)["hook"]["alert_id"]
    sneaky = cli(config, "alerts", "retry", alert_id, "--reason", "ok\n\x1b[2Jfixed")
    assert "--reason: give one line of printable text" in kit.assert_one_line_error(sneaky, 2)
    text = config.read_text()
    hook = text[text.index('[[channels]]\nid = "hook"'):]
    config.write_text(text.replace(hook, "").replace('notify = ["team", "hook"]',
                                                      'notify = ["team"]'))
    gone = cli(config, "alerts", "retry", alert_id)
    assert f"alert '{alert_id}': channel 'hook' is not configured" in kit.assert_one_line_error(
        gone, 2)
    assert json_out(config, "log", "--type", "AlertRequeued") == []


def test_alerts_test_sends_a_marked_alert_through_each_real_channel(
        config: Path, receiver: WebhookReceiver, smtp: SmtpServer) -> None:
    result = cli(config, "alerts", "test", "hook")
    assert result.returncode == 0 and ": delivered" in result.stdout, result.stderr
    [hook] = receiver.received
    body = orjson.loads(hook.body)
    assert hook.verified and body["type"] == "milestone.test" and body["data"]["test"] is True
    assert body["data"]["chain_head"] == {"position": 0, "hash": ""}  # the log was empty
    assert kit.webhook_schema_errors(hook.body) == []
    result = cli(config, "alerts", "test", "team")
    assert result.returncode == 0, result.stderr
    [mail] = smtp.messages
    assert email.message_from_bytes(mail.content)["Subject"] == "[TEST] [milestone-monitor] test alert"
    delivered = json_out(config, "log", "--type", "AlertDelivered")
    assert sorted(d["data"]["channel_id"] for d in delivered) == ["hook", "team"]
    unknown = cli(config, "alerts", "test", "pager")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: channel 'pager' is not configured"]


def test_a_test_alert_that_fails_exits_1_naming_the_channel(
        config: Path, receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=500))
    result = cli(config, "alerts", "test", "hook")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"error: test alert alt_test_\w+ on 'hook' was not delivered", result.stderr)
    # tried once, while the operator waits: not queued for a later run to send unasked
    [row] = json_out(config, "alerts")
    assert (row["status"], str(row["last_error"]).split(":")[0]) == ("abandoned", "http_5xx")
    run_once(config, ENV)  # delivers the milestone's own alert, not the test's again
    assert receiver.count(row["alert_id"]) == 1 and len(receiver.received) == 2


def test_a_failed_test_alert_is_said_once_with_a_hint_that_fits_why(
        config: Path, receiver: WebhookReceiver) -> None:
    # the outcome is the command's one error line: no dispatcher log line beside it
    receiver.respond(Reply(status=500))
    failed = cli(config, "alerts", "test", "hook")
    line = kit.assert_one_line_error(failed, 1)
    assert re.match(r"error: test alert alt_test_\w+ on 'hook' was not delivered: http_5xx", line)
    # disabled by an operator: its URL is not at fault, so the hint does not send one to fix it
    assert cli(config, "alerts", "disable", "hook", "--reason", "maintenance").returncode == 0
    refused = cli(config, "alerts", "test", "hook")
    assert "channel 'hook' is disabled: maintenance" in kit.assert_one_line_error(refused, 1)
    assert refused.stderr.splitlines()[-1] == "hint: run `monitor alerts enable hook` first"
    # disabled by a 410: the URL may be what is wrong
    assert cli(config, "alerts", "enable", "hook").returncode == 0
    receiver.respond(Reply(status=410))
    gone = cli(config, "alerts", "test", "hook")
    assert "receiver answered 410 Gone" in kit.assert_one_line_error(gone, 1)
    assert gone.stderr.splitlines()[-1] == (
        "hint: fix the channel's url, or run `monitor alerts enable hook` once the receiver "
        "is fixed")


def test_a_failed_test_alert_needs_no_operator_afterwards(
        config: Path, receiver: WebhookReceiver) -> None:
    # said when it failed, and never sent again: not a red line in `status` for ever, nor
    # something `alerts retry` would send to the receiver later, unasked by the time it arrives
    receiver.respond(Reply(status=500))
    assert cli(config, "alerts", "test", "hook").returncode == 1
    [row] = json_out(config, "alerts")
    assert row["test"] and row["status"] == "abandoned"
    [counts] = [x for x in json_out(config, "status") if x["kind"] == "alerts"]
    assert (counts["pending"], counts["abandoned"]) == (0, 0)
    assert "abandoned_alert" not in {x["kind"] for x in json_out(config, "status")}
    assert "alerts: 0 pending, 0 abandoned" in cli(config, "status").stdout
    retried = cli(config, "alerts", "retry", row["alert_id"])
    assert kit.assert_one_line_error(retried, 2) == (
        f"error: alert '{row['alert_id']}' is a test alert, which is sent once")
    assert retried.stderr.splitlines()[-1] == "hint: run `monitor alerts test hook` again"


def test_an_alert_queued_under_a_lease_waits_for_its_holder(tmp_path: Path, db_url: str) -> None:
    # `alerts test` queues its alert leased to itself and sends it at once; a daemon's
    # dispatcher claiming due alerts meanwhile must not send it a second time
    store = open_store(load(write_config(tmp_path, feeds={}, db_url=db_url)))
    try:
        with store.transaction() as tx:
            alertwork.queue_alert(tx.conn, "alt_held", "hook", 100.0, leased_to=("cli", 400.0))
            alertwork.queue_alert(tx.conn, "alt_free", "hook", 100.0)
        claim = functools.partial(alertwork.claim_alerts, store, owner="daemon", lease=600, limit=10)
        assert claim(now=200.0) == [("alt_free", "hook")]
        assert claim(now=401.0) == [("alt_held", "hook")]  # the holder died: it is sent once
    finally:
        store.close()


def test_an_operator_without_a_name_is_asked_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's uid may have no account and no USER: a usage error, not a traceback."""
    import getpass

    from monitor.cli.common import operator_name
    from monitor.errors import UsageError

    def nobody() -> str:
        raise KeyError("getpwuid(): uid not found: 10001")

    monkeypatch.delenv("USER", raising=False)
    monkeypatch.setattr(getpass, "getuser", nobody)
    with pytest.raises(UsageError) as caught:
        operator_name(None)
    assert (str(caught.value), caught.value.hint) == ("no operator name: $USER is not set",
                                                      "pass --operator NAME")
    assert operator_name("alice") == "alice"

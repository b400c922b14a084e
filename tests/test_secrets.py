"""Canary secrets never leak: not into logs, events, the database or any command's output."""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

from monitor import logs
from tests.feedserver import FeedServer
from tests.kit import ROOT, rss, write_config
from tests.receivers import Reply, SmtpServer, WebhookReceiver
from tests.test_delivery import CONFIRMING

SMTP_CANARY = "canary-smtp-pw-7f3a9e51"
HOOK_RAW = b"canary-webhook-key-bytes-3c1d9b0"
HOOK_CANARY = "whsec_" + base64.b64encode(HOOK_RAW).decode()


def forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode(),
            urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)]


CANARIES = [*forms(SMTP_CANARY), *forms(HOOK_CANARY), *forms(HOOK_CANARY.split("_", 1)[1]),
            base64.b64encode(f"\0monitor\0{SMTP_CANARY}".encode()).decode()]


def monitor(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONITOR_SMTP_PASSWORD": SMTP_CANARY,
           "MONITOR_WEBHOOK_SECRET": HOOK_CANARY}
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False)


def test_canaries_appear_nowhere(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/news.xml", body=rss([CONFIRMING]))
    with WebhookReceiver(HOOK_CANARY) as hook, \
            SmtpServer(credentials=("monitor", "another"), auth_require_tls=False) as smtp:
        hook.respond(*[Reply(status=500)] * 5)
        channels = f"""
[[channels]]
id = "team"
type = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
allow_insecure = true
username = "monitor"
password_env = "MONITOR_SMTP_PASSWORD"
sender = "monitor@example.org"
recipients = ["analyst@example.org"]

[[channels]]
id = "hook"
type = "webhook"
url = "{hook.url()}"
secret_env = "MONITOR_WEBHOOK_SECRET"
"""
        path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                            channels=channels, notify=("team", "hook"))
        outputs = [
            monitor(path, "run", "--once", "--log-level", "debug"),
            monitor(path, "run", "--once", "--log-level", "debug", "--log-format", "json"),
            monitor(path, "--debug", "alerts", "test", "team"),  # fails: a traceback
            monitor(path, "--debug", "alerts", "test", "hook"),
            monitor(path, "check"),
            monitor(path, "log", "--json"),
            monitor(path, "log"),
            monitor(path, "export", "--format", "csv"),
            monitor(path, "status", "--json"),
            monitor(path, "alerts", "--json"),
        ]
        assert smtp.logins and not any(ok for _, ok in smtp.logins)  # it did try, and failed
        assert hook.received  # the webhook was attempted with the secret
    assert "Traceback" in outputs[2].stderr
    assert "MONITOR_SMTP_PASSWORD" in outputs[4].stdout  # the name, never the value
    texts = [o.stdout + o.stderr for o in outputs]
    files = [p for p in tmp_path.iterdir() if p.name.startswith("events.db")]
    assert files
    blobs = [p.read_bytes() for p in files]
    for canary in CANARIES:
        for text in texts:
            assert canary not in text
        for blob in blobs:
            assert canary.encode() not in blob


def test_a_secret_named_by_a_reload_is_scrubbed_from_then_on() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ScrubSecrets([SMTP_CANARY]))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.scrub_also([HOOK_CANARY])  # what a reload naming another variable does
        logging.getLogger("monitor.test").warning("%s then %s", SMTP_CANARY, HOOK_CANARY)
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == "<redacted> then <redacted>\n"

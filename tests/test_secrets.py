"""Canary secrets never leak: not into logs, events, the database or any command's output."""

from __future__ import annotations

import base64
import io
import logging
import os
import string
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from monitor import logs
from monitor.channels import email as email_channel
from monitor.config import short_secrets
from monitor.daemon import Daemon
from monitor.redact import SHORT_SECRET
from tests.feedserver import FeedServer
from tests.kit import ROOT, load, rss, write_config
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


# --- a short secret: scrubbed where it stands alone, words holding it kept -------------------

WORD_CHARS = string.ascii_letters + string.digits
# a secret may hold any printable ASCII but '<' and '>': with those it could be spelt out of
# the `<redacted>` mark and the text beside it, which no scrubbing can prevent
SECRET_CHARS = "".join(c for c in string.printable.strip() if c not in "<>") + " "
SEPARATORS = [" ", ", ", ". ", " (", ") ", "\n", "=", "; ", '"', "'"]


def scrubbers(secret: str) -> list[Callable[[str], str]]:
    """Each wall a secret meets: the log filter, and the SMTP channel's scrubbing of the
    server replies an event records."""
    return [logs.ScrubSecrets([secret]).scrub, lambda text: email_channel._scrub(text, "monitor", secret)]


def stands_alone(secret: str, text: str) -> bool:
    """`secret` occurs in `text` where no word character runs on from its ends: where a
    reader would take it for the secret, and where `redact.SHORT_SECRET` scrubs it."""
    start = text.find(secret)
    while start >= 0:
        end = start + len(secret)
        before = start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_")
        after = end == len(text) or not (text[end].isalnum() or text[end] == "_")
        first, last = secret[0], secret[-1]
        if (before or not (first.isalnum() or first == "_")) and (
                after or not (last.isalnum() or last == "_")):
            return True
        start = text.find(secret, start + 1)
    return False


def texts_with(secret: str) -> st.SearchStrategy[str]:
    """Log-like lines: words, the secret alone, and words that merely contain it."""
    words = st.text(WORD_CHARS, min_size=1, max_size=8)
    holding = st.tuples(words, words).map(lambda ab: ab[0] + secret + ab[1])
    piece = st.one_of(words, st.just(secret), holding)
    return st.lists(st.tuples(piece, st.sampled_from(SEPARATORS)), max_size=12).map(
        lambda parts: "".join(p + s for p, s in parts))


@settings(max_examples=300, deadline=None)
@given(st.text(SECRET_CHARS, min_size=1, max_size=24).filter(
    lambda s: s.strip() and "redacted" not in s), st.data())
@example("abc", None)
@example("canary-smtp-pw-7f3a9e51", None)
def test_a_secret_of_any_length_never_stands_alone_after_scrubbing(
        secret: str, data: st.DataObject | None) -> None:
    text = data.draw(texts_with(secret)) if data is not None else f"login {secret} refused"
    for scrub in scrubbers(secret):
        shown = scrub(text)
        assert not stands_alone(secret, shown), (secret, text, shown)
        if len(secret) >= SHORT_SECRET:  # a long one goes even from inside a word
            assert secret not in shown, (secret, text, shown)


@settings(max_examples=300, deadline=None)
@given(st.text(WORD_CHARS, min_size=1, max_size=SHORT_SECRET - 1), st.data())
@example("abc", None)
def test_words_that_merely_contain_a_short_secret_survive_scrubbing(
        secret: str, data: st.DataObject | None) -> None:
    if data is None:
        word, text = "abcdef", "abcdef abc xabc, abc_1"
    else:
        affixes = st.text(WORD_CHARS, max_size=6)
        prefix, suffix = data.draw(affixes), data.draw(affixes)
        assume(prefix or suffix)
        word = prefix + secret + suffix
        text = data.draw(texts_with(secret)) + " " + word + " " + data.draw(texts_with(secret))
    for scrub in scrubbers(secret):
        shown = scrub(text)
        assert word in shown.split(), (secret, text, shown)
        assert not stands_alone(secret, shown), (secret, text, shown)


def test_a_short_password_is_scrubbed_where_it_stands_alone_and_nowhere_else() -> None:
    scrub = logs.ScrubSecrets(["abc"]).scrub
    assert scrub("user monitor:abc refused; abcdef and xabc kept, (abc) and 'abc' not") == (
        "user monitor:<redacted> refused; abcdef and xabc kept, (<redacted>) and '<redacted>' not")
    assert scrub("base64 YWJj, YWJjZGVm") == "base64 <redacted>, YWJjZGVm"
    # a long secret goes wherever it is, as before
    assert logs.ScrubSecrets([SMTP_CANARY]).scrub(f"x{SMTP_CANARY}y") == "x<redacted>y"
    # a passphrase's words are words: "horse" goes alone, "horses" stays; "a" is no secret
    phrase = logs.ScrubSecrets(["correct horse a staple"]).scrub
    assert phrase("horse horses a correct horse a staple") == "<redacted> horses a <redacted>"
    reply = email_channel._scrub("535 5.7.8 abc: authentication failed: abcdef", "monitor", "abc")
    assert reply == "535 5.7.8 <redacted>: authentication failed: abcdef"


def test_check_and_the_daemon_warn_of_a_short_secret_without_showing_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    channels = """
[[channels]]
id = "team"
type = "email"
host = "127.0.0.1"
port = 2525
username = "monitor"
password_env = "MONITOR_SMTP_PASSWORD"
sender = "monitor@example.org"
recipients = ["analyst@example.org"]
"""
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"},
                        channels=channels, notify=("team",))
    short = {"MONITOR_SMTP_PASSWORD": "Zq7"}
    checked = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "check"],
                             cwd=ROOT, env={**os.environ, **short}, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    [warning] = [line for line in checked.stderr.splitlines() if line.startswith("warning:")]
    assert "channels[0].password_env: MONITOR_SMTP_PASSWORD holds a secret shorter than 8" in (
        warning)
    assert "Zq7" not in checked.stdout + checked.stderr
    config = load(path, short)
    assert short_secrets(config, short) == [warning.removeprefix("warning: ")]
    assert short_secrets(config, {"MONITOR_SMTP_PASSWORD": "eight ch"}) == []
    assert short_secrets(config, {}) == []  # unset: `check` names that problem instead
    daemon = Daemon(config, short)  # what start and reload say
    try:
        with caplog.at_level(logging.WARNING):
            daemon._warn_held()
    finally:
        daemon.store.close()
    assert any("holds a secret shorter than 8" in r.getMessage() for r in caplog.records)

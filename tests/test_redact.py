"""Credentials in URLs stay out of events, log lines and command output."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitor.redact import (
    REDACTED,
    carries_credentials,
    redact_text,
    redact_url,
    redacted_line,
    shown_source,
)
from monitor.runtime import open_store
from tests.feedserver import FeedServer
from tests.kit import closed_port, load, monitor_cmd, write_config


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/feed.xml", "https://example.org/feed.xml"),
        ("https://reader:pw@example.org/f", f"https://reader:{REDACTED}@example.org/f"),
        (
            "https://example.org/f?access_token=T1&page=2",
            f"https://example.org/f?access_token={REDACTED}&page=2",
        ),
        ("postgresql://u@db/x?password=S3", f"postgresql://u@db/x?password={REDACTED}"),
        ("sqlite:////var/lib/m/events.db", "sqlite:////var/lib/m/events.db"),
        ("http://[::1/feed?token=T", f"http:{REDACTED}"),  # unreadable: nothing of it is shown
        # SQLAlchemy reads a password up to the '@', where urlsplit sees none
        ("postgresql+psycopg://u:s3cr/et?x#y@db:1/m", f"postgresql+psycopg://u:{REDACTED}@db:1/m"),
        ("https://T0KEN@example.org/f", f"https://{REDACTED}@example.org/f"),  # a bare token
        ("postgresql://monitor@db/m", "postgresql://monitor@db/m"),  # a user name, not a secret
        # a password is any text up to the '@': spaces, quotes, an unescaped '@' in the host part
        (
            "postgresql+psycopg://u:Sec ret1@127.0.0.1:5999/db",
            f"postgresql+psycopg://u:{REDACTED}@127.0.0.1:5999/db",
        ),
        ("postgresql://u:p@ss w'\"rd\t@db/x", f"postgresql://u:{REDACTED}@db/x"),
        ("postgresql://my user:pw@db/x", f"postgresql://my user:{REDACTED}@db/x"),
        ("https://u:pw@example.org/users/@alice", f"https://u:{REDACTED}@example.org/users/@alice"),
        # a name is read as the server reads it, and a fragment's pairs as a query's
        ("https://e.org/f?%74oken=sekrit123abc", f"https://e.org/f?%74oken={REDACTED}"),
        (
            "https://e.org/f?api%5Fk%65y=k1&x+s%69g=k2",
            f"https://e.org/f?api%5Fk%65y={REDACTED}&x+s%69g={REDACTED}",
        ),
        (
            "https://hooks.example.org/in#access_token=FragTok999",
            f"https://hooks.example.org/in#access_token={REDACTED}",
        ),
        (
            "https://e.org/f?page=2;token=T1#p=1&%73ig=T2",
            f"https://e.org/f?page=2;token={REDACTED}#p=1&%73ig={REDACTED}",
        ),
        (
            "https://e.org/f?to\tken=T1",
            f"https://e.org/f?to\tken={REDACTED}",
        ),  # urlsplit drops the tab
        ("https://e.org/news#section-2", "https://e.org/news#section-2"),
        # every name carries_credentials refuses is hidden, and more; not the Diet's session
        (
            "https://e.org/f?sessionid=S1&session_id=S2&session=213",
            f"https://e.org/f?sessionid={REDACTED}&session_id={REDACTED}&session=213",
        ),
        ("https://e.org/f?pwd=S3&jwt=S4", f"https://e.org/f?pwd={REDACTED}&jwt={REDACTED}"),
        ("https://e.org/f?PHPSESSID=S1", f"https://e.org/f?PHPSESSID={REDACTED}"),
        # an OAuth redirect's authorization code is a credential until it is exchanged
        ("https://e.org/cb?code=Ax9&state=s1", f"https://e.org/cb?code={REDACTED}&state=s1"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://bob:hunter2@example.org/x", True),
        ("https://TOKEN@example.org/x", True),
        ("https://example.org/x?token=abc", True),
        ("https://example.org/x?a=1&API_KEY=abc", True),
        ("https://example.org/x?csrf_token=abc", True),
        ("https://example.org/x?X-Amz-Signature=abc&X-Amz-Credential=def", True),
        ("https://example.org/x#access_token=abc&state=1", True),
        ("https://example.org/x;sessionid=1?key=abc", True),
        # a name is read as the server reads it: percent-decoded, '+' a space
        ("https://example.org/x?%74oken=sekrit123abc", True),
        ("https://example.org/x?a=1&+Api%5FKey=abc", True),
        ("https://example.org/x#access_t%6Fken=abc", True),
        ("https://example.org/search?%6Beyword=AI", False),
        # ordinary pages that redaction would still hide part of when it shows them
        ("https://example.org/search?keyword=hydrogen", False),
        ("https://example.org/a?author=smith&design=1&category_code=3", False),
        ("https://example.org:443/users/@alice", False),
        ("https://www.shugiin.go.jp/internet/itdb_gian.nsf/html/gian/menu.htm?session=213", False),
        ("https://example.org/x?token", False),  # a flag, no value
        ("https://www.digital.go.jp/news/cb912b3b-49c9-4a02-aa46-4056b96c1d4f#section-2", False),
    ],
)
def test_carries_credentials_judges_whole_parameter_names(url: str, carries: bool) -> None:
    assert carries_credentials(url) is carries


# words carries_credentials refuses, whole or as an ending, as sources and guides spell them
_CREDENTIAL_WORDS = (
    "token", "key", "sig", "pass", "pwd", "jwt", "auth", "sessionid", "session_id", "secret",
    "code_verifier", "credentials", "api_key", "apikey", "X-Amz-Signature", "client_secret",
)  # fmt: skip


@st.composite
def credential_names(draw: st.DrawFn) -> str:
    """A parameter name around a credential word, in any case, some characters
    percent-encoded."""
    around = st.text(
        st.characters(exclude_characters="&;=#", exclude_categories=("Cs",)), max_size=3
    )
    name = draw(around) + draw(st.sampled_from(_CREDENTIAL_WORDS)) + draw(around)
    name = "".join(c.swapcase() if draw(st.booleans()) else c for c in name)
    return "".join(
        "".join(f"%{b:02X}" for b in c.encode()) if draw(st.booleans()) else c for c in name
    )


@given(
    name=credential_names(),
    where=st.sampled_from(["?", "#", "?page=2&", "?page=2;", "?a=1#p=1&"]),
    paths=st.booleans(),
)
def test_redaction_hides_every_value_carries_credentials_refuses(
    name: str, where: str, paths: bool
) -> None:
    url = f"https://example.org/news{where}{name}=S3cretValue&lang=en"
    assume(carries_credentials(url))
    assert "S3cretValue" not in redact_url(url, paths=paths)
    assert "S3cretValue" not in shown_source(url)


def test_a_cited_source_shows_whole_unless_it_carries_credentials() -> None:
    page = "https://www.meti.go.jp/search?keyword=Noetra&category_code=3"
    assert shown_source(page) == page  # what redact_url would hide part of
    assert redact_url(page, paths=False) != page
    old = "https://e.org/p?sig=abc123&id=4"  # a log may hold one from before sources were checked
    assert shown_source(old) == f"https://e.org/p?sig={REDACTED}&id=4"
    assert "abc123" not in shown_source("https://[broken/p?token=abc123")


def test_text_quoting_urls_is_redacted_and_kept_on_one_line() -> None:
    text = "400, message='Bad status line:\n  Expected HTTP/', url='http://h/x?token=T9'"
    assert (
        redact_text(text)
        == f"400, message='Bad status line:\n  Expected HTTP/', url='http://h/x?token={REDACTED}'"
    )
    assert redacted_line(text + "\x1b]0;title\x07") == (
        f"400, message='Bad status line: Expected HTTP/', url='http://h/x?token={REDACTED}' ]0;title"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "database 'postgresql+psycopg://u:Sec ret1@127.0.0.1:5999/db': cannot open",
            f"database 'postgresql+psycopg://u:{REDACTED}@127.0.0.1:5999/db': cannot open",
        ),
        ("at https://u:a b c@h/x?token=T9.", f"at https://u:{REDACTED}@h/x?token={REDACTED}."),
        # a password runs on to an '@' only on its line, within its quotes, before another URL
        ("at http://h:80/x\nops@example.org", "at http://h:80/x\nops@example.org"),
        ("url='http://h:80/x', to='ops@example.org'", "url='http://h:80/x', to='ops@example.org'"),
        ("http://h:80/x, then http://u:p w@h/", f"http://h:80/x, then http://u:{REDACTED}@h/"),
        # where neither tells, the text between a port and an '@' is hidden with it
        ("at http://h:80/x, mail ops@example.org", f"at http://h:{REDACTED}@example.org"),
    ],
)
def test_a_password_with_spaces_is_hidden_in_a_message(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tab\there,\r\nnewline", "tab here, newline"),
        ("  a\xa0\xa0b\u3000c  ", "a b c"),
        ("C1\x9b[2Jcsi\x85nel", "C1 [2Jcsi nel"),
        # a server's text has no use for format characters: a bidi override could reorder
        # what a terminal shows
        ("evil\u202etxt.exe\u200bzero", "evil txt.exe zero"),
        ("", ""),
    ],
)
def test_redacted_line_makes_every_unprintable_character_a_single_space(
    text: str, expected: str
) -> None:
    assert redacted_line(text) == expected


@pytest.mark.parametrize("token", ["?access_token=", "?access_%74oken=", "#access_token="])
def test_a_failing_feed_with_credentials_records_and_prints_none_of_them(
    tmp_path: Path, feed_server: FeedServer, token: str
) -> None:
    feed_server.route("/private/Xq7Lm2Vz9Rt4Kp8Wn3Yb6/missing.xml", status=404)
    url = feed_server.url("/private/Xq7Lm2Vz9Rt4Kp8Wn3Yb6/missing.xml")
    url = url.replace("http://", "http://reader:hunter2pass@") + token + "SECRETTOKEN123"
    path = write_config(tmp_path, feeds={"a": url})
    done = monitor_cmd("--config", str(path), "poll", "a")
    assert done.returncode == 1, done.stderr
    assert "http_4xx" in done.stdout + done.stderr
    store = open_store(load(path))
    [failed] = store.read(types=("FeedFailed",))
    store.close()
    shown_anywhere = done.stdout + done.stderr + str(failed.data) + str(failed.meta)
    for secret in ("hunter2pass", "SECRETTOKEN123", "Xq7Lm2Vz9Rt4Kp8Wn3Yb6"):
        assert secret not in shown_anywhere
    assert REDACTED in failed.data["url"] and REDACTED in failed.data["message"]
    for args in (["status"], ["status", "--json"], ["log"]):
        shown = monitor_cmd("--config", str(path), *args)
        assert shown.returncode == 0, shown.stderr
        for secret in ("hunter2pass", "SECRETTOKEN123", "Xq7Lm2Vz9Rt4Kp8Wn3Yb6"):
            assert secret not in shown.stdout


def test_check_shows_no_credential_of_a_feed_or_webhook_url(tmp_path: Path) -> None:
    hook = """
[[channels]]
id = "hook"
type = "webhook"
url = "https://hooks.example.org/in#access_token=FragTok999"
secret_env = "MONITOR_WEBHOOK_SECRET"
"""
    feeds = {"a": "https://example.org/feed.xml?%74oken=sekrit123abc"}
    path = write_config(tmp_path, feeds=feeds, channels=hook, notify=["hook"])
    env = {"MONITOR_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    check = monitor_cmd("--config", str(path), "check", env=env)
    assert check.returncode == 0, check.stderr
    assert f"https://example.org/feed.xml?%74oken={REDACTED}" in check.stdout
    assert f"https://hooks.example.org/in#access_token={REDACTED}" in check.stdout
    assert "sekrit123abc" not in check.stdout + check.stderr
    assert "FragTok999" not in check.stdout + check.stderr


def test_a_database_password_with_a_space_is_shown_by_no_command(tmp_path: Path) -> None:
    path = write_config(tmp_path, feeds={"a": "https://example.org/feed.xml"})
    url = f"postgresql+psycopg://u:Sec ret1@127.0.0.1:{closed_port()}/db"
    check = monitor_cmd("--config", str(path), "check", env={"MONITOR_DATABASE_URL": url})
    assert check.returncode == 0, check.stderr
    assert f'"postgresql+psycopg://u:{REDACTED}@127.0.0.1:' in check.stdout
    status = monitor_cmd("--config", str(path), "status", env={"MONITOR_DATABASE_URL": url})
    assert status.returncode != 0 and "cannot open" in status.stderr
    for done in (check, status):
        assert "Sec" not in done.stdout + done.stderr and "ret1" not in done.stdout + done.stderr

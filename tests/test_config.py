"""feeds.toml loading: every kind of mistake reported at once, secrets, redaction."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.config import (
    Baseline,
    Confirm,
    EmailChannel,
    Feed,
    Milestone,
    Rule,
    Settings,
    WebhookChannel,
    check_secrets,
    format_duration,
    load_config,
    parse_duration,
    redacted,
    secrets_for,
)
from monitor.config.load import MAX_CONFIG_BYTES
from monitor.config.models import ConfigFile
from monitor.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "config"
SHIPPED = Path(__file__).parent.parent / "feeds.toml"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GOOD_ENV = {"MONITOR_SMTP_PASSWORD": "pw", "MONITOR_WEBHOOK_SECRET": WHSEC}

FEED = '[[feeds]]\nid = "f"\nurl = "https://example.org/feed.xml"\n'
EMAIL = (
    '[[channels]]\nid = "team"\ntype = "email"\nhost = "smtp.example.org"\n'
    'sender = "m@example.org"\nrecipients = ["a@example.org"]\n'
)
MILESTONE = '[[milestones]]\nid = "m"\ntitle = "M"\n'


def write(folder: Path, text: str, name: str = "feeds.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    return caught.value.problems


# --- one mistake, one message ----------------------------------------------------------------

MISTAKES = [
    pytest.param(
        '[settings]\npoll_intervall = "30m"\n',
        "settings.poll_intervall: unknown key (did you mean 'poll_interval'?)",
        id="typo-in-key",
    ),
    pytest.param("[feed]\n", "feed: unknown key (did you mean 'feeds'?)", id="typo-in-section"),
    pytest.param(
        FEED + 'enabled = "yes"\n',
        "feeds[0].enabled: expected true or false, got string 'yes'",
        id="wrong-type-bool",
    ),
    pytest.param(
        EMAIL + 'port = "587"\n',
        "channels[0].port: expected an integer, got string '587'",
        id="wrong-type-int",
    ),
    pytest.param(
        "[settings]\nconcurrency = 0\n",
        "settings.concurrency: must be at least 1, got 0",
        id="below-minimum",
    ),
    pytest.param(
        FEED + 'interval = "15x"\n',
        "feeds[0].interval: '15x' is not a duration (use e.g. 30s, 15m, 6h, 14d)",
        id="bad-duration",
    ),
    pytest.param(
        FEED + "stale_after = 14\n",
        "feeds[0].stale_after: integer 14 is not a duration (use e.g. 30s, 15m, 6h, 14d)",
        id="duration-as-number",
    ),
    pytest.param(
        MILESTONE + '[milestones.match]\nany = ["/train(ing/"]\n',
        "milestones[0].match.any[0]: '/train(ing/' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 5",
        id="bad-regex",
    ),
    pytest.param(
        MILESTONE + '[milestones.match]\nany = ["/train"]\n',
        "milestones[0].match.any[0]: '/train' starts a regular expression "
        "but does not end with '/'",
        id="unclosed-regex",
    ),
    pytest.param(
        '[aliases]\nnoetra = ["Noetra"]\n' + MILESTONE + '[milestones.match]\nall = [["@noetr"]]\n',
        "milestones[0].match.all[0][0]: unknown alias '@noetr' (did you mean '@noetra'?)",
        id="unknown-alias",
    ),
    pytest.param(
        MILESTONE + '[milestones.match]\nany = ["x"]\n[[milestones.setback]]\nany = ["@gone"]\n',
        "milestones[0].setback[0].any[0]: unknown alias '@gone'",
        id="unknown-alias-in-setback",
    ),
    pytest.param(
        '[aliases]\na = ["x"]\nb = ["@a"]\n',
        "aliases.b[0]: an alias cannot use another alias ('@a')",
        id="alias-uses-alias",
    ),
    pytest.param(
        EMAIL + MILESTONE + 'notify = ["tema"]\nmatch = { any = ["x"] }\n',
        "milestones[0].notify[0]: unknown channel 'tema' (did you mean 'team'?)",
        id="unknown-channel",
    ),
    pytest.param(
        FEED + FEED.replace("feed.xml", "other.xml"),
        "feeds[1].id: duplicate id 'f' (also feeds[0])",
        id="duplicate-feed-id",
    ),
    pytest.param(
        FEED + FEED.replace('"f"', '"g"'),
        "feeds[1].url: duplicate url 'https://example.org/feed.xml' (also feeds[0])",
        id="duplicate-feed-url",
    ),
    pytest.param(
        EMAIL + EMAIL,
        "channels[1].id: duplicate id 'team' (also channels[0])",
        id="duplicate-channel-id",
    ),
    pytest.param(
        FEED.replace('"f"', '"Feed One"'),
        "feeds[0].id: 'Feed One' is not a valid id (use lowercase letters, digits, '.', '_' "
        "and '-', starting with a letter or digit)",
        id="bad-id",
    ),
    pytest.param(
        EMAIL + 'username = "u"\npassword = "hunter2"\n',
        "channels[0].password: secrets are never written in the configuration; "
        'name the environment variable that holds it: password_env = "MONITOR_…"',
        id="literal-password",
    ),
    pytest.param(
        '[[channels]]\nid = "h"\ntype = "webhook"\nurl = "https://h.example.org/"\n'
        'secret = "whsec_abc"\n',
        "channels[0].secret: secrets are never written in the configuration; "
        'name the environment variable that holds it: secret_env = "MONITOR_…"',
        id="literal-secret",
    ),
    pytest.param(
        EMAIL + 'username = "u"\npassword_env = "hunter2"\n',
        "channels[0].password_env: must name an environment variable "
        "(e.g. MONITOR_SMTP_PASSWORD), in capitals, digits and '_'; "
        "the secret itself goes in that variable",
        id="secret-in-env-name",
    ),
    pytest.param(
        EMAIL + 'password_env = "MONITOR_SMTP_PASSWORD"\n',
        "channels[0].password_env: password_env is set but username is not; SMTP login needs both",
        id="password-without-username",
    ),
    pytest.param(
        EMAIL + 'timeout = "2m1s"\n',
        "channels[0].timeout: 2m1s is longer than 2m, the most a delivery attempt may take "
        "(an alert is leased for 5m while it is sent)",
        id="channel-timeout-beyond-the-lease",
    ),
    pytest.param(
        '[settings]\ntimezone = "Asia/Tokio"\n',
        "settings.timezone: 'Asia/Tokio' is not an IANA time zone (e.g. Asia/Tokyo, UTC)",
        id="bad-timezone",
    ),
    pytest.param(
        EMAIL + 'security = "none"\n',
        'channels[0].security: "none" sends mail and credentials unencrypted; '
        "set allow_insecure = true to accept that",
        id="insecure-smtp",
    ),
    pytest.param(
        '[[channels]]\nid = "x"\ntype = "slack"\n',
        "channels[0].type: 'slack' is not one of 'email', 'webhook'",
        id="unknown-channel-type",
    ),
    pytest.param(
        '[[channels]]\nid = "x"\n',
        'channels[0].type: required key is missing (type = "email" or "webhook")',
        id="missing-channel-type",
    ),
    pytest.param(
        EMAIL.replace('recipients = ["a@example.org"]\n', ""),
        "channels[0].recipients: required key is missing",
        id="missing-key",
    ),
    pytest.param(
        EMAIL.replace('["a@example.org"]', "[]"),
        "channels[0].recipients: must not be empty",
        id="empty-recipients",
    ),
    pytest.param(
        EMAIL.replace('"m@example.org"', '"monitor"'),
        "channels[0].sender: 'monitor' is not an email address",
        id="bad-sender",
    ),
    pytest.param(
        FEED.replace("https://", "ftp://"),
        "feeds[0].url: 'ftp://example.org/feed.xml' is not an http:// or https:// URL",
        id="bad-url",
    ),
    pytest.param(
        FEED.replace("https://example.org/", "https://example.org:99999/"),
        "feeds[0].url: 'https://example.org:99999/feed.xml' is not a valid URL "
        "(Port out of range 0-65535)",
        id="port-out-of-range",
    ),
    pytest.param(
        FEED.replace("https://example.org/", "https://example.org:abc/"),
        "feeds[0].url: 'https://example.org:abc/feed.xml' is not a valid URL "
        "(Port could not be cast to integer value as 'abc')",
        id="port-not-a-number",
    ),
    pytest.param(
        FEED.replace("https://example.org/", "https://exa mple.org/"),
        "feeds[0].url: 'https://exa mple.org/feed.xml' contains white space "
        "(percent-encode it as %20)",
        id="space-in-host",
    ),
    pytest.param(
        FEED.replace('"https://example.org/feed.xml"', '" https://example.org/feed.xml"'),
        "feeds[0].url: ' https://example.org/feed.xml' contains white space "
        "(percent-encode it as %20)",
        id="leading-space",
    ),
    pytest.param(
        MILESTONE + 'expected_by = "soon"\nmatch = { any = ["x"] }\n',
        "milestones[0].expected_by: expected a date such as 2027-03-31, got string 'soon'",
        id="bad-date",
    ),
    pytest.param(
        MILESTONE + 'match = { none = ["x"] }\n',
        "milestones[0].match: a rule needs at least one of all or any",
        id="rule-without-terms",
    ),
    pytest.param(
        MILESTONE + 'match = { any = ["x"], fields = ["body"] }\n',
        "milestones[0].match.fields[0]: 'body' is not one of 'title', 'summary' or 'content'",
        id="bad-rule-field",
    ),
    pytest.param(
        MILESTONE + 'match = { any = ["x"] }\nconfirm = { authoritative = ["NEDO"] }\n',
        "milestones[0].confirm.authoritative[0]: 'NEDO' is not a registrable domain in "
        "lowercase (e.g. nedo.go.jp)",
        id="bad-domain",
    ),
    pytest.param(
        MILESTONE + 'match = { any = ["x"] }\n'
        'baseline = { status = "done", since = 2026-06-30, source = "https://e.org/" }\n',
        "milestones[0].baseline.status: 'done' is not one of 'reported', 'confirmed', "
        "'at_risk' or 'overdue'",
        id="bad-baseline-status",
    ),
    *(
        pytest.param(
            MILESTONE + 'match = { any = ["x"] }\nbaseline = { status = "confirmed", '
            f'since = 2026-06-30, source = "{source}" }}\n',
            "milestones[0].baseline.source: the URL carries credentials (a user name, password "
            "or token), which the log would keep forever; cite the evidence's public address",
            id=f"baseline-source-with-{name}",
        )
        for name, source in (
            ("a-token", "https://e.org/p?token=hunter2"),
            ("a-password", "https://bob:hunter2@e.org/p"),
            ("a-token-in-the-fragment", "https://e.org/p#access_token=hunter2"),
            ("a-percent-encoded-token", "https://e.org/p?%74oken=hunter2"),
            ("a-percent-encoded-token-in-the-fragment", "https://e.org/p#access_t%6Fken=hunter2"),
        )
    ),
    pytest.param(
        FEED.replace('"https://example.org/feed.xml"', '"https://example.org/f x?key=hunter2"'),
        "feeds[0].url: 'https://example.org/f x?key=<redacted>' contains white space "
        "(percent-encode it as %20)",
        id="bad-url-shown-redacted",
    ),
    pytest.param(
        '[settings]\nuser_agent = "モニター/1.0"\n',
        "settings.user_agent: 'モニター/1.0' is not an HTTP header value: use printable ASCII, "
        "one line, at most 512 characters (e.g. monitor/1.0 (+https://example.org/contact))",
        id="user-agent-not-ascii",
    ),
    pytest.param(
        '[settings]\nuser_agent = "mm\\r\\nX-Injected: y"\n',
        "settings.user_agent: 'mm\\r\\nX-Injected: y' is not an HTTP header value: use "
        "printable ASCII, one line, at most 512 characters "
        "(e.g. monitor/1.0 (+https://example.org/contact))",
        id="user-agent-header-injection",
    ),
    pytest.param(
        EMAIL.replace('"smtp.example.org"', '"http://smtp.example.org"'),
        "channels[0].host: 'http://smtp.example.org' is not a host name or IP address "
        "(e.g. smtp.example.org)",
        id="email-host-with-scheme",
    ),
    pytest.param(
        '[settings]\ndatabase_url = "postgresql+psycopg://bob:pw@127.0.0.1:notaport/x"\n',
        "settings.database_url: database URL (postgresql+psycopg://…): its host's port is not a "
        "number from 1 to 65535 (an IPv6 address goes in brackets: "
        "postgresql+psycopg://user@[::1]:5432/db)",
        id="database-port-not-a-number",
    ),
    pytest.param(
        '[settings]\ndatabase_url = "mysql://u:pw@h/db"\n',
        "settings.database_url: database URL scheme 'mysql' is not supported "
        "(use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)",
        id="unsupported-database",
    ),
]


def test_a_baseline_may_cite_a_page_whose_query_names_no_credential(tmp_path: Path) -> None:
    """Only whole credential names are refused: a search page's `keyword` is no key."""
    source = "https://www.meti.go.jp/search?keyword=Noetra&author=nedo&category_code=3#results"
    path = write(
        tmp_path,
        MILESTONE + 'match = { any = ["x"] }\nbaseline = { status = "confirmed", '
        f'since = 2026-06-30, source = "{source}" }}\n',
    )
    [m] = load_config(path, {}).milestones
    assert m.baseline is not None and m.baseline.source == source


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_each_mistake_is_reported_with_file_and_key_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}: {expected}"]


def test_five_mistakes_are_all_reported_at_once() -> None:
    path = FIXTURES / "five_mistakes.toml"
    assert problems_of(path) == [
        f"{path}: {p}"
        for p in (
            "settings.timezone: 'Asia/Tokio' is not an IANA time zone (e.g. Asia/Tokyo, UTC)",
            "feeds[0].intervall: unknown key (did you mean 'interval'?)",
            "feeds[1].id: duplicate id 'nhk' (also feeds[0])",
            (
                "milestones[0].match.all[1][0]: '/train(ing/' is not a valid regular "
                "expression: missing ), unterminated subpattern at position 5"
            ),
            "milestones[0].notify[0]: unknown channel 'tema' (did you mean 'team'?)",
        )
    ]


def test_error_message_joins_every_problem_and_carries_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "five_mistakes.toml", {})
    assert str(caught.value).count("\n") == 4
    assert caught.value.hint is not None


def test_an_empty_group_with_a_bad_term_reports_the_term_only(tmp_path: Path) -> None:
    path = write(tmp_path, MILESTONE + '[milestones.match]\nall = [["/(/"]]\n')
    (problem,) = problems_of(path)
    assert "match.all[0][0]: '/(/' is not a valid regular expression" in problem


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("a = 1\nb = = 2\n", "line 2, column 5", id="double-equals"),
        pytest.param("[settings\n", "line 1, column 10", id="unclosed-table"),
        pytest.param('x = "open\n', "line 1, column 10", id="unclosed-string"),
    ],
)
def test_toml_syntax_error_names_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: {where}: ")
    assert problem[len(f"{path}: {where}: ")].islower()


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, {})
    assert caught.value.problems == [f"{missing}: cannot read: no such file"]
    assert caught.value.hint is not None and "--config" in caught.value.hint


def test_folder_instead_of_file_is_named(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [f"{tmp_path}: cannot read: is a directory, not a file"]


def problems_without_waiting(path: Path, fifo: Path) -> list[str]:
    """`problems_of(path)`, failing instead of waiting for ever for a writer to `fifo`."""
    found: list[list[str]] = []
    reader = threading.Thread(target=lambda: found.append(problems_of(path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # a writer that opens and closes at once lets the reader go
        os.close(os.open(fifo, os.O_RDWR))
        reader.join(timeout=10)
        pytest.fail(f"{path}: read as a configuration, waiting for a writer")
    return found[0]


def test_a_fifo_or_a_link_to_one_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "feeds.fifo"
    os.mkfifo(fifo)  # no writer: reading it would wait for ever
    link = tmp_path / "feeds.toml"
    link.symlink_to(fifo)
    assert problems_without_waiting(fifo, fifo) == [f"{fifo}: not a regular file"]
    assert problems_without_waiting(link, fifo) == [f"{link}: not a regular file"]


def test_a_link_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    real = write(tmp_path, FEED, name="real.toml")
    link = tmp_path / "feeds.toml"
    link.symlink_to(real)
    assert [f.id for f in load_config(link, {}).feeds] == ["f"]


def test_a_file_larger_than_the_cap_is_refused_naming_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_bytes(FEED.encode() + b"#" * (MAX_CONFIG_BYTES - len(FEED)))  # a long comment
    assert [f.id for f in load_config(path, {}).feeds] == ["f"]  # the cap itself is allowed
    with path.open("ab") as grown:
        grown.write(b"#")
    assert problems_of(path) == [f"{path}: larger than 1 MiB, the limit for a configuration file"]


def test_an_empty_path_is_named_as_empty_not_taken_for_the_current_folder() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("", {})
    assert caught.value.problems == ["--config: the path is empty"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("[" * 600 + "]" * 600, id="arrays"),
        pytest.param("{b = " * 600 + "1" + "}" * 600, id="inline-tables"),
    ],
)
def test_values_nested_too_deeply_are_a_problem_of_the_file(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"a = {value}\n")
    assert problems_of(path) == [f"{path}: values nested too deeply for the TOML reader"]


def test_non_utf8_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_bytes('[settings]\nuser_agent = "監視"\n'.encode("shift_jis"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: not UTF-8 text (byte ")


# --- what a valid file becomes ---------------------------------------------------------------


def test_valid_file_becomes_typed_frozen_models() -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    assert config.settings.poll_interval == timedelta(minutes=45)
    assert config.settings.log_format == "json"
    assert config.settings.fetch_timeout == timedelta(seconds=20)  # default kept
    nec = config.feed("nec-press")
    assert (nec.interval, nec.stale_after) == (timedelta(minutes=90), timedelta(days=14))
    assert config.feed("meti.news").effective_interval(config.settings) == timedelta(minutes=45)
    assert config.feed("meti.news").enabled is False
    team = config.channel("team")
    assert isinstance(team, EmailChannel)
    assert team.recipients == ("a@example.org", "b@example.org")
    assert team.retry_schedule == (timedelta(minutes=1), timedelta(hours=1))
    hook = config.channel("hook")
    assert isinstance(hook, WebhookChannel) and hook.timeout == timedelta(seconds=15)
    assert config.aliases["noetra"] == ("Noetra", "ノエトラ", r"/noetra\s+inc/")
    m = config.milestone("training-start")
    assert m.expected_by == date(2027, 3, 31)
    assert m.match.all == (("@noetra",), ("training", "train*", "学習"))
    assert m.match.fields == ("title",)
    assert (m.confirm.publishers, m.confirm.within) == (3, timedelta(days=7))
    assert m.baseline is not None and m.baseline.since == date(2026, 6, 30)
    assert config.milestone("model-release").confirm.publishers == 2  # default policy
    with pytest.raises(ValidationError):
        m.title = "changed"


def test_sha256_is_of_the_file_bytes() -> None:
    path = FIXTURES / "valid.toml"
    assert load_config(path, {}).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["feed", "channel", "milestone"])
def test_lookup_of_unknown_id_raises_key_error_naming_it(kind: str) -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    with pytest.raises(KeyError, match="'nope'"):
        getattr(config, kind)("nope")


def test_lookup_follows_a_copy_with_other_feeds() -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    assert config.feed("nec-press").title == "NEC"
    renamed = config.feeds[0].model_copy(update={"id": "nec"})
    copy = config.model_copy(update={"feeds": (renamed,)})
    assert copy.feed("nec") is renamed
    with pytest.raises(KeyError):
        copy.feed("nec-press")


def test_insecure_smtp_is_accepted_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, EMAIL + 'security = "none"\nallow_insecure = true\n')
    channel = load_config(path, {}).channel("team")
    assert isinstance(channel, EmailChannel) and channel.security == "none"


def test_shipped_feeds_toml_loads_without_secrets() -> None:
    config = load_config(SHIPPED, {})
    assert config.settings.database_url.endswith("/storage/events.db")
    assert {"team", "hook"} == {c.id for c in config.channels}
    assert "noetra" in config.aliases
    assert config.milestone("training-start").notify == ("team", "hook")
    assert config.feed("meti-news").stale_after == timedelta(days=14)


def documentation_of(key: str) -> re.Pattern[str]:
    """Where feeds.toml documents a key: `key =` (set, or shown in a comment), a table header
    (`[settings]`, `[milestones.confirm]`), or a comment line that starts a key list with it.
    Whole keys only: `timeout` is not documented by `fetch_timeout = …`."""
    k = re.escape(key)
    return re.compile(
        rf"(?<![\w.-]){k} ?=|^\[\[?(?:\w+\.)*{k}\]\]?$|^#\s*{k}\s", re.MULTILINE
    )


SHIPPED_KEYS = sorted(
    name
    for model in (ConfigFile, Settings, Feed, EmailChannel, WebhookChannel, Milestone, Rule,
                  Confirm, Baseline)
    for name in model.model_fields
)


def test_shipped_feeds_toml_documents_every_key() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert [key for key in SHIPPED_KEYS if not documentation_of(key).search(text)] == []


@pytest.mark.parametrize("key", SHIPPED_KEYS)
def test_the_documentation_check_fails_when_a_key_loses_its_documentation(key: str) -> None:
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()
    kept = "\n".join(line for line in lines if not documentation_of(key).search(line))
    assert documentation_of(key).search(kept) is None
    if key == "timeout":  # the channels' key list gone, fetch_timeout stays and does not count
        assert "fetch_timeout =" in kept and "timeout" in kept


# --- the database URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_file", "env_value", "expected"),
    [
        pytest.param(
            "sqlite:///storage/events.db", None, "sqlite:///{dir}/storage/events.db", id="relative"
        ),
        pytest.param("sqlite:////var/ev.db", None, "sqlite:////var/ev.db", id="absolute"),
        pytest.param(
            "sqlite:///../ev.db?timeout=5", None, "sqlite:///{parent}/ev.db?timeout=5", id="query"
        ),
        pytest.param(
            "sqlite:///storage/events.db",
            "postgresql+psycopg://u@db/ev",
            "postgresql+psycopg://u@db/ev",
            id="env-overrides",
        ),
        pytest.param(
            "sqlite:///a.db", "sqlite:///b/ev.db", "sqlite:///{dir}/b/ev.db", id="env-relative"
        ),
    ],
)
def test_database_url_resolution(
    tmp_path: Path, in_file: str, env_value: str | None, expected: str
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, f'[settings]\ndatabase_url = "{in_file}"\n')
    env = {} if env_value is None else {"MONITOR_DATABASE_URL": env_value}
    url = load_config(path, env).settings.database_url
    assert url == expected.format(dir=folder, parent=tmp_path)


def test_default_database_is_storage_next_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    url = load_config(path, {}).settings.database_url
    assert url == f"sqlite:///{tmp_path}/storage/events.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_log_is_refused(tmp_path: Path, url: str) -> None:
    """Every event recorded there would be gone when the process ends."""
    problems = problems_of(write(tmp_path, f'[settings]\ndatabase_url = "{url}"\n'), {})
    where = f"{tmp_path / 'feeds.toml'}: settings.database_url"
    assert problems == [
        f"{where}: database URL {url!r} names no file: "
        + "an in-memory log would lose every event (use sqlite:///path/to/file.db)"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgres://u@db/m", "'postgres': write postgresql:// (SQLAlchemy knows no 'postgres')"),
        ("postgresql+asyncpg://u@db/m", "'postgresql+asyncpg' is not supported"),
        ("sqlite+pysqlcipher:///a.db", "'sqlite+pysqlcipher' is not supported"),
    ],
)
def test_a_driver_this_package_does_not_install_is_refused_at_check(
    tmp_path: Path, url: str, problem: str
) -> None:
    [found] = problems_of(write(tmp_path, f'[settings]\ndatabase_url = "{url}"\n'), {})
    assert f"settings.database_url: database URL scheme {problem}" in found


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[settings]\nmax_feed_bytes = 99999999999999999999\n",
            "settings.max_feed_bytes: must be at most 2147483647, got 99999999999999999999",
        ),
        (
            MILESTONE + "expected_by = 9999-12-31\n",
            "milestones[0].expected_by: must be at most 9998-12-31, got 9999-12-31",
        ),
        (
            MILESTONE + 'baseline = { status = "confirmed", since = 0001-01-01 }\n',
            "milestones[0].baseline.since: must be at least 1900-01-01, got 0001-01-01",
        ),
    ],
)
def test_values_beyond_what_the_monitor_can_compute_with_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    """A deadline of 9999-12-31 ends after the last datetime; 2**64 overflows a hash."""
    assert f"{tmp_path / 'feeds.toml'}: {problem}" in problems_of(write(tmp_path, text), {})


INTEGER_SETTINGS = [
    "max_feed_bytes", "max_feed_items", "max_redirects", "concurrency", "per_host_concurrency"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(INTEGER_SETTINGS), st.integers(min_value=-(2**70), max_value=2**70))
@example("max_redirects", 99999999999999999999)  # accepted, then orjson refused it at start
def test_an_integer_setting_is_refused_or_one_the_daemon_can_record(key: str, value: int) -> None:
    """The daemon records the configuration's fingerprints at start (ConfigApplied)."""
    from monitor.runtime import fingerprints

    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), f"[settings]\n{key} = {value}\n" + FEED)
        try:
            config = load_config(path, {})
        except ConfigError as error:
            assert [p for p in error.problems if f"settings.{key}: must be at" in p], error
            return
    assert fingerprints(config)["settings"]


def test_a_keyword_dsn_is_refused_without_being_echoed(tmp_path: Path) -> None:
    dsn = "host=db user=monitor password=S3cretPW dbname=monitor"
    problems = problems_of(write(tmp_path, ""), {"MONITOR_DATABASE_URL": dsn})
    assert problems == [
        "MONITOR_DATABASE_URL: database URL is not a URL "
        + "(use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)"
    ]


def test_bad_database_url_in_environment_is_named_without_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, FEED + 'interval = "1x"\n')
    problems = problems_of(path, {"MONITOR_DATABASE_URL": "mysql://u:canary-pw@h/db"})
    assert len(problems) == 2
    assert problems[1].startswith("MONITOR_DATABASE_URL: database URL scheme 'mysql'")
    assert "canary-pw" not in "\n".join(problems)


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_not_needed_to_load_but_are_checked_later() -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    with pytest.raises(ConfigError) as caught:
        check_secrets(config, {"MONITOR_WEBHOOK_SECRET": WHSEC})
    assert caught.value.problems == [
        (
            f"{config.path}: channels[0].password_env: "
            "environment variable MONITOR_SMTP_PASSWORD is not set"
        )
    ]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        pytest.param("", "environment variable MONITOR_WEBHOOK_SECRET is set but empty", id="empty"),
        pytest.param(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MONITOR_WEBHOOK_SECRET: secret 1 does not start with 'whsec_'",
            id="no-prefix",
        ),
        pytest.param(
            f"{WHSEC} whsec_not*base64",
            "MONITOR_WEBHOOK_SECRET: secret 2 is not base64 after 'whsec_'",
            id="second-of-two-bad",
        ),
        pytest.param(
            "whsec_", "MONITOR_WEBHOOK_SECRET: secret 1 has no key after 'whsec_'", id="no-key"
        ),
    ],
)
def test_malformed_webhook_secret_is_named_without_its_value(secret: str, problem: str) -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    env = {"MONITOR_SMTP_PASSWORD": "pw", "MONITOR_WEBHOOK_SECRET": secret}
    with pytest.raises(ConfigError) as caught:
        check_secrets(config, env)
    assert caught.value.problems == [f"{config.path}: channels[1].secret_env: {problem}"]
    assert "MfKQ9r8" not in str(caught.value)


def test_secrets_for_maps_channels_to_their_secrets() -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    env = {"MONITOR_SMTP_PASSWORD": " pass word ", "MONITOR_WEBHOOK_SECRET": f" {WHSEC}\n{WHSEC}"}
    assert secrets_for(config, env) == {"team": " pass word ", "hook": f"{WHSEC} {WHSEC}"}


def test_redacted_never_contains_a_secret_value(tmp_path: Path) -> None:
    canary_key = base64.b64encode(b"canary-webhook-key-0001").decode()
    env = {
        "MONITOR_SMTP_PASSWORD": "canary-smtp-password",
        "MONITOR_WEBHOOK_SECRET": f"whsec_{canary_key}",
        "MONITOR_DATABASE_URL": "postgresql+psycopg://mon:canary-db-password@db/ev",
    }
    text = (FIXTURES / "valid.toml").read_text(encoding="utf-8")
    text = text.replace(
        '"https://hooks.example.org/milestones"',
        '"https://u:canary-url-password@hooks.example.org/m?token=canary-token&x=1"',
    )
    config = load_config(write(tmp_path, text), env)
    check_secrets(config, env)
    shown = json.dumps(redacted(config), ensure_ascii=False)
    for canary in (
        "canary-smtp-password",
        canary_key,
        "canary-db-password",
        "canary-url-",
        "canary-token",
    ):
        assert canary not in shown
    view = redacted(config)
    assert view["settings"]["database_url"] == "postgresql+psycopg://mon:<redacted>@db/ev"
    assert view["channels"][0]["password_env"] == "MONITOR_SMTP_PASSWORD"
    assert view["channels"][1]["url"].endswith("/m?token=<redacted>&x=1")


def test_redacted_shows_effective_values_as_plain_data() -> None:
    config = load_config(FIXTURES / "valid.toml", {})
    view = redacted(config)
    assert view["settings"]["poll_interval"] == "45m"
    assert [f["interval"] for f in view["feeds"]] == ["1h30m", "45m"]
    assert view["milestones"][0]["expected_by"] == "2027-03-31"
    assert view["channels"][0]["retry_schedule"] == ["1m", "1h"]
    assert json.loads(json.dumps(view)) == view


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("14d", timedelta(days=14)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        (" 2d 12h ", timedelta(hours=60)),
    ],
)
def test_parse_duration_reads_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("15x", "'15x' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("", "'' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("m", "'m' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("1.5h", "'1.5h' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("15M", "'15M' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("-5m", "'-5m' is not a duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("0s", "'0s' is not a positive duration (use e.g. 30s, 15m, 6h, 14d)"),
        ("99999999999w", "'99999999999w' is too long to be a duration (at most 36525d)"),
        ("999999999d", "'999999999d' is too long to be a duration (at most 36525d)"),
    ],
)
def test_parse_duration_refuses_with_a_sentence(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**12), st.sampled_from("smhdw"))
@example(999_999_999, "d")  # accepted, and the first poll's next poll time overflowed
@example(36_525, "d")
def test_an_accepted_duration_fits_every_time_and_timeout_the_daemon_computes(n: int, unit: str) -> None:
    """From any day a configuration may name (1900–9998) the daemon adds and subtracts its
    durations, and uses them as socket and thread timeouts: none of that may overflow."""
    try:
        value = parse_duration(f"{n}{unit}")
    except ValueError as error:
        assert str(error).startswith(f"'{n}{unit}' is too long to be a duration")
        return
    assert value.total_seconds() <= threading.TIMEOUT_MAX
    for when in (datetime(2026, 11, 29, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC)):
        assert (when + value - value) == when
    assert datetime(9998, 12, 31, tzinfo=UTC) - value < datetime(9998, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    ["settings.poll_interval", "settings.backoff_ceiling", "feeds[0].interval", "feeds[0].stale_after"],
)
def test_a_duration_too_long_for_the_daemon_is_a_configuration_problem(
    tmp_path: Path, key: str
) -> None:
    section, _, name = key.partition(".")
    text = (
        f'[settings]\n{name} = "999999999d"\n' + FEED
        if section == "settings"
        else FEED + f'{name} = "999999999d"\n'
    )
    message = "'999999999d' is too long to be a duration (at most 36525d)"
    assert problems_of(write(tmp_path, text)) == [f"{tmp_path / 'feeds.toml'}: {key}: {message}"]


@given(st.integers(min_value=1, max_value=10**9))
def test_format_duration_reads_back_as_the_same_duration(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert parse_duration(text) == value
    assert format_duration(parse_duration(text)) == text


def test_the_longest_channel_timeout_fits_twice_in_an_alerts_lease(tmp_path: Path) -> None:
    from monitor import deliver
    from monitor.config.values import MAX_CHANNEL_TIMEOUT

    assert deliver.LEASE_SECONDS >= 2 * MAX_CHANNEL_TIMEOUT.total_seconds()
    two_minutes = load_config(write(tmp_path, EMAIL + 'timeout = "2m"\n'), {})
    assert two_minutes.channels[0].timeout == timedelta(minutes=2)


def test_a_huge_value_is_quoted_in_a_problem_line_cut_short(tmp_path: Path) -> None:
    path = write(tmp_path, '[settings]\ntimezone = "' + "Asia/" * 20_000 + '"\n')
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: settings.timezone: 'Asia/Asia/")
    assert len(problem) == 500 and problem.endswith("…")

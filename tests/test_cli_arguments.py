"""Odd command-line arguments: the command works, or says one `error:` line (and a hint) and
exits 2; never a traceback, an `unexpected` error, or a terminal escape echoed back."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.cli import main
from monitor.runtime import open_store
from tests.kit import assert_one_line_error, cli, kept_logging, load, write_config

# {} is where the odd value goes
COMMANDS = [
    ("log", "--stream", "{}"),
    ("log", "--milestone", "{}"),
    ("log", "--feed", "{}"),
    ("log", "--grep", "{}"),
    ("log", "--type", "{}"),
    ("log", "--since", "{}"),
    ("log", "--until", "{}"),
    ("export", "--stream", "{}"),
    ("export", "--format", "{}"),
    ("backtest", "--since", "{}"),
    ("verify", "--expect", "{}"),
    ("alerts", "retry", "{}"),
    ("alerts", "disable", "{}"),
    ("alerts", "test", "{}"),
    ("poll", "{}"),
    ("note", "{}", "--status", "confirmed", "--source", "https://example.org/a"),
    ("note", "m", "--status", "{}", "--source", "https://example.org/a"),
]
# '\udcff' is how Python hands over an argument byte that is not UTF-8 (0xff here)
ODD = ["\udcff", "\n", "\x1b[2J", "\r", "\x00", "é", "ﾉｴﾄﾗ", "'", "[b]", "%s", "9" * 30, "-"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_config(tmp_path_factory.mktemp("args"), feeds={"a": "http://127.0.0.1:9/"})
    open_store(load(path)).close()
    return path


def monitor(config: Path, *args: str) -> tuple[int, str]:
    """The command line in this process (a child per example would take a second each): the
    exit code and what went to stderr."""
    argv, stdout, stderr = sys.argv, io.TextIOWrapper(io.BytesIO()), io.StringIO()
    sys.argv = ["monitor", "--config", str(config), *args]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), kept_logging():
            main()
    except SystemExit as done:
        code = done.code
    finally:
        sys.argv = argv
    assert isinstance(code, int)
    return code, stderr.getvalue()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(COMMANDS),
    st.lists(st.sampled_from(ODD) | st.text(max_size=4), min_size=1, max_size=3).map("".join),
)
@example(("log", "--stream", "{}"), "a\udcffb")  # SQLite: UnicodeEncodeError, exit 1
@example(("log", "--milestone", "{}"), "a\udcffb")
@example(("alerts", "retry", "{}"), "a\udcffb")  # orjson: TypeError, exit 1
@example(("log", "--type", "{}"), "x\ny")  # an error of two lines
@example(("poll", "{}"), "x\x1b[31m\ny")  # an escape echoed to the terminal
def test_an_odd_argument_works_or_is_one_usage_error(
    config: Path, command: tuple[str, ...], value: str
) -> None:
    code, stderr = monitor(config, *(value if a == "{}" else a for a in command))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code in (0, 2), stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    assert "\x1b" not in stderr
    assert all(line.startswith(("error: ", "hint: ", "note: ")) for line in lines), stderr
    assert sum(line.startswith("error: ") for line in lines) == (code == 2), stderr


def test_an_argument_that_is_not_utf8_is_a_usage_error_in_a_real_process(config: Path) -> None:
    line = assert_one_line_error(cli(config, "log", "--stream", "feed:\udcff"), 2)
    assert line.startswith("error: --stream 'feed:\\udcff': not UTF-8 text"), line

"""feeds.toml and MONITOR_DATABASE_URL → a Config, or one ConfigError listing every problem."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.models import Config, ConfigFile
from monitor.config.problems import Problem, in_file_order, key_path, translate
from monitor.config.references import reference_problems
from monitor.config.values import check_database_url
from monitor.errors import ConfigError

DATABASE_URL_ENV = "MONITOR_DATABASE_URL"
MAX_CONFIG_BYTES = 1024 * 1024  # a feeds.toml is a few KiB; more is a wrong file, not a config
FIX_HINT = "fix every problem listed, then run `monitor check` again"
_TOML_AT = re.compile(r"(?s)(.*) \(at line (\d+), column (\d+)\)")
_SQLITE_FILE = re.compile(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?")
_READ_ERRORS: tuple[tuple[type[OSError], str], ...] = (
    (FileNotFoundError, "no such file"),
    (IsADirectoryError, "is a directory, not a file"),
    (PermissionError, "permission denied"),
)
_READ_HINT = "pass --config PATH or set MONITOR_CONFIG to the configuration file"


def load_config(given: str | Path, env: Mapping[str, str]) -> Config:
    """Read, parse and validate `given`; secrets are checked later by `check_secrets`.
    A path as text, as typed: pathlib reads an empty one as the current folder."""
    if not str(given):
        raise ConfigError(["--config: the path is empty"], hint=_READ_HINT)
    path = Path(given)
    name = str(path)
    content = _read(path)
    raw = _parse(content, name)
    found: list[Problem] = []
    file: ConfigFile | None = None
    try:
        file = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        found.extend(translate(exc.errors()))
    found.extend(reference_problems(raw))
    problems = [
        _capped(f"{name}: {key_path(loc)}: {message}") for loc, message in in_file_order(found)
    ]
    database_url = None if file is None else file.settings.database_url
    override = env.get(DATABASE_URL_ENV, "").strip()
    if override:
        try:
            database_url = check_database_url(override)
        except ValueError as exc:
            problems.append(f"{DATABASE_URL_ENV}: {exc}")
    if problems or file is None or database_url is None:
        raise ConfigError(problems, hint=FIX_HINT)
    settings = file.settings.model_copy(
        update={"database_url": resolve_sqlite_path(database_url, path.parent)}
    )
    return Config(
        path=path,
        sha256=hashlib.sha256(content).hexdigest(),
        settings=settings,
        feeds=file.feeds,
        channels=file.channels,
        aliases=file.aliases,
        milestones=file.milestones,
    )


def resolve_sqlite_path(url: str, folder: Path) -> str:
    """Make a relative SQLite file path absolute against `folder`; other URLs are unchanged."""
    match = _SQLITE_FILE.fullmatch(url)
    if match is None:
        return url
    prefix, file, query = match.group(1), match.group(2), match.group(3) or ""
    if not file or file == ":memory:" or file.startswith(("/", "file:")):
        return url
    absolute = os.path.normpath((folder / file).absolute())
    return f"{prefix}{absolute}{query}"


def _read(path: Path) -> bytes:
    """The file's bytes; only a regular file (after symlinks), and at most MAX_CONFIG_BYTES, so
    that `-c /dev/zero`, a FIFO or a huge file is refused instead of read without end."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening a device may act
            raise _not_regular(path)
        # O_NONBLOCK: were a FIFO put there since, opening it must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _not_regular(path)
            os.set_blocking(fd, True)
            content = handle.read(MAX_CONFIG_BYTES + 1)  # one byte more tells "too large"
    except OSError as exc:
        reason = next((text for kind, text in _READ_ERRORS if isinstance(exc, kind)), None)
        raise ConfigError(
            [f"{path}: cannot read: {reason or exc.strerror or type(exc).__name__}"],
            hint=_READ_HINT,
        ) from None
    if len(content) > MAX_CONFIG_BYTES:
        limit = f"{MAX_CONFIG_BYTES // 2**20} MiB"
        raise ConfigError(
            [f"{path}: larger than {limit}, the limit for a configuration file"],
            hint="check that this is the configuration file: a feeds.toml is a few KiB",
        )
    return content


def _not_regular(path: Path) -> ConfigError:
    if os.path.isdir(path):
        return ConfigError([f"{path}: cannot read: is a directory, not a file"], hint=_READ_HINT)
    return ConfigError([f"{path}: not a regular file"], hint=_READ_HINT)


def _parse(content: bytes, name: str) -> dict[str, Any]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None
    try:
        return tomllib.loads(text)
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(
            [f"{name}: values nested too deeply for the TOML reader"], hint=FIX_HINT
        ) from None
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_AT.fullmatch(str(exc))
        if match is None:
            message = str(exc)
            where = ""
        else:
            message, where = match.group(1), f" line {match.group(2)}, column {match.group(3)}:"
        message = message[:1].lower() + message[1:]
        raise ConfigError([f"{name}:{where} {message}"], hint=FIX_HINT) from None


PROBLEM_CAP = 500  # characters of one problem line: a value quoted whole could be megabytes


def _capped(line: str) -> str:
    return line if len(line) <= PROBLEM_CAP else line[: PROBLEM_CAP - 1] + "…"

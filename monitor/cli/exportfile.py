"""Where `monitor export -o` writes: never over the event log, and never a file left half-written."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

from monitor.errors import UsageError


def refuse_database_file(path: Path, database_url: str) -> None:
    """An export over the event log (or its WAL) would truncate the very history it reads."""
    url = sa.make_url(database_url)
    name = url.database or ""
    if url.get_backend_name() != "sqlite" or name in ("", ":memory:"):
        return
    if name.startswith("file:"):  # a URI filename: sqlite:///file:/path/events.db?uri=true
        name = name.removeprefix("file:").split("?", 1)[0]
    target = path.resolve()
    for suffix in ("", "-wal", "-shm", "-journal"):
        database = Path(name + suffix)
        if target == database.resolve() or _same_file(path, database):
            raise UsageError(
                f"--output {path}: is the event log's database file {database.name}",
                hint="pass a file outside the database's files",
            )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # a hard link resolves to another name
    except OSError:  # either does not exist: not the same file
        return False


def write_whole(path: Path, lines: Iterable[bytes]) -> int:
    """Write to a temporary file beside `path`, renamed over it only once every line is in;
    the number of lines."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a folder", hint="pass a file name")
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise UsageError(
            f"--output {path}: cannot write: {exc.strerror or exc}",
            hint="pass a file in a folder that exists and is writable",
        ) from None
    temporary = Path(name)
    try:
        with open(fd, "wb") as handle:
            count = 0
            for line in lines:
                handle.write(line)
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode_for(path))  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or those a plain open() would have given a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask

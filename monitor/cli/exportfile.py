"""Where `monitor export -o` writes: never over the event log, never a file left half-written."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

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
    target = os.path.realpath(path)  # not Path.resolve(): it raises on a loop of links
    for suffix in ("", "-wal", "-shm", "-journal"):
        database = Path(name + suffix)
        if target == os.path.realpath(database) or _same_file(path, database):
            raise UsageError(
                f"--output {path}: is the event log's database file {database.name}",
                hint="pass a file outside the database's files",
            )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # a hard link resolves to another name
    except OSError:  # either does not exist: not the same file
        return False


def write_output(path: Path, lines: Iterable[bytes]) -> int:
    """Write every line to `path`; the number of lines. Every refusal comes before a byte is
    written. A symbolic link is followed: its target is written, the link stays. A character
    device, FIFO or socket is written into as it is, as a shell's `>` would; a regular file (or
    a new one) is written to a temporary file beside it, renamed over it once every line is in."""
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a loop of links, a folder this user cannot search
        raise _cannot_write(path, exc) from None
    if mode is None or stat.S_ISREG(mode):
        # the rename needs only the folder's permission: the file's own is checked here
        if mode is not None and not os.access(target, os.W_OK):
            raise UsageError(
                f"--output {path}: not writable by this user",
                hint="pass a file you may write, or a new file's name",
            )
        return _replace(path, target, lines)
    if stat.S_ISDIR(mode):
        raise UsageError(f"--output {path}: is a folder", hint="pass a file name")
    if stat.S_ISSOCK(mode):
        return _send(path, target, lines)
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return _stream(path, target, lines)
    raise UsageError(f"--output {path}: is a block device", hint="pass a file name")


def _replace(path: Path, target: Path, lines: Iterable[bytes]) -> int:
    """Write to a temporary file beside `target`, renamed over it only once complete."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    temporary = Path(name)
    try:
        with open(fd, "wb") as handle:
            count = _write(handle, lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode_for(target))  # mkstemp makes it 0600
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def _stream(path: Path, target: Path, lines: Iterable[bytes]) -> int:
    """Write into a device or FIFO as it is: renaming a file over it would replace the device,
    and a FIFO's reader would get nothing. Opening a FIFO waits for its reader."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)  # no O_CREAT, O_TRUNC
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    with open(fd, "wb") as handle:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by a file since: never write it half
            raise UsageError(f"--output {path}: changed while being opened", hint="run again")
        return _write(handle, lines)


def _send(path: Path, target: Path, lines: Iterable[bytes]) -> int:
    """A Unix socket cannot be opened as a file: connect to it, as to a log collector."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(target))
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        with sock.makefile("wb") as handle:
            return _write(handle, lines)


def _write(handle: BinaryIO, lines: Iterable[bytes]) -> int:
    count = 0
    for line in lines:
        handle.write(line)
        count += 1
    return count


def _cannot_write(path: Path, exc: OSError) -> UsageError:
    return UsageError(
        f"--output {path}: cannot write: {exc.strerror or exc}",
        hint="pass a file in a folder that exists and is writable",
    )


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or those a plain open() would have given a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask

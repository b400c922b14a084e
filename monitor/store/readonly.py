"""Opening the log read-only: for the commands that only read, and for an auditor's copy.

SQLite (https://www.sqlite.org/uri.html, https://www.sqlite.org/wal.html#readonly): the log
is a WAL-mode file, and a reader of one needs its -shm file. The file is opened `mode=ro`,
sharing it with any writer as usual, when a -wal file lies beside it (committed transactions
may live only there, and only `mode=ro` reads them) or when this user can write the folder
(SQLite creates -shm and -wal there). In a folder this user cannot write, with no -wal beside
the file, `mode=ro` cannot open it at all; it is opened `immutable=1` instead. An immutable
opening takes no lock and never looks for changes, so it is right only while nothing writes
the file: no -wal means no writer has it open, and `Snapshot` compares the file again when
the store closes, so a writer that started meanwhile makes the command fail, not lie.

PostgreSQL: every transaction is READ ONLY (`schema.create_engine`).

Either way nothing is created or altered, and a database without the log's tables is refused
as "not a monitor event log" rather than failing at its first read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from monitor.errors import StoreError, WrongDatabaseError
from monitor.redact import redact_url
from monitor.store import schema

TABLES = (schema.events.name, schema.projection_state.name)


def open_engine(url: str) -> tuple[sa.Engine, Snapshot | None]:
    """A read-only engine on the log at `url`, and what to check when it closes (if anything)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return schema.create_engine(parsed, read_only=True), None
    target, snapshot = _sqlite_target(parsed, redact_url(url))
    return schema.create_engine(target, read_only=True), snapshot


def check_tables(engine: sa.Engine, url: str) -> None:
    """Refuse a database that lacks the log's tables; reading it would fail at every query."""
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            missing = [f"no {t} table" for t in TABLES if not inspector.has_table(t)]
    except sa.exc.DatabaseError as exc:
        if getattr(exc.orig, "sqlite_errorname", "") != "SQLITE_NOTADB":
            raise
        missing = ["not a SQLite file"]  # SQLite's "file is not a database"
    if missing:
        raise WrongDatabaseError(
            f"database '{redact_url(url)}': not a monitor event log ({missing[0]})",
            hint=schema.NOT_A_LOG_HINT,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A file opened immutable, as it was then: inode, size, modification time (ns)."""

    path: Path
    seen: tuple[int, int, int]

    @classmethod
    def of(cls, path: Path) -> Snapshot:
        return cls(path, _identity(path))

    def check(self) -> None:
        """Raise when the file changed, or a writer's -wal appeared, since it was opened."""
        try:
            same = _identity(self.path) == self.seen and not _beside(self.path, "wal").exists()
        except OSError:
            same = False
        if not same:
            raise StoreError(
                f"database '{self.path}': changed while this command read it; "
                "what it printed may be wrong",
                hint="read a copy that nothing writes, or run as a user who can write its folder",
            )


def _identity(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}-{suffix}")


def _sqlite_target(url: sa.URL, shown: str) -> tuple[sa.URL, Snapshot | None]:
    """The URI that opens the file of `url` read-only, and the snapshot an immutable one needs."""
    name = url.database or ""
    if not name or name == ":memory:" or name.startswith("file:") or url.query:
        raise WrongDatabaseError(
            f"database '{shown}': a command that only reads needs a plain file path",
            hint="use sqlite:///path/to/events.db",
        )
    path = Path(name).absolute()
    _must_be_a_file(path, shown)
    wal = _beside(path, "wal").exists()
    writable = os.access(path.parent, os.W_OK | os.X_OK)
    if wal and not writable and not _beside(path, "shm").exists():
        raise StoreError(
            f"database '{shown}': its -wal file cannot be read without a -shm file, "
            f"which this user cannot create in {path.parent}",
            hint='copy the log into one file with `sqlite3 FILE ".backup COPY"` and read the copy',
        )
    if wal or writable or _beside(path, "journal").exists():
        return _uri(url, path, mode="ro"), None
    return _uri(url, path, immutable="1"), Snapshot.of(path)


def _must_be_a_file(path: Path, shown: str) -> None:
    try:
        reason = None if stat.S_ISREG(path.stat().st_mode) else "not a file"
    except (FileNotFoundError, NotADirectoryError):
        raise WrongDatabaseError(
            f"database '{shown}': cannot open: no such file",
            hint="check database_url (or MONITOR_DATABASE_URL): "
            "a command that only reads never creates the log",
        ) from None
    except OSError as exc:  # a permission, say: the file may well be the log
        raise StoreError(
            f"database '{shown}': cannot open: {exc.strerror or type(exc).__name__}"
        ) from None
    if reason is not None:
        raise WrongDatabaseError(f"database '{shown}': cannot open: {reason}")


def _uri(url: sa.URL, path: Path, **params: str) -> sa.URL:
    # SQLite decodes %HH in a URI's path, so a '?', '#' or '%' in a file's name stays literal
    return url.set(database="file:" + quote(str(path)), query={**params, "uri": "true"})

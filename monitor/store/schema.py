"""The log's tables and triggers, and the engine settings each database needs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from monitor.errors import StoreError, WrongDatabaseError
from monitor.redact import redact_url
from monitor.store.records import Recorded

metadata = sa.MetaData()

# recorded_at, data and meta are stored as text: the chain hashes exactly these strings, and
# JSONB would re-encode numbers and keys behind our back. recorded_at is fixed-width UTC, so
# comparing the text compares the times.
events = sa.Table(
    "events",
    metadata,
    # On SQLite an INTEGER PRIMARY KEY is the rowid itself: rows are stored in log order and
    # no second index of positions is kept (a BIGINT key would be one). Older files keep theirs.
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False, index=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("dedupe_key", sa.Text, nullable=True, unique=True),
    # meta.causation copied out so "what did this cause" is an index lookup
    sa.Column("causation", sa.BigInteger, nullable=True, index=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("stream", "stream_version", name="uq_events_stream_version"),
)

READ_COLUMNS = (
    events.c.position,
    events.c.event_id,
    events.c.stream,
    events.c.stream_version,
    events.c.type,
    events.c.schema_version,
    events.c.recorded_at,
    events.c.data,
    events.c.meta,
    events.c.dedupe_key,
    events.c.prev_hash,
    events.c.hash,
)

Row = sa.Row[*tuple[Any, ...]]


def to_record(row: Row) -> Recorded:
    """A row of READ_COLUMNS as the record readers get: payloads parsed, time aware."""
    try:
        return Recorded(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            datetime.fromisoformat(row[6]),
            orjson.loads(row[7]),
            orjson.loads(row[8]),
            row[9],
            row[10],
            row[11],
        )
    except (ValueError, TypeError) as exc:  # orjson's JSONDecodeError is a ValueError
        raise StoreError(
            f"event at position {row[0]}: the stored record cannot be read ({exc})",
            hint="run `monitor verify`: the log was changed outside the monitor",
        ) from None


projection_state = sa.Table(
    "projection_state",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def state_field(
    dialect: str, name: str, state: sa.ColumnElement[str] = projection_state.c.state
) -> sa.ColumnElement[Any]:
    """A top-level field of a projection row's JSON state, read by the database (SQLite's
    json_extract gives numbers as numbers; PostgreSQL's ->> gives text).

    The field's name is written into the statement, not bound: an index on an expression
    serves only the queries that spell it alike (`outbox_index`)."""
    path = f'$."{name}"' if dialect == "sqlite" else name
    written = sa.literal_column("'" + path.replace("'", "''") + "'", sa.Text)
    if dialect == "sqlite":
        return sa.func.json_extract(state, written, type_=sa.Text)
    return sa.cast(state, postgresql.JSONB).op("->>", return_type=sa.Text)(written)


def outbox_index(dialect: sa.Dialect) -> str:
    """The outbox rows' index by status and test flag (no other projection's rows are in it):
    `monitor status` and `monitor alerts` count the alerts by status and pick the pending and
    abandoned ones, and the outbox keeps every alert ever queued (`EventStore.count_states_among`).
    Created when a writer opens the log, so that a log made before it gains it too."""
    state = sa.column("state", sa.Text)
    fields = [state_field(dialect.name, f, state) for f in ("status", "test")]
    spelled = [str(f.compile(dialect=dialect)) for f in fields]
    if dialect.name == "postgresql":  # an expression in a PostgreSQL index is parenthesized
        spelled = [f"({f})" for f in spelled]
    return (
        f"CREATE INDEX IF NOT EXISTS {OUTBOX_INDEX} ON projection_state "
        f"(name, {', '.join(spelled)}) WHERE name = 'outbox'"
    )


OUTBOX_INDEX = "ix_projection_state_outbox_status"

APPEND_ONLY = "events are append-only"

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""",
]

_PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
        END $$""",
    """CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION events_refuse_change()""",
    """CREATE OR REPLACE TRIGGER events_no_delete BEFORE DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION events_refuse_change()""",
    """CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()""",
]

BUSY_TIMEOUT_SECONDS = 30.0


def create_engine(url: str | sa.URL, *, read_only: bool = False) -> sa.Engine:
    """An engine whose write transactions serialize (see `begin_write`).

    `read_only` (see `monitor.store.readonly`, which makes the URL of a SQLite file): no
    pragma that writes, and on PostgreSQL every transaction READ ONLY.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options = {"postgresql_readonly": True} if read_only else {}
        return sa.create_engine(parsed, pool_pre_ping=True, execution_options=options)
    engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves so that writers can ask for BEGIN IMMEDIATE: it takes the
        # write lock up front, so two writers wait for each other instead of deadlocking on
        # the upgrade from a read lock (https://www.sqlite.org/lang_transaction.html).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        if not read_only:  # a writer's settings; changing the journal mode writes the file
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("store_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def begin_write(conn: sa.Connection, *, lock: bool = True) -> None:
    """Serialize writers: positions are max + 1 and the chain needs the previous hash.

    SQLite already holds the write lock (BEGIN IMMEDIATE). On PostgreSQL, EXCLUSIVE mode
    blocks other writers until commit but not readers; without it a reader following
    positions could pass a position that commits later.
    """
    if lock and conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")


NOT_A_LOG_HINT = "point database_url (or MONITOR_DATABASE_URL) at the monitor's event log"


def refuse_foreign(url: sa.URL) -> None:
    """Refuse a database that holds something else, before a writer's connection (whose
    journal mode alone changes a SQLite file) or a table is made in it."""
    engine = create_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            foreign = _foreign(conn)
    finally:
        engine.dispose()
    if foreign is not None:
        shown = redact_url(url.render_as_string(hide_password=False))
        raise WrongDatabaseError(
            f"database '{shown}': not a monitor event log ({foreign}); nothing was written to it",
            hint=NOT_A_LOG_HINT,
        )


def create_schema(engine: sa.Engine) -> None:
    """Create the tables and append-only triggers if missing; safe to race."""
    with engine.connect().execution_options(store_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # concurrent CREATE OR REPLACE of one function fails; one opener at a time
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72616101)")
            triggers = _PG_TRIGGERS
        else:
            triggers = _SQLITE_TRIGGERS
        metadata.create_all(conn, checkfirst=True)
        for ddl in triggers:
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql(outbox_index(conn.dialect))


# the tables a monitor makes (the working state's are `monitor.workstate`'s)
_OURS = frozenset({"events", "projection_state", "feed_state", "alert_work"})


def _foreign(conn: sa.Connection) -> str | None:
    """Why the database is another program's, or None: an `events` table that is not the
    log's, or (SQLite, whose file is one program's) tables and none of the monitor's."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "events" in tables:
        columns = {c["name"] for c in inspector.get_columns("events")}
        missing = [c.name for c in events.columns if c.name not in columns]
        return f"its events table has no {missing[0]} column" if missing else None
    if tables and not tables & _OURS and conn.dialect.name == "sqlite":
        shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
        return f"it holds other tables ({shown}) and no events table"
    return None


def missing_folder(engine: sa.Engine) -> str:
    """' (its folder … does not exist)' for a SQLite file whose folder is missing (or is a file),
    which SQLite reports only as 'unable to open database file'. The folder is not made: a
    mistyped path should not leave folders behind."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return ""
    folder = Path(database).parent
    if folder.is_dir():
        return ""
    return (
        f" ({folder} is not a folder)"
        if folder.exists()
        else f" (its folder {folder} does not exist)"
    )

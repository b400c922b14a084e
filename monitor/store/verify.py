"""Walking the hash chain: the first bad position, and a tail checked against a known head."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import sqlalchemy as sa

from monitor.store.records import GENESIS, VerifyReport, chain_hash
from monitor.store.schema import READ_COLUMNS, Row, events


def _rows(engine: sa.Engine, batch: int) -> Iterator[Row]:
    cursor = 0
    while True:
        query = sa.select(*READ_COLUMNS).where(events.c.position > cursor)
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(events.c.position).limit(batch)).all()
        if not rows:
            return
        yield from rows
        cursor = rows[-1].position


def _problem(row: Row, expected: int, prev: str) -> str | None:
    if row.position != expected:
        return f"position {expected}: missing (the next record is at {row.position})"
    if row.prev_hash != prev:
        return f"position {expected}: previous hash does not match the record before it"
    try:
        data, meta = orjson.loads(row.data), orjson.loads(row.meta)
    except orjson.JSONDecodeError:
        return f"position {expected}: data or meta is not valid JSON"
    digest = chain_hash(
        prev,
        position=row.position,
        event_id=row.event_id,
        stream=row.stream,
        stream_version=row.stream_version,
        type=row.type,
        schema_version=row.schema_version,
        recorded_at=row.recorded_at,
        data=data,
        meta=meta,
        dedupe_key=row.dedupe_key,
    )
    if digest != row.hash:
        return f"position {expected}: hash does not match its record"
    return None


def verify(
    engine: sa.Engine, *, expect: tuple[int, str] | None = None, batch: int = 5000
) -> VerifyReport:
    """Recompute every hash from position 1; with `expect`, also check that known head."""
    checked, prev = 0, GENESIS
    found_expected: str | None = None
    for row in _rows(engine, batch):
        problem = _problem(row, checked + 1, prev)
        if problem is not None:
            return VerifyReport(False, checked, _head(checked, prev), checked + 1, problem)
        checked, prev = row.position, row.hash
        if expect is not None and row.position == expect[0]:
            found_expected = row.hash
    head = _head(checked, prev)
    if expect is not None:
        position, digest = expect
        if found_expected is None:
            problem = f"position {position}: missing (the log ends at {checked})"
            return VerifyReport(False, checked, head, position, problem)
        if found_expected != digest:
            problem = f"position {position}: hash {found_expected} differs from expected {digest}"
            return VerifyReport(False, checked, head, position, problem)
    return VerifyReport(True, checked, head, None, None)


def _head(position: int, digest: str) -> tuple[int, str] | None:
    return None if position == 0 else (position, digest)

"""The alert queue beside the log: which alert is due when, and who is delivering it.

Working state like the feed schedules (`workstate`): `monitor rebuild` restores it from the
outbox projection. Claims lease alerts to one dispatcher at a time (`FOR UPDATE SKIP LOCKED`
on PostgreSQL), so several daemons share the deliveries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.store import EventStore
from monitor.workstate import alert_work, work_tx


def queue_alert(
    conn: sa.Connection,
    alert_id: str,
    channel_id: str,
    due_at: float,
    *,
    leased_to: tuple[str, float] | None = None,
) -> None:
    """Make an alert due at `due_at`; `leased_to` (owner, expiry) holds it for a caller that
    delivers it at once, so no dispatcher claims it meanwhile."""
    owner, expires = leased_to or (None, None)
    exists = conn.execute(
        sa.select(alert_work.c.alert_id).where(alert_work.c.alert_id == alert_id)
    ).first()
    if exists is None:
        conn.execute(
            alert_work.insert().values(
                alert_id=alert_id,
                channel_id=channel_id,
                due_at=due_at,
                lease_owner=owner,
                lease_expires=expires,
            )
        )
    else:
        conn.execute(
            alert_work.update()
            .where(alert_work.c.alert_id == alert_id)
            .values(due_at=due_at, lease_owner=owner, lease_expires=expires)
        )


def claim_alerts(
    store: EventStore,
    *,
    owner: str,
    now: float,
    lease: float,
    limit: int,
    skip_channels: Collection[str] = (),
    due_by: float | None = None,
) -> list[tuple[str, str]]:
    """Lease up to `limit` alerts due by `due_by` (default `now`): (alert id, channel id).

    The lease runs from `now`: `run --once` claims batch after batch of what was due when it
    started, and a lease counted from then would have run out after LEASE_SECONDS of batches.
    Alerts of `skip_channels` (those whose secret this dispatcher lacks) are left unclaimed and
    due, for a dispatcher that has it, or for this one once it has been restarted with it.
    """
    c = alert_work.c
    free = sa.or_(c.lease_expires.is_(None), c.lease_expires < now)
    wanted = [c.due_at <= (now if due_by is None else due_by), free]
    if skip_channels:
        wanted.append(c.channel_id.not_in(sorted(skip_channels)))
    query = (
        sa.select(c.alert_id, c.channel_id)
        .where(*wanted)
        .order_by(c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with work_tx(store) as conn:
        rows = [(r.alert_id, r.channel_id) for r in conn.execute(query)]
        if rows:
            conn.execute(
                alert_work.update()
                .where(c.alert_id.in_([a for a, _ in rows]))
                .values(lease_owner=owner, lease_expires=now + lease)
            )
    return rows


def finish_alert(conn: sa.Connection, alert_id: str, due_at: float | None) -> None:
    """After an attempt: the next due time, or None when delivered or abandoned."""
    conn.execute(
        alert_work.update()
        .where(alert_work.c.alert_id == alert_id)
        .values(due_at=due_at, lease_owner=None, lease_expires=None)
    )


def restore_alerts(conn: sa.Connection, outbox_rows: Iterable[dict[str, Any]]) -> None:
    """Rebuild the alert queue from the outbox projection. The leases of alerts still pending
    are kept: a daemon may be sending one while `monitor rebuild` runs beside it, and another
    dispatcher must not claim it meanwhile."""
    c = alert_work.c
    leases = {
        r.alert_id: (r.lease_owner, r.lease_expires)
        for r in conn.execute(sa.select(c.alert_id, c.lease_owner, c.lease_expires))
    }
    conn.execute(alert_work.delete())
    for row in outbox_rows:
        pending = row.get("status") == "pending"
        due = row.get("due_at") if pending else None
        owner, expires = leases.get(row["alert_id"], (None, None)) if pending else (None, None)
        conn.execute(
            alert_work.insert().values(
                alert_id=row["alert_id"],
                channel_id=row["channel_id"],
                due_at=datetime.fromisoformat(due).timestamp() if due else None,
                lease_owner=owner,
                lease_expires=expires,
            )
        )

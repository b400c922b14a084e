"""The log survives its writer being killed with SIGKILL at random moments (test 7)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.store import EventStore

ROOT = Path(__file__).resolve().parent.parent
KILLS = 15


def run_and_kill(url: str, run: str, rng: random.Random) -> list[tuple[str, int, int]]:
    """Start the appending child, let it commit a little, SIGKILL it; return what it acked."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store_scripts.append_loop", url, run],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # it is past start-up and mid-loop from here on
    assert first, child.stderr.read() if child.stderr else "child printed nothing"
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    acked = []
    for line in [first, *rest.splitlines()]:
        parts = line.split()
        if len(parts) == 3:  # a line cut short by the kill was never acknowledged
            acked.append((parts[0], int(parts[1]), int(parts[2])))
    return acked


@pytest.mark.slow
def test_sigkilled_writers_lose_no_acknowledged_event_and_no_batch_half(db_url: str) -> None:
    rng = random.Random(7)
    EventStore.open(db_url).close()
    acked: list[tuple[str, int, int]] = []
    for n in range(KILLS):
        acked.extend(run_and_kill(db_url, f"r{n}", rng))

    store = EventStore.open(db_url)
    if store.dialect == "sqlite":
        path = sa.make_url(db_url).database
        assert path is not None
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    records = list(store.read())
    assert [r.position for r in records] == list(range(1, len(records) + 1))
    by_position = {r.position: r for r in records}
    sizes = Counter(r.meta["batch"] for r in records)
    declared = {r.meta["batch"]: r.meta["size"] for r in records}
    assert dict(sizes) == declared  # every batch in the log is whole
    for batch, first, last in acked:
        assert all(by_position[p].meta["batch"] == batch for p in range(first, last + 1))
        assert last - first + 1 == sizes[batch]
    assert len(acked) >= KILLS
    report = store.verify()
    assert report.ok, report.problem
    store.close()

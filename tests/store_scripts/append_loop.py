"""Append batches forever, printing each committed position range; the crash test kills it.

Usage: python -m tests.store_scripts.append_loop DATABASE_URL RUN_ID
Each event's meta carries its batch id and the batch's size, so a partial batch shows.
"""

from __future__ import annotations

import random
import sys

from monitor.events import ItemSighted
from monitor.store import EventStore, NewEvent


def main(url: str, run: str) -> None:
    store = EventStore.open(url)
    rng = random.Random(run)
    batch = 0
    while True:
        size = rng.randint(1, 40)
        name = f"{run}-{batch}"
        done = store.append(
            [
                NewEvent(
                    ItemSighted(item_id=f"{name}-{i}", feed_id=f"f{i % 3}"),
                    meta={"batch": name, "size": size},
                    dedupe_key=f"item:{name}-{i}",
                )
                for i in range(size)
            ]
        )
        print(f"{name} {done[0].position} {done[-1].position}", flush=True)
        batch += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

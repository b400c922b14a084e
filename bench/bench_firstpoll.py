"""A first poll of real feeds: every news feed in tests/fixtures/feeds, all of its items new.

bench_poll's changed feed is one shape (20 short items, 2 matching a milestone). Real feeds run
from one item to two hundred and from 1 KiB to 200 KiB, and a poll's cost beside feedparser's
depends on that shape: each poll pays for its transaction, each item for its facts, while
feedparser's time grows with the bytes. Two figures, both against feedparser's own parse of
the same bodies with default options:

- end to end: a fresh log polls every feed once (claim → fetch from nginx → record), in
  ROUNDS rounds; the whole process's CPU, as bench_poll measures it;
- per feed, in process (`pollrecord.parse_and_record` on the body, no HTTP), each in a fresh
  log, REPS times: the spread, and which feeds cost more than 1.3×.

Run: `.venv/bin/python -m bench.bench_firstpoll` (about 15 s).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import bench_poll
from monitor import poll, pollrecord, workstate
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.fetch import FetchResult
from monitor.store import EventStore

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "feeds"
KINDS = ("en_news", "ja_corp", "ja_gov", "ja_news")  # the news feeds; the others test formats
ROUNDS = 6
REPS = 5


def real_feeds() -> list[Path]:
    return [path for kind in KINDS for path in sorted((FIXTURES / kind).iterdir())]


@dataclass(frozen=True)
class FeedCost:
    name: str
    ratio: float  # parse_and_record CPU ÷ feedparser alone
    items: int  # items discovered
    size: int  # bytes
    outcome: str


def per_feed(files: list[Path], reps: int = REPS) -> list[FeedCost]:
    """Each feed's first poll in process, `reps` times, each in a log of its own."""
    now = datetime.now(UTC)
    out = []
    for path in files:
        body = path.read_bytes()
        ref = cpu = 0.0
        for _ in range(reps):
            with tempfile.TemporaryDirectory() as tmp:
                config = load_config(bench_poll.write_config(Path(tmp), "http://x", "c", 1), {})
                store = EventStore.open(config.settings.database_url)
                workstate.ensure(store)
                workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(0))
                poller = poll.poller_for(config, store, None, "bench")  # type: ignore[arg-type]
                [work] = workstate.claim_feeds(
                    store,
                    owner="bench",
                    now=time.time(),
                    lease=60,
                    limit=1,
                    feed_ids={"f0"},
                    due_only=False,
                )
                fetched = FetchResult(work.url, 200, body, None, None, "application/xml", None)
                digest = hashlib.sha256(body).hexdigest()
                try:
                    ref += feedparser_cpu(body)
                    started = time.process_time()
                    report = pollrecord.parse_and_record(
                        poller, config.feed(work.feed_id), work, fetched, digest, now
                    )
                    cpu += time.process_time() - started
                finally:
                    poller.close()
                    store.close()
        name = f"{path.parent.name}/{path.name}"
        out.append(FeedCost(name, cpu / ref, report.discovered, len(body), report.outcome))
    return out


def feedparser_cpu(body: bytes) -> float:
    return bench_poll.feedparser_alone([body])


async def first_round(folder: Path, base: str, bodies: list[bytes]) -> tuple[float, float, int]:
    """(poll CPU s, feedparser CPU s, items discovered) of a fresh log's first poll of every
    feed under `base`/c/, beside feedparser alone on the same bodies just before."""
    config = load_config(bench_poll.write_config(folder, base, "c", len(bodies)), {})
    daemon = Daemon(config, {})
    await daemon.start()
    gc.freeze()  # as `Daemon.run_forever` does once it has started
    try:
        ref = sum(feedparser_cpu(body) for body in bodies)
        bench_poll.make_due(daemon, None)
        started = time.process_time()
        await bench_poll.drain(daemon)
        cpu = time.process_time() - started
        found = sum(r.type == "ItemDiscovered" for r in daemon.store.read())
    finally:
        await daemon.close()
    return cpu, ref, found


def end_to_end(tmp: Path, files: list[Path], rounds: int = ROUNDS) -> list[tuple[float, int]]:
    """(poll CPU ÷ feedparser CPU, items discovered) of each round, nginx serving the feeds."""
    root = tmp / "www"
    (root / "c").mkdir(parents=True)
    bodies = []
    for n, path in enumerate(files):
        shutil.copyfile(path, root / "c" / f"{n}.xml")
        bodies.append(path.read_bytes())
    server, base, _ = bench_poll.start_server(root)
    try:
        out = []
        for r in range(rounds):
            (tmp / f"log{r}").mkdir()
            cpu, ref, found = asyncio.run(first_round(tmp / f"log{r}", base, bodies))
            out.append((cpu / ref, found))
        return out
    finally:
        server.terminate()
        server.wait()


def run() -> None:
    logging.disable(logging.WARNING)  # a bozo feed's warning is logged at every poll
    try:
        per_feed(real_feeds()[:1], reps=1)  # warm up: the first poll pays for lazy imports
        gc.collect()
        gc.freeze()  # as the daemon does: a full collection would walk every module's objects
        costs = per_feed(real_feeds())
        changed = [c for c in costs if c.outcome == "new"]
        files = [FIXTURES / c.name for c in changed]
        with tempfile.TemporaryDirectory() as tmp:
            rounds = end_to_end(Path(tmp), files)
    finally:
        logging.disable(logging.NOTSET)
    items = sum(c.items for c in changed)
    if any(found != items for _, found in rounds):  # a feed the server did not serve, say
        found = [f for _, f in rounds]
        raise SystemExit(f"bench_firstpoll: the rounds discovered {found} items, not {items} each")
    print(
        f"{len(changed)} real news feeds ({items} items; {len(costs) - len(changed)} failing "
        f"left out), a fresh log each round, every item new"
    )
    ratios = sorted(r for r, _ in rounds)
    every = ", ".join(f"{r:.2f}" for r in ratios)
    median = statistics.median(ratios)
    bench_poll.row(
        f"first poll of every feed, end to end ({every})", f"{median:.2f}×", "≤ 1.3×", median <= 1.3
    )
    spread = sorted(c.ratio for c in changed)
    over = [c for c in changed if c.ratio > 1.3]
    bench_poll.row("  … per feed, in process: median", f"{statistics.median(spread):.2f}×")
    bench_poll.row("  … per feed: lowest / highest", f"{spread[0]:.2f}× / {spread[-1]:.2f}×")
    bench_poll.row("  … feeds above 1.3×", f"{len(over)} of {len(changed)}")
    for c in sorted(over, key=lambda c: -c.ratio):
        print(f"      {c.ratio:.2f}×  {c.items:3d} items  {c.size / 1024:5.1f} KiB  {c.name}")


if __name__ == "__main__":
    run()

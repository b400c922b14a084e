"""The daemon's poll path end to end (claim → fetch → record) beside raw aiohttp, CPU, parse, RSS.

Run: `.venv/bin/python -m bench.bench_poll` (about two minutes). The server is nginx when it is
installed (static files, real ETags, 304 to If-None-Match), else an aiohttp server; either runs
in another process, so the process CPU time measured here is the client's alone. The poll path
is the real one: `Daemon` ticks claiming leases on SQLite (WAL, synchronous=FULL) in a temp dir,
`poll_feed` through the aiohttp-backed `Fetcher`, and every transaction the daemon commits.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import feedparser
import sqlalchemy as sa

from bench.peak import peak_rss_mib
from monitor import feedtuning, poll, workstate
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.fetch import Fetcher, FetchLimits

FEEDS = 5000  # unchanged (304) polls
CHANGED = 150  # changed polls: 20 new items each, then one new item beside 20 known
LOGS = 5  # fresh logs the changed rows take the median of: one log's ratio swings by ±0.1
RSS_FEEDS = 10_000
CONCURRENCY = 20
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SMALL = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"
MILESTONE = """
[aliases]
noetra = ["Noetra", "ノエトラ", "日本AI基盤モデル開発"]

[[milestones]]
id = "training-start"
title = "Noetra starts training its first foundation model"
expected_by = 2027-03-31

[milestones.match]
all = [["@noetra"], ["training", "train*", "学習"]]
none = ["SoftBank Hawks", "ホークス"]

[[milestones.setback]]
all = [["@noetra"], ["delay*", "postpone*", "延期", "遅れ"]]
"""


def feed_body(n: int, items: int, first: int = 0) -> bytes:
    """An RSS 2.0 body of `items` distinct items; one in ten is on the watched story."""
    now = datetime(2026, 8, 1, tzinfo=UTC)
    head = (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Feed {n}</title><link>https://news{n}.example.org/</link>"
    )
    parts = [head]
    for k in range(first, first + items):
        title = (
            f"Noetra 基盤モデルの学習を開始 ({n}-{k})"
            if k % 10 == 0
            else f"地域の話題 {n}-{k}: a story about harbours, weather and markets"
        )
        text = (
            "<p>記事の概要です。"
            + "市場と天候の動きを伝える。" * 8
            + f" <b>{k}</b> "
            + "Details follow in the full article. " * 4
            + "</p>"
        )
        parts.append(
            f"<item><title>{title}</title><link>https://news{n}.example.org/a/{k}"
            f"</link><guid isPermaLink='false'>n{n}-{k}</guid><description><![CDATA["
            f"{text}]]></description><pubDate>"
            f"{format_datetime(now - timedelta(minutes=k))}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def write_site(root: Path) -> None:
    (root / "f").mkdir(parents=True)
    (root / "c").mkdir()
    for n in range(RSS_FEEDS):
        (root / "f" / f"{n}.xml").write_bytes(SMALL)
    for n in range(CHANGED):
        (root / "c" / f"{n}.xml").write_bytes(feed_body(n, 20))


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """nginx on a free port when installed, else this module's aiohttp file server."""
    if NGINX is None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_poll", "--serve", str(root)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        return proc, f"http://127.0.0.1:{proc.stdout.readline().decode().strip()}", "aiohttp"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.chmod(root.parent, 0o755)  # nginx workers run as nobody
    os.chmod(root, 0o755)
    conf = root / "nginx.conf"
    conf.write_text(
        f"worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; default_type application/rss+xml;"
        f" client_body_temp_path {root}/tmp; keepalive_requests 1000000;\n"
        f"  server {{ listen 127.0.0.1:{port} backlog=1024; root {root}; }} }}\n"
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}", "nginx"


def serve(root: Path) -> None:
    """The fallback server: files under `root`, a weak ETag from mtime and size, 304s."""
    from aiohttp import web

    async def main() -> None:
        app = web.Application()
        app.router.add_static("/", root)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def raw_pass(urls: list[str], etags: dict[str, str] | None) -> dict[str, str]:
    """GET every URL with raw aiohttp, 20 at a time; returns each URL's ETag."""
    gate, found = asyncio.Semaphore(CONCURRENCY), {}
    async with aiohttp.ClientSession() as session:

        async def one(url: str) -> None:
            headers = {"If-None-Match": etags[url]} if etags else {}
            async with gate, session.get(url, headers=headers) as response:
                await response.read()
                found[url] = response.headers.get("ETag", "")

        await asyncio.gather(*(one(u) for u in urls))
    return found


def write_config(folder: Path, base: str, path: str, count: int) -> Path:
    lines = [
        "[settings]",
        f'database_url = "sqlite:///{folder / "events.db"}"',
        'poll_interval = "30m"',
        "allow_private_networks = true",
        f"concurrency = {CONCURRENCY}",
        f"per_host_concurrency = {CONCURRENCY}",
        "",
    ]
    for n in range(count):
        lines += ["[[feeds]]", f'id = "f{n}"', f'url = "{base}/{path}/{n}.xml"', ""]
    config = folder / "feeds.toml"
    config.write_text("\n".join(lines) + MILESTONE, encoding="utf-8")
    return config


def make_due(daemon: Daemon, etags: dict[str, str] | None) -> None:
    """Every feed due now; with `etags`, validators as a previous poll left them."""
    c = workstate.feed_state.c
    with daemon.store.engine.begin() as conn:
        if etags is None:
            conn.execute(workstate.feed_state.update().values(next_poll_at=0))
            return
        stmt = (
            workstate.feed_state.update()
            .where(c.url == sa.bindparam("u"))
            .values(etag=sa.bindparam("e"), next_poll_at=0)
        )
        conn.execute(stmt, [{"u": u, "e": e} for u, e in etags.items()])


async def drain(daemon: Daemon) -> None:
    """Tick back to back, as a scheduler with work piling up would, until nothing is left.

    A tick stops claiming after most of its interval, so a round longer than a tick needs
    several: the round ends when no poll is in flight and no feed is due any more.
    """
    while True:
        await daemon.poll_tick()
        if daemon.inflight:
            await asyncio.wait(set(daemon.inflight))
        elif not due(daemon):
            break
    await poll.flush_unchanged(daemon.poller)  # polls that ended during the last tick's write


def due(daemon: Daemon) -> int:
    """How many feeds are due and not leased."""
    c, now = workstate.feed_state.c, time.time()
    free = sa.or_(c.lease_expires.is_(None), c.lease_expires < now)
    query = sa.select(sa.func.count()).where(c.next_poll_at <= now, free)
    with daemon.store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def poll_round(
    folder: Path,
    base: str,
    path: str,
    count: int,
    etags: dict[str, str] | None,
    rounds: Sequence[Callable[[], None]] = (),
) -> list[tuple[float, float, int]]:
    """(wall s, CPU s, polls) of each round of the daemon polling every feed once."""
    config = load_config(write_config(folder, base, path, count), {})
    daemon = Daemon(config, {})
    await daemon.start()
    gc.freeze()  # as `Daemon.run_forever` does once it has started
    out = []
    try:
        for prepare in [lambda: None, *rounds]:
            prepare()
            make_due(daemon, etags)
            before = sum(r.polls for r in workstate.feed_rows(daemon.store).values())
            wall, cpu = time.perf_counter(), time.process_time()
            await drain(daemon)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            polls = sum(r.polls for r in workstate.feed_rows(daemon.store).values()) - before
            out.append((wall, cpu, polls))
    finally:
        await daemon.close()
    return out


def feedparser_alone(bodies: list[bytes]) -> float:
    """CPU seconds feedparser itself takes over `bodies`, as it ships, default options."""
    with feedtuning.as_shipped():
        cpu = time.process_time()
        for body in bodies:
            feedparser.parse(io.BytesIO(body))
        return time.process_time() - cpu


def rss_child(base: str, etag_file: str) -> None:
    """A daemon with RSS_FEEDS feeds that polls each once (304); prints its peak RSS in MiB."""
    etags = json.loads(Path(etag_file).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        [(_, _, polls)] = asyncio.run(poll_round(Path(tmp), base, "f", RSS_FEEDS, etags))
    print(f"{peak_rss_mib():.1f} {polls}")


def row(label: str, value: str, goal: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else ("met" if met else "NOT MET")
    print(f"  {label:<46} {value:>12}  {goal:<22} {verdict}".rstrip())


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "www"
        write_site(root)
        server, base, kind = start_server(root)
        try:
            report(Path(tmp), base, kind, root)
        finally:
            server.terminate()
            server.wait()


def timed(work: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """The median (wall s, CPU s) of `repeat` runs: loopback figures vary run to run."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return sorted(runs)[repeat // 2]


async def fetcher_pass(urls: list[str], etags: dict[str, str]) -> None:
    """The daemon's HTTP client alone: the ceiling of the poll path."""
    limits = FetchLimits(allow_private=True, concurrency=CONCURRENCY, per_host=CONCURRENCY)
    async with Fetcher(limits) as fetcher:
        await asyncio.gather(*(fetcher.fetch(u, etag=etags[u]) for u in urls))


def report(tmp: Path, base: str, kind: str, root: Path) -> None:
    urls = [f"{base}/f/{n}.xml" for n in range(RSS_FEEDS)]
    print(f"{FEEDS} feeds, {CONCURRENCY} at a time, loopback {kind}; SQLite WAL synchronous=FULL")
    print(f"  (figures are medians of 3 runs; the changed polls', of {LOGS} fresh logs)")
    etags = asyncio.run(raw_pass(urls, None))
    raw_wall, raw_cpu = timed(lambda: asyncio.run(raw_pass(urls[:FEEDS], etags)))
    raw_rate = FEEDS / raw_wall
    row("raw aiohttp, 304", f"{raw_rate:.0f}/s", "(reference)")
    row("  … CPU per 304", f"{raw_cpu * 1000 / FEEDS:.3f} ms")
    f_wall, f_cpu = timed(lambda: asyncio.run(fetcher_pass(urls[:FEEDS], etags)))
    row("Fetcher alone (httpx over aiohttp), 304", f"{FEEDS / f_wall:.0f}/s", "(its ceiling)")
    row("  … CPU per 304", f"{f_cpu * 1000 / FEEDS:.3f} ms")
    (tmp / "u").mkdir()
    again = [lambda: None] * 2
    rounds = asyncio.run(poll_round(tmp / "u", base, "f", FEEDS, etags, again))
    wall, cpu, polls = sorted(rounds)[1]
    rate = polls / wall
    row("daemon poll path, unchanged (304)", f"{rate:.0f}/s", "≥ 2000 feeds/s", rate >= 2000)
    row("  … share of raw aiohttp", f"{rate / raw_rate:.0%}", "≥ 30 %", rate >= 0.3 * raw_rate)
    per_poll = cpu / polls
    row("  … CPU per unchanged poll", f"{per_poll * 1000:.3f} ms", "≤ 0.5 ms", per_poll <= 5e-4)
    changed_rows(tmp, base, root)
    etag_file = tmp / "etags.json"
    etag_file.write_text(json.dumps(etags))
    command = [sys.executable, "-m", "bench.bench_poll", "--rss", base, str(etag_file)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    peak, done = child.stdout.split()
    label = f"daemon peak RSS, {RSS_FEEDS} feeds ({done} polled)"
    row(label, f"{float(peak):.0f} MiB", "≤ 150 MiB", float(peak) <= 150)


def changed_rows(tmp: Path, base: str, root: Path) -> None:
    """Changed polls beside feedparser alone on the same bodies, in LOGS fresh logs; the
    figures are the medians. The two are measured in turns of PAIR feeds (see paired_round):
    this machine's speed drifts by a third from minute to minute."""
    ratios: dict[str, list[tuple[float, float, float]]] = {"20 new items": [], "1 new of 21": []}
    for rep in range(LOGS):
        (tmp / f"c{rep}").mkdir()
        runs = asyncio.run(changed_log(tmp / f"c{rep}", base, root))
        for label, (poll_cpu, ref_cpu, polls) in zip(ratios, runs, strict=True):
            ratios[label].append((poll_cpu / ref_cpu, poll_cpu / polls, ref_cpu / polls))
    for label, runs in ratios.items():
        ratio, per_poll, per_ref = sorted(runs)[LOGS // 2]
        every = f"logs {min(runs)[0]:.2f}–{max(runs)[0]:.2f}"
        row(f"feedparser.parse alone, body of {label}", f"{per_ref * 1000:.2f} ms", "(reference)")
        row(f"changed poll, {label}: CPU", f"{per_poll * 1000:.2f} ms")
        row(f"  … ÷ feedparser alone ({every})", f"{ratio:.2f}×", "≤ 1.3×", ratio <= 1.3)


PAIR = 25  # feeds a turn of paired_round polls


async def changed_log(folder: Path, base: str, root: Path) -> list[tuple[float, float, int]]:
    """A fresh log's first poll of every changed feed (20 new items each), then a poll after
    one more item was published (1 new beside 20 known); each as paired_round measures it."""
    for n in range(CHANGED):
        (root / "c" / f"{n}.xml").write_bytes(feed_body(n, 20))
    config = load_config(write_config(folder, base, "c", CHANGED), {})
    daemon = Daemon(config, {})
    await daemon.start()
    gc.freeze()  # as `Daemon.run_forever` does once it has started
    with daemon.store.engine.begin() as conn:  # none due but the turn's (start spreads some)
        conn.execute(workstate.feed_state.update().values(next_poll_at=time.time() + 86400))
    try:
        first = await paired_round(daemon, root)
        for n in range(CHANGED):
            (root / "c" / f"{n}.xml").write_bytes(feed_body(n, 21, first=-1))
        return [first, await paired_round(daemon, root)]
    finally:
        await daemon.close()


async def paired_round(daemon: Daemon, root: Path) -> tuple[float, float, int]:
    """(poll CPU s, feedparser CPU s, polls) of the daemon polling every changed feed once.

    Turn by turn, feedparser alone parses PAIR feeds' bodies as they are served, then the
    daemon polls those feeds (claim → fetch → record): the two measurements are seconds
    apart, so the machine's drift does not fall between them.
    """
    c = workstate.feed_state.c
    poll_cpu = ref_cpu = 0.0
    before = sum(r.polls for r in workstate.feed_rows(daemon.store).values())
    for start in range(0, CHANGED, PAIR):
        turn = range(start, min(start + PAIR, CHANGED))
        ref_cpu += feedparser_alone([(root / "c" / f"{n}.xml").read_bytes() for n in turn])
        with daemon.store.engine.begin() as conn:
            mine = c.feed_id.in_([f"f{n}" for n in turn])
            conn.execute(workstate.feed_state.update().where(mine).values(next_poll_at=0))
        cpu = time.process_time()
        await drain(daemon)
        poll_cpu += time.process_time() - cpu
    polls = sum(r.polls for r in workstate.feed_rows(daemon.store).values()) - before
    return poll_cpu, ref_cpu, polls


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve(Path(sys.argv[2]))
    elif "--rss" in sys.argv:
        rss_child(sys.argv[2], sys.argv[3])
    else:
        run()

"""Feeds per second and CPU per fetch for each HTTP client, against a loopback server in another process.

Run: `.venv/bin/python -m bench.bench_fetch`. The server (aiohttp, no nginx here) serves FEEDS
distinct feed URLs, each with its own ETag, and answers 304 to a matching If-None-Match.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from monitor.fetch import Fetcher, FetchLimits

FEEDS = 5000
CONCURRENCY = 20
BODY = (
    b"<rss version='2.0'><channel><title>bench</title>"
    + b"<item>x</item>" * 100
    + b"</channel></rss>"
)

Get = Callable[[str, str | None], Awaitable[int]]


def serve() -> None:
    from aiohttp import web

    async def feed(request: web.Request) -> web.Response:
        tag = f'"{request.match_info["n"]}"'
        if request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        return web.Response(body=BODY, headers={"ETag": tag, "Content-Type": "application/rss+xml"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def drive(get: Get, base: str, conditional: bool) -> int:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> int:
        async with gate:
            return await get(f"{base}/feed/{n}", f'"{n}"' if conditional else None)

    statuses = await asyncio.gather(*(one(n) for n in range(FEEDS)))
    expected = 304 if conditional else 200
    return sum(status == expected for status in statuses)


def with_httpx(client: httpx.AsyncClient) -> Get:
    async def get(url: str, etag: str | None) -> int:
        headers = {"If-None-Match": etag} if etag else {}
        response = await client.get(url, headers=headers)
        return response.status_code

    return get


async def run_httpx(transport: httpx.AsyncBaseTransport | None, base: str, cond: bool) -> int:
    async with httpx.AsyncClient(transport=transport) as client:
        return await drive(with_httpx(client), base, cond)


async def run_aiohttp(base: str, cond: bool) -> int:
    async with aiohttp.ClientSession() as session:

        async def get(url: str, etag: str | None) -> int:
            headers = {"If-None-Match": etag} if etag else {}
            async with session.get(url, headers=headers) as response:
                await response.read()
                return response.status

        return await drive(get, base, cond)


async def run_fetcher(kind: str, base: str, cond: bool) -> int:
    # One host here, so the per-host limit is lifted to measure the client, not the limit.
    limits = FetchLimits(allow_private=True, concurrency=CONCURRENCY, per_host=CONCURRENCY)
    async with Fetcher(limits, transport=kind) as fetcher:

        async def get(url: str, etag: str | None) -> int:
            return (await fetcher.fetch(url, etag=etag)).status

        return await drive(get, base, cond)


def run() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_fetch", "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        clients: list[tuple[str, Callable[[bool], Coroutine[Any, Any, int]]]] = [
            ("httpx, default transport", lambda c: run_httpx(None, base, c)),
            ("httpx, httpx_aiohttp transport", lambda c: run_httpx(AiohttpTransport(), base, c)),
            ("raw aiohttp", lambda c: run_aiohttp(base, c)),
            ("Fetcher(transport='httpcore')", lambda c: run_fetcher("httpcore", base, c)),
            ("Fetcher(transport='aiohttp')", lambda c: run_fetcher("aiohttp", base, c)),
        ]
        print(f"{FEEDS} distinct feeds, {CONCURRENCY} at a time, loopback aiohttp server")
        print(f"{'client':34} {'answer':>6} {'feeds/s':>9} {'CPU ms/fetch':>13} {'ok':>6}")
        for name, make in clients:
            for conditional in (False, True):
                wall, cpu = time.perf_counter(), time.process_time()
                ok = asyncio.run(make(conditional))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                answer = "304" if conditional else "200"
                print(
                    f"{name:34} {answer:>6} {FEEDS / wall:9.0f} {cpu * 1000 / FEEDS:13.3f} {ok:6d}"
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    else:
        run()

"""A real HTTP feed server on loopback whose routes tests set: statuses, validators, slow bodies, bombs.

In a test:  `from tests.feedserver import FeedServer, feed_server`  (the fixture yields a started
server). From another process:  `python -m tests.feedserver --port N --routes routes.json`, where
the JSON maps paths to `route` keyword arguments (`body` as text).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from aiohttp import web


@dataclass(frozen=True)
class Route:
    """What the server answers on one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before the status line
    trickle: float | None = None  # body bytes per second
    endless: bool = False  # repeat the body forever
    gzip_bomb: bool = False  # 1 GiB of zeros, gzip-compressed to about 1 MiB
    redirect_to: str | None = None


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros as one valid gzip member, built from one repeated fully-flushed block."""
    block, count = bytes(1 << 20), 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # After a full flush the compressor forgets its history, so every block compresses alike.
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (len(block) * count) & 0xFFFFFFFF)
    return header + piece * count + compressor.flush() + trailer


class FeedServer:
    """An aiohttp server in a background thread; each request runs on its own task."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, Route] = {}
        self._hits: Counter[str] = Counter()
        self._seen: dict[str, list[dict[str, str]]] = {}
        self._times: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._wanted_port = port
        self.host = host  # an IPv4 loopback address: Linux answers on all of 127.0.0.0/8
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def route(self, path: str, **options: Any) -> None:
        """Set what `path` answers; options are the fields of Route."""
        with self._lock:
            self._routes[path] = Route(**options)

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits[path]

    def requests(self, path: str) -> list[dict[str, str]]:
        """The headers of every request to `path`, oldest first."""
        with self._lock:
            return list(self._seen.get(path, []))

    def times(self, path: str) -> list[float]:
        """When each request to `path` arrived (time.monotonic()), oldest first."""
        with self._lock:
            return list(self._times.get(path, []))

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancel hanging handlers at shutdown instead of waiting for them.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._wanted_port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self._hits[path] += 1
            self._seen.setdefault(path, []).append(dict(request.headers))
            self._times.setdefault(path, []).append(time.monotonic())
            route = self._routes.get(path)
        if route is None:
            return web.Response(status=404, text="no such route")
        if route.delay:
            await asyncio.sleep(route.delay)
        headers = {"Content-Type": "application/rss+xml", **route.headers}
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if _not_modified(route, request):
            return web.Response(status=304, headers=headers)
        if route.redirect_to is not None:
            status = route.status if 300 <= route.status < 400 else 302
            return web.Response(status=status, headers={**headers, "Location": route.redirect_to})
        return await _stream(request, route, headers)


def _not_modified(route: Route, request: web.Request) -> bool:
    tag = request.headers.get("If-None-Match")
    if route.etag and tag is not None:
        return tag.strip() == "*" or route.etag in (t.strip() for t in tag.split(","))
    since = request.headers.get("If-Modified-Since")
    return bool(route.last_modified and since == route.last_modified)


async def _stream(
    request: web.Request, route: Route, headers: dict[str, str]
) -> web.StreamResponse:
    body = route.body
    if route.gzip_bomb:
        body = gzip_bomb()
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(status=route.status, headers=headers)
    if not (route.endless or route.trickle):
        response.content_length = len(body)
    await response.prepare(request)
    step = 1 if route.trickle else 64 * 1024
    try:
        while True:
            for start in range(0, len(body), step):
                await response.write(body[start : start + step])
                if route.trickle:
                    await asyncio.sleep(step / route.trickle)
            if not route.endless or not body:
                break
        await response.write_eof()
    except ConnectionError:
        pass  # the client stopped reading, as a capped or timed-out client should
    return response


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started FeedServer, stopped after the test."""
    with FeedServer() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--routes", type=Path, help="JSON object: path -> route options")
    args = parser.parse_args()
    server = FeedServer(args.port).start()
    routes = json.loads(args.routes.read_text()) if args.routes else {}
    for path, options in routes.items():
        if isinstance(options.get("body"), str):
            options["body"] = options["body"].encode()
        server.route(path, **options)
    print(f"listening on {server.url('/')}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()

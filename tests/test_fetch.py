"""The fetcher against real servers on 127.0.0.1, run through both transports."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import re
import socket
import struct
import threading
import tomllib
import tracemalloc
import zlib
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import brotli
import httpx
import pytest

from monitor.connect import guarded_transport
from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchLimits, FetchResult, guarded_client, retry_after
from monitor.netguard import IPAddress, is_forbidden
from tests.feedserver import FeedServer, gzip_bomb
from tests.kit import closed_port

T = TypeVar("T")
RSS = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
OPEN = FetchLimits(allow_private=True, deadline=10.0)


@pytest.fixture(params=["aiohttp", "httpcore"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fetch(url: str, transport: str, limits: FetchLimits = OPEN, **kw: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(limits, transport=transport) as fetcher:
            return await fetcher.fetch(url, **kw)

    return run(go())


def failure(url: str, transport: str, limits: FetchLimits = OPEN, **kw: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, transport, limits, **kw)
    return caught.value


def test_200_returns_body_and_validators(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=RSS, etag='"v1"', last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    result = fetch(feed_server.url("/f"), transport)
    assert (result.status, result.body, result.etag) == (200, RSS, '"v1"')
    assert result.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert result.content_type == "application/rss+xml"
    assert (result.url, result.moved_to) == (feed_server.url("/f"), None)


def test_etag_is_sent_as_if_none_match_and_304_has_no_body(
    feed_server: FeedServer, transport: str
) -> None:
    feed_server.route("/f", body=RSS, etag='"v1"')
    result = fetch(feed_server.url("/f"), transport, etag='"v1"')
    assert (result.status, result.body) == (304, None)
    assert feed_server.requests("/f")[0]["If-None-Match"] == '"v1"'


def test_each_hop_names_its_own_host_and_sends_no_body(
    feed_server: FeedServer, transport: str
) -> None:
    with FeedServer() as other:
        other.route("/new", body=RSS)
        feed_server.route("/old", status=302, redirect_to=other.url("/new"))
        assert fetch(feed_server.url("/old"), transport).body == RSS
        first, second = feed_server.requests("/old")[0], other.requests("/new")[0]
    assert first["Host"] == feed_server.url("").split("//")[1]
    assert second["Host"] == other.url("").split("//")[1] != first["Host"]
    for sent in (first, second):
        assert "Transfer-Encoding" not in sent
        assert sent.get("Content-Length", "0") == "0"


def test_last_modified_is_sent_as_if_modified_since(
    feed_server: FeedServer, transport: str
) -> None:
    stamp = "Wed, 01 Jan 2025 00:00:00 GMT"
    feed_server.route("/f", body=RSS, last_modified=stamp)
    assert fetch(feed_server.url("/f"), transport, last_modified=stamp).status == 304
    assert feed_server.requests("/f")[0]["If-Modified-Since"] == stamp


def test_accept_user_agent_and_encodings_are_sent(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=RSS)
    fetch(feed_server.url("/f"), transport, FetchLimits(allow_private=True, user_agent="probe/9"))
    sent = feed_server.requests("/f")[0]
    assert sent["User-Agent"] == "probe/9"
    assert "application/rss+xml" in sent["Accept"] and "application/atom+xml" in sent["Accept"]
    assert "application/feed+json" in sent["Accept"]
    assert sent["Accept-Encoding"] == "gzip, deflate, br"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw deflate, as many servers send
        ("br", brotli.compress),
    ],
)
def test_compressed_body_is_decoded(
    feed_server: FeedServer, transport: str, coding: str, encode: Any
) -> None:
    feed_server.route("/f", body=encode(RSS * 50), headers={"Content-Encoding": coding})
    assert fetch(feed_server.url("/f"), transport).body == RSS * 50


@pytest.mark.parametrize(
    ("coding", "body", "says"),
    [
        ("gzip", b"\x1f\x8b\x07" + b"\x00" * 20, "is corrupt"),
        ("gzip", gzip.compress(RSS)[:-12], "ends early"),
        ("br", b"<rss>not brotli at all</rss>", "is corrupt"),
        ("br", brotli.compress(RSS * 50)[:-4], "ends early"),
        ("br", brotli.compress(RSS) + b"junk", "is corrupt"),  # data after the stream's end
    ],
    ids=["gzip-corrupt", "gzip-truncated", "br-corrupt", "br-truncated", "br-trailing"],
)
def test_broken_compressed_body_is_a_decode_error(
    feed_server: FeedServer, transport: str, coding: str, body: bytes, says: str
) -> None:
    feed_server.route("/f", body=body, headers={"Content-Encoding": coding})
    error = failure(feed_server.url("/f"), transport)
    assert error.kind == "decode"
    assert error.message.startswith(f"{feed_server.url('/f')}: compressed body {says}")


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_reports_moved_to(
    feed_server: FeedServer, transport: str, status: int
) -> None:
    feed_server.route("/old", status=status, redirect_to="/new")
    feed_server.route("/new", body=RSS)
    result = fetch(feed_server.url("/old"), transport)
    assert (result.body, result.url) == (RSS, feed_server.url("/new"))
    assert (result.moved_to, result.moved_status) == (feed_server.url("/new"), status)


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_is_followed_without_moved_to(
    feed_server: FeedServer, transport: str, status: int
) -> None:
    feed_server.route("/old", status=status, redirect_to="/new")
    feed_server.route("/new", body=RSS)
    result = fetch(feed_server.url("/old"), transport)
    assert (result.body, result.url, result.moved_to) == (RSS, feed_server.url("/new"), None)


def test_moved_to_stops_at_the_first_temporary_hop(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/a", status=301, redirect_to="/b")
    feed_server.route("/b", status=302, redirect_to="/c")
    feed_server.route("/c", status=301, redirect_to="/d")
    feed_server.route("/d", body=RSS)
    result = fetch(feed_server.url("/a"), transport)
    assert (result.url, result.moved_to) == (feed_server.url("/d"), feed_server.url("/b"))
    assert result.moved_status == 301


def test_redirect_loop_is_named(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/a", status=302, redirect_to="/b")
    feed_server.route("/b", status=302, redirect_to="/a")
    error = failure(feed_server.url("/a"), transport)
    assert error.kind == "redirect_loop"
    assert error.message.startswith(feed_server.url("/a") + ": redirect loop (")


@pytest.mark.parametrize(("hops", "kind"), [(5, None), (6, "too_many_redirects")])
def test_at_most_five_redirects_are_followed(
    feed_server: FeedServer, transport: str, hops: int, kind: str | None
) -> None:
    for n in range(hops):
        feed_server.route(f"/r{n}", status=302, redirect_to=f"/r{n + 1}")
    feed_server.route(f"/r{hops}", body=RSS)
    if kind is None:
        assert fetch(feed_server.url("/r0"), transport).body == RSS
    else:
        assert failure(feed_server.url("/r0"), transport).kind == kind
        assert feed_server.hits(f"/r{hops}") == 0


def test_redirect_without_location_is_a_protocol_error(
    feed_server: FeedServer, transport: str
) -> None:
    feed_server.route("/f", status=302)
    assert failure(feed_server.url("/f"), transport).kind == "protocol"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "tail", "wait"),
    [
        (410, {}, "gone", "410 Gone", None),
        (404, {}, "http_4xx", "404 Not Found", None),
        (403, {}, "http_4xx", "403 Forbidden", None),
        (500, {}, "http_5xx", "500 Internal Server Error", None),
        (
            429,
            {"Retry-After": "120"},
            "rate_limited",
            "429 Too Many Requests (retry after 120 s)",
            120,
        ),
        (
            503,
            {"Retry-After": "120"},
            "http_5xx",
            "503 Service Unavailable (retry after 120 s)",
            120,
        ),
        (503, {"Retry-After": "soon"}, "http_5xx", "503 Service Unavailable", None),
    ],
)
def test_error_status_becomes_a_kind_and_a_sentence(
    feed_server: FeedServer,
    transport: str,
    status: int,
    headers: dict[str, str],
    kind: str,
    tail: str,
    wait: float | None,
) -> None:
    feed_server.route("/f", status=status, headers=headers)
    error = failure(feed_server.url("/f"), transport)
    assert (error.kind, error.status, error.retry_after) == (kind, status, wait)
    assert error.message == f"{feed_server.url('/f')}: server answered {tail}"


NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 01 Jun 2025 12:02:00 GMT", 120.0),
        ("Sun, 01 Jun 2025 11:00:00 GMT", 0.0),  # already past
        ("Sun, 01 Jun 2025 12:02:00 -0000", 120.0),  # RFC 5322's "-0000" reads as a naive time
        ("-5", None),
        ("²", None),  # a digit to str.isdigit(), not to float()
        ("٣", None),
        ("1e9", None),
        ("tomorrow", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_or_http_date(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, NOW) == seconds


def test_unresolvable_host_is_a_dns_error(transport: str) -> None:
    error = failure("http://no-such-host.invalid/feed.xml", transport)
    assert error.kind == "dns"
    assert error.message.startswith("http://no-such-host.invalid/feed.xml: host ")


def test_closed_port_is_a_connect_error(transport: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed.xml"
    error = failure(url, transport)
    assert (error.kind, error.message) == ("connect", f"{url}: connection refused")


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A server that accepts, reads the request, and resets the connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def test_reset_connection_is_a_connect_error(resetting_port: int, transport: str) -> None:
    error = failure(f"http://127.0.0.1:{resetting_port}/feed.xml", transport)
    assert error.kind == "connect"


def test_tls_failure_is_a_tls_error(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=RSS)
    url = feed_server.url("/f").replace("http://", "https://")
    error = failure(url, transport)
    assert error.kind == "tls" and error.message.startswith(f"{url}: TLS handshake failed")
    assert feed_server.hits("/f") == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/feed", "file:///etc/passwd", "http:///feed", "http://x:99999/", "feed"],
)
def test_unfetchable_url_is_invalid_url(url: str, transport: str) -> None:
    error = failure(url, transport)
    assert error.kind == "invalid_url" and error.message.startswith(url + ": ")


def test_slow_body_is_cut_at_the_deadline(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=RSS, trickle=1.0)
    error = failure(feed_server.url("/f"), transport, FetchLimits(allow_private=True, deadline=1.5))
    assert error.kind == "timeout"
    assert error.message == f"{feed_server.url('/f')}: no complete answer within 1.5 s"


def test_server_that_never_answers_is_cut_at_the_deadline(
    feed_server: FeedServer, transport: str
) -> None:
    # The transports arm no timers of their own for the Fetcher: its deadline is the only one.
    feed_server.route("/f", body=RSS, delay=5.0)
    error = failure(feed_server.url("/f"), transport, FetchLimits(allow_private=True, deadline=0.5))
    assert error.kind == "timeout"
    assert error.message == f"{feed_server.url('/f')}: no complete answer within 0.5 s"


@pytest.fixture(scope="session")
def brotli_bomb() -> bytes:
    """1 GiB of zeros brotli-compressed to about 2 KB, which arrives in one read: only a bound
    on each decoding step stops it."""
    compressor, block = brotli.Compressor(quality=5), bytes(1 << 20)
    return b"".join([*(compressor.process(block) for _ in range(1024)), compressor.finish()])


def bomb_failure(url: str, transport: str) -> tuple[FetchError, int]:
    """The error of fetching a compression bomb within 2 s, and the peak traced memory."""
    tracemalloc.start()
    try:
        error = failure(url, transport, FetchLimits(allow_private=True, deadline=2.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def test_gzip_bomb_stops_at_the_cap_within_2_s_without_growing_memory(
    feed_server: FeedServer, transport: str
) -> None:
    gzip_bomb()  # built and cached now: the server builds it on first use, within the deadline
    feed_server.route("/f", gzip_bomb=True)
    error, peak = bomb_failure(feed_server.url("/f"), transport)
    assert error.kind == "too_large"  # not "timeout": the cap, not the 2 s deadline, stopped it
    assert peak < 100 * 1024 * 1024


def test_brotli_bomb_stops_at_the_cap_within_2_s_without_growing_memory(
    feed_server: FeedServer, transport: str, brotli_bomb: bytes
) -> None:
    feed_server.route("/f", body=brotli_bomb, headers={"Content-Encoding": "br"})
    error, peak = bomb_failure(feed_server.url("/f"), transport)
    assert error.kind == "too_large"  # not "timeout": the cap, not the 2 s deadline, stopped it
    assert error.message.endswith(f"larger than {FetchLimits().max_bytes} bytes once decoded")
    assert peak < 100 * 1024 * 1024


def test_endless_plain_body_stops_at_the_cap(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=b"x" * 4096, endless=True)
    limits = FetchLimits(allow_private=True, max_bytes=100_000)
    assert failure(feed_server.url("/f"), transport, limits).kind == "too_large"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("identity", lambda b: b), ("gzip", gzip.compress), ("br", brotli.compress)],
)
def test_a_body_of_exactly_the_cap_is_kept_and_one_byte_more_is_too_large(
    feed_server: FeedServer, transport: str, coding: str, encode: Any
) -> None:
    cap = 100_000
    limits = FetchLimits(allow_private=True, deadline=10.0, max_bytes=cap)
    exact = RSS + b" " * (cap - len(RSS))
    feed_server.route("/exact", body=encode(exact), headers={"Content-Encoding": coding})
    feed_server.route("/over", body=encode(exact + b" "), headers={"Content-Encoding": coding})
    assert fetch(feed_server.url("/exact"), transport, limits).body == exact
    error = failure(feed_server.url("/over"), transport, limits)
    assert error.kind == "too_large"
    assert error.message.endswith(f"larger than {cap} bytes once decoded")


PRIVATE = FetchLimits(allow_private=False, deadline=10.0)
TRICKS = [
    "127.0.0.1",
    "localhost",
    "2130706433",
    "127.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::1]",
]


@pytest.mark.parametrize("host", TRICKS)
def test_loopback_in_any_spelling_is_refused_before_any_request(
    feed_server: FeedServer, transport: str, host: str
) -> None:
    feed_server.route("/f", body=RSS)
    url = f"http://{host}:{feed_server.port}/f"
    error = failure(url, transport, PRIVATE)
    assert error.kind == "private_address" and error.message.startswith(f"{url}: connecting to ")
    assert feed_server.hits("/f") == 0


def allow_127_0_0_2(ip: IPAddress) -> str | None:
    """The real policy, except that it lets the redirecting server on 127.0.0.2 be fetched."""
    return None if ip == IPv4Address("127.0.0.2") else is_forbidden(ip)


@pytest.fixture
def redirecting_server() -> Iterator[FeedServer]:
    """A FeedServer on 127.0.0.2: not 127.0.0.1, where `localhost` resolves."""
    with FeedServer(host="127.0.0.2") as server:
        yield server


# 127.0.0.1, where feed_server listens, spelled every way a Location header might.
REDIRECT_TRICKS = [
    "127.0.0.1",
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "0x7f000001",
    "[::ffff:127.0.0.1]",
    "[::1]",
    "localhost",
]


@pytest.mark.parametrize("host", REDIRECT_TRICKS)
def test_redirect_to_loopback_in_any_spelling_is_refused_before_any_request(
    feed_server: FeedServer, redirecting_server: FeedServer, transport: str, host: str
) -> None:
    # The first hop is allowed, so only the redirect can be refused; had it not been, feed_server
    # would have answered on the target (or, for [::1], the connection would have been refused).
    feed_server.route("/b", body=RSS)
    start = redirecting_server.url("/a")
    redirecting_server.route("/a", status=302, redirect_to=f"http://{host}:{feed_server.port}/b")

    async def go() -> FetchResult:
        async with Fetcher(PRIVATE, transport=transport, policy=allow_127_0_0_2) as fetcher:
            return await fetcher.fetch(start)

    with pytest.raises(FetchError) as caught:
        run(go())
    assert caught.value.kind == "private_address"
    assert f" (redirected from {start}): connecting to " in caught.value.message
    assert redirecting_server.hits("/a") == 1
    assert feed_server.hits("/b") == 0


def test_address_is_judged_per_connection_not_per_request(
    feed_server: FeedServer, transport: str
) -> None:
    for n in range(3):
        feed_server.route(f"/f{n}", body=RSS, etag=f'"{n}"')
    judged: list[IPAddress] = []

    def allow_and_record(ip: IPAddress) -> str | None:
        judged.append(ip)
        return None

    async def go() -> tuple[int, list[int]]:
        async with Fetcher(PRIVATE, transport=transport, policy=allow_and_record) as fetcher:
            first = await fetcher.fetch(feed_server.url("/f0"))
            after_first = len(judged)
            later = [await fetcher.fetch(feed_server.url(f"/f{n}"), etag='"x"') for n in (1, 2)]
            return after_first, [first.status, *(r.status for r in later)]

    after_first, statuses = run(go())
    assert statuses == [200, 200, 200]
    assert after_first >= 1 and set(judged) == {IPv4Address("127.0.0.1")}
    assert len(judged) == after_first  # the kept-alive connection was not judged again


def test_hanging_host_does_not_delay_other_feeds(transport: str) -> None:
    limits = FetchLimits(allow_private=True, deadline=60.0, concurrency=5, per_host=2)
    with FeedServer() as healthy, FeedServer() as hanging:
        hanging.route("/f", delay=60.0)
        for n in range(50):
            healthy.route(f"/f{n}", body=RSS)

        async def go() -> tuple[list[FetchResult], int, list[int]]:
            async with Fetcher(limits, transport=transport) as fetcher:
                stuck = [asyncio.create_task(fetcher.fetch(hanging.url("/f"))) for _ in range(10)]
                await asyncio.sleep(0)
                done = await asyncio.wait_for(
                    asyncio.gather(*(fetcher.fetch(healthy.url(f"/f{n}")) for n in range(50))), 30
                )
                pending = sum(not task.done() for task in stuck)
                queued = [fetcher.host_queued]
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
                return done, pending, [*queued, fetcher.host_queued]

        done, pending, queued = run(go())
    assert [r.body for r in done] == [RSS] * 50
    assert pending == 10
    assert queued == [8, 0]  # beyond the host's 2 slots (the daemon's tick leaves them out)


@pytest.mark.parametrize(("concurrency", "host_bound"), [(5, 4), (2, 0)])
def test_fetches_queued_behind_a_full_host_wait_for_it_only_while_the_global_limit_has_room(
    concurrency: int, host_bound: int
) -> None:
    """Six fetches of one hanging host with 2 slots: 4 wait for the host alone. With a global
    limit of 2 they would wait for a global slot too, so none counts as the host's alone."""
    limits = FetchLimits(allow_private=True, deadline=60.0, concurrency=concurrency, per_host=2)
    with FeedServer() as hanging:
        hanging.route("/f", delay=60.0)

        async def go() -> list[int]:
            async with Fetcher(limits) as fetcher:
                before = fetcher.host_queued
                stuck = [asyncio.create_task(fetcher.fetch(hanging.url("/f"))) for _ in range(6)]
                await asyncio.sleep(0.2)
                during = fetcher.host_queued
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
                return [before, during, fetcher.host_queued]

        assert run(go()) == [0, host_bound, 0]


def test_sniffio_is_a_direct_dependency() -> None:
    """anyio 4.11+ no longer brings sniffio, and without it httpcore tries the failing import
    again on every request (httpx 1.1–1.5× slower): the project must ask for it itself."""
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = [re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]]
    assert "sniffio" in declared
    assert importlib.util.find_spec("sniffio") is not None


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be one of"):
        Fetcher(OPEN, transport="curl")


def test_guarded_client_refuses_loopback_at_connect_time(feed_server: FeedServer) -> None:
    feed_server.route("/hook", body=b"ok")

    async def go(allow: bool) -> int:
        async with guarded_client(allow_private=allow, timeout=5, user_agent="t/1") as client:
            response = await client.post(f"http://localhost:{feed_server.port}/hook", content=b"{}")
            return response.status_code

    with pytest.raises(FetchError) as caught:
        run(go(False))
    assert caught.value.kind == "private_address"
    assert feed_server.hits("/hook") == 0
    assert run(go(True)) == 200
    sent = feed_server.requests("/hook")[0]
    assert sent["User-Agent"] == "t/1"
    assert sent["Accept-Encoding"] == "gzip, deflate"  # httpx decodes these answers, br unbounded


def test_a_request_naming_no_coding_asks_for_none(feed_server: FeedServer) -> None:
    # aiohttp would add its own Accept-Encoding, br included where brotli is installed
    feed_server.route("/f", body=RSS)

    async def go() -> int:
        transport = guarded_transport(None, "aiohttp", 2)
        try:
            request = httpx.Request("GET", feed_server.url("/f"))
            response = await transport.handle_async_request(request)
            await response.aclose()
            return response.status_code
        finally:
            await transport.aclose()

    assert run(go()) == 200
    assert feed_server.requests("/f")[0].get("Accept-Encoding", "identity") == "identity"


def test_guarded_client_applies_its_own_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/hook", body=b"ok", delay=5.0)

    async def go() -> None:
        async with guarded_client(allow_private=True, timeout=0.5, user_agent="t/1") as client:
            await client.post(feed_server.url("/hook"), content=b"{}")

    with pytest.raises(httpx.TimeoutException):
        run(go())


def test_non_ascii_etag_is_sent_back_as_utf8(feed_server: FeedServer, transport: str) -> None:
    feed_server.route("/f", body=RSS, etag='"café"')
    result = fetch(feed_server.url("/f"), transport, etag='"café"')
    assert (result.status, result.body) == (304, None)


@pytest.fixture
def short_body_server() -> Iterator[str]:
    """A server whose answer promises 5,000 bytes and sends 19: no test server helper can
    misframe a body, so this one speaks HTTP by hand."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 5000\r\n\r\n"
        b"<rss version='2.0'>"
    )
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        stop = threading.Event()

        def serve() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
        stop.set()
        thread.join(5)


def test_a_body_cut_short_of_its_length_is_a_protocol_error(
    short_body_server: str, transport: str
) -> None:
    error = failure(short_body_server, transport)
    assert error.kind == "protocol", error
    assert str(error).startswith(f"{short_body_server}: the server broke the HTTP protocol")
    assert "5000" in str(error) and "<" not in str(error)  # no exception repr in the sentence

"""The httpx edge: a feed URL becomes bytes, "not modified", or a FetchError with a kind and a sentence.

Every fetch runs under a wall-clock deadline, decodes at most `max_bytes`, follows at most
`max_redirects` hops by hand, and connects only to addresses `netguard.is_forbidden` allows,
judged on the addresses the connection actually uses (see the transports at the end), so DNS
rebinding between a check and the connect cannot happen.

Failure kinds: invalid_url, dns, connect, tls, timeout, private_address, too_large, decode,
protocol, too_many_redirects, redirect_loop, gone, rate_limited, http_4xx, http_5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import httpx

from monitor.errors import FetchError
from monitor.netguard import TRANSPORTS, Policy, guarded_transport, is_forbidden, parse_host_literal

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.1"
)
_CHUNK = 256 * 1024  # the most decoded at once, so a compression bomb never allocates much
_HINTS = {
    "private_address": "set allow_private = true only for feeds on your own network",
    "gone": "remove the feed or find its new address",
    "dns": "check the host name in the feed URL",
    "tls": "check the site's certificate; feeds must be served with a valid one",
}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How long, how much, how far and where a fetch may go."""

    deadline: float = 20.0
    max_bytes: int = 15 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False
    user_agent: str = "milestone-monitor/0.1"
    concurrency: int = 20
    per_host: int = 2


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetch that got an answer worth keeping: a body (2xx) or "not modified" (304)."""

    url: str  # the URL finally fetched
    status: int
    body: bytes | None  # None on 304
    etag: str | None
    last_modified: str | None
    content_type: str | None
    moved_to: str | None  # permanent (301/308) target of the requested URL, if any


class Fetcher:
    """Fetches feeds through one shared client, within global and per-host concurrency limits."""

    def __init__(
        self, limits: FetchLimits, *, transport: str = "aiohttp", policy: Policy = is_forbidden
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self._limits, self._transport, self._policy = limits, transport, policy
        self._global = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        lim = self._limits
        check = None if lim.allow_private else self._policy
        pool = 2 * lim.concurrency
        self._client = _client(check, lim.deadline, lim.user_agent, self._transport, pool)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET `url` conditionally; raises FetchError for anything but a 2xx or 304 answer."""
        target = _prepare_url(url)
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._slot(f"{target.host}:{target.port}"):
            try:
                async with asyncio.timeout(self._limits.deadline):
                    return await self._follow(url, target, headers)
            except TimeoutError:
                raise FetchError(
                    "timeout", f"{url}: no complete answer within {self._limits.deadline:g} s"
                ) from None

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """A per-host slot, then a global one: fetches queued for a slow host hold no global slot."""
        semaphore, users = self._hosts.setdefault(
            host, (asyncio.Semaphore(self._limits.per_host), [0])
        )
        users[0] += 1
        try:
            async with semaphore, self._global:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._hosts[host]

    async def _follow(self, url: str, target: httpx.URL, headers: dict[str, str]) -> FetchResult:
        seen = [str(target)]
        moved_to: str | None = None
        permanent = True  # every hop so far was 301/308, so the feed itself has moved
        while True:
            shown = url if len(seen) == 1 else f"{target} (redirected from {url})"
            answer = await self._hop(target, headers, shown)
            if isinstance(answer, FetchResult):
                return replace(answer, moved_to=moved_to)
            status, location = answer
            nxt = _prepare_url(urljoin(str(target), location))
            if str(nxt) in seen:
                loop = " → ".join([*seen[seen.index(str(nxt)) :], str(nxt)])
                raise FetchError("redirect_loop", f"{url}: redirect loop ({loop})")
            if len(seen) > self._limits.max_redirects:
                raise FetchError(
                    "too_many_redirects", f"{url}: more than {self._limits.max_redirects} redirects"
                )
            permanent = permanent and status in (301, 308)
            moved_to = str(nxt) if permanent else moved_to
            seen.append(str(nxt))
            target = nxt

    async def _hop(
        self, target: httpx.URL, headers: dict[str, str], url: str
    ) -> FetchResult | tuple[int, str]:
        """One request: the answer, or (status, Location) for a redirect; errors name `url`."""
        assert self._client is not None, "use Fetcher as an async context manager"
        try:
            request = self._client.build_request("GET", target, headers=headers)
            response = await self._client.send(request, stream=True)
        except FetchError as exc:
            raise FetchError(exc.kind, f"{url}: {exc.message}", hint=_HINTS.get(exc.kind)) from None
        except httpx.HTTPError as exc:
            raise _translate(url, exc) from exc
        try:
            status, found = response.status_code, response.headers
            if 300 <= status < 400 and status != 304:
                if "location" not in found:
                    raise FetchError("protocol", f"{url}: redirect {status} without a Location")
                return status, found["location"]
            if status != 304 and not 200 <= status < 300:
                raise _status_error(url, response, datetime.now(UTC))
            body = None if status == 304 else await self._read(url, response)
            return FetchResult(
                url=str(target),
                status=status,
                body=body,
                etag=found.get("etag"),
                last_modified=found.get("last-modified"),
                content_type=found.get("content-type"),
                moved_to=None,
            )
        finally:
            await response.aclose()

    async def _read(self, url: str, response: httpx.Response) -> bytes:
        decoder = _Decoder(
            url, response.headers.get("content-encoding", ""), self._limits.max_bytes
        )
        try:
            async for raw in response.aiter_raw():
                decoder.feed(raw)
        except httpx.HTTPError as exc:
            raise _translate(url, exc) from exc
        return decoder.finish()


class _Decoder:
    """Content-Encoding decoding that stops as soon as the decoded size passes the cap."""

    def __init__(self, url: str, encoding: str, cap: int) -> None:
        self._url, self._cap = url, cap
        self._parts: list[bytes] = []
        self._size = 0
        coding = encoding.strip().lower()
        if coding in ("", "identity"):
            self._zlib: Any = None
        elif coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self._zlib = None  # chosen from the first bytes
        else:
            raise FetchError("decode", f"{url}: unsupported Content-Encoding {encoding!r}")
        self._deflate = coding == "deflate"

    def feed(self, raw: bytes) -> None:
        if self._deflate and self._zlib is None:
            # RFC 9110 deflate is zlib-wrapped, but many servers send raw deflate; the header says which.
            wrapped = len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        if self._zlib is None:
            self._keep(raw)
            return
        data = raw
        try:
            while data and not self._zlib.eof:
                self._keep(self._zlib.decompress(data, _CHUNK))
                data = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise FetchError("decode", f"{self._url}: compressed body is corrupt ({exc})") from None

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._cap:
            raise FetchError(
                "too_large", f"{self._url}: body is larger than {self._cap} bytes once decoded"
            )
        self._parts.append(piece)

    def finish(self) -> bytes:
        if self._zlib is not None:
            self._keep(self._zlib.flush(_CHUNK))
            if not self._zlib.eof:
                raise FetchError("decode", f"{self._url}: compressed body ends early")
        return b"".join(self._parts)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value, delay-seconds or HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _status_error(url: str, response: httpx.Response, now: datetime) -> FetchError:
    status = response.status_code
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason_phrase or "(unknown status)"
    wait = retry_after(response.headers.get("retry-after"), now)
    kind = {410: "gone", 429: "rate_limited"}.get(status)
    kind = kind or ("http_4xx" if status < 500 else "http_5xx")
    tail = "" if wait is None else f" (retry after {wait:g} s)"
    message = f"{url}: server answered {status} {phrase}{tail}"
    return FetchError(kind, message, status=status, retry_after=wait, hint=_HINTS.get(kind))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _translate(url: str, exc: httpx.HTTPError) -> FetchError:
    """Name a transport failure by its root cause; both transports wrap causes differently."""
    causes = list(_causes(exc))
    tls: list[BaseException] = [c for c in causes if isinstance(c, ssl.SSLError)]
    tls += [c for c in causes if isinstance(c, aiohttp.ClientSSLError)]
    if tls:
        reason = getattr(tls[0], "reason", None) or str(tls[0]).splitlines()[0][:160]
        return FetchError("tls", f"{url}: TLS handshake failed ({reason})", hint=_HINTS["tls"])
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return FetchError("connect", f"{url}: connection refused")
        if isinstance(cause, ConnectionResetError | aiohttp.ServerDisconnectedError):
            return FetchError("connect", f"{url}: connection reset by the server")
        if isinstance(cause, TimeoutError):
            return FetchError("timeout", f"{url}: the server did not answer in time")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError("timeout", f"{url}: the server did not answer in time")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FetchError("invalid_url", f"{url}: not a fetchable URL ({exc})")
    if isinstance(exc, httpx.ProtocolError):
        return FetchError("protocol", f"{url}: the server broke the HTTP protocol ({exc})")
    return FetchError("connect", f"{url}: connection failed ({exc or type(exc).__name__})")


def _prepare_url(url: str) -> httpx.URL:
    """Check the scheme and host, and write numeric hosts the way they will be connected to."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise FetchError("invalid_url", f"{url}: not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("invalid_url", f"{url}: only http and https URLs can be fetched")
    if not host:
        raise FetchError("invalid_url", f"{url}: the URL has no host")
    ip = parse_host_literal(host)
    if ip is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = (userinfo + "@" if userinfo else "") + literal + (f":{port}" if port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    try:
        return httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise FetchError("invalid_url", f"{url}: not a valid URL ({exc})") from None


def _client(
    check: Policy | None, timeout: float, user_agent: str, transport: str, pool: int
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=guarded_transport(check, transport, pool),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        # br is not offered: no bounded brotli decoder is installed (see _Decoder).
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
    )


def guarded_client(*, allow_private: bool, timeout: float, user_agent: str) -> httpx.AsyncClient:
    """An httpx client (no redirects followed) that refuses forbidden addresses at connect time.

    A refused connection raises `FetchError(kind="private_address")` out of `send`/`request`
    (not an httpx exception). Use it as `async with guarded_client(...) as client:`.
    """
    check = None if allow_private else is_forbidden
    return _client(check, timeout, user_agent, "aiohttp", 20)

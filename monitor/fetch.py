"""The httpx edge: a feed URL becomes bytes, "not modified", or a FetchError with a kind and a sentence.

Every fetch runs under a wall-clock deadline, decodes at most `max_bytes` (`monitor.bodies`),
follows at most `max_redirects` hops by hand, and connects only to addresses
`netguard.is_forbidden` allows, judged on the addresses the connection actually uses
(`monitor.connect`), so DNS rebinding between a check and the connect cannot happen.

The Fetcher hands httpx requests straight to its transport: httpx's client layer (cookies,
auth, header merging, redirect bookkeeping) cost more per fetch than the transport itself and
none of it applies to a feed.

Failure kinds: invalid_url, dns, connect, tls, timeout, private_address, too_large, decode,
protocol, too_many_redirects, redirect_loop, gone, rate_limited, http_4xx, http_5xx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from monitor.bodies import HINTS, read_body, retry_after, status_error, translate
from monitor.connect import TRANSPORTS, guarded_transport
from monitor.errors import FetchError
from monitor.netguard import Policy, is_forbidden, parse_host_literal

__all__ = ["FetchLimits", "FetchResult", "Fetcher", "guarded_client", "retry_after"]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.1"
)
# Only codings monitor.bodies decodes in bounded steps; br needs brotli>=1.2 for that.
_ENCODINGS = "gzip, deflate, br"
# guarded_client's answers are decoded by httpx itself, whose br decoder has no output bound.
_CLIENT_ENCODINGS = "gzip, deflate"
_NO_BODY = httpx.ByteStream(b"")


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
    moved_status: int = 0  # with moved_to: the first of those redirects' status, 301 or 308


@dataclass(frozen=True, slots=True)
class _Target:
    text: str  # the URL as it is fetched, numeric hosts canonical
    url: httpx.URL
    host: str  # host:port, the key of the per-host limit


class _HostGate:
    """The per-host semaphore, kept only while some fetch for the host waits or runs."""

    __slots__ = ("holding", "semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore, self.users, self.holding = asyncio.Semaphore(size), 0, 0


class Fetcher:
    """Fetches feeds through one shared transport, within global and per-host concurrency limits."""

    def __init__(
        self, limits: FetchLimits, *, transport: str = "aiohttp", policy: Policy = is_forbidden
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self._limits, self._kind, self._policy = limits, transport, policy
        self._global = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, _HostGate] = {}
        self._headers = httpx.Headers(
            {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": _ENCODINGS}
        )
        self._transport: httpx.AsyncBaseTransport | None = None

    @property
    def host_queued(self) -> int:
        """Fetches that wait for their own host only: queued behind a host whose slots are all
        taken, while the fetches holding slots leave the global limit room. Else (one host's
        limit as large as the global one, say) they would wait for a global slot too."""
        gates = self._hosts.values()
        if sum(gate.holding for gate in gates) >= self._limits.concurrency:
            return 0
        full = self._limits.per_host
        return sum(gate.users - gate.holding for gate in gates if gate.holding >= full)

    async def __aenter__(self) -> Self:
        check = None if self._limits.allow_private else self._policy
        self._transport = guarded_transport(check, self._kind, 2 * self._limits.concurrency)
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET `url` conditionally; raises FetchError for anything but a 2xx or 304 answer."""
        target = _prepare_url(url)
        # a built Headers copies without normalizing again; no fixed encoding, so a non-ASCII
        # validator is sent as UTF-8 rather than failing
        headers = httpx.Headers(self._headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        gate = self._hosts.get(target.host)
        if gate is None:
            gate = self._hosts[target.host] = _HostGate(self._limits.per_host)
        gate.users += 1
        try:
            # the host's slot first: fetches queued for a slow host hold no global slot
            async with gate.semaphore:
                gate.holding += 1
                try:
                    async with self._global, asyncio.timeout(self._limits.deadline):
                        return await self._follow(url, target, headers)
                finally:
                    gate.holding -= 1
        except TimeoutError:
            raise FetchError(
                "timeout", f"{url}: no complete answer within {self._limits.deadline:g} s"
            ) from None
        finally:
            gate.users -= 1
            if not gate.users:
                del self._hosts[target.host]

    async def _follow(self, url: str, target: _Target, headers: httpx.Headers) -> FetchResult:
        seen = [target.text]
        moved_to: str | None = None
        moved_status = 0
        permanent = True  # every hop so far was 301/308, so the feed itself has moved
        while True:
            shown = url if len(seen) == 1 else f"{target.text} (redirected from {url})"
            answer = await self._hop(target, headers, shown)
            if isinstance(answer, FetchResult):
                if moved_to is None:
                    return answer
                return dataclasses.replace(answer, moved_to=moved_to, moved_status=moved_status)
            status, location = answer
            try:
                joined = urljoin(target.text, location)
            except ValueError as exc:  # e.g. "http://[::1": urljoin cannot even split it
                raise FetchError(
                    "protocol", f"{url}: redirect {status} to an unreadable Location ({exc})"
                ) from None
            nxt = _prepare_url(joined)
            if nxt.text in seen:
                loop = " → ".join([*seen[seen.index(nxt.text) :], nxt.text])
                raise FetchError("redirect_loop", f"{url}: redirect loop ({loop})")
            if len(seen) > self._limits.max_redirects:
                raise FetchError(
                    "too_many_redirects", f"{url}: more than {self._limits.max_redirects} redirects"
                )
            permanent = permanent and status in (301, 308)
            if permanent:
                moved_to, moved_status = nxt.text, moved_status or status
            seen.append(nxt.text)
            target = nxt

    async def _hop(
        self, target: _Target, headers: httpx.Headers, url: str
    ) -> FetchResult | tuple[int, str]:
        """One request: the answer, or (status, Location) for a redirect; errors name `url`."""
        assert self._transport is not None, "use Fetcher as an async context manager"
        # Built from a stream, a Request skips httpx's body encoding and header rebuild (most
        # of its cost on a 304 poll) and gets no Host header of its own: it is set here.
        headers["Host"] = target.url.netloc.decode("ascii")
        try:
            request = httpx.Request("GET", target.url, headers=headers, stream=_NO_BODY)
            response = await self._transport.handle_async_request(request)
        except FetchError as exc:
            raise FetchError(exc.kind, f"{url}: {exc.message}", hint=HINTS.get(exc.kind)) from None
        except httpx.HTTPError as exc:
            raise translate(url, exc) from exc
        try:
            status, found = response.status_code, response.headers
            if status == 304:
                body = None
            elif 300 <= status < 400:
                if "location" not in found:
                    raise FetchError("protocol", f"{url}: redirect {status} without a Location")
                return status, found["location"]
            elif 200 <= status < 300:
                body = await read_body(url, response, self._limits.max_bytes)
            else:
                raise status_error(url, response, datetime.now(UTC))
            return FetchResult(
                url=target.text,
                status=status,
                body=body,
                etag=found.get("etag"),
                last_modified=found.get("last-modified"),
                content_type=found.get("content-type"),
                moved_to=None,
            )
        finally:
            await response.aclose()


# Feeds are fetched again and again: parsing and canonicalizing each URL once is enough.
@functools.lru_cache(maxsize=16384)
def _prepare_url(url: str) -> _Target:
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
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise FetchError("invalid_url", f"{url}: not a valid URL ({exc})") from None
    return _Target(text=str(parsed), url=parsed, host=f"{parsed.host}:{parsed.port}")


def guarded_client(*, allow_private: bool, timeout: float, user_agent: str) -> httpx.AsyncClient:
    """An httpx client (no redirects followed) that refuses forbidden addresses at connect time.

    A refused connection raises `FetchError(kind="private_address")` out of `send`/`request`
    (not an httpx exception). Use it as `async with guarded_client(...) as client:`.
    """
    check = None if allow_private else is_forbidden
    return httpx.AsyncClient(
        transport=guarded_transport(check, "aiohttp", 20),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent, "Accept-Encoding": _CLIENT_ENCODINGS},
    )

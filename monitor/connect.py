"""The httpx transports that connect only where the address policy allows, judged at connect time.

`guarded_transport` builds an httpx transport whose connections are judged on the addresses
they actually use, so DNS rebinding between a check and the connect cannot happen: the
httpcore transport resolves and checks, then connects to the checked address itself; the
aiohttp transport checks in its resolver and again in its socket factory (aiohttp skips the
resolver for IP literals). Only new connections are checked: a kept-alive one was judged when
it was opened. A refused connection raises `FetchError(kind="private_address")`, unwrapped.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from ipaddress import IPv6Address
from typing import Any, Self

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from monitor.errors import FetchError
from monitor.netguard import IPAddress, Policy, parse_host_literal
from monitor.redact import redacted_line

TRANSPORTS = ("aiohttp", "httpcore")
# Without a timeout extension (the Fetcher sends none: its own deadline covers the whole fetch)
# aiohttp arms no timers of its own, which costs a timer per request and two per read.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)
# Most specific first; the aiohttp error stays attached as the cause for `bodies.translate`.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # a body cut short or misframed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
)


async def resolve(host: str, port: int, check: Policy | None) -> list[IPAddress]:
    """Every address `host` stands for, refused as a whole if `check` forbids any of them."""
    literal = parse_host_literal(host)
    if literal is not None:
        found = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError("dns", f"host {host!r} does not resolve ({exc.strerror})") from None
        parsed = (parse_host_literal(str(info[4][0])) for info in infos)
        found = list(dict.fromkeys(ip for ip in parsed if ip is not None))
    for ip in found:
        reason = None if check is None else check(ip)
        if reason is not None:
            named = f"{ip}" if literal is not None else f"{host} ({ip})"
            raise FetchError("private_address", f"connecting to {named} refused: {reason} address")
    return found


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend: resolves and checks, then connects to the checked address."""

    def __init__(self, check: Policy | None) -> None:
        self._check, self._inner = check, httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        for ip in await resolve(host, port, self._check):
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedResolver(AbstractResolver):
    """aiohttp resolver that checks every address of a name before aiohttp connects to it."""

    def __init__(self, check: Policy | None) -> None:
        self._check = check

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                proto=0,
                flags=flags,
                family=socket.AF_INET6 if isinstance(ip, IPv6Address) else socket.AF_INET,
            )
            for ip in await resolve(host, port, self._check)
        ]

    async def close(self) -> None:
        return None


def _socket_factory(check: Policy | None) -> Callable[[Any], socket.socket]:
    """aiohttp skips its resolver for IP literals; the socket factory sees every address used."""

    def create(addr_info: Any) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        ip = parse_host_literal(str(sockaddr[0]))
        reason = None if check is None or ip is None else check(ip)
        if reason is not None:
            raise FetchError("private_address", f"connecting to {ip} refused: {reason} address")
        return socket.socket(family=family, type=kind, proto=proto)

    return create


def _mapped(exc: Exception) -> httpx.TransportError:
    kind = next(ours for theirs, ours in _ERRORS if isinstance(exc, theirs))
    if isinstance(exc, aiohttp.ClientResponseError):  # its text quotes the whole request URL
        return kind(redacted_line(f"{type(exc).__name__}: {exc.status}, {exc.message}"))
    cause = exc.__cause__
    if isinstance(exc, aiohttp.ClientPayloadError) and cause is not None:
        # aiohttp's text wraps its parser's repr ("<ContentLengthError: 400, message='…'>")
        return kind(redacted_line(f"the body is incomplete: {getattr(cause, 'message', cause)}"))
    return kind(redacted_line(str(exc)) or type(exc).__name__)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream, bytes as they arrive, still encoded."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        self._response.release()
        await self._response.wait_for_close()


class _AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests over one guarded aiohttp session, opened in the loop of the first request.

    Written for this project rather than taken from httpx-aiohttp, which per request re-parses
    the URL, converts headers through the Mapping protocol and arms three aiohttp timers.
    """

    def __init__(self, check: Policy | None, pool: int) -> None:
        self._check, self._pool = check, pool
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        """Open the session now (in the running loop) rather than in the first request."""
        self._session = self._session or self._open()
        return self

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._pool,
            resolver=_GuardedResolver(self._check),
            socket_factory=_socket_factory(self._check),
            ssl=ssl_context(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=_NO_TIMEOUT,
            auto_decompress=False,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        encoding = request.headers.encoding
        headers = CIMultiDict(
            (k.decode(encoding), v.decode(encoding)) for k, v in request.headers.raw
        )
        # The caller's codings only, never aiohttp's own (which may name br, whose decoder in
        # httpx has no output bound). Said here rather than with aiohttp's skip_auto_headers,
        # which costs a set, a dict and a copy on every request.
        if "Accept-Encoding" not in headers:
            headers["Accept-Encoding"] = "identity"
        if isinstance(request.stream, httpx.ByteStream):  # a whole body in memory, or none
            data: Any = b"".join(request.stream) or None
        else:
            data = request.stream
            headers.popall("Transfer-Encoding", None)  # aiohttp frames the stream itself
        url = request.url
        if url.userinfo and "Authorization" in headers:
            # httpx's client made the header from the URL's user:password; aiohttp refuses both
            url = url.copy_with(userinfo=b"")
        try:
            response = await session.request(
                request.method,
                URL(str(url), encoded=True),  # httpx has already percent-encoded it
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=_timeout(request.extensions.get("timeout")),
            )
        except aiohttp.ClientError as exc:
            raise _mapped(exc) from exc
        extensions = {
            "http_version": b"HTTP/1.1",
            # aiohttp decodes the phrase as UTF-8 with surrogateescape: a Latin-1 phrase
            # ("Non trouv\xe9") holds surrogates that only surrogateescape can encode again
            "reason_phrase": (response.reason or "").encode("utf-8", "surrogateescape"),
        }
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's verifying context (certifi's CA bundle), loaded once per process: loading the
    bundle takes about 20 ms, and a context serves any number of connections."""
    return httpx.create_ssl_context()


def _timeout(given: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    if not given:
        return _NO_TIMEOUT
    return aiohttp.ClientTimeout(
        connect=given.get("pool"), sock_connect=given.get("connect"), sock_read=given.get("read")
    )


def guarded_transport(check: Policy | None, kind: str, pool: int) -> httpx.AsyncBaseTransport:
    """An httpx transport (`kind` in TRANSPORTS) refusing addresses `check` names a reason for."""
    if kind == "aiohttp":
        return _AiohttpTransport(check, pool)
    if kind != "httpcore":
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {kind!r}")
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public way to hand its connection pool a network backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context(),
        max_connections=pool,
        max_keepalive_connections=pool,
        network_backend=_GuardedBackend(check),
    )
    return transport

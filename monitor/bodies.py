"""What an httpx answer means for a feed: its body decoded under a cap, or a FetchError that says why.

`read_body` decodes Content-Encoding (gzip, deflate or br) in bounded steps and stops once
the decoded size passes the cap; `status_error` and `translate` turn an HTTP status or a
transport failure into a FetchError with a kind, a sentence that names the URL, and a hint
where one helps.
"""

from __future__ import annotations

import email.utils
import http
import ssl
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import brotli
import httpx

from monitor.errors import FetchError

_CHUNK = 256 * 1024  # the most decoded at once, so a compression bomb never allocates much
# brotli stops growing its output once it holds at least this much, in blocks that double from
# 32 KiB: half of _CHUNK keeps a step under _CHUNK (brotli 1.2 python/_brotli.c, Buffer_Grow)
_BROTLI_LIMIT = _CHUNK // 2
HINTS = {
    "private_address": "set settings.allow_private_networks = true only if your feeds and "
    "webhooks are on your own network",
    "gone": "remove the feed or find its new address",
    "dns": "check the host name in the feed URL",
    "tls": "check the site's certificate; feeds must be served with a valid one",
}


async def read_body(url: str, response: httpx.Response, cap: int) -> bytes:
    """The decoded body of `response`, or FetchError once it passes `cap` bytes decoded."""
    decoder = _Decoder(url, response.headers.get("content-encoding", ""), cap)
    try:
        async for raw in response.aiter_raw():
            decoder.feed(raw)
    except httpx.HTTPError as exc:
        raise translate(url, exc) from exc
    return decoder.finish()


class _Decoder:
    """Content-Encoding decoding that stops as soon as the decoded size passes the cap."""

    def __init__(self, url: str, encoding: str, cap: int) -> None:
        self._url, self._cap = url, cap
        self._parts: list[bytes] = []
        self._size = 0
        coding = encoding.strip().lower()
        self._inflater: _Zlib | _Brotli | None
        if coding in ("", "identity"):
            self._inflater = None
        elif coding in ("gzip", "x-gzip"):
            self._inflater = _Zlib(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self._inflater = _Zlib(None)
        elif coding == "br":
            self._inflater = _Brotli()
        else:
            raise FetchError("decode", f"{url}: unsupported Content-Encoding {encoding!r}")

    def feed(self, raw: bytes) -> None:
        if self._inflater is None:
            self._keep(raw)
        else:
            self._take(self._inflater.feed(raw))

    def _take(self, pieces: Iterator[bytes]) -> None:
        """Keep decoded pieces one by one, so the cap stops decoding before the next piece."""
        try:
            for piece in pieces:
                self._keep(piece)
        except (zlib.error, brotli.error) as exc:
            raise FetchError("decode", f"{self._url}: compressed body is corrupt ({exc})") from None

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._cap:
            raise FetchError(
                "too_large", f"{self._url}: body is larger than {self._cap} bytes once decoded"
            )
        self._parts.append(piece)

    def finish(self) -> bytes:
        if self._inflater is not None:
            self._take(self._inflater.finish())
            if not self._inflater.ended:
                raise FetchError("decode", f"{self._url}: compressed body ends early")
        return b"".join(self._parts)


class _Zlib:
    """gzip or deflate, at most _CHUNK decoded per step; `wbits` None reads deflate's framing."""

    def __init__(self, wbits: int | None) -> None:
        self._zlib: Any = None if wbits is None else zlib.decompressobj(wbits)

    @property
    def ended(self) -> bool:
        # a deflate body that never sent a byte has nothing to end
        return self._zlib is None or bool(self._zlib.eof)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            # RFC 9110 deflate is zlib-wrapped, but many servers send raw deflate; the header says which.
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        while data and not self._zlib.eof:
            yield self._zlib.decompress(data, _CHUNK)
            data = self._zlib.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        if self._zlib is not None:
            yield self._zlib.flush(_CHUNK)


class _Brotli:
    """br through brotli 1.2's bounded Decompressor, less than _CHUNK decoded per step.

    `process(data, output_buffer_limit=n)` keeps the input it could not decode within the
    limit; until `can_accept_more_data()` it must be called with b"" (new input then raises and
    spoils the decoder). Taking all input does not mean giving all output: `finish` drains the
    rest. Data after the end of the stream is an error, as brotli reports it.
    """

    def __init__(self) -> None:
        self._brotli: Any = brotli.Decompressor()

    @property
    def ended(self) -> bool:
        return bool(self._brotli.is_finished())

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield self._brotli.process(data, output_buffer_limit=_BROTLI_LIMIT)
        while not self._brotli.can_accept_more_data():
            yield self._brotli.process(b"", output_buffer_limit=_BROTLI_LIMIT)

    def finish(self) -> Iterator[bytes]:
        while not self._brotli.is_finished():
            piece = self._brotli.process(b"", output_buffer_limit=_BROTLI_LIMIT)
            if not piece:
                return  # it wants input that will not come: the body ends early
            yield piece


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value, delay-seconds or HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # '²' is a digit to isdigit(), not to float()
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def status_error(url: str, response: httpx.Response, now: datetime) -> FetchError:
    """The FetchError for an answer that is neither 2xx, 304 nor a redirect."""
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
    return FetchError(kind, message, status=status, retry_after=wait, hint=HINTS.get(kind))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def translate(url: str, exc: httpx.HTTPError) -> FetchError:
    """Name a transport failure by its root cause; both transports wrap causes differently."""
    causes = list(_causes(exc))
    tls: list[BaseException] = [c for c in causes if isinstance(c, ssl.SSLError)]
    tls += [c for c in causes if isinstance(c, aiohttp.ClientSSLError)]
    if tls:
        reason = getattr(tls[0], "reason", None) or str(tls[0]).splitlines()[0][:160]
        return FetchError("tls", f"{url}: TLS handshake failed ({reason})", hint=HINTS["tls"])
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

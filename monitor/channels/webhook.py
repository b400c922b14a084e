"""Webhook channel: Standard Webhooks signing and one POST, outcomes as DeliveryError kinds.

A 2xx is delivered; everything else raises DeliveryError:

    3xx            redirect      retryable, never followed (the signed URL is the contract)
    410            gone          permanent, disables the channel
    429            rate_limited  retryable, honours Retry-After
    5xx            http_5xx      retryable, honours Retry-After
    other 4xx      http_4xx      permanent
    timeout        timeout       retryable (wall-clock deadline over the whole exchange)
    connect        connect       retryable
    other network  network       retryable
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from monitor import bodies
from monitor.errors import DeliveryError, FetchError
from monitor.oneline import printable_line

log = logging.getLogger(__name__)

USER_AGENT = "milestone-monitor/0.1 (webhook)"
RESPONSE_CAP = 20_000  # bytes of a response body kept for the record
SECRET_PREFIX = "whsec_"


def url_sha256(url: str) -> str:
    """What a 410 records of the URL that answered it: the path may hold a token, the log keeps
    only this, so a changed URL can still be told from the one that was gone."""
    return hashlib.sha256(url.encode()).hexdigest()


def sign(secrets: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` per secret, space-separated.

    Several secrets (during a rotation) give several signatures; a receiver accepts any one.
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets.split():
        digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode("ascii"))
    if not signatures:
        raise DeliveryError("config", "webhook secret is empty", permanent=True)
    return " ".join(signatures)


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        # Padding is optional in the wild: restore exactly what base64 needs.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        # The message must not quote the secret it rejects.
        raise DeliveryError(
            "config", "webhook secret is not base64 after its whsec_ prefix", permanent=True
        ) from None
    if not key:
        raise DeliveryError("config", "webhook secret is empty", permanent=True)
    return key


async def send_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secrets: str,
    alert_id: str,
    body: bytes,
    timestamp: int,
    timeout: float,
) -> str:
    """POST the signed body once; returns e.g. "200 OK" or raises DeliveryError."""
    headers = {
        "webhook-id": alert_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, alert_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # The answer is kept for the record only: plain bytes, so no decompression bomb.
        "accept-encoding": "identity",
    }
    where = _where(url)
    try:
        async with asyncio.timeout(timeout):
            status, reason, response_headers, text = await _post(
                client, url, headers, body, timeout
            )
    except (TimeoutError, httpx.TimeoutException):
        raise DeliveryError("timeout", f"webhook {where}: no answer within {timeout:g} s") from None
    except httpx.ConnectError as exc:
        said = _connect_cause(exc)
        raise DeliveryError("connect", f"webhook {where}: cannot connect ({said})") from None
    except httpx.TransportError as exc:
        raise DeliveryError("network", f"webhook {where}: {_cause(exc)}") from None
    except FetchError as exc:  # the address-checking client refuses private targets this way
        raise DeliveryError(exc.kind, f"webhook {where}: {exc.message}", permanent=True) from None
    status_line = f"{status} {reason}".strip()
    log.debug("webhook %s answered %s for %s", where, status_line, alert_id)
    if 200 <= status < 300:
        return status_line
    raise _failure(where, status, status_line, response_headers, text)


async def _post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[int, str, httpx.Headers, str]:
    request = client.build_request("POST", url, headers=headers, content=body, timeout=timeout)
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        kept = bytearray()
        # Raw bytes: httpx would decode a Content-Encoding the receiver sent unasked (gzip,
        # brotli) whole, before the cap; a compression bomb then costs gigabytes.
        async for chunk in response.aiter_raw():
            kept += chunk[: RESPONSE_CAP - len(kept)]
            if len(kept) >= RESPONSE_CAP:
                break  # an endless body is not read past the cap
    finally:
        await response.aclose()
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    text = (
        kept.decode("utf-8", "replace")
        if encoding in ("", "identity")
        else (f"({len(kept)} bytes of {printable_line(encoding)[:40]}-encoded answer, not decoded)")
    )
    return (response.status_code, printable_line(response.reason_phrase), response.headers, text)


def _failure(
    where: str, status: int, status_line: str, headers: httpx.Headers, text: str
) -> DeliveryError:
    response = f"{status_line}\n{text}" if text else status_line
    said = f"webhook {where}: receiver answered {status_line}"
    if 300 <= status < 400:
        location = printable_line(headers.get("location", ""))[:200] or "no Location"
        return DeliveryError("redirect", f"{said}, not followed (to {location})", response=response)
    if status == 410:
        return DeliveryError(
            "gone",
            f"{said}; the channel is disabled",
            permanent=True,
            disable_channel=True,
            response=response,
        )
    retry_after = bodies.retry_after(headers.get("retry-after"), datetime.now(UTC))
    note = f" (retry after {retry_after:g} s)" if retry_after is not None else ""
    if status == 429:
        return DeliveryError(
            "rate_limited", said + note, retry_after=retry_after, response=response
        )
    if status >= 500:
        return DeliveryError("http_5xx", said + note, retry_after=retry_after, response=response)
    return DeliveryError("http_4xx", said, permanent=True, response=response)


def _where(url: str) -> str:
    # Scheme, host and port only: webhook paths and queries often carry access tokens.
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    except ValueError:
        return "(invalid URL)"


def _connect_cause(exc: httpx.ConnectError) -> str:
    """The root cause in the words a feed's failure uses ("connection refused"): aiohttp's own
    text names its SSL mode ("ssl:default") even for an http:// URL."""
    translated = bodies.translate("", exc)
    if translated.kind == "connect" and not str(translated).startswith(": connection failed"):
        return str(translated).removeprefix(": ")
    return _cause(exc)


def _cause(exc: Exception) -> str:
    return printable_line(str(exc)) or type(exc).__name__

"""Webhook channel: Standard Webhooks signatures and delivery outcomes against a real receiver."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
import tracemalloc
import zlib
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.channels.webhook import RESPONSE_CAP, send_webhook, sign
from monitor.errors import DeliveryError
from tests.receivers import Reply, WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "Q2FuYXJ5U2VjcmV0Rm9yUm90YXRpb24xMjM0NTY3OA=="
BODY = b'{"type":"milestone.status_changed","data":{"milestone":{"id":"m"}}}'
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _send(
    url: str, *, secrets: str = SECRET, timeout: float = 5.0, alert_id: str = "alt_1"
) -> str:
    async with httpx.AsyncClient() as client:
        return await send_webhook(
            client,
            url=url,
            secrets=secrets,
            alert_id=alert_id,
            body=BODY,
            timestamp=int(time.time()),
            timeout=timeout,
        )


def _failure(url: str, **kwargs: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        _run(_send(url, **kwargs))
    return caught.value


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


def test_sign_reproduces_the_specification_test_vector() -> None:
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_two_secrets_give_two_signatures_each_verifying_with_its_own_secret() -> None:
    now = int(time.time())
    signatures = sign(f"{SECRET} {OTHER_SECRET}", "alt_rot", now, BODY).split(" ")
    assert len(signatures) == 2
    for secret, signature in zip((SECRET, OTHER_SECRET), signatures, strict=True):
        headers = {"webhook-id": "alt_rot", "webhook-timestamp": str(now)}
        Webhook(secret).verify(BODY, headers | {"webhook-signature": signature})
        # Each signature verifies only with its own secret.
        other = OTHER_SECRET if secret == SECRET else SECRET
        with pytest.raises(WebhookVerificationError, match="No matching signature found"):
            Webhook(other).verify(BODY, headers | {"webhook-signature": signature})


@given(st.text(max_size=200), st.from_regex(r"alt_[0-9a-f]{1,32}", fullmatch=True))
def test_any_body_and_id_verify_with_the_reference_library(text: str, msg_id: str) -> None:
    body, now = text.encode("utf-8"), int(time.time())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now)}
    headers["webhook-signature"] = sign(SECRET, msg_id, now, body)
    Webhook(SECRET).verify(body, headers, json_parse=False)


@pytest.mark.parametrize("secret", ["whsec_not*base64!", "whsec_", ""])
def test_malformed_secret_is_a_permanent_config_error_that_does_not_quote_it(secret: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        sign(secret, "alt_1", 1, BODY)
    assert (caught.value.kind, caught.value.permanent) == ("config", True)
    assert "*base64!" not in str(caught.value)


def test_delivery_is_verified_and_carries_the_exact_signed_bytes(receiver: WebhookReceiver) -> None:
    assert _run(_send(receiver.url(), alert_id="alt_same")) == "200 OK"
    (got,) = receiver.received
    assert got.verified and got.body == BODY and got.webhook_id == "alt_same"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("milestone-monitor/")


def test_retries_reuse_the_webhook_id_for_deduplication(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503))
    _failure(receiver.url(), alert_id="alt_retry")
    _run(_send(receiver.url(), alert_id="alt_retry"))
    assert receiver.count("alt_retry") == 2
    assert all(r.verified for r in receiver.received)


def test_wrong_secret_fails_the_receivers_verification(receiver: WebhookReceiver) -> None:
    _run(_send(receiver.url(), secrets=OTHER_SECRET))
    assert [r.verified for r in receiver.received] == [False]


def test_redirect_is_a_retryable_failure_and_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=301, headers={"location": receiver.url("/moved")}))
    error = _failure(receiver.url())
    assert (error.kind, error.permanent, error.disable_channel) == ("redirect", False, False)
    assert "/moved" in str(error)
    assert receiver.requests_to("/moved") == []


def test_gone_disables_the_channel(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=410, body=b"endpoint removed"))
    error = _failure(receiver.url())
    assert (error.kind, error.permanent, error.disable_channel) == ("gone", True, True)
    assert error.response == "410 Gone\nendpoint removed"


def test_rate_limited_honours_retry_after_seconds(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=429, headers={"retry-after": "120"}))
    error = _failure(receiver.url())
    assert (error.kind, error.permanent, error.retry_after) == ("rate_limited", False, 120.0)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_retryable(receiver: WebhookReceiver, status: int) -> None:
    receiver.respond(Reply(status=status, body=b"try later"))
    error = _failure(receiver.url())
    assert (error.kind, error.permanent, error.retry_after) == ("http_5xx", False, None)
    assert error.response is not None and error.response.endswith("\ntry later")


def test_client_error_is_permanent_and_keeps_the_response(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=400, body=b'{"error":"bad signature"}'))
    error = _failure(receiver.url())
    assert (error.kind, error.permanent, error.disable_channel) == ("http_4xx", True, False)
    assert error.response == '400 Bad Request\n{"error":"bad signature"}'


def test_silent_receiver_times_out(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(silent=True))
    error = _failure(receiver.url(), timeout=0.5)
    assert (error.kind, error.permanent) == ("timeout", False)


def test_endless_response_body_is_read_only_up_to_the_cap(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=500, endless=True))
    error = _failure(receiver.url(), timeout=10)
    assert error.kind == "http_5xx" and error.response is not None
    status_line, _, body = error.response.partition("\n")
    assert status_line == "500 Internal Server Error" and len(body.encode()) == RESPONSE_CAP


def test_closed_port_is_a_retryable_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _failure(f"http://127.0.0.1:{port}/hook")
    assert (error.kind, error.permanent) == ("connect", False)
    # in words, as a feed's is: not aiohttp's own text, whose "ssl:default" an http URL baffles
    assert str(error) == f"webhook http://127.0.0.1:{port}: cannot connect (connection refused)"


def test_messages_name_the_origin_but_not_the_path_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _failure(f"http://127.0.0.1:{port}/hooks/T0k3nInPath?key=abc")
    assert f"127.0.0.1:{port}" in str(error)
    assert "T0k3nInPath" not in str(error) and "key=abc" not in str(error)
    # nor user information in the URL: `https://user:token@host/` is a common webhook form
    error = _failure(f"http://hook:Us3rT0ken@127.0.0.1:{port}/in")
    assert str(error).startswith(f"webhook http://127.0.0.1:{port}: ")
    assert "Us3rT0ken" not in str(error)


async def _send_refused(url: str) -> str:
    from monitor.fetch import guarded_client

    async with guarded_client(allow_private=False, timeout=5.0, user_agent="test") as client:
        return await send_webhook(
            client, url=url, secrets=SECRET, alert_id="alt_p", body=BODY,
            timestamp=int(time.time()), timeout=5.0,
        )


def test_a_private_address_is_a_permanent_failure_and_nothing_is_sent(
    receiver: WebhookReceiver,
) -> None:
    """Retrying cannot make the address public: the alert is abandoned, not retried."""
    with pytest.raises(DeliveryError) as caught:
        _run(_send_refused(receiver.url()))
    assert (caught.value.kind, caught.value.permanent) == ("private_address", True)
    assert receiver.received == []


def test_secret_never_appears_in_errors_or_logs(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "whsec_" + "Q0FOQVJZLXdlYmhvb2stc2VjcmV0LTQyNDI0Mg=="
    caplog.set_level(logging.DEBUG)
    receiver.respond(Reply(status=500), Reply(status=301, headers={"location": "/x"}))
    errors = [_failure(receiver.url(), secrets=canary) for _ in range(2)]
    errors.append(_failure(receiver.url(), secrets="whsec_bad!" + canary[6:]))
    _run(_send(receiver.url(), secrets=canary))
    seen = [str(e) for e in errors] + [repr(e) for e in errors] + [e.response or "" for e in errors]
    seen += [r.getMessage() for r in caplog.records]
    assert caplog.records, "the delivery path logs nothing, so this test would prove nothing"
    for text in seen:
        assert canary[6:] not in text and canary[6:20] not in text


# --- what a hostile receiver can send back -------------------------------------------------


async def _send_guarded(url: str) -> str:
    from monitor.fetch import guarded_client

    async with guarded_client(allow_private=True, timeout=5.0, user_agent="test") as client:
        return await send_webhook(
            client, url=url, secrets=SECRET, alert_id="alt_h", body=BODY,
            timestamp=int(time.time()), timeout=5.0,
        )


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """512 MiB of zeros, gzip-compressed to about half a megabyte."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(512)) + packer.flush()


@pytest.mark.parametrize("status", [200, 500])
def test_a_compressed_answer_is_never_decoded(
    receiver: WebhookReceiver, gzip_bomb: bytes, status: int
) -> None:
    """The request asks for identity; an answer compressed anyway is kept raw, under the cap."""
    receiver.respond(Reply(status=status, headers={"content-encoding": "gzip"}, body=gzip_bomb))
    tracemalloc.start()
    try:
        if status == 200:
            assert _run(_send_guarded(receiver.url())) == "200 OK"
        else:
            error = _failure_of(_send_guarded(receiver.url()))
            assert error.kind == "http_5xx"
            assert error.response is not None and "gzip-encoded answer, not decoded" in error.response
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak


def _failure_of(coro: Coroutine[Any, Any, str]) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        _run(coro)
    return caught.value


def test_a_url_with_user_and_password_authenticates(receiver: WebhookReceiver) -> None:
    url = receiver.url("/hook?token=T0KEN").replace("http://", "http://hook:pa55@")
    assert _run(_send_guarded(url)) == "200 OK"
    [got] = receiver.received
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"hook:pa55").decode()


def test_a_broken_answer_does_not_quote_the_url_token(receiver: WebhookReceiver) -> None:
    """aiohttp's own error text quotes the whole URL, query token included."""
    receiver.respond(Reply(status=200, headers={"Content-Length": "abc"}))
    error = _failure_of(_send_guarded(receiver.url("/hook?token=T0KEN99")))
    assert "T0KEN99" not in str(error) and "\n" not in str(error), str(error)


def test_a_status_line_and_location_are_shown_on_one_printable_line(
    receiver: WebhookReceiver,
) -> None:
    receiver.respond(
        Reply(status=302, reason="Moved\tAway", headers={"location": "/moved\x85next\x9b[2J"})
    )
    error = _failure_of(_send_guarded(receiver.url()))
    assert str(error).endswith("receiver answered 302 Moved Away, not followed (to /moved next [2J)")
    assert error.response == "302 Moved Away"
    receiver.respond(Reply(status=404, reason="Not\t\tFound"))
    assert _failure_of(_send_guarded(receiver.url())).response == "404 Not Found"


def test_a_status_line_that_is_not_utf_8_is_an_ordinary_answer(receiver: WebhookReceiver) -> None:
    """http.server sends the phrase in Latin-1, as servers in the wild may."""
    receiver.respond(Reply(status=503, reason="Service indisponible, r\xe9essayez"))
    error = _failure_of(_send_guarded(receiver.url()))
    assert error.kind == "http_5xx"
    assert "receiver answered 503 Service indisponible, ressayez" in str(error)


def test_a_retry_after_too_large_for_a_date_is_taken_in_stride(receiver: WebhookReceiver) -> None:
    receiver.respond(Reply(status=503, headers={"retry-after": "9" * 400}))
    error = _failure(receiver.url())
    assert error.kind == "http_5xx"

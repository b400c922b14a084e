"""Email channel: real SMTP sessions with aiosmtpd on 127.0.0.1, outcomes per recipient."""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from monitor.channels.email import RecipientOutcome, send_email
from monitor.channels.render import AlertMessage, email_message
from monitor.errors import DeliveryError
from tests.receivers import SmtpServer, TlsPair, silent_smtp_server, tls_pair

USER, PASSWORD = "monitor", "pw-CANARY-7f3e9b21"
ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"
ALERT = AlertMessage(
    alert_id="alt_" + "e5" * 16,
    channel_id="ops-mail",
    subject="[milestone-monitor] Noetra starts training — confirmed",
    payload={"milestone": {"id": "training-start", "title": "Noetra starts training"}},
    queued_at=datetime(2026, 7, 1, 9, 30, tzinfo=UTC),
)


def _message(recipients: tuple[str, ...] = (ALICE, BOB, CAROL)) -> EmailMessage:
    return email_message(ALERT, sender="monitor@example.org", recipients=recipients, timezone="UTC")


@pytest.fixture(scope="module")
def tls() -> TlsPair:
    return tls_pair()


@pytest.fixture
def server(tls: TlsPair) -> Iterator[SmtpServer]:
    with SmtpServer(tls=tls.server, credentials=(USER, PASSWORD)) as running:
        yield running


def _send(
    server: SmtpServer, tls: TlsPair, recipients: tuple[str, ...] = (ALICE, BOB, CAROL), **kw: Any
) -> dict[str, RecipientOutcome]:
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "allow_insecure": False,
        "message": _message(),
        "recipients": recipients,
        "timeout": 5.0,
        "tls_context": tls.client,
    }
    return send_email(**(options | kw))


def _statuses(outcomes: dict[str, RecipientOutcome]) -> dict[str, tuple[str, int]]:
    return {address: (o.status, o.code) for address, o in outcomes.items()}


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_starttls_with_auth_delivers_to_every_recipient(server: SmtpServer, tls: TlsPair) -> None:
    outcomes = _send(server, tls)
    assert _statuses(outcomes) == {a: ("accepted", 250) for a in (ALICE, BOB, CAROL)}
    (mail,) = server.messages
    assert mail.rcpt_tos == (ALICE, BOB, CAROL) and mail.mail_from == "monitor@example.org"
    received = message_from_bytes(mail.content, policy=policy.default)
    assert received["Message-ID"] == f"<{ALERT.alert_id}@milestone-monitor>"
    assert server.logins == [(USER, True)]


def test_implicit_tls_delivers(tls: TlsPair) -> None:
    with SmtpServer(implicit_tls=tls.server, credentials=(USER, PASSWORD)) as server:
        outcomes = _send(server, tls, (ALICE,), security="tls")
    assert _statuses(outcomes) == {ALICE: ("accepted", 250)}
    assert [m.rcpt_tos for m in server.messages] == [(ALICE,)]


def test_one_refused_one_deferred_one_accepted(server: SmtpServer, tls: TlsPair) -> None:
    server.rcpt_replies = {BOB: "550 5.1.1 no such user", CAROL: "450 4.2.1 mailbox busy"}
    outcomes = _send(server, tls)
    assert _statuses(outcomes) == {
        ALICE: ("accepted", 250),
        BOB: ("refused", 550),
        CAROL: ("retry", 450),
    }
    assert outcomes[BOB].reply == "5.1.1 no such user"
    assert [m.rcpt_tos for m in server.messages] == [(ALICE,)]


def test_retry_goes_only_to_the_recipients_given_with_the_same_message_id(
    server: SmtpServer, tls: TlsPair
) -> None:
    server.rcpt_replies = {CAROL: "450 4.2.1 mailbox busy"}
    first = _send(server, tls)
    server.rcpt_replies = {}
    pending = tuple(a for a, o in first.items() if o.status == "retry")
    again = _send(server, tls, pending)
    assert _statuses(again) == {CAROL: ("accepted", 250)}
    assert [m.rcpt_tos for m in server.messages] == [(ALICE, BOB), (CAROL,)]
    ids = {
        message_from_bytes(m.content, policy=policy.default)["Message-ID"] for m in server.messages
    }
    assert ids == {f"<{ALERT.alert_id}@milestone-monitor>"}


def test_data_451_makes_every_accepted_recipient_retry(server: SmtpServer, tls: TlsPair) -> None:
    server.rcpt_replies = {BOB: "550 5.1.1 no such user"}
    server.data_reply = "451 4.3.0 try again later"
    outcomes = _send(server, tls)
    assert _statuses(outcomes) == {
        ALICE: ("retry", 451),
        BOB: ("refused", 550),
        CAROL: ("retry", 451),
    }


def test_data_554_refuses_every_accepted_recipient(server: SmtpServer, tls: TlsPair) -> None:
    server.data_reply = "554 5.6.0 message rejected"
    outcomes = _send(server, tls)
    assert _statuses(outcomes) == {a: ("refused", 554) for a in (ALICE, BOB, CAROL)}
    assert server.messages == []


def test_no_data_is_sent_when_no_recipient_was_accepted(server: SmtpServer, tls: TlsPair) -> None:
    server.rcpt_replies = {ALICE: "550 no", BOB: "451 later"}
    server.data_reply = "250 would be wrong"  # reached only if DATA were sent
    assert _statuses(_send(server, tls, (ALICE, BOB))) == {
        ALICE: ("refused", 550),
        BOB: ("retry", 451),
    }


def test_silent_server_times_out() -> None:
    with silent_smtp_server() as (host, port), pytest.raises(DeliveryError) as caught:
        send_email(
            host=host,
            port=port,
            security="starttls",
            username=None,
            password=None,
            allow_insecure=False,
            message=_message(),
            recipients=[ALICE],
            timeout=0.5,
        )
    assert (caught.value.kind, caught.value.permanent) == ("timeout", False)


@pytest.mark.parametrize("slow_connect", [False, True], ids=["greeting", "after-slow-connect"])
def test_a_server_dripping_its_answers_is_cut_at_the_timeout(
    slow_connect: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smtplib's timeout bounds each read; a byte every 0.1 s passes every read and would hold
    the session forever. The session's deadline cuts it, also when it passed while the
    connection was still being made (simulated: a slow resolver or an IPv6 address that does
    not answer before IPv4 does; no loopback server can stall a connect and then accept)."""
    if slow_connect:
        real = socket.create_connection

        def slow(*args: Any, **kwargs: Any) -> socket.socket:
            time.sleep(1.5)
            return real(*args, **kwargs)

        monkeypatch.setattr(socket, "create_connection", slow)
    stop = threading.Event()

    def drip(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(b"2")  # "2…", a greeting that never ends its line
                except OSError:
                    return
                stop.wait(0.1)

    outcome: list[BaseException | None] = []

    def send(port: int) -> None:
        try:
            send_email(host="127.0.0.1", port=port, security="starttls", username=None,
                       password=None, allow_insecure=False, message=_message(),
                       recipients=[ALICE], timeout=1.0)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=drip, args=(listener,), daemon=True)
        server.start()
        sender = threading.Thread(target=send, args=(listener.getsockname()[1],), daemon=True)
        sender.start()
        sender.join(30)  # a bound on a hang, not a measurement
        stop.set()
    assert not sender.is_alive(), "the session was never cut"
    [error] = outcome
    assert isinstance(error, DeliveryError), error
    assert (error.kind, error.permanent) == ("timeout", False)
    assert "no complete exchange within 1 s" in str(error)


def test_security_none_is_refused_without_connecting() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        with pytest.raises(DeliveryError) as caught:
            send_email(
                host="127.0.0.1",
                port=listener.getsockname()[1],
                security="none",
                username=USER,
                password=PASSWORD,
                allow_insecure=False,
                message=_message(),
                recipients=[ALICE],
                timeout=2.0,
            )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
    assert (caught.value.kind, caught.value.permanent) == ("insecure", True)


def test_security_none_delivers_when_explicitly_allowed() -> None:
    with SmtpServer() as server:
        outcomes = send_email(
            host=server.host,
            port=server.port,
            security="none",
            username=None,
            password=None,
            allow_insecure=True,
            message=_message(),
            recipients=[ALICE],
            timeout=5.0,
        )
    assert _statuses(outcomes) == {ALICE: ("accepted", 250)}


def test_wrong_password_is_a_permanent_auth_error(server: SmtpServer, tls: TlsPair) -> None:
    with pytest.raises(DeliveryError) as caught:
        _send(server, tls, password="wrong-" + PASSWORD)
    assert (caught.value.kind, caught.value.permanent) == ("auth", True)
    assert "535" in str(caught.value) and PASSWORD not in str(caught.value)
    assert server.messages == []


def test_starttls_missing_means_no_credentials_and_no_mail(tls: TlsPair) -> None:
    with SmtpServer(credentials=(USER, PASSWORD)) as plain, pytest.raises(DeliveryError) as caught:
        _send(plain, tls)
    assert caught.value.kind == "tls"
    assert plain.logins == [] and plain.messages == []


def test_untrusted_certificate_is_a_tls_error(server: SmtpServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        _send(server, tls_pair(), tls_context=ssl.create_default_context())
    assert caught.value.kind == "tls"
    assert server.logins == []


def test_refused_port_is_a_connect_error(tls: TlsPair) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_email(
            host="127.0.0.1",
            port=_refused_port(),
            security="tls",
            username=USER,
            password=PASSWORD,
            allow_insecure=False,
            message=_message(),
            recipients=[ALICE],
            timeout=2.0,
            tls_context=tls.client,
        )
    assert (caught.value.kind, caught.value.permanent) == ("connect", False)


def test_password_never_appears_outside_the_auth_exchange(
    server: SmtpServer, tls: TlsPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forms = {
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
    }
    errors: list[DeliveryError] = []
    for kw in ({"password": PASSWORD + "x"}, {"port": _refused_port()}):
        with pytest.raises(DeliveryError) as caught:
            _send(server, tls, **kw)
        errors.append(caught.value)
    server.data_reply = "554 5.6.0 rejected"
    _send(server, tls)
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [r.getMessage() for r in caplog.records if "AUTH" not in r.getMessage()]
    assert any("RCPT" in t for t in texts), "client logs were not captured"
    assert any(">>" in t for t in texts), "server logs were not captured"
    for text in texts:
        assert not [form for form in forms if form in text], text

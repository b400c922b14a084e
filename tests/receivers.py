"""Real alert receivers on 127.0.0.1 for tests: a verifying webhook endpoint and an SMTP server."""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from standardwebhooks import Webhook


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted webhook answer; `silent` never answers, `endless` streams a body forever,
    `hold` answers once the test sets it (or the receiver stops)."""

    status: int = 200
    reason: str | None = None  # the status line's phrase; None is the standard one
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    silent: bool = False
    endless: bool = False
    hold: threading.Event | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    webhook_id: str | None
    verified: bool
    body: bytes
    headers: dict[str, str]


class WebhookReceiver:
    """An HTTP server that verifies Standard Webhooks signatures and answers from a script."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self._replies: collections.deque[Reply] = collections.deque()
        self._received: list[Received] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll keeps shutdown (once per test) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "/hook") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def respond(self, *replies: Reply) -> None:
        """Queue answers, used in order; once empty every request gets 200."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def count(self, webhook_id: str) -> int:
        return sum(1 for r in self.received if r.webhook_id == webhook_id)

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        # standardwebhooks 1.1.0 raises ValueError/binascii.Error on malformed headers, not
        # only WebhookVerificationError: any exception is a failed verification.
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except Exception:  # noqa: BLE001
            return False
        return True

    def _record(self, received: Received) -> Reply:
        with self._lock:
            self._received.append(received)
            return self._replies.popleft() if self._replies else Reply()


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = receiver._record(
                Received(
                    method=self.command,
                    path=self.path,
                    webhook_id=headers.get("webhook-id"),
                    verified=receiver.verify(body, headers),
                    body=body,
                    headers=headers,
                )
            )
            self._answer(reply)

        do_GET = do_POST

        def _answer(self, reply: Reply) -> None:
            if reply.silent:
                receiver._stopping.wait()
                return
            time.sleep(reply.delay)
            while reply.hold is not None and not reply.hold.wait(0.05):
                if receiver._stopping.is_set():
                    return
            self.send_response(reply.status, reply.reason)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.endless:
                self.end_headers()
                self._stream_forever()
                return
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def _stream_forever(self) -> None:
            chunk = b"x" * 65536
            try:
                while not receiver._stopping.is_set():
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading, as it should
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.server.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.data_reply is not None:
            return self.server.data_reply
        content = envelope.original_content or b""
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), content)
        with self.server.lock:
            self.server.messages.append(mail)
        return "250 Message accepted"


class _Controller(Controller):
    implicit_tls = False

    def factory(self) -> SMTP:
        smtp: SMTP = super().factory()  # type: ignore[no-untyped-call]
        if self.implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; with implicit TLS the whole
            # connection is encrypted, so lift the check (setting auth_require_tls=False
            # instead would warn on every connection).
            smtp._auth_require_tls = False
        return smtp

    def _trigger_server(self) -> None:
        # Controller assumes a fixed port; learn the one the OS picked for port 0 first.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with scripted RCPT/DATA replies, optional STARTTLS and AUTH."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        auth_require_tls: bool = True,
    ) -> None:
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.messages: list[ReceivedMail] = []
        self.logins: list[tuple[str, bool]] = []
        self.lock = threading.Lock()
        self._credentials = credentials
        options: dict[str, Any] = {"ssl_context": implicit_tls}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if credentials is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=auth_require_tls,
            )
        self._controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, **options)
        self._controller.implicit_tls = implicit_tls is not None
        self.host = "127.0.0.1"
        self.port = 0

    def __enter__(self) -> Self:
        self._controller.start()
        self.port = self._controller.port
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._controller.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        login = data.login.decode() if isinstance(data, LoginPassword) else "?"
        with self.lock:
            self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)


@contextmanager
def silent_smtp_server() -> Iterator[tuple[str, int]]:
    """A port where the kernel completes the TCP handshake and nobody ever speaks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield "127.0.0.1", listener.getsockname()[1]


@dataclass(frozen=True, slots=True)
class TlsPair:
    """A server context with a certificate for 127.0.0.1 and a client context that trusts it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_pair() -> TlsPair:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return TlsPair(server=server, client=client)

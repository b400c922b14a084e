"""Email channel: one SMTP session per attempt, an outcome per recipient (blocking; run in a thread).

Per recipient: RCPT 2xx → accepted, 4xx → retry, 5xx → refused; the DATA reply then applies
to every accepted recipient (4xx → retry, 5xx → refused). Failures of the whole session raise
DeliveryError: insecure, config, connect, dns, timeout, tls, auth, sender_refused,
disconnected, smtp. The password never appears in a message or a log record, and smtplib's
debug output (which would print it base64-encoded) stays off.
"""

from __future__ import annotations

import base64
import io
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import getaddresses
from typing import Self

from monitor.errors import DeliveryError
from monitor.redact import SecretScrubber

log = logging.getLogger(__name__)

SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What the server said about one recipient: accepted, retry (4xx) or refused (5xx)."""

    status: str
    code: int
    reply: str


def send_email(
    *,
    host: str,
    port: int,
    security: str,
    username: str | None,
    password: str | None,
    allow_insecure: bool,
    message: EmailMessage,
    recipients: Sequence[str],
    timeout: float,
    tls_context: ssl.SSLContext | None = None,
) -> dict[str, RecipientOutcome]:
    """Send `message` to exactly `recipients`; returns each one's outcome or raises."""
    where = f"smtp {host}:{port}"
    if security not in SECURITY:
        raise DeliveryError("config", f"{where}: unknown security {security!r}", permanent=True)
    if security == "none" and not allow_insecure:
        raise DeliveryError(
            "insecure",
            f"{where}: security 'none' sends mail and credentials in clear text; refused "
            "(set allow_insecure to permit it)",
            permanent=True,
        )
    context = tls_context or ssl.create_default_context()
    deadline = _Deadline(timeout)
    try:
        with deadline:
            smtp = _client(timeout)
            try:
                _connect(smtp, host, port, security == "tls", context, deadline)
                if security == "starttls":
                    _starttls(smtp, context, where)
                if username:
                    _login(smtp, username, password or "", where)
                outcomes = _transfer(smtp, message, list(dict.fromkeys(recipients)), where)
                _quit(smtp)
                return outcomes
            finally:
                deadline.disarm()  # before close: the number of a closed socket is reused
                smtp.close()
    except (DeliveryError, smtplib.SMTPException, OSError) as exc:
        if deadline.passed.is_set():
            raise DeliveryError(
                "timeout", f"{where}: no complete exchange within {timeout:g} s"
            ) from None
        if isinstance(exc, DeliveryError):
            raise
        raise _translate(exc, where, timeout, password) from None


class _Deadline:
    """Cuts the connection once the whole session outlasts `seconds`: smtplib's timeout bounds
    each read only, so a server answering a byte at a time would hold the session, and the
    thread it runs on, forever. The socket is armed as soon as it exists, before any TLS
    handshake or greeting; one armed after the time passed is cut at once."""

    def __init__(self, seconds: float) -> None:
        self.passed = threading.Event()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        self.disarm()

    def arm(self, sock: socket.socket) -> None:
        with self._lock:
            self._fd = sock.fileno()
            if self.passed.is_set():
                _shut(self._fd)

    def disarm(self) -> None:
        with self._lock:
            self._fd = None

    def _cut(self) -> None:
        with self._lock:
            self.passed.set()
            if self._fd is not None:
                _shut(self._fd)


def _shut(fd: int) -> None:
    """Shut the connection down under whoever reads it (a TLS socket shares the number)."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side
    finally:
        sock.detach()  # the session still owns the socket and closes it


def _client(timeout: float) -> smtplib.SMTP:
    """An unconnected client: the session's deadline starts before the connection does."""
    # gethostname, not smtplib's default getfqdn: a reverse DNS lookup can stall for seconds.
    smtp = smtplib.SMTP(local_hostname=socket.gethostname() or "localhost", timeout=timeout)
    smtp.set_debuglevel(0)
    return smtp


def _connect(
    smtp: smtplib.SMTP,
    host: str,
    port: int,
    implicit_tls: bool,
    context: ssl.SSLContext,
    deadline: _Deadline,
) -> None:
    """What `SMTP.connect` (and SMTP_SSL's) does, with the socket armed against the deadline
    before any byte is read: a server can drip its TLS handshake or its greeting too."""
    sock = socket.create_connection((host, port), smtp.timeout)
    deadline.arm(sock)
    smtp.sock = context.wrap_socket(sock, server_hostname=host) if implicit_tls else sock
    smtp._host = host  # type: ignore[attr-defined]  # as SMTP(host) sets it; STARTTLS checks it
    code, reply = smtp.getreply()
    if code != 220:
        raise smtplib.SMTPConnectError(code, reply)


def _starttls(smtp: smtplib.SMTP, context: ssl.SSLContext, where: str) -> None:
    smtp.ehlo()
    if not smtp.has_extn("starttls"):
        raise DeliveryError("tls", f"{where}: server does not offer STARTTLS")
    code, reply = smtp.starttls(context=context)
    if code != 220:
        raise DeliveryError("tls", f"{where}: STARTTLS refused: {code} {_text(reply)}")
    smtp.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS


def _login(smtp: smtplib.SMTP, username: str, password: str, where: str) -> None:
    try:
        smtp.login(username, password)
    except smtplib.SMTPAuthenticationError as exc:
        reply = _scrub(_text(exc.smtp_error), username, password)
        raise DeliveryError(
            "auth",
            f"{where}: login as {username!r} refused: {exc.smtp_code} {reply}",
            permanent=True,
        ) from None
    except smtplib.SMTPException as exc:  # AUTH not offered, or no method in common
        raise DeliveryError(
            "auth",
            f"{where}: cannot log in as {username!r}: {_scrub(str(exc), username, password)}",
            permanent=True,
        ) from None


def _transfer(
    smtp: smtplib.SMTP, message: EmailMessage, recipients: list[str], where: str
) -> dict[str, RecipientOutcome]:
    sender = getaddresses([str(message["From"] or "")])[0][1]
    smtp.ehlo_or_helo_if_needed()
    raw, options = _flatten(smtp, message, [sender, *recipients], where)
    code, reply = smtp.mail(sender, options)
    if code != 250:
        smtp.rset()
        raise DeliveryError(
            "sender_refused",
            f"{where}: sender <{sender}> refused: {code} {_text(reply)}",
            permanent=code >= 500,
        )
    outcomes = {r: _outcome(*smtp.rcpt(r)) for r in recipients}
    for address, outcome in outcomes.items():
        log.debug("%s: RCPT %s → %s %s", where, address, outcome.code, outcome.reply)
    accepted = [r for r, o in outcomes.items() if o.status == "accepted"]
    if not accepted:
        smtp.rset()
        return outcomes
    after = _data(smtp, raw, where)
    if after.status != "accepted":
        outcomes.update({r: after for r in accepted})
    return outcomes


def _data(smtp: smtplib.SMTP, raw: bytes, where: str) -> RecipientOutcome:
    """The server's verdict on the message, which applies to every accepted recipient."""
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPDataError as exc:  # the DATA command itself was refused
        return _outcome(exc.smtp_code, exc.smtp_error)
    log.debug("%s: DATA → %s %s", where, code, _text(reply))
    return _outcome(code, reply)


def _flatten(
    smtp: smtplib.SMTP, message: EmailMessage, addresses: list[str], where: str
) -> tuple[bytes, list[str]]:
    """The message bytes with CRLF line ends, and the MAIL options they need (RFC 6531/6152)."""
    international = not all(a.isascii() for a in addresses)
    if international and not smtp.has_extn("smtputf8"):
        raise DeliveryError(
            "smtputf8", f"{where}: non-ASCII addresses need SMTPUTF8, not offered", permanent=True
        )
    buffer = io.BytesIO()
    policy = SMTPUTF8 if international else message.policy
    BytesGenerator(buffer, policy=policy).flatten(message, linesep="\r\n")
    raw = buffer.getvalue()
    options = ["SMTPUTF8"] if international else []
    if (international or not raw.isascii()) and smtp.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return raw, options


def _outcome(code: int, reply: bytes | str) -> RecipientOutcome:
    status = "accepted" if 200 <= code < 300 else "refused" if 500 <= code < 600 else "retry"
    return RecipientOutcome(status=status, code=code, reply=_text(reply))


def _quit(smtp: smtplib.SMTP) -> None:
    # The outcome is settled once DATA is answered; a failed goodbye must not change it.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        log.debug("QUIT failed after a settled transaction; closing")


def _translate(exc: Exception, where: str, timeout: float, password: str | None) -> DeliveryError:
    """One DeliveryError for a library exception, naming the server and what happened."""
    said = _scrub(_text(str(exc)), "", password or "") or type(exc).__name__
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):  # smtplib reports a read timeout as a disconnect; the timeout is the news
        return DeliveryError("timeout", f"{where}: no answer within {timeout:g} s")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError("disconnected", f"{where}: server closed the connection ({said})")
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _scrub(_text(exc.smtp_error), "", password or "")
        return DeliveryError(
            "smtp",
            f"{where}: server answered {exc.smtp_code} {reply}",
            permanent=500 <= exc.smtp_code < 600,
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return DeliveryError("tls", f"{where}: TLS failed ({said})")
    if isinstance(exc, TimeoutError):
        return DeliveryError("timeout", f"{where}: no answer within {timeout:g} s")
    if isinstance(exc, socket.gaierror):
        return DeliveryError("dns", f"{where}: host name does not resolve ({said})")
    if isinstance(exc, OSError):
        return DeliveryError("connect", f"{where}: cannot connect ({said})")
    return DeliveryError("smtp", f"{where}: {said}")


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _scrub(text: str, username: str, password: str) -> str:
    """`text` without the password in any form a server might echo (plain or base64); a short
    password only where it stands alone (`redact.SHORT_SECRET`), so that a reply's words that
    merely contain it stay readable in the event that records it."""
    if not password:
        return text
    forms = {password, _b64(password), _b64(f"\0{username}\0{password}")}
    return SecretScrubber(forms).scrub(text)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode("ascii")

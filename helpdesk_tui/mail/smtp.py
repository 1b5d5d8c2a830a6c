"""SMTP delivery with aiosmtplib: every outcome sorted into sent, retry later, or failed.

The outbox needs one question answered per attempt: may this message be tried again? Server
replies 4xx, lost connections and timeouts say yes; 5xx, refused logins and TLS problems say
a human must look. TLS is never dropped silently: a STARTTLS server that stops offering
STARTTLS is a failure, not a reason to send in plaintext.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Literal

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)

__all__ = [
    "BACKOFF_SCHEDULE",
    "GIVE_UP_AFTER",
    "MAX_BACKOFF",
    "Outcome",
    "Security",
    "SendResult",
    "SmtpSecurityError",
    "SmtpSession",
    "SmtpSettings",
    "backoff_after",
    "classify_error",
    "send_message",
    "should_give_up",
]

Security = Literal["smtps", "starttls", "plain"]
Outcome = Literal["sent", "retry", "failed"]

BACKOFF_SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=60),
)
"""Waits after the first failed attempts; later ones double from the last, up to MAX_BACKOFF."""
MAX_BACKOFF = timedelta(hours=24)
GIVE_UP_AFTER = timedelta(hours=24)
"""A message still not sent this long after it was queued is failed (what MTAs call expiry)."""


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server; the caller maps its configuration onto this."""

    host: str
    port: int
    security: str = "starttls"
    """smtps: TLS from the first byte; starttls: upgrade required; plain: only when configured.
    A str as config gives it (see Security); any other value fails every send."""
    username: str = ""
    """Empty: send without AUTH."""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    """Seconds for connecting and for each SMTP command."""
    cafile: str = ""
    """A CA bundle to trust instead of the system's (a self-signed test server)."""
    local_hostname: str = ""
    """The EHLO name; empty uses the machine's FQDN."""


@dataclass(frozen=True)
class SendResult:
    """What became of one message: sent, worth another try later, or failed for good."""

    outcome: Outcome
    code: int | None
    """The SMTP reply code that decided, or None for network errors."""
    detail: str
    """The server's reply text or the error, for the log and the agent."""
    accepted_data: bool
    """The server took the message (DATA answered 250) for at least one recipient."""
    refused: tuple[tuple[str, int, str], ...] = ()
    """(address, code, reply) for recipients the server refused while taking the message
    for others; on "retry" with accepted_data, resend to these addresses only."""

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


def backoff_after(attempts: int) -> timedelta:
    """How long to wait after `attempts` failed attempts: 1, 5, 15, 60 min, then doubling."""
    if attempts <= 0:
        return timedelta(0)
    if attempts <= len(BACKOFF_SCHEDULE):
        return BACKOFF_SCHEDULE[attempts - 1]
    extra = attempts - len(BACKOFF_SCHEDULE)
    # Capping the exponent keeps huge attempt counts from building huge integers.
    wait = BACKOFF_SCHEDULE[-1] * (1 << min(extra, 16))
    return min(wait, MAX_BACKOFF)


def should_give_up(queued_at: datetime, now: datetime, limit: timedelta = GIVE_UP_AFTER) -> bool:
    """True once a message has waited `limit` since it was queued (both tz-aware)."""
    return now - queued_at >= limit


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    # Verification is always on; cafile only widens what is trusted.
    return ssl.create_default_context(cafile=settings.cafile or None)


class SmtpSecurityError(SMTPException):
    """The server cannot give the protection the settings ask for (no STARTTLS, no AUTH)."""


def _client(settings: SmtpSettings) -> aiosmtplib.SMTP:
    if settings.security not in ("smtps", "starttls", "plain"):
        raise ValueError(f"unknown SMTP security {settings.security!r}")
    tls = settings.security != "plain"
    return aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        local_hostname=settings.local_hostname or None,
        timeout=settings.timeout,
        use_tls=settings.security == "smtps",
        # STARTTLS and AUTH are done by hand in _open: aiosmtplib's start_tls=None means
        # "if offered", which a downgrade attack turns into "never".
        start_tls=False,
        validate_certs=tls,
        tls_context=_tls_context(settings) if tls else None,
    )


async def _open(settings: SmtpSettings) -> aiosmtplib.SMTP:
    """A connected client, upgraded and logged in as the settings demand."""
    client = _client(settings)
    try:
        await client.connect()
        if settings.security == "starttls":
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise SmtpSecurityError(
                    "server does not offer STARTTLS; refusing to send in plaintext"
                )
            await client.starttls()
        if settings.username:
            await client.ehlo()
            if not client.supports_extension("auth"):
                raise SmtpSecurityError("authentication failed: the server does not offer AUTH")
            await client.login(settings.username, settings.password)
    except BaseException:
        client.close()
        raise
    return client


def _by_code(code: int, detail: str, *, accepted: bool = False) -> SendResult:
    outcome: Outcome = "retry" if 400 <= code < 500 else "failed"
    return SendResult(outcome, code, detail, accepted)


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_SEND_ERRORS = (SMTPException, OSError, TimeoutError, ValueError)
"""What connecting and sending raise for reasons outside our code (OSError covers ssl)."""


def classify_error(exc: BaseException) -> SendResult:
    """The SendResult for an exception raised while connecting or sending."""
    tls = _ssl_cause(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return SendResult(
            "failed", None, f"TLS certificate not trusted: {tls.verify_message}", False
        )
    if isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # The peer hung up mid-handshake: a network fault, not a configuration one.
        return SendResult("retry", None, f"connection closed during TLS: {tls}", False)
    if tls is not None:
        return SendResult("failed", None, f"TLS failed: {tls}", False)
    if isinstance(exc, SMTPAuthenticationError):
        return _by_code(exc.code, f"authentication failed: {_reply(exc.code, exc.message)}")
    if isinstance(exc, SMTPRecipientsRefused):
        refused = tuple((e.recipient, e.code, _reply(e.code, e.message)) for e in exc.recipients)
        named = "; ".join(f"{addr} ({reply})" for addr, _, reply in refused)
        permanent = [code for _, code, _ in refused if code >= 500]
        code = permanent[0] if permanent else refused[0][1] if refused else None
        outcome: Outcome = "failed" if permanent or code is None else "retry"
        return SendResult(outcome, code, f"all recipients refused: {named}", False, refused)
    if isinstance(exc, SMTPResponseException):
        # Sender refused, DATA refused, greeting or EHLO refused, STARTTLS refused (454).
        return _by_code(exc.code, f"server replied {_reply(exc.code, exc.message)}")
    if isinstance(exc, SMTPServerDisconnected | TimeoutError | ConnectionError):
        # Includes SMTPConnectError and SMTPTimeoutError (subclasses of both families).
        return SendResult(
            "retry", None, f"connection problem: {str(exc) or type(exc).__name__}", False
        )
    if isinstance(exc, SMTPException):
        # SmtpSecurityError, "no suitable authentication method", SMTPUTF8 not supported.
        return SendResult("failed", None, exc.message, False)
    if isinstance(exc, OSError):
        return SendResult("retry", None, f"network error: {exc}", False)
    # ValueError: aiosmtplib refuses addresses it cannot send safely before saying anything.
    return SendResult("failed", None, f"cannot send: {exc}", False)


def _sent(errors: dict[str, SMTPResponse], reply: str) -> SendResult:
    if not errors:
        return SendResult("sent", 250, reply, True)
    refused = tuple((addr, r.code, _reply(r.code, r.message)) for addr, r in errors.items())
    named = "; ".join(f"{addr} ({text})" for addr, _, text in refused)
    permanent = [code for _, code, _ in refused if code >= 500]
    if permanent:
        return SendResult(
            "failed",
            permanent[0],
            f"refused recipients: {named}; sent to the others",
            True,
            refused,
        )
    return SendResult(
        "retry", refused[0][1], f"recipients deferred: {named}; sent to the others", True, refused
    )


# Printable ASCII without brackets: no SMTP command can be smuggled in through an address.
_ENVELOPE_ADDR = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")


def _check_envelope(sender: str, recipients: Sequence[str]) -> SendResult | None:
    if isinstance(recipients, str):
        # A bare str is a sequence of characters: never what the caller meant.
        return SendResult("failed", None, "recipients must be a list of addresses", False)
    if not recipients:
        return SendResult("failed", None, "no recipients", False)
    for addr in (sender, *recipients):
        if _ENVELOPE_ADDR.fullmatch(addr) is None:
            return SendResult("failed", None, f"not a sendable address: {addr!r}", False)
    return None


async def send_message(
    settings: SmtpSettings,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    timeout: float,  # noqa: ASYNC109 - one bound for connect, TLS, AUTH and send together
) -> SendResult:
    """Send one message over a fresh connection; `timeout` bounds the whole exchange.

    The envelope is always explicit: headers never decide who receives a message (a Bcc or
    an injected header line must not add recipients).
    """
    bad = _check_envelope(sender, recipients)
    if bad is not None:
        return bad
    client: aiosmtplib.SMTP | None = None
    try:
        async with asyncio.timeout(timeout):
            client = await _open(settings)
            errors, reply = await client.sendmail(sender, list(recipients), message)
    except _SEND_ERRORS as exc:
        if client is not None:
            client.close()
        return classify_error(exc)
    # Outside the send's time bound: a slow QUIT must not turn a delivered message into a retry.
    try:
        async with asyncio.timeout(settings.timeout):
            await _quit(client)
    except TimeoutError:
        client.close()
    return _sent(errors, reply)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; its failure changes nothing about a message already taken."""
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (SMTPException, OSError, TimeoutError):
        client.close()


class SmtpSession:
    """One connection reused for many messages (the outbox drain); reconnects after errors.

    Connecting happens on the first send, so a dead server shows up as the SendResult of the
    message that tried, as in send_message. A connection idle for `idle_check_after` seconds
    is probed with NOOP first: servers close idle clients, and finding that out in the middle
    of a transaction would cost the message a retry (resending it at once could duplicate it,
    since a cut after DATA may or may not have delivered).
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        timeout: float | None = None,
        idle_check_after: float = 5.0,
    ) -> None:
        self.settings = settings
        self.timeout = timeout if timeout is not None else settings.timeout * 4
        """Seconds one send (connect included) may take in all."""
        self.idle_check_after = idle_check_after
        self.connections = 0
        """How many connections this session opened (for logs and tests)."""
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

    async def __aenter__(self) -> SmtpSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _quit(client)
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _alive(self, client: aiosmtplib.SMTP) -> bool:
        if not client.is_connected:
            return False
        if asyncio.get_running_loop().time() - self._last_used < self.idle_check_after:
            return True
        try:
            await client.noop()
        except _SEND_ERRORS:
            return False
        return True

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and await self._alive(self._client):
            return self._client
        self._drop()
        self.connections += 1
        self._client = await _open(self.settings)
        return self._client

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        """Send one message; any failure closes the connection so the next send starts clean."""
        bad = _check_envelope(sender, recipients)
        if bad is not None:
            return bad
        try:
            async with asyncio.timeout(self.timeout):
                client = await self._connected()
                errors, reply = await client.sendmail(sender, list(recipients), message)
        except _SEND_ERRORS as exc:
            self._drop()
            return classify_error(exc)
        finally:
            self._last_used = asyncio.get_running_loop().time()
        result = _sent(errors, reply)
        if not result.ok:
            self._drop()
        return result

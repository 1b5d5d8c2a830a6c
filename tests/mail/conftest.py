"""A real aiosmtpd on 127.0.0.1 that records envelopes and misbehaves on request."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from helpdesk_tui.mail.smtp import Security, SmtpSettings

USER = "agent"
PASSWORD = "s3cret"
_DROP = "drop"
_HANGUP = "hangup"


@dataclass(frozen=True)
class Received:
    """One message as the server took it: the envelope, and the content byte for byte."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class RecordingHandler:
    """Keeps every accepted message; answers the next N DATA commands as told."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse_rcpt: dict[str, str] = {}
        """Recipient address -> the reply its RCPT TO gets (e.g. "550 5.1.1 no such user")."""
        self._planned: list[str] = []
        self._lock = threading.Lock()

    def fail_next(self, n: int, reply: str) -> None:
        """The next n messages get `reply` (a full "451 4.3.0 text" line) instead of 250."""
        with self._lock:
            self._planned += [reply] * n

    def drop_next(self, n: int) -> None:
        """The next n messages see the connection cut after their content arrives."""
        with self._lock:
            self._planned += [_DROP] * n

    def hang_up_after_next(self, n: int) -> None:
        """The next n messages are accepted, then the server closes the connection (idle kick)."""
        with self._lock:
            self._planned += [_HANGUP] * n

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.refuse_rcpt.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            planned = self._planned.pop(0) if self._planned else None
        if planned == _DROP:
            # Abort: no reply at all, as when a server or a middlebox dies mid-transaction.
            server.transport.abort()
            return "421 4.4.2 gone"
        if planned is not None and planned != _HANGUP:
            return planned
        self.messages.append(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        if planned == _HANGUP:
            # The reply is written before the loop runs this, and close() flushes it first.
            server.loop.call_soon(server.transport.close)
        return "250 2.0.0 Message accepted"


@dataclass
class SmtpServer:
    """A running test server and what a client needs to reach it."""

    host: str
    port: int
    handler: RecordingHandler
    controller: Any
    security: Security = "plain"
    cafile: str = ""
    auth: bool = False

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def fail_next(self, n: int, reply: str) -> None:
        self.handler.fail_next(n, reply)

    def drop_next(self, n: int) -> None:
        self.handler.drop_next(n)

    def hang_up_after_next(self, n: int) -> None:
        self.handler.hang_up_after_next(n)

    def refuse(self, address: str, reply: str) -> None:
        self.handler.refuse_rcpt[address] = reply

    def settings(self, **changes: Any) -> SmtpSettings:
        """Client settings that match this server (verified TLS, the right login)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": USER if self.auth else "",
            "password": PASSWORD if self.auth else "",
            "timeout": 5.0,
            "cafile": self.cafile,
            "local_hostname": "client.test",
        }
        values.update(changes)
        return SmtpSettings(**values)

    def stop(self) -> None:
        self.controller.stop()


class ServerFactory(Protocol):
    def __call__(
        self, *, auth: bool = False, starttls: bool = False, smtps: bool = False
    ) -> SmtpServer: ...


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost (cryptography is not installed)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; the TLS tests need it to make a certificate")
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TlsFiles(cert, key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd then sends the standard 235/535 reply itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_factory(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Start servers with AUTH, STARTTLS or implicit TLS; all are stopped after the test."""
    started: list[SmtpServer] = []

    def start(*, auth: bool = False, starttls: bool = False, smtps: bool = False) -> SmtpServer:
        handler = RecordingHandler()
        kwargs: dict[str, Any] = {}
        security: Security = "plain"
        cafile = ""
        if starttls or smtps:
            files: TlsFiles = request.getfixturevalue("tls_files")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(files.cert, files.key)
            cafile = str(files.cert)
            if smtps:
                kwargs["ssl_context"] = context
                security = "smtps"
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
                security = "starttls"
        if auth:
            kwargs.update(
                authenticator=_authenticator,
                auth_required=True,
                # Plain-port AUTH for tests only; real servers demand TLS first.
                auth_require_tls=starttls,
            )
        last: OSError | None = None
        for _ in range(5):
            port = _free_port()
            controller = Controller(
                handler, hostname="127.0.0.1", port=port, ready_timeout=5, **kwargs
            )
            try:
                controller.start()
            except OSError as exc:  # lost the free port to someone else: pick another
                last = exc
                continue
            server = SmtpServer("127.0.0.1", port, handler, controller, security, cafile, auth)
            started.append(server)
            return server
        raise RuntimeError(f"could not start aiosmtpd: {last}")

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(smtp_factory: ServerFactory) -> SmtpServer:
    """A plain SMTP server without AUTH on 127.0.0.1."""
    return smtp_factory()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    return _free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (for timeouts)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()

"""A real Dovecot on 127.0.0.1 for the intake tests, built from ../shared/servers/mkdovecot.sh."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOVECOT = ROOT.parent / "shared" / "servers" / "mkdovecot.sh"
_users = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


@dataclass
class Dovecot:
    dir: Path
    port: int
    tls_port: int
    proc: subprocess.Popen[bytes]

    @property
    def cafile(self) -> str:
        return str(self.dir / "cert.pem")

    def new_user(self) -> str:
        """A fresh, empty mailbox for one test (Dovecot takes any user name, password "pass")."""
        return f"user{next(_users)}-{os.getpid()}"

    def client(self, user: str):  # type: ignore[no-untyped-def]
        from imapclient import IMAPClient

        c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        c.login(user, "pass")
        return c

    def append(self, user: str, messages: list[bytes], folder: str = "INBOX") -> None:
        c = self.client(user)
        try:
            for i in range(0, len(messages), 100):
                c.multiappend(folder, messages[i : i + 100])
        finally:
            c.logout()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wait_greeting(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"dovecot exited: {log.read_text(errors='replace') if log.exists() else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)  # polling for a server to come up, not timing a test
    raise RuntimeError("dovecot did not answer within 20 s")


def start_dovecot(binary: str) -> Dovecot:
    """Start a throwaway Dovecot; the caller stops it (fixtures and benchmarks share this)."""
    # Under /tmp with mode 0755: as root, Dovecot's mail processes run as nobody and must
    # traverse every parent (pytest's own basetemp is 0700).
    base = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
    base.chmod(0o755)
    port, tls_port = _free_port(), _free_port()
    subprocess.run(
        ["sh", str(MKDOVECOT), str(base), str(port), str(tls_port)], check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [binary, "-F", "-c", str(base / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Dovecot(base, port, tls_port, proc)
    try:
        _wait_greeting(port, proc, base / "dovecot.log")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = _dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/run does this)")
    if not MKDOVECOT.exists():
        pytest.skip(f"{MKDOVECOT} is missing (the shared folder sits beside the project)")
    server = start_dovecot(binary)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)

"""The worker against a real Dovecot: fresh, incremental, UIDVALIDITY, drops and kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk import mailboxes
from helpdesk_tui.desk.session import DeskHandle, open_desk
from helpdesk_tui.mail.imap import ImapMailbox, ImapSettings
from helpdesk_tui.worker import Worker
from tests.conftest import T0
from tests.imap_server import Dovecot


def message(i: int, *, sender: str | None = None, subject: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"Customer {i} <{sender or f'c{i}@customer.example'}>"
    m["To"] = "support@desk.example"
    m["Subject"] = subject or f"Request number {i}"
    m["Message-ID"] = f"<msg{i}@customer.example>"
    m["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    m.set_content(f"Hello, this is request {i}.\nRegards")
    return m.as_bytes()


def write_config(
    path: Path,
    dovecot: Dovecot,
    user: str,
    *,
    folder: str = "INBOX",
    after: str = "leave",
    port: int | None = None,
) -> None:
    path.write_text(
        f"""
[desk]
name = "Test Desk"
timezone = "UTC"
domain = "desk.example"

[[mailbox]]
name = "support"
address = "support@desk.example"
host = "127.0.0.1"
port = {port or dovecot.port}
security = "plain"
username = "{user}"
password_env = "TEST_IMAP_PASSWORD"
folder = "{folder}"
after_import = "{after}"
category = "Support"
acknowledge_template = "acknowledgement"
"""
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> dict[str, str]:
    """The worker's environment; its store is SQLite or PostgreSQL (a URL in HELPDESK_DB)."""
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "pass")
    monkeypatch.setenv("HELPDESK_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HELPDESK_DB", db_url)
    return {"db": db_url, "config": str(tmp_path / "config.toml")}


def handle(clock: FixedClock | None = None) -> DeskHandle:
    return open_desk(actor="", clock=clock or FixedClock(T0))


def sql(db: str, query: str) -> Any:
    """The first column of the first row, read on a connection of its own."""
    engine = sa.create_engine(db, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


def count_in(db: str) -> tuple[int, int]:
    mails = sql(db, "select count(*) from importedmail")
    msgs = sql(db, "select count(*) from message where direction='in'")
    return int(mails), int(msgs)


def test_fresh_then_incremental_then_duplicate(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user, after="flag")
    dovecot.append(user, [message(i) for i in range(3)])
    h = handle()
    w = Worker(h, parse_processes=1)
    first = w.run_once().sync[0]
    assert (first.imported, first.duplicates, first.error) == (3, 0, "")
    assert first.acknowledged == 3
    dovecot.append(user, [message(3), message(4), message(0)])  # message(0) again: same bytes
    second = w.run_once().sync[0]
    assert (second.imported, second.duplicates, second.error) == (2, 1, "")
    assert w.run_once().sync[0].imported == 0
    w.close()
    status = mailboxes.status(h.store)[0]
    assert status.imported == 6 and status.acks_queued == 5 and status.last_success is not None
    assert status.consecutive_failures == 0
    c = dovecot.client(user)
    c.select_folder("INBOX", readonly=True)
    flagged = c.search(["FLAGGED"])
    unseen = c.search(["UNSEEN"])
    c.logout()
    assert (
        len(flagged) == 6 and len(unseen) == 6
    )  # flagged after commit; BODY.PEEK left \Seen alone


def test_move_after_import(dovecot: Dovecot, env: dict[str, str], tmp_path: Path) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user, after="move:Processed")
    dovecot.append(user, [message(i) for i in range(4)])
    w = Worker(handle(), parse_processes=1)
    assert w.run_once().sync[0].imported == 4
    w.close()
    c = dovecot.client(user)
    inbox = c.select_folder("INBOX")[b"EXISTS"]
    processed = c.select_folder("Processed")[b"EXISTS"]
    c.logout()
    assert (inbox, processed) == (0, 4)


def test_uidvalidity_change_reimports_nothing_twice(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    c = dovecot.client(user)
    c.create_folder("Support")
    c.logout()
    write_config(tmp_path / "config.toml", dovecot, user, folder="Support")
    dovecot.append(user, [message(i) for i in range(5)], folder="Support")
    h = handle()
    w = Worker(h, parse_processes=1)
    assert w.run_once().sync[0].imported == 5
    w.close()
    old = mailboxes.state(h.store, "support").uidvalidity
    c = dovecot.client(user)
    c.delete_folder("Support")
    c.create_folder("Support")
    c.logout()
    dovecot.append(user, [message(i) for i in range(7)], folder="Support")  # 5 old + 2 new
    w = Worker(h, parse_processes=1)
    report = w.run_once().sync[0]
    w.close()
    assert mailboxes.state(h.store, "support").uidvalidity != old
    assert (report.imported, report.duplicates, report.error) == (2, 5, "")
    assert count_in(env["db"])[1] == 7


def test_repeated_uidvalidity_changes_stop_the_mailbox(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user, folder="Support")
    c = dovecot.client(user)
    c.create_folder("Support")
    c.logout()
    h = handle()
    for _ in range(5):
        w = Worker(h, parse_processes=1)
        w.run_once()
        w.close()
        c = dovecot.client(user)
        c.delete_folder("Support")
        c.create_folder("Support")
        c.logout()
    st = mailboxes.state(h.store, "support")
    assert "UIDVALIDITY changed" in st.stopped_reason
    mailboxes.resume(h.store, "support")
    assert mailboxes.state(h.store, "support").stopped_reason == ""


class DroppingProxy:
    """Forwards to Dovecot and cuts the connection after `limit` bytes from the server."""

    def __init__(self, port: int, limit: int) -> None:
        self.target, self.limit = port, limit
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.limit), daemon=True
            ).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: max(limit - sent, 0)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()


def test_connection_dropped_mid_fetch(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    dovecot.append(user, [message(i) for i in range(300)])
    proxy = DroppingProxy(dovecot.port, limit=60_000)  # dies inside the first big FETCH
    write_config(tmp_path / "config.toml", dovecot, user, port=proxy.port)
    clock = FixedClock(T0)
    h = handle(clock)
    w = Worker(h, parse_processes=1)
    broken = w.run_once().sync[0]
    w.close()
    proxy.close()
    assert broken.error
    st = mailboxes.status(h.store)[0]
    assert st.consecutive_failures == 1 and st.last_error
    write_config(tmp_path / "config.toml", dovecot, user)
    h = handle(clock)
    w = Worker(h, parse_processes=1)
    clock.advance(minutes=10)  # past the backoff
    healed = w.run_once().sync[0]
    w.close()
    assert healed.error == ""
    assert count_in(env["db"])[1] == 300
    assert mailboxes.status(h.store)[0].consecutive_failures == 0


WORKER = [sys.executable, "-m", "helpdesk_tui", "worker", "--once"]


def _run_until_killed(env_vars: dict[str, str], db: str, kill_after: int) -> bool:
    """Start a sync and SIGKILL it once `kill_after` mails are in; False if it finished first."""
    proc = subprocess.Popen(WORKER, env=env_vars, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None:
        try:
            if count_in(db)[0] >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
        except sa.exc.DBAPIError:
            pass  # the schema is still being created
        threading.Event().wait(0.01)  # polling a condition, not timing a result
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    return False


@pytest.mark.slow
def test_kill_9_during_sync_loses_and_doubles_nothing(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    total = 2000
    dovecot.append(user, [message(i) for i in range(total)])
    write_config(tmp_path / "config.toml", dovecot, user, after="flag")
    env_vars = dict(os.environ, HELPDESK_AGENT="worker")
    kills = 0
    for kill_after in (1, 300, 900, 1500):
        if _run_until_killed(env_vars, env["db"], kill_after):
            kills += 1
    last = subprocess.run(WORKER, env=env_vars, check=True, capture_output=True, text=True)
    mails, msgs = count_in(env["db"])
    assert kills >= 2, (mails, msgs, last.stdout, last.stderr)
    assert (mails, msgs) == (total, total)
    if env["db"].startswith("sqlite"):
        assert sql(env["db"], "PRAGMA integrity_check") == "ok"
    dupes = sql(
        env["db"],
        "select count(*) from (select rfc_message_id from message where direction='in' "
        "group by rfc_message_id having count(*) > 1) as twice",
    )
    assert dupes == 0
    assert sql(env["db"], "select count(*) from outbox where kind='ack'") == total
    c = dovecot.client(user)
    c.select_folder("INBOX", readonly=True)
    assert len(c.search(["FLAGGED"])) == total  # even mail committed just before a kill
    c.logout()


def test_mailbox_status_json(dovecot: Dovecot, env: dict[str, str], tmp_path: Path) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user)
    dovecot.append(
        user, [message(1), message(2, sender="mailer-daemon@mx.example", subject="Undeliverable")]
    )
    env_vars = dict(os.environ, HELPDESK_AGENT="worker")
    subprocess.run(WORKER, env=env_vars, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-m", "helpdesk_tui", "mailbox", "status", "--json"],
        env=env_vars,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows: list[dict[str, Any]] = json.loads(out)
    assert {
        "name",
        "imported",
        "needs_review",
        "acks_queued",
        "acks_suppressed",
        "last_success",
        "last_error",
    } <= set(rows[0])
    assert (rows[0]["imported"], rows[0]["acks_queued"], rows[0]["acks_suppressed"]) == (2, 1, 1)


def test_tls_imaps_verifies_certificate(dovecot: Dovecot) -> None:
    user = dovecot.new_user()
    good = ImapMailbox(
        ImapSettings("127.0.0.1", dovecot.tls_port, "imaps", user, "pass", cafile=dovecot.cafile)
    )
    good.connect()
    assert good.uidvalidity > 0
    good.close()
    from helpdesk_tui.mail.imap import ImapError

    bad = ImapMailbox(ImapSettings("127.0.0.1", dovecot.tls_port, "imaps", user, "pass"))
    with pytest.raises(ImapError, match=r"TLS|certificate|verify"):
        bad.connect()
    starttls = ImapMailbox(
        ImapSettings("127.0.0.1", dovecot.port, "starttls", user, "pass", cafile=dovecot.cafile)
    )
    starttls.connect()
    starttls.close()


def _wait_for(predicate: Any, timeout: float) -> bool:
    """Poll a condition with a bounded timeout (waiting on an outcome, not timing one)."""
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if predicate():
                return True
            done.wait(0.05)
        return bool(predicate())
    finally:
        deadline.cancel()


def test_idle_wakes_the_worker_on_new_mail(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user)
    h = handle()
    stop = threading.Event()
    w = Worker(h, parse_processes=1, stop=stop)
    runner = threading.Thread(target=w.run_forever, kwargs={"poll_seconds": 600.0})
    runner.start()
    try:
        assert _wait_for(lambda: "support" in w._connections, 10)
        assert w._connections["support"].has_idle
        dovecot.append(user, [message(1)])
        # The loop sleeps up to 600 s between passes: only IDLE can bring the mail in.
        assert _wait_for(lambda: count_in(env["db"])[1] == 1, 10)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_sigterm_finishes_and_exits_zero(
    dovecot: Dovecot, env: dict[str, str], tmp_path: Path
) -> None:
    user = dovecot.new_user()
    write_config(tmp_path / "config.toml", dovecot, user)
    dovecot.append(user, [message(i) for i in range(50)])
    env_vars = dict(os.environ, HELPDESK_AGENT="worker")
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpdesk_tui", "worker"],
        env=env_vars,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(lambda: _safe_count(env["db"]) == 50, 60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err


def _safe_count(db: str) -> int:
    try:
        return count_in(db)[1]
    except sa.exc.DBAPIError:
        return -1


def test_mbox_and_maildir_import_exactly_once(env: dict[str, str], tmp_path: Path) -> None:
    import mailbox as mbx

    (tmp_path / "config.toml").write_text('[desk]\nname = "Test"\ntimezone = "UTC"\n')
    box = mbx.mbox(str(tmp_path / "old.mbox"))
    for i in range(30):
        box.add(message(i))
    box.close()
    md = mbx.Maildir(str(tmp_path / "old-maildir"), create=True)
    for i in range(25, 40):  # 25..29 are in both archives
        md.add(message(i))
    env_vars = dict(os.environ, HELPDESK_AGENT="admin")
    run = [sys.executable, "-m", "helpdesk_tui", "import"]
    first = subprocess.run(
        [*run, "mbox", str(tmp_path / "old.mbox")],
        env=env_vars,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "30 imported" in first.stdout
    again = subprocess.run(
        [*run, "mbox", str(tmp_path / "old.mbox")],
        env=env_vars,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0 imported, 30 already there" in again.stdout
    md_out = subprocess.run(
        [*run, "maildir", str(tmp_path / "old-maildir")],
        env=env_vars,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "10 imported, 5 already there" in md_out.stdout
    assert count_in(env["db"])[1] == 40
    assert sql(env["db"], "select count(*) from outbox") == 0  # archives: no acks

"""The outbox duty against a real aiosmtpd: exactly once, retries, failures, and a round trip."""

from __future__ import annotations

import email
import socket
import subprocess
import sys
import threading
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk import outbox
from helpdesk_tui.desk.intake import Intake
from helpdesk_tui.desk.session import DeskHandle, open_desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import open_store
from helpdesk_tui.worker import Worker
from tests.conftest import T0
from tests.imap_server import Dovecot
from tests.mail.conftest import ServerFactory, SmtpServer


def config_text(port: int, *, extra_smtp: str = "", imap: str = "") -> str:
    return f"""
[desk]
name = "Test Desk"
timezone = "UTC"
domain = "desk.example"

[smtp]
host = "127.0.0.1"
port = {port}
security = "plain"
timeout = 5
{extra_smtp}
{imap}
"""


class HandleMaker:
    """Opens the desk on a private store and config that points at a given SMTP port."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
        self.tmp_path, self.monkeypatch, self.db_url = tmp_path, monkeypatch, db_url
        self.clock = FixedClock(T0)

    def __call__(self, port: int, *, extra_smtp: str = "", imap: str = "") -> DeskHandle:
        cfg = self.tmp_path / "config.toml"
        cfg.write_text(config_text(port, extra_smtp=extra_smtp, imap=imap))
        self.monkeypatch.setenv("HELPDESK_CONFIG", str(cfg))
        self.monkeypatch.setenv("HELPDESK_DB", self.db_url)  # SQLite or PostgreSQL
        self.monkeypatch.setenv("HELPDESK_DATA_DIR", str(self.tmp_path / "data"))
        h = open_desk(actor="alice", clock=self.clock)
        if not h.desk.agents():
            h.desk.add_agent("alice", "Alice Able", "alice@desk.example", "Alice, Support")
            h.desk.add_agent("bob", "Bob Baker", "bob@desk.example")
        return h


@pytest.fixture
def make_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> HandleMaker:
    return HandleMaker(tmp_path, monkeypatch, db_url)


def _ticket(h: DeskHandle, subject: str = "Printer on fire") -> int:
    return h.desk.register(
        customer_email="carla@customer.example",
        customer_name="Carla",
        subject=subject,
        body="It smokes.",
        owner="alice",
    ).number


def _parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _states(h: DeskHandle) -> list[str]:
    return [o.state for o in reversed(h.desk.outbox())]


def test_reply_is_sent_once_with_threading_headers(
    make_handle: HandleMaker, smtp_server: SmtpServer
) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    reply = h.desk.reply(n, "Turn it off and on again.")
    w = Worker(h, parse_processes=1)
    report = w.duty_outbox()
    assert (report.sent, report.retry, report.failed) == (1, 0, 0)
    assert w.duty_outbox().sent == 0  # nothing left: never twice
    assert len(smtp_server.messages) == 1
    got = smtp_server.messages[0]
    assert got.rcpt_tos == ("carla@customer.example",)
    msg = _parsed(got.content)
    assert msg["Subject"] == f"Re: [#{n}] Printer on fire"
    assert msg["Message-ID"] == reply.rfc_message_id
    assert "Alice" in str(msg["From"])
    assert "Turn it off" in msg.get_content() and "Alice, Support" in msg.get_content()
    assert _states(h) == ["sent"]
    assert h.desk.show(n).messages[-1].outbox_state == "sent"


def test_smtp_down_then_back_delivers_exactly_once(
    make_handle: HandleMaker, smtp_server: SmtpServer
) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    h.desk.reply(n, "hello")
    smtp_server.stop()
    w = Worker(h, parse_processes=1)
    assert w.duty_outbox().retry == 1
    item = h.desk.outbox()[0]
    assert item.state == "retry" and item.next_attempt_at is not None and item.last_error
    assert w.duty_outbox().sent == 0  # not due yet
    again = Controller(smtp_server.handler, hostname="127.0.0.1", port=smtp_server.port)
    again.start()
    smtp_server.controller = again  # the fixture stops this one
    make_handle.clock.advance(minutes=1)
    assert w.duty_outbox().sent == 1
    assert w.duty_outbox().sent == 0
    assert len(smtp_server.messages) == 1 and _states(h) == ["sent"]


def test_4xx_retries_5xx_fails_with_reason(
    make_handle: HandleMaker, smtp_server: SmtpServer
) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    h.desk.reply(n, "first")
    smtp_server.fail_next(1, "451 4.3.0 try again later")
    w = Worker(h, parse_processes=1)
    assert w.duty_outbox().retry == 1
    assert "451" in h.desk.outbox()[0].last_error
    make_handle.clock.advance(minutes=1)
    assert w.duty_outbox().sent == 1
    h.desk.reply(n, "second")
    smtp_server.fail_next(1, "550 5.7.1 message rejected as spam")
    assert w.duty_outbox().failed == 1
    failed = h.desk.outbox(states=["failed"])[0]
    assert "550" in failed.last_error and "rejected" in failed.last_error
    detail = h.desk.show(n)
    assert (
        detail.messages[-1].outbox_state == "failed" and "550" in detail.messages[-1].outbox_error
    )
    assert any(a.kind == "send_failed" for a in h.desk.alerts())
    outbox.retry_now(h.store, h.desk.clock, failed.id)
    assert w.duty_outbox().sent == 1
    assert len(smtp_server.messages) == 2


def test_auth_failure_is_a_clear_error(
    make_handle: HandleMaker, smtp_factory: ServerFactory
) -> None:
    server = smtp_factory(auth=True)
    h = make_handle(
        server.port, extra_smtp='username = "someone"\npassword_env = "WRONG_SMTP_PASSWORD"'
    )
    import os

    os.environ["WRONG_SMTP_PASSWORD"] = "not-the-password"
    try:
        h.desk.reply(_ticket(h), "hi")
        report = Worker(h, parse_processes=1).duty_outbox()
    finally:
        del os.environ["WRONG_SMTP_PASSWORD"]
    assert report.failed == 1
    assert "authentication failed" in h.desk.outbox()[0].last_error


def test_two_workers_send_each_mail_once(make_handle: HandleMaker, smtp_server: SmtpServer) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    for i in range(40):
        h.desk.reply(n, f"reply {i}")
    workers = [Worker(make_handle(smtp_server.port), parse_processes=1) for _ in range(2)]
    for i, w in enumerate(workers):
        w.worker_id = f"w{i}"
    threads = [
        threading.Thread(target=lambda w=w: [w.duty_outbox(limit=5) for _ in range(10)])
        for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [_parsed(m.content)["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert set(_states(h)) == {"sent"}


def test_crash_after_data_is_resent_with_same_id_and_marked(
    make_handle: HandleMaker, smtp_server: SmtpServer
) -> None:
    h = make_handle(smtp_server.port)
    reply = h.desk.reply(_ticket(h), "hello")
    claimed = outbox.claim(h.store, h.desk.clock, "dead-worker")  # then the process "dies"
    assert len(claimed) == 1
    w = Worker(h, parse_processes=1)
    assert w.duty_outbox().sent == 0  # a fresh claim is not stolen
    make_handle.clock.advance(minutes=11)
    assert w.duty_outbox().sent == 1
    item = h.desk.outbox()[0]
    assert item.ambiguous and "dead-worker" in item.last_error
    assert _parsed(smtp_server.messages[0].content)["Message-ID"] == reply.rfc_message_id


def test_a_claim_by_a_killed_process_on_this_host_is_resent_at_once(
    make_handle: HandleMaker, smtp_server: SmtpServer
) -> None:
    h = make_handle(smtp_server.port)
    reply = h.desk.reply(_ticket(h), "hello")
    dead = _dead_worker_id()
    assert len(outbox.claim(h.store, h.desk.clock, dead)) == 1  # then SIGKILL, mid-send
    w = Worker(h, parse_processes=1)
    assert w.duty_outbox().sent == 1  # no ten-minute wait: that process cannot be sending
    item = h.desk.outbox()[0]
    assert item.ambiguous and dead in item.last_error
    assert _parsed(smtp_server.messages[0].content)["Message-ID"] == reply.rfc_message_id


def _dead_worker_id() -> str:
    """The id a worker on this host had before it was killed: its pid is gone."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return f"{socket.gethostname()}:{int(gone.stdout)}"


def test_each_success_is_committed_before_the_next_mail_goes_out(
    make_handle: HandleMaker,
    smtp_server: SmtpServer,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    replies = [h.desk.reply(n, f"reply {i}").rfc_message_id for i in range(8)]
    # What another process would see: a connection of its own, read as each DATA arrives.
    watcher = open_store(db_url, migrate=False)
    seen: list[tuple[str, dict[str, str]]] = []
    take = smtp_server.handler.handle_DATA

    async def handle_data(server: Any, session: Any, envelope: Any) -> str:
        with watcher.read() as s:
            states = dict(s.exec(select(M.Outbox.rfc_message_id, M.Outbox.state)).all())
        seen.append((str(_parsed(envelope.original_content)["Message-ID"]), states))
        return await take(server, session, envelope)

    monkeypatch.setattr(smtp_server.handler, "handle_DATA", handle_data)
    try:
        assert Worker(h, parse_processes=1).duty_outbox().sent == len(replies)
    finally:
        watcher.dispose()
    assert [msgid for msgid, _ in seen] == replies
    for k, (msgid, states) in enumerate(seen):
        # Everything the server took before is recorded: a kill now could resend only this one.
        assert [states[m] for m in replies[:k]] == ["sent"] * k, f"at mail {k + 1}"
        assert states[msgid] == "sending"
    assert _states(h) == ["sent"] * len(replies)


class _Killed(Exception):
    """Stands for SIGKILL: the worker dies between the server's 250 and its commit."""


def test_a_kill_after_the_servers_250_resends_only_that_mail(
    make_handle: HandleMaker, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_handle(smtp_server.port)
    n = _ticket(h)
    replies = [h.desk.reply(n, f"reply {i}").rfc_message_id for i in range(10)]
    dying = Worker(h, parse_processes=1)
    dying.worker_id = _dead_worker_id()  # so the next worker sees its claims as orphaned
    record = outbox.SentRecorder.__call__
    commits = 0

    def record_then_die(recorder: outbox.SentRecorder, item_id: int) -> None:
        nonlocal commits
        commits += 1
        if commits == 4:
            raise _Killed
        record(recorder, item_id)

    monkeypatch.setattr(outbox.SentRecorder, "__call__", record_then_die)
    with pytest.raises(_Killed):
        dying.duty_outbox()
    monkeypatch.setattr(outbox.SentRecorder, "__call__", record)
    assert len(smtp_server.messages) == 4
    assert _states(h) == ["sent"] * 3 + ["sending"] * 7
    assert Worker(h, parse_processes=1).duty_outbox().sent == 7
    received = [str(_parsed(m.content)["Message-ID"]) for m in smtp_server.messages]
    assert sorted(received) == sorted([*replies, replies[3]])  # mail 4 twice, the rest once
    # The claim cannot tell which of the dead worker's items was in flight: all are marked.
    ambiguous = {o.message_id for o in h.desk.outbox() if o.ambiguous}
    assert ambiguous == set(replies[3:])
    assert _states(h) == ["sent"] * 10


def _incoming(
    subject: str, *, attachment: bool = False, extra: dict[str, str] | None = None
) -> bytes:
    m = EmailMessage()
    m["From"] = "Carla <carla@customer.example>"
    m["To"] = "support@desk.example"
    m["Cc"] = "boss@customer.example"
    m["Subject"] = subject
    m["Message-ID"] = f"<{abs(hash(subject))}@customer.example>"
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content("Please help.")
    if attachment:
        m.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    return m.as_bytes()


def _intake(h: DeskHandle, tmp_path: Path) -> Intake:
    def add_mailbox(s: Session) -> None:
        if s.exec(select(M.Mailbox)).first() is None:
            s.add(
                M.Mailbox(
                    name="support", address="support@desk.example", ack_template="acknowledgement"
                )
            )

    h.store.write(add_mailbox)
    from helpdesk_tui import paths

    return Intake(
        h.desk,
        mailbox="support",
        attachments_dir=paths.attachments_dir_for(h.store.url),
        own_addresses=["support@desk.example"],
    )


def test_ack_forward_with_attachment_and_reply_all(
    make_handle: HandleMaker, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    h = make_handle(smtp_server.port)
    incoming = _incoming("Invoice wrong", attachment=True)
    r = _intake(h, tmp_path).ingest(incoming, uidvalidity=1, uid=1)
    assert r.acknowledged
    n = r.ticket
    assert n is not None
    att = h.desk.show(n).messages[0].attachments[0]
    h.desk.forward(n, "billing@supplier.example", "Can you check?", attachment_ids=[att.id])
    h.desk.reply(n, "We are checking.", reply_all=True)
    w = Worker(h, parse_processes=1)
    assert w.duty_outbox().sent == 3
    ack, fwd, rep = (_parsed(m.content) for m in smtp_server.messages)
    assert ack["Auto-Submitted"] == "auto-replied" and ack["X-Auto-Response-Suppress"] == "All"
    assert ack["Precedence"] == "auto_reply" and ack["X-Helpdesk-Loop"]
    assert fwd["Subject"].startswith("Fwd: [#") and fwd["To"] == "billing@supplier.example"
    names = [p.get_filename() for p in fwd.iter_attachments()]
    assert names == ["data.csv"]
    assert smtp_server.messages[2].rcpt_tos == ("carla@customer.example", "boss@customer.example")
    assert rep["In-Reply-To"] == _parsed(incoming)["Message-ID"]


def test_header_injection_in_incoming_subject_never_reaches_a_header(
    make_handle: HandleMaker, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    h = make_handle(smtp_server.port)
    raw = (
        b"From: carla@customer.example\r\nTo: support@desk.example\r\n"
        b"Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?=\r\n"
        b"Message-ID: <inject@customer.example>\r\n\r\nhi\r\n"
    )
    r = _intake(h, tmp_path).ingest(raw, uidvalidity=1, uid=1)
    assert r.ticket is not None
    h.desk.reply(r.ticket, "answer")
    Worker(h, parse_processes=1).duty_outbox()
    for m in smtp_server.messages:
        head = m.content.split(b"\r\n\r\n", 1)[0].lower()
        assert b"\nbcc:" not in head and not head.startswith(b"bcc:")
        assert "victim@evil.example" not in m.rcpt_tos


def test_round_trip_through_dovecot_and_aiosmtpd(
    make_handle: HandleMaker,
    smtp_server: SmtpServer,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = dovecot.new_user()
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "pass")
    imap = f"""
[[mailbox]]
name = "support"
address = "support@desk.example"
host = "127.0.0.1"
port = {dovecot.port}
security = "plain"
username = "{user}"
password_env = "TEST_IMAP_PASSWORD"
acknowledge_template = "acknowledgement"
"""
    h = make_handle(smtp_server.port, imap=imap)
    dovecot.append(user, [_incoming("My screen is blank")])
    w = Worker(h, parse_processes=1)
    first = w.run_once()
    assert first.sync[0].imported == 1 and first.outbox.sent == 1  # the acknowledgement
    n = first.sync[0].results[0].ticket
    assert n is not None
    h.desk.reply(n, "Is it plugged in?")
    assert w.run_once().outbox.sent == 1
    ours = _parsed(smtp_server.messages[-1].content)
    answer = EmailMessage()
    answer["From"] = "Carla <carla@customer.example>"
    answer["To"] = "support@desk.example"
    answer["Subject"] = str(ours["Subject"]).replace("Re: ", "Re: Re: ")
    answer["Message-ID"] = "<answer@customer.example>"
    answer["In-Reply-To"] = ours["Message-ID"]
    answer["References"] = ours["Message-ID"]
    answer.set_content("Yes it is. Still blank.")
    dovecot.append(user, [answer.as_bytes()])
    last = w.run_once()
    w.close()
    assert last.sync[0].imported == 1
    landed = last.sync[0].results[0]
    assert landed.ticket == n and landed.rule == "message-id" and not landed.acknowledged
    assert [m.kind for m in h.desk.show(n).messages] == ["customer", "ack", "reply", "customer"]

"""Mail onto tickets through the real intake transaction: threading, reopening, acknowledgements."""

from __future__ import annotations

import threading
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.intake import IncomingMail, Intake
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.mail.msgid import make_message_id
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from tests.conftest import CORPUS, T0


def mail(
    *,
    sender: str = "carla@customer.example",
    name: str = "Carla Customer",
    subject: str = "Printer on fire",
    body: str = "It smokes.",
    msgid: str | None = None,
    in_reply_to: str | None = None,
    extra: dict[str, str] | None = None,
    to: str = "support@desk.example",
) -> bytes:
    m = EmailMessage()
    m["From"] = f"{name} <{sender}>"
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = format_datetime(T0)
    m["Message-ID"] = msgid or f"<{abs(hash((sender, subject, body)))}@customer.example>"
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(body)
    return m.as_bytes()


@pytest.fixture
def mailbox(store: Store) -> str:
    def fn(s: Session) -> None:
        cat = s.exec(select(M.Category)).first()
        s.add(
            M.Mailbox(
                name="support",
                address="support@desk.example",
                category_id=cat.id if cat else None,
                ack_template="acknowledgement",
            )
        )

    store.write(fn)
    return "support"


@pytest.fixture
def intake(desk: Desk, mailbox: str, tmp_path: Path) -> Intake:
    return Intake(
        desk,
        mailbox=mailbox,
        attachments_dir=tmp_path / "att",
        own_addresses=["support@desk.example"],
    )


def _outbox(store: Store, kind: str) -> list[tuple[list[str], str]]:
    with store.read() as s:
        rows = s.exec(select(M.Outbox).where(M.Outbox.kind == kind)).all()
        return [(o.recipients, o.subject) for o in rows]


def test_new_mail_makes_request_and_acknowledges(intake: Intake, desk: Desk, store: Store) -> None:
    r = intake.ingest(mail(), uidvalidity=7, uid=1)
    assert r.new_ticket and r.rule == "new" and r.acknowledged
    d = desk.show(r.ticket)  # type: ignore[arg-type]
    assert d.summary.title == "Printer on fire" and d.customers[0].addresses == (
        "carla@customer.example",
    )
    assert [m.kind for m in d.messages] == ["customer", "ack"]
    acks = _outbox(store, "ack")
    assert len(acks) == 1 and acks[0][0] == ["carla@customer.example"]
    assert str(r.ticket) in acks[0][1]
    with store.read() as s:
        mb = s.exec(select(M.Mailbox)).one()
        assert (mb.uidvalidity, mb.last_uid) == (7, 1)


def test_same_key_or_same_bytes_is_imported_once(intake: Intake, store: Store) -> None:
    raw = mail()
    first = intake.ingest(raw, uidvalidity=7, uid=1)
    again = intake.ingest(raw, uidvalidity=7, uid=1)
    copy = intake.ingest(raw, uidvalidity=7, uid=2)
    assert not first.duplicate and again.duplicate and copy.duplicate
    assert copy.ticket == first.ticket
    with store.read() as s:
        assert (
            s.exec(
                select(func.count()).select_from(M.Message).where(M.Message.direction == "in")
            ).one()
            == 1
        )
        assert s.exec(select(func.count()).select_from(M.ImportedMail)).one() == 2


def test_reply_to_our_message_id_threads(intake: Intake, desk: Desk) -> None:
    r = intake.ingest(mail(), uid=1, uidvalidity=1)
    ours = desk.reply(r.ticket, "Try turning it off.")  # type: ignore[arg-type]
    answer = intake.ingest(
        mail(subject="Re: Printer on fire", body="Done", in_reply_to=ours.rfc_message_id),
        uid=2,
        uidvalidity=1,
    )
    assert answer.ticket == r.ticket and answer.rule == "message-id" and not answer.new_ticket
    assert not answer.acknowledged
    d = desk.show(r.ticket)  # type: ignore[arg-type]
    assert d.messages[-1].thread_evidence  # says why it landed here


def test_forged_message_id_is_refused(intake: Intake, desk: Desk) -> None:
    r = intake.ingest(mail(), uid=1, uidvalidity=1)
    forged = make_message_id(r.ticket, 1, b"not the desk secret", "desk.example")  # type: ignore[arg-type]
    other = intake.ingest(
        mail(sender="mallory@evil.example", subject="hi", in_reply_to=forged), uid=2, uidvalidity=1
    )
    assert other.new_ticket and other.ticket != r.ticket
    assert "forged" in other.evidence.lower() or "refused" in other.evidence.lower()


def test_subject_tag_only_for_customer_follower_or_party(intake: Intake, desk: Desk) -> None:
    r = intake.ingest(mail(), uid=1, uidvalidity=1)
    n = r.ticket
    by_customer = intake.ingest(
        mail(subject=f"AW: [#{n}] Printer", body="more info", msgid="<a1@x>"), uid=2, uidvalidity=1
    )
    assert by_customer.ticket == n and by_customer.rule == "subject-tag"
    stranger = intake.ingest(
        mail(sender="eve@evil.example", subject=f"Re: [#{n}] pwn", msgid="<a2@x>"),
        uid=3,
        uidvalidity=1,
    )
    assert stranger.ticket != n and stranger.new_ticket
    desk.forward(n, "orders@supplier.example", "please check")  # type: ignore[arg-type]
    supplier = intake.ingest(
        mail(
            sender="orders@supplier.example",
            name="Supplier",
            subject=f"SV: [#{n}] Printer",
            msgid="<a3@x>",
        ),
        uid=4,
        uidvalidity=1,
    )
    assert supplier.ticket == n
    d = desk.show(n)  # type: ignore[arg-type]
    party = d.messages[-1]
    assert party.kind == "external" and party.visibility == "internal"


def test_mail_reopens_closed_and_wakes_postponed(
    intake: Intake, desk: Desk, clock: FixedClock
) -> None:
    r = intake.ingest(mail(), uid=1, uidvalidity=1)
    n = r.ticket
    assert n is not None
    desk.take(n)
    desk.read(n)
    desk.close(n)
    back = intake.ingest(
        mail(subject=f"Re: [#{n}] Printer", body="again", msgid="<b1@x>"), uid=2, uidvalidity=1
    )
    d = desk.show(n)
    assert (
        back.ticket == n and d.summary.base_status == "active" and d.summary.read_status == "yellow"
    )
    desk.postpone(n, preset="1w")
    intake.ingest(
        mail(subject=f"Re: [#{n}] Printer", body="still", msgid="<b2@x>"), uid=3, uidvalidity=1
    )
    assert desk.show(n).summary.base_status == "active"


def test_status_that_forbids_reopening_makes_linked_ticket(
    intake: Intake, desk: Desk, store: Store
) -> None:
    def final_status(s: Session) -> None:
        s.add(M.Status(name="closed for good", base="closed", counter="none", reopen_by_mail=False))

    store.write(final_status)
    r = intake.ingest(mail(), uid=1, uidvalidity=1)
    n = r.ticket
    assert n is not None

    def close_for_good(s: Session) -> None:
        t = s.get(M.Ticket, n)
        st = s.exec(select(M.Status).where(M.Status.name == "closed for good")).one()
        assert t is not None
        t.status_id = st.id  # type: ignore[assignment]

    store.write(close_for_good)
    again = intake.ingest(mail(subject=f"Re: [#{n}] x", msgid="<c1@x>"), uid=2, uidvalidity=1)
    assert again.new_ticket and again.ticket != n
    assert desk.show(again.ticket).linked_to == n  # type: ignore[arg-type]


def test_reply_to_merged_ticket_lands_on_survivor(intake: Intake, desk: Desk) -> None:
    a = intake.ingest(mail(), uid=1, uidvalidity=1).ticket
    b = intake.ingest(
        mail(sender="dan@customer.example", subject="same", msgid="<d0@x>"), uid=2, uidvalidity=1
    ).ticket
    assert a is not None and b is not None
    desk.merge(b, a)
    r = intake.ingest(
        mail(sender="dan@customer.example", subject=f"Re: [#{b}] same", msgid="<d1@x>"),
        uid=3,
        uidvalidity=1,
    )
    assert r.ticket == a and "merged into" in r.evidence


def test_auto_replies_are_never_acknowledged(intake: Intake, store: Store) -> None:
    ooo = intake.ingest(
        mail(
            sender="away@customer.example",
            subject="Out of office",
            extra={"Auto-Submitted": "auto-replied"},
        ),
        uid=1,
        uidvalidity=1,
    )
    bounce = intake.ingest(
        mail(sender="MAILER-DAEMON@mx.example", subject="Undeliverable", msgid="<e1@x>"),
        uid=2,
        uidvalidity=1,
    )
    assert not ooo.acknowledged and not bounce.acknowledged
    with store.read() as s:
        reasons = [d.reason for d in s.exec(select(M.AckDecision)).all()]
    assert len(reasons) == 2 and all(reasons)


def test_acknowledgements_are_rate_limited_per_sender(intake: Intake, clock: FixedClock) -> None:
    first = intake.ingest(mail(subject="one", msgid="<f1@x>"), uid=1, uidvalidity=1)
    clock.advance(minutes=10)
    second = intake.ingest(mail(subject="two", msgid="<f2@x>"), uid=2, uidvalidity=1)
    assert first.acknowledged and not second.acknowledged
    clock.advance(hours=25)
    third = intake.ingest(mail(subject="three", msgid="<f3@x>"), uid=3, uidvalidity=1)
    assert third.acknowledged


def test_unparseable_mail_is_kept_and_flagged(intake: Intake, desk: Desk, store: Store) -> None:
    raw = b"From: \xff\xfe broken\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\x00\x00"
    r = intake.ingest(raw, uid=1, uidvalidity=1)
    assert r.ticket is not None
    with store.read() as s:
        row = s.exec(select(M.ImportedMail)).one()
        assert row.raw == raw
    listed = [t.number for t in desk.list_tickets(review=True)]
    if r.needs_review:
        assert r.ticket in listed


def test_attachments_are_stored_content_addressed(
    intake: Intake, desk: Desk, tmp_path: Path
) -> None:
    m = EmailMessage()
    m["From"] = "carla@customer.example"
    m["To"] = "support@desk.example"
    m["Subject"] = "invoice"
    m["Message-ID"] = "<att@x>"
    m.set_content("see attached")
    m.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="../../etc/passwd.pdf"
    )
    r = intake.ingest(m.as_bytes(), uid=1, uidvalidity=1)
    att = desk.show(r.ticket).messages[0].attachments  # type: ignore[arg-type]
    assert len(att) == 1 and "/" not in att[0].filename and att[0].size == 13
    stored = tmp_path / "att" / att[0].sha256[:2] / att[0].sha256
    assert stored.read_bytes() == b"%PDF-1.4 fake"


def test_whole_corpus_is_ingested_or_flagged(intake: Intake, store: Store) -> None:
    if not CORPUS.exists():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".tsv", ".md"))
    raws = [p.read_bytes() for p in files]
    from helpdesk_tui.desk.intake import IncomingMail

    results = []
    for i in range(0, len(raws), 50):
        batch = [IncomingMail(r, 1, i + j + 1) for j, r in enumerate(raws[i : i + 50])]
        results.extend(intake.ingest_batch(batch, uidvalidity=1))
    assert len(results) == len(raws)
    with store.read() as s:
        stored = s.exec(select(func.count()).select_from(M.ImportedMail)).one()
        assert stored == len(raws)  # every file kept, duplicates as key rows
        if store.is_sqlite:  # SQLite's own check; PostgreSQL has no file to verify this way
            assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert all(r.ticket is not None or r.duplicate for r in results)


@pytest.mark.postgresql_only(
    "on SQLite BEGIN IMMEDIATE serializes the two writers, so the race cannot happen"
)
def test_a_reply_racing_an_agents_change_is_threaded_not_quarantined(
    intake: Intake, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An agent changes the ticket after the intake's snapshot: PostgreSQL refuses the intake's
    # update (40001). The batch must be rerun and the reply threaded, never filed as unreadable.
    first = intake.ingest(mail(msgid="<orig@c.example>"), uidvalidity=1, uid=1)
    decide = intake._decide
    raced: list[int] = []

    def racing(s: Session, parsed: object) -> object:
        decision = decide(s, parsed)  # type: ignore[arg-type]
        if getattr(parsed, "message_id", "") == "<reply@c.example>" and not raced:
            raced.append(1)

            def change(s2: Session) -> None:
                t = s2.get(M.Ticket, first.ticket)
                assert t is not None
                t.title = "changed by an agent"

            other = threading.Thread(target=lambda: store.write(change))
            other.start()
            other.join()
        return decision

    monkeypatch.setattr(intake, "_decide", racing)
    results = intake.ingest_batch(
        [
            IncomingMail(mail(sender="x@c.example", msgid="<new@c.example>"), 1, 2),
            IncomingMail(
                mail(
                    msgid="<reply@c.example>",
                    in_reply_to="<orig@c.example>",
                    subject="Re: Printer on fire",
                ),
                1,
                3,
            ),
        ],
        uidvalidity=1,
    )
    assert raced
    reply = results[1]
    assert reply.ticket == first.ticket and not reply.needs_review and not reply.new_ticket

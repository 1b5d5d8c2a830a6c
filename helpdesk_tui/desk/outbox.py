"""The durable outbox: atomic claims, outcomes, retries with backoff, and the admin's verbs.

A reply an agent wrote is never lost and never sent twice: it is written in the same
transaction as its ticket message, claimed atomically (two workers never hold one item), and
its outcome recorded after the server answered, before the next mail is sent. The one ambiguous
case, a crash after DATA was accepted but before the outcome was stored, shows as an item left in
`sending` (one at most per crash: the rest of the claim was not sent yet); it is resent with the
same Message-ID (so receivers can deduplicate) and marked ambiguous.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session, col, select

from helpdesk_tui.clock import Clock
from helpdesk_tui.desk import lease
from helpdesk_tui.desk.errors import InvalidAction, NotFound
from helpdesk_tui.desk.records import OutboxRecord
from helpdesk_tui.mail.compose import (
    Attachment,
    ComposeError,
    OutgoingSpec,
    build_message,
    to_bytes,
)
from helpdesk_tui.mail.smtp import GIVE_UP_AFTER, backoff_after
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import BUSY_TIMEOUT_MS, Store

STALE_CLAIM = timedelta(minutes=10)


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    sha256: str


@dataclass(frozen=True)
class OutgoingItem:
    """Everything the sender needs to build the MIME, read in the claiming transaction."""

    id: int
    ticket: int | None
    kind: str
    mail_from: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    recipients: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    automatic: bool
    attachments: tuple[OutgoingAttachment, ...]
    quote: str
    quote_author: str
    quote_date: datetime | None
    attempts: int
    ambiguous: bool
    created_at: datetime
    raw: bytes | None = None


def _split(value: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in value.split(",") if a.strip())


def _item(s: Session, o: M.Outbox) -> OutgoingItem:
    """What building needs; a prebuilt item needs only its bytes and envelope."""
    built = o.raw is not None
    msg = s.get(M.Message, o.message_id) if o.message_id and not built else None
    headers = o.headers or {}
    quote, quote_author, quote_date = "", "", None
    if o.kind == "reply" and headers.get("In-Reply-To") and not built:
        prior = s.exec(
            select(M.Message).where(M.Message.rfc_message_id == headers["In-Reply-To"])
        ).first()
        if prior is not None:
            quote = prior.body_text
            quote_author = prior.from_name or prior.from_addr
            quote_date = prior.created_at
    attachments: list[OutgoingAttachment] = []
    if o.attachment_ids and not built:
        for a in s.exec(
            select(M.Attachment).where(col(M.Attachment.id).in_(o.attachment_ids))
        ).all():
            attachments.append(OutgoingAttachment(a.filename, a.content_type, a.sha256))
    to = _split(headers.get("To", "")) or tuple(o.recipients)
    return OutgoingItem(
        id=o.id or 0,
        ticket=o.ticket_id,
        kind=o.kind,
        mail_from=o.mail_from,
        from_name=msg.from_name if msg else "",
        to=to,
        cc=_split(headers.get("Cc", "")),
        recipients=tuple(o.recipients),
        subject=o.subject,
        body=o.body,
        message_id=o.rfc_message_id,
        in_reply_to=headers.get("In-Reply-To", ""),
        references=tuple(headers.get("References", "").split()),
        automatic=o.kind in ("ack", "notice"),
        attachments=tuple(attachments),
        quote=quote,
        quote_author=quote_author,
        quote_date=quote_date,
        attempts=o.attempts,
        ambiguous=o.ambiguous,
        created_at=o.created_at,
        raw=o.raw,
    )


_PREFIXES: dict[str, Literal["", "Re", "Fwd"]] = {"reply": "Re", "ack": "Re", "forward": "Fwd"}


def build_raw(
    item: OutgoingItem, *, attachments_dir: Path, desk_name: str, loop: str, date: datetime
) -> bytes:
    """The exact bytes to send: built once, so every resend carries the same Message-ID."""
    attachments: tuple[Attachment, ...] = tuple(
        (a.filename, a.content_type, attachment_path(attachments_dir, a.sha256).read_bytes())
        for a in item.attachments
    )
    spec = OutgoingSpec(
        from_addr=item.mail_from,
        from_name=item.from_name or desk_name,
        to=item.to,
        cc=item.cc,
        subject=item.subject,
        prefix=_PREFIXES.get(item.kind, ""),
        body=item.body,
        ticket=item.ticket or 0,
        message_id=item.message_id,
        date=date,
        in_reply_to=item.in_reply_to,
        references=item.references,
        quote=item.quote,
        quote_author=item.quote_author,
        quote_date=item.quote_date,
        attachments=attachments,
        automatic=item.automatic,
        auto_kind="auto-replied" if item.kind == "ack" else "auto-generated",
        loop_value=loop,
    )
    return to_bytes(build_message(spec))


def prebuild(
    s: Session, o: M.Outbox, *, attachments_dir: Path, desk_name: str, loop: str, date: datetime
) -> None:
    """Build the MIME when the mail is queued (the agent's action), not on the sending path.

    A mail that cannot be built safely stays unbuilt; the sender retries the build and
    records the failure on the item, where the agent sees it.
    """
    try:
        o.raw = build_raw(
            _item(s, o), attachments_dir=attachments_dir, desk_name=desk_name, loop=loop, date=date
        )
    except (ComposeError, OSError, ValueError):
        o.raw = None


def claim(store: Store, clock: Clock, worker_id: str, limit: int = 50) -> list[OutgoingItem]:
    """Take up to `limit` due items for this worker, in one write transaction."""

    def fn(s: Session) -> list[OutgoingItem]:
        now = clock.now()
        due = select(M.Outbox).where(
            sa.or_(
                sa.and_(
                    col(M.Outbox.state).in_(["queued", "retry"]),
                    sa.or_(
                        col(M.Outbox.next_attempt_at).is_(None),
                        col(M.Outbox.next_attempt_at) <= now,
                    ),
                ),
                sa.and_(
                    col(M.Outbox.state) == "sending", col(M.Outbox.claimed_at) <= now - STALE_CLAIM
                ),
            )
        )
        if not store.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        rows = list(s.exec(due.order_by(col(M.Outbox.id)).limit(limit)).all())
        if len(rows) < limit:
            rows += _orphaned_claims(s, now, limit - len(rows), store.is_sqlite)
        items = []
        for o in rows:
            if o.state == "sending":
                # The last holder died mid-send: the server may have the mail already.
                o.ambiguous = True
                o.last_error = (o.last_error + "; " if o.last_error else "") + (
                    f"resent after {o.claimed_by or 'a worker'} stopped mid-send"
                )
            o.state = "sending"
            o.claimed_by = worker_id
            o.claimed_at = now
            o.attempts += 1
            items.append(_item(s, o))
        return items

    return store.write(fn)


def _orphaned_claims(s: Session, now: datetime, limit: int, is_sqlite: bool) -> list[M.Outbox]:
    """Items in `sending` whose claimer, a process on this host, is gone (killed mid-send).

    They need not wait for STALE_CLAIM: nobody can still be talking to the server about them.
    """
    recent = select(M.Outbox).where(
        col(M.Outbox.state) == "sending",
        col(M.Outbox.claimed_at) > now - STALE_CLAIM,
        # Only a claimer on this host can be checked (lease.process_gone).
        col(M.Outbox.claimed_by).startswith(f"{socket.gethostname()}:", autoescape=True),
    )
    if not is_sqlite:
        recent = recent.with_for_update(skip_locked=True)
    found = []
    for o in s.exec(recent.order_by(col(M.Outbox.id))).all():
        host, _, pid = o.claimed_by.rpartition(":")
        if pid.isdigit() and lease.process_gone(host, int(pid)):
            found.append(o)
            if len(found) >= limit:
                break
    return found


def record(
    store: Store,
    clock: Clock,
    item_id: int,
    outcome: str,
    detail: str = "",
    code: int | None = None,
    *,
    remaining: list[str] | None = None,
) -> OutboxRecord:
    """Store what the server said: sent, retry (with the next time) or failed (with its reply).

    `remaining`: the server took the mail for some recipients and deferred others; only
    those are tried again, so nobody gets it twice.
    """

    def fn(s: Session) -> OutboxRecord:
        o = s.get(M.Outbox, item_id)
        if o is None:
            raise NotFound(f"no outbox item {item_id}")
        now = clock.now()
        text = f"{code} {detail}".strip() if code else detail
        if remaining:
            o.recipients = list(remaining)
        if outcome == "sent":
            o.state, o.sent_at, o.next_attempt_at = "sent", now, None
            if not o.ambiguous:
                o.last_error = ""
        elif outcome == "retry":
            if now - o.created_at >= GIVE_UP_AFTER:
                o.state, o.next_attempt_at = "failed", None
                o.last_error = f"gave up after {o.attempts} attempts over 24 h: {text}"
            else:
                o.state, o.next_attempt_at = "retry", now + backoff_after(o.attempts)
                o.last_error = text
        elif outcome == "failed":
            o.state, o.next_attempt_at, o.last_error = "failed", None, text
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        o.claimed_by = ""
        if o.state == "failed" and o.ticket_id:
            ticket = s.get(M.Ticket, o.ticket_id)
            owner = s.get(M.Agent, ticket.owner_id) if ticket and ticket.owner_id else None
            if owner is not None:
                s.add(
                    M.Alert(
                        agent_id=owner.id or 0,
                        ticket_id=o.ticket_id,
                        kind="send_failed",
                        text=f"mail on #{o.ticket_id} to {', '.join(o.recipients)} failed: {text}",
                        created_at=now,
                    )
                )
        return outbox_record(o)

    return store.write(fn)


# What record_sent writes, in Core for Store.write and as SQL for SQLite's DB-API connection;
# a test checks that both paths store the same row.
_MARK_SENT = (
    sa.update(M.Outbox)
    .where(col(M.Outbox.id) == sa.bindparam("item_id"), col(M.Outbox.state) == "sending")
    .values(state="sent", sent_at=sa.bindparam("now"), next_attempt_at=None, claimed_by="")
)
_MARK_SENT_SQL = (
    "UPDATE outbox SET state = 'sent', sent_at = ?, next_attempt_at = NULL, claimed_by = '' "
    "WHERE id = ? AND state = 'sending'"
)


def record_sent(store: Store, clock: Clock, item_id: int) -> None:
    """One plain success (see SentRecorder, which the sending loop keeps for a whole drain)."""
    with SentRecorder(store, clock) as recorder:
        recorder(item_id)


class SentRecorder:
    """Commits each plain success on its own, before the sender starts the next mail.

    Committing each one, not a batch after several, is what bounds a SIGKILL's duplicates to
    the mail in flight: every mail the server took before it is already `sent`.

    Between two mails SQLAlchemy's overhead is what counts: a Store.write unit of work for this
    one UPDATE took ~0.3 ms a mail and cost the outbox bench a fifth of its rate. So on SQLite
    the recorder keeps one pooled DB-API connection for the drain and runs the UPDATE in its
    own BEGIN IMMEDIATE .. COMMIT (~0.03 ms). Still busy after the busy timeout, or failing, it
    falls back to Store.write, which retries with patience and raises what is not transient;
    PostgreSQL always takes that path (REPEATABLE READ, retries, the change notice). WAL with
    synchronous=NORMAL: a commit survives a SIGKILL without waiting for an fsync.

    While agents write, the sender waits for the write lock before every mail. SQLite's busy
    handler sleeps up to 100 ms between tries and the load bench's sending rate fell to a
    quarter, so the recorder polls for the lock every millisecond itself: its commits hold the
    lock for microseconds, agents do not notice them.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._conn: PoolProxiedConnection | None = None
        self._stamp = (
            sa.inspect(M.Outbox).columns["sent_at"].type.bind_processor(store.engine.dialect)
        )

    def __enter__(self) -> SentRecorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __call__(self, item_id: int) -> None:
        now = self.clock.now()
        if self.store.is_sqlite and self._commit_sqlite(item_id, now):
            return
        self.store.write(
            lambda s: s.connection().execute(_MARK_SENT, {"item_id": item_id, "now": now})
        )

    def _commit_sqlite(self, item_id: int, now: datetime) -> bool:
        try:
            if self._conn is None:
                self._conn = self.store.engine.raw_connection()
                self._conn.cursor().execute("PRAGMA busy_timeout = 0")  # _begin_polling waits
            cur = self._conn.cursor()
            _begin_polling(cur)
            cur.execute(_MARK_SENT_SQL, (self._stamp(now) if self._stamp else now, item_id))
            cur.execute("COMMIT")
        except (sqlite3.Error, DBAPIError):
            self.close()  # the pool rolls back what is open; the next mail gets a fresh one
            return False
        return True

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.cursor().execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            conn.invalidate()  # not back into the pool without its busy timeout
        conn.close()


_LOCK_POLL_S = 0.001


def _begin_polling(cur: DBAPICursor) -> None:
    """BEGIN IMMEDIATE, trying again every millisecond while another connection writes."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # extended codes too
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(_LOCK_POLL_S)


def outbox_record(o: M.Outbox) -> OutboxRecord:
    return OutboxRecord(
        id=o.id or 0,
        ticket=o.ticket_id,
        kind=o.kind,
        state=o.state,
        attempts=o.attempts,
        next_attempt_at=o.next_attempt_at,
        last_error=o.last_error,
        message_id=o.rfc_message_id,
        recipients=tuple(o.recipients),
        subject=o.subject,
        created_at=o.created_at,
        sent_at=o.sent_at,
        ambiguous=o.ambiguous,
    )


def show(store: Store, item_id: int) -> tuple[OutboxRecord, str]:
    """The record and the text that will be (or was) sent."""
    with store.read() as s:
        o = s.get(M.Outbox, item_id)
        if o is None:
            raise NotFound(f"no outbox item {item_id}")
        return outbox_record(o), o.body


def retry_now(store: Store, clock: Clock, item_id: int) -> OutboxRecord:
    """An admin's retry: failed or waiting items go back to the queue at once."""

    def fn(s: Session) -> OutboxRecord:
        o = s.get(M.Outbox, item_id)
        if o is None:
            raise NotFound(f"no outbox item {item_id}")
        if o.state not in ("failed", "retry", "cancelled"):
            raise InvalidAction(
                f"outbox item {item_id} is {o.state}; only failed, waiting or "
                "cancelled mail can be retried"
            )
        o.state, o.next_attempt_at = "queued", clock.now()
        o.created_at = clock.now()  # a fresh 24 h to try in
        return outbox_record(o)

    return store.write(fn)


def cancel(store: Store, item_id: int) -> OutboxRecord:
    def fn(s: Session) -> OutboxRecord:
        o = s.get(M.Outbox, item_id)
        if o is None:
            raise NotFound(f"no outbox item {item_id}")
        if o.state in ("sent", "sending"):
            raise InvalidAction(f"outbox item {item_id} is {o.state}; it cannot be cancelled")
        o.state, o.next_attempt_at = "cancelled", None
        return outbox_record(o)

    return store.write(fn)


def attachment_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def queue_counts(store: Store) -> dict[str, int]:
    """How many items are in each state: for the status bar."""
    with store.read() as s:
        rows = s.exec(select(M.Outbox.state, sa.func.count()).group_by(col(M.Outbox.state))).all()
        return {state: int(n) for state, n in rows}

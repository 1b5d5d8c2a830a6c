"""The durable outbox: atomic claims, outcomes, retries with backoff, and the admin's verbs.

A reply an agent wrote is never lost and never sent twice: it is written in the same
transaction as its ticket message, claimed atomically (two workers never hold one item), and
its outcome recorded after the server answered. The one ambiguous case, a crash after DATA was
accepted but before the outcome was stored, shows as an item left in `sending`; it is resent
with the same Message-ID (so receivers can deduplicate) and marked ambiguous.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
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
from helpdesk_tui.store.engine import Store

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


def record_sent(store: Store, clock: Clock, item_ids: list[int]) -> None:
    """Many successes in one statement: the sending loop records in small batches."""
    if not item_ids:
        return

    def fn(s: Session) -> None:
        s.execute(
            sa.update(M.Outbox)
            .where(col(M.Outbox.id).in_(item_ids), col(M.Outbox.state) == "sending")
            .values(state="sent", sent_at=clock.now(), next_attempt_at=None, claimed_by="")
        )

    store.write(fn)


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

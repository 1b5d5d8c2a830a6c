"""Mailbox sync state and health, kept in the store so every agent's screen can show it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from helpdesk_tui.clock import Clock
from helpdesk_tui.desk.errors import NotFound
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store

# More UIDVALIDITY changes than this within an hour stop the mailbox for a human to look at.
UIDVALIDITY_CHANGES_PER_HOUR = 3


@dataclass(frozen=True)
class MailboxState:
    name: str
    address: str
    uidvalidity: int | None
    last_uid: int
    stopped_reason: str
    consecutive_failures: int


@dataclass(frozen=True)
class MailboxStatus:
    name: str
    address: str
    imported: int
    needs_review: int
    acks_queued: int
    acks_suppressed: int
    last_success: datetime | None
    last_try: datetime | None
    last_error: str
    consecutive_failures: int
    stopped_reason: str
    uidvalidity: int | None
    last_uid: int


def _get(s: Session, name: str) -> M.Mailbox:
    mb = s.exec(select(M.Mailbox).where(M.Mailbox.name == name)).first()
    if mb is None:
        raise NotFound(f"no mailbox named '{name}' (is it in the config?)")
    return mb


def state(store: Store, name: str) -> MailboxState:
    with store.read() as s:
        mb = _get(s, name)
        return MailboxState(
            mb.name,
            mb.address,
            mb.uidvalidity,
            mb.last_uid,
            mb.stopped_reason,
            mb.consecutive_failures,
        )


def record_try(store: Store, name: str, now: datetime) -> None:
    def fn(s: Session) -> None:
        _get(s, name).last_try = now

    store.write(fn)


def record_success(store: Store, name: str, now: datetime) -> None:
    def fn(s: Session) -> None:
        mb = _get(s, name)
        mb.last_success = now
        mb.last_error = ""
        mb.consecutive_failures = 0

    store.write(fn)


def record_failure(store: Store, name: str, now: datetime, error: str) -> int:
    """Store the error; returns the number of failures in a row (for the backoff)."""

    def fn(s: Session) -> int:
        mb = _get(s, name)
        mb.last_error = error[:1000]
        mb.consecutive_failures += 1
        return mb.consecutive_failures

    return store.write(fn)


def set_uidvalidity(store: Store, name: str, value: int) -> None:
    """The first sync of a mailbox: remember its UIDVALIDITY even when it is empty."""

    def fn(s: Session) -> None:
        _get(s, name).uidvalidity = value

    store.write(fn)


def uidvalidity_changed(store: Store, name: str, new: int, now: datetime) -> bool:
    """Note a UIDVALIDITY change and start over from UID 0; False (and stopped) if too many.

    Nothing is deleted anywhere: the re-listed mail is matched by its bytes and skipped.
    """

    def fn(s: Session) -> bool:
        mb = _get(s, name)
        key = f"uidvalidity_changes:{name}"
        row = s.get(M.Meta, key) or M.Meta(key=key, value="[]")
        recent = [
            t for t in json.loads(row.value) if datetime.fromisoformat(t) > now - timedelta(hours=1)
        ]
        recent.append(now.isoformat())
        row.value = json.dumps(recent)
        s.add(row)
        old = mb.uidvalidity
        if len(recent) > UIDVALIDITY_CHANGES_PER_HOUR:
            mb.stopped_reason = (
                f"UIDVALIDITY changed {len(recent)} times within an hour (last {old} -> {new}); "
                "sync stopped until an admin runs `helpdesk mailbox resume "
                f"{name}`"
            )
            admins = s.exec(select(M.Agent).where(col(M.Agent.active).is_(True))).all()
            for agent in admins:
                s.add(
                    M.Alert(
                        agent_id=agent.id or 0,
                        kind="mailbox",
                        text=mb.stopped_reason,
                        created_at=now,
                    )
                )
            return False
        mb.uidvalidity = new
        mb.last_uid = 0
        return True

    return store.write(fn)


def resume(store: Store, name: str) -> None:
    def fn(s: Session) -> None:
        mb = _get(s, name)
        mb.stopped_reason = ""
        row = s.get(M.Meta, f"uidvalidity_changes:{name}")
        if row is not None:
            s.delete(row)

    store.write(fn)


def unfinished_server_actions(store: Store, name: str, uidvalidity: int) -> list[int]:
    """UIDs committed but not yet flagged or moved (a crash between commit and server)."""
    with store.read() as s:
        mb = _get(s, name)
        rows = s.exec(
            select(M.ImportedMail.uid).where(
                M.ImportedMail.mailbox_id == mb.id,
                M.ImportedMail.uidvalidity == uidvalidity,
                col(M.ImportedMail.server_done).is_(False),
            )
        ).all()
        return [uid for uid in rows if uid is not None]


def mark_server_done(store: Store, name: str, uidvalidity: int, uids: list[int]) -> None:
    if not uids:
        return

    def fn(s: Session) -> None:
        mb = _get(s, name)
        s.execute(
            sa.update(M.ImportedMail)
            .where(
                col(M.ImportedMail.mailbox_id) == mb.id,
                col(M.ImportedMail.uidvalidity) == uidvalidity,
                col(M.ImportedMail.uid).in_(uids),
            )
            .values(server_done=True)
        )

    store.write(fn)


def status(store: Store, clock: Clock | None = None) -> list[MailboxStatus]:
    """Health and counters of every mailbox, for `helpdesk mailbox status` and the status bar."""
    with store.read() as s:
        out = []
        for mb in s.exec(select(M.Mailbox).order_by(col(M.Mailbox.name))).all():
            imported = s.exec(
                select(func.count())
                .select_from(M.ImportedMail)
                .where(M.ImportedMail.mailbox_id == mb.id)
            ).one()
            review = s.exec(
                select(func.count())
                .select_from(M.ImportedMail)
                .where(
                    M.ImportedMail.mailbox_id == mb.id, col(M.ImportedMail.needs_review).is_(True)
                )
            ).one()
            acks = dict(
                s.exec(
                    select(M.AckDecision.acknowledged, func.count())
                    .where(M.AckDecision.mailbox_id == mb.id)
                    .group_by(col(M.AckDecision.acknowledged))
                ).all()
            )
            out.append(
                MailboxStatus(
                    name=mb.name,
                    address=mb.address,
                    imported=int(imported),
                    needs_review=int(review),
                    acks_queued=int(acks.get(True, 0)),
                    acks_suppressed=int(acks.get(False, 0)),
                    last_success=mb.last_success,
                    last_try=mb.last_try,
                    last_error=mb.last_error,
                    consecutive_failures=mb.consecutive_failures,
                    stopped_reason=mb.stopped_reason,
                    uidvalidity=mb.uidvalidity,
                    last_uid=mb.last_uid,
                )
            )
        return out

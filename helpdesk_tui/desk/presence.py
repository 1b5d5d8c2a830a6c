"""Presence: who else has a ticket open or is writing on it; soft, and gone when not renewed.

Each app session (host:pid) keeps one row per ticket it shows in table `presence` and renews it
every RENEW_EVERY seconds; a row not renewed for TTL seconds no longer counts, and announce()
deletes rows long dead in the same transaction. Every call is one small transaction on the
shared store, never per keystroke: the TUI calls these from thread workers on open, on close
and on its renewal timer only. Nothing here refuses an action: presence is a hint, not a lock.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from helpdesk_tui.store import models as M

if TYPE_CHECKING:
    from helpdesk_tui.desk.service import Desk

TTL = timedelta(seconds=30)
"""A session not heard of for this long is no longer "here"."""
RENEW_EVERY = 10.0
"""Seconds between renewals: three chances before the TTL runs out."""
PURGE_AFTER = TTL * 10
"""Rows older than this are deleted by the next announce (a crashed app leaves its rows)."""
ACTIVITIES = ("viewing", "composing")


@dataclass(frozen=True)
class PresenceRecord:
    """Another session on the ticket."""

    ticket: int
    login: str
    name: str
    session: str
    activity: str  # viewing | composing
    seen_at: datetime


@functools.cache
def session_id() -> str:
    """This process as the presence table knows it: host:pid (two terminals stay apart)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _agent_id(s: Session, login: str | None) -> int | None:
    if not login:
        return None
    agent = s.exec(select(M.Agent.id).where(M.Agent.login == login)).first()
    return int(agent) if agent is not None else None


def announce(
    desk: Desk, ticket_id: int, activity: str = "viewing", *, session: str | None = None
) -> bool:
    """Say (or renew) that the desk's agent is on the ticket; False when the actor is no agent."""
    if activity not in ACTIVITIES:
        raise ValueError(f"presence activity must be one of {', '.join(ACTIVITIES)}")
    me = session or session_id()
    now = desk.clock.now()

    def fn(s: Session) -> bool:
        agent = _agent_id(s, desk.actor)
        if agent is None or s.get(M.Ticket, ticket_id) is None:
            return False
        row = s.get(M.Presence, (ticket_id, agent, me))
        if row is None:
            s.add(
                M.Presence(
                    ticket_id=ticket_id, agent_id=agent, session=me, activity=activity, seen_at=now
                )
            )
        else:
            row.activity = activity
            row.seen_at = now
        _purge(s, now - PURGE_AFTER)
        return True

    return desk.store.write(fn)


def leave(desk: Desk, ticket_id: int, *, session: str | None = None) -> None:
    """This session is no longer on the ticket (the screen closed)."""
    me = session or session_id()

    def fn(s: Session) -> None:
        agent = _agent_id(s, desk.actor)
        if agent is None:
            return
        s.exec(
            delete(M.Presence).where(
                col(M.Presence.ticket_id) == ticket_id,
                col(M.Presence.agent_id) == agent,
                col(M.Presence.session) == me,
            )
        )

    desk.store.write(fn)


def others(
    desk: Desk, ticket_id: int, *, session: str | None = None, ttl: timedelta = TTL
) -> list[PresenceRecord]:
    """Who else is on the ticket: every live session but this one, composers first."""
    me = session or session_id()
    since = desk.clock.now() - ttl
    columns: list[Any] = [
        M.Agent.login,
        M.Agent.name,
        M.Presence.session,
        M.Presence.activity,
        M.Presence.seen_at,
    ]
    with desk.store.read() as s:
        rows = s.execute(
            sa.select(*columns)
            .select_from(M.Presence)
            .join(M.Agent, col(M.Agent.id) == col(M.Presence.agent_id))
            .where(
                col(M.Presence.ticket_id) == ticket_id,
                col(M.Presence.session) != me,
                col(M.Presence.seen_at) >= since,
            )
        ).all()
    found: dict[str, PresenceRecord] = {}
    for login, name, session_, activity, seen_at in rows:
        record = PresenceRecord(ticket_id, login, name, session_, activity, seen_at)
        # One agent in two terminals is shown once, composing if either is.
        kept = found.get(login)
        if kept is None or (kept.activity != "composing" and activity == "composing"):
            found[login] = record
    return sorted(found.values(), key=lambda r: (r.activity != "composing", r.name, r.login))


def cleanup(desk: Desk, *, older_than: timedelta = PURGE_AFTER) -> int:
    """Delete rows not renewed for `older_than`; the number deleted (a worker may call this)."""
    cutoff = desk.clock.now() - older_than
    return desk.store.write(lambda s: _purge(s, cutoff))


def _purge(s: Session, cutoff: datetime) -> int:
    result = s.exec(delete(M.Presence).where(col(M.Presence.seen_at) < cutoff))
    return int(result.rowcount or 0)


def describe(records: list[PresenceRecord], me: str | None = None) -> str:
    """ "Bob Baker (composing), Carol (viewing)": the line the detail screen shows.

    The agent's own other terminal (a second SSH session) is "you, in another session", so
    that it is not taken for a colleague who happens to share the name on screen.
    """
    return ", ".join(
        f"{'you, in another session' if r.login == me else r.name or r.login} ({r.activity})"
        for r in records
    )

"""An agent's alerts in bulk: how many are unread, and marking them all read in one statement.

The screens list a page of alerts; these two answer for all of them, so an agent with a
thousand escalation notices sees the true number and "mark all read" marks all, not a page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.store import models as M

if TYPE_CHECKING:
    from helpdesk_tui.desk.service import Desk


def _agent(s: Session, login: str | None) -> int | None:
    if not login:
        return None
    found = s.exec(select(M.Agent.id).where(M.Agent.login == login)).first()
    return int(found) if found is not None else None


def unread_count(desk: Desk) -> int:
    """The acting agent's unread alerts (0 for an actor who is not an agent)."""
    with desk.store.read() as s:
        agent = _agent(s, desk.actor)
        if agent is None:
            return 0
        q = (
            select(sa.func.count())
            .select_from(M.Alert)
            .where(M.Alert.agent_id == agent, col(M.Alert.read_at).is_(None))
        )
        return int(s.exec(q).one())


def mark_all_read(desk: Desk, up_to: int | None = None) -> int:
    """Mark every unread alert of the acting agent read, those newer than `up_to` excepted
    (what arrived after the agent's screen was drawn stays unread); how many were marked."""

    def fn(s: Session) -> int:
        agent = _agent(s, desk.actor)
        if agent is None:
            return 0
        q = sa.update(M.Alert).where(col(M.Alert.agent_id) == agent, col(M.Alert.read_at).is_(None))
        if up_to is not None:
            q = q.where(col(M.Alert.id) <= up_to)
        result = s.exec(q.values(read_at=desk.clock.now()))
        return int(result.rowcount or 0)

    return desk.store.write(fn)

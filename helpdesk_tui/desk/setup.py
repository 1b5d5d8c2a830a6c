"""Bring the store's desk setup (statuses, priorities, queues, mailboxes) in line with the config.

Rows are upserted by name and never deleted: tickets point at statuses, priorities and
categories, so one that leaves the config stays in the store for the tickets that still use it.
Mailbox sync state (UIDVALIDITY, last UID, health) belongs to the worker and is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session, select

from helpdesk_tui.clock import Clock, SystemClock
from helpdesk_tui.config import Config, PriorityConfig
from helpdesk_tui.mail.msgid import new_secret
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store

MSGID_META_ROW = "message_id_secret"  # the Meta row the desk service reads too


def apply_config(store: Store, cfg: Config, *, clock: Clock | None = None) -> None:
    """Upsert the config's desk setup in one write transaction; running it twice changes nothing.

    The clock only stamps agents the config creates.
    """
    now = (clock or SystemClock()).now()
    store.write(lambda s: _apply(s, cfg, now))


def _apply(s: Session, cfg: Config, now: datetime) -> None:
    _statuses(s, cfg)
    priorities = _priorities(s, cfg)
    agents = _agents(s, cfg, now)
    for p in cfg.priorities:
        _levels(s, priorities[p.name], p, agents)
    categories = _categories(s, cfg, priorities, agents)
    _mailboxes(s, cfg, categories, priorities)
    _templates(s, cfg)


def _templates(s: Session, cfg: Config) -> None:
    """Reply templates from the config's folder; rows of templates no longer there stay."""
    folder = cfg.desk.templates_dir
    if folder is None or not folder.is_dir():
        return
    from helpdesk_tui.mail.templates import load_template_dir

    existing = {(t.folder, t.name, t.language): t for t in s.exec(select(M.ReplyTemplate)).all()}
    for (sub, name, lang), (subject, body) in load_template_dir(folder).items():
        row = existing.get((sub, name, lang)) or M.ReplyTemplate(
            folder=sub, name=name, language=lang
        )
        row.subject, row.body = subject, body
        s.add(row)


def _statuses(s: Session, cfg: Config) -> None:
    existing = {row.name: row for row in s.exec(select(M.Status)).all()}
    for st in cfg.statuses:
        row = existing.get(st.name) or M.Status(name=st.name, base=st.base)
        row.base = st.base
        row.counter = st.counter
        row.reopen_by_mail = st.reopen_by_mail
        row.is_queue = st.queue
        s.add(row)
        existing[st.name] = row


def _priorities(s: Session, cfg: Config) -> dict[str, M.Priority]:
    existing = {row.name: row for row in s.exec(select(M.Priority)).all()}
    for p in cfg.priorities:
        row = existing.get(p.name) or M.Priority(name=p.name)
        row.rank = p.rank
        row.deadline_minutes = p.deadline_minutes
        row.hours = {day: [start, stop] for day, (start, stop) in p.hours.items()}
        row.holidays = list(p.holidays)
        row.escalate_only_in_hours = p.escalate_only_in_hours
        row.on_read = p.on["read"]
        row.on_reassigned = p.on["reassigned"]
        row.on_new_info = p.on["new_info"]
        row.on_closed = p.on["closed"]
        row.on_priority_changed = p.on["priority_changed"]
        row.on_new = p.on["new"]
        s.add(row)
        existing[p.name] = row
    s.flush()  # ids for the levels, categories and mailboxes below
    return existing


def _agents(s: Session, cfg: Config, now: datetime) -> dict[str, int]:
    """Create the config's agents if missing; login -> id for every agent in the store.

    An existing agent's name, e-mail and active flag are left alone: agents edit their own
    details, and an admin may have disabled one the config still lists.
    """
    existing = {row.login: row for row in s.exec(select(M.Agent)).all()}
    for a in cfg.agents:
        if a.login not in existing:
            row = M.Agent(
                login=a.login,
                name=a.name or a.login,
                email=a.email.strip().lower(),
                active=True,
                created_at=now,
            )
            s.add(row)
            existing[a.login] = row
    s.flush()
    return {login: row.id for login, row in existing.items() if row.id is not None}


def _levels(s: Session, row: M.Priority, p: PriorityConfig, agents: Mapping[str, int]) -> None:
    """Make the priority's levels exactly the config's, keeping the rows of unchanged levels."""
    assert row.id is not None
    current = {
        lv.alert_level: lv
        for lv in s.exec(
            select(M.EscalationLevel).where(M.EscalationLevel.priority_id == row.id)
        ).all()
    }
    # check_config refuses repeated alert levels; if one slips through, the last one wins.
    wanted = {lv.alert_level: lv for lv in p.levels}
    for level_no, old in current.items():
        if level_no not in wanted:
            s.delete(old)
    s.flush()  # before any insert, so (priority_id, alert_level) stays unique
    for lv in wanted.values():
        level = current.get(lv.alert_level) or M.EscalationLevel(
            priority_id=row.id, alert_level=lv.alert_level, minutes=lv.minutes
        )
        level.minutes = lv.minutes
        level.actions = list(lv.actions)
        level.delegate_to_id = agents.get(lv.delegate_to) if lv.delegate_to else None
        level.notify_agents = list(lv.notify_agents)
        level.email_to = lv.email_to
        level.script = list(lv.script)
        s.add(level)


def _categories(
    s: Session, cfg: Config, priorities: Mapping[str, M.Priority], agents: Mapping[str, int]
) -> dict[str, M.Category]:
    existing = {row.name: row for row in s.exec(select(M.Category)).all()}
    # Two passes: a parent may come after its child in the file.
    for c in cfg.categories:
        row = existing.get(c.name) or M.Category(name=c.name)
        default = priorities.get(c.default_priority) if c.default_priority else None
        row.default_priority_id = default.id if default is not None else None
        row.assign_method = c.assign
        s.add(row)
        existing[c.name] = row
    s.flush()
    for c in cfg.categories:
        row = existing[c.name]
        parent = existing.get(c.parent) if c.parent else None
        row.parent_id = parent.id if parent is not None and parent is not row else None
        s.add(row)
        _category_agents(s, row, c.agents, agents)
    return existing


def _category_agents(
    s: Session, row: M.Category, logins: tuple[str, ...], agents: Mapping[str, int]
) -> None:
    """The category's members become exactly the listed agents that exist in the store."""
    assert row.id is not None
    wanted = {agents[login] for login in logins if login in agents}
    links = s.exec(select(M.CategoryAgent).where(M.CategoryAgent.category_id == row.id)).all()
    have = {link.agent_id for link in links}
    for link in links:
        if link.agent_id not in wanted:
            s.delete(link)
    for agent_id in sorted(wanted - have):
        s.add(M.CategoryAgent(category_id=row.id, agent_id=agent_id))


def _mailboxes(
    s: Session,
    cfg: Config,
    categories: Mapping[str, M.Category],
    priorities: Mapping[str, M.Priority],
) -> None:
    existing = {row.name: row for row in s.exec(select(M.Mailbox)).all()}
    for m in cfg.mailboxes:
        row = existing.get(m.name) or M.Mailbox(name=m.name, address=m.address)
        category = categories.get(m.category) if m.category else None
        priority = priorities.get(m.priority) if m.priority else None
        # Only the settings; uidvalidity, last_uid and the health columns are the worker's.
        row.address = m.address
        row.category_id = category.id if category is not None else None
        row.priority_id = priority.id if priority is not None else None
        row.ack_template = m.acknowledge_template
        s.add(row)


def ensure_desk_secret(store: Store) -> bytes:
    """The desk's HMAC key for our Message-IDs, created once and kept for the life of the store."""

    def fn(s: Session) -> str:
        row = s.get(M.Meta, MSGID_META_ROW)
        if row is None:
            row = M.Meta(key=MSGID_META_ROW, value=new_secret())
            s.add(row)
        return row.value

    with store.read() as s:
        found = s.get(M.Meta, MSGID_META_ROW)
        if found is not None:
            return bytes.fromhex(found.value)
    return bytes.fromhex(store.write(fn))

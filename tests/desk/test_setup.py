"""Syncing the config into a real SQLite store: upserts by name, never deletes, keeps sync state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, col, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config, default_config, load_config
from helpdesk_tui.desk.setup import apply_config, ensure_desk_secret
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, open_store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

CONFIG = """
[[agent]]
login = "lead"
name = "Lena Lead"
email = "Lead@Example.com"

[[agent]]
login = "alice"

[[category]]
name = "Billing"
parent = "Support"
agents = ["alice", "ghost"]
default_priority = "High"
assign = "round_robin"

[[category]]
name = "Support"
agents = ["lead", "alice"]
default_priority = "Normal"

[[status]]
name = "waiting on supplier"
base = "active"
counter = "external"
queue = false

[[status]]
name = "closed"
reopen_by_mail = false

[[priority]]
name = "Normal"
deadline_minutes = 120
escalate_only_in_hours = true
holidays = ["25/12", "17/05/2027"]
[priority.hours]
mon = ["09:00", "17:00"]
fri = ["10:00", "15:00"]
[priority.on]
read = "stop"
[[priority.level]]
alert_level = 1
minutes = 60
actions = ["notify_owner"]
[[priority.level]]
alert_level = 2
minutes = 120
actions = ["delegate", "notify_agents"]
delegate_to = "lead"
notify_agents = ["alice"]
[[priority.level]]
alert_level = 3
minutes = 240
actions = ["delegate", "script"]
delegate_to = "nobody"
script = ["/bin/true", "--x"]

[[priority]]
name = "High"
deadline_minutes = 60

[[mailbox]]
name = "support"
address = "support@example.com"
host = "127.0.0.1"
password_env = "X"
category = "Billing"
priority = "High"
acknowledge_template = "ack"
"""


@pytest.fixture
def fresh(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.dispose()


def config_from(tmp_path: Path, text: str, name: str = "config.toml") -> Config:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def rows(store: Store, model: type[SQLModel]) -> list[dict[str, Any]]:
    with store.read() as s:
        found = s.exec(select(model)).all()
        return sorted((r.model_dump() for r in found), key=repr)


SETUP_TABLES: list[type[SQLModel]] = [
    M.Status,
    M.Priority,
    M.EscalationLevel,
    M.Agent,
    M.Category,
    M.CategoryAgent,
    M.Mailbox,
]


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {model.__name__: rows(store, model) for model in SETUP_TABLES}


def one(s: Session, model: Any, name: str) -> Any:
    return s.exec(select(model).where(model.name == name)).one()


def test_default_config_fills_an_empty_store(fresh: Store) -> None:
    apply_config(fresh, default_config())
    with fresh.read() as s:
        statuses = {st.name: st for st in s.exec(select(M.Status)).all()}
        assert set(statuses) == {
            "open",
            "internal",
            "external",
            "postponed",
            "closed",
            "deleted",
            "merged",
        }
        assert (statuses["open"].base, statuses["open"].counter) == ("active", "queue")
        assert statuses["open"].is_queue
        assert not statuses["merged"].reopen_by_mail
        normal = one(s, M.Priority, "Normal")
        assert (normal.rank, normal.deadline_minutes) == (1, 120)
        assert normal.hours == {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
        assert (normal.on_read, normal.on_reassigned, normal.on_closed) == (
            "continue",
            "restart",
            "stop",
        )
        levels = s.exec(
            select(M.EscalationLevel)
            .where(M.EscalationLevel.priority_id == normal.id)
            .order_by(col(M.EscalationLevel.alert_level))
        ).all()
        assert [(lv.alert_level, lv.actions) for lv in levels] == [
            (1, ["notify_owner"]),
            (2, ["notify_category", "raise_priority"]),
        ]
        support = one(s, M.Category, "Support")
        assert (support.assign_method, support.default_priority_id) == ("queue", normal.id)
        assert s.exec(select(M.Mailbox)).all() == []
        assert s.exec(select(M.Agent)).all() == []


def test_apply_is_idempotent(fresh: Store, tmp_path: Path) -> None:
    cfg = config_from(tmp_path, CONFIG)
    apply_config(fresh, cfg, clock=FixedClock(T0))
    first = snapshot(fresh)
    apply_config(fresh, cfg, clock=FixedClock(T0))
    assert snapshot(fresh) == first
    assert len(first["EscalationLevel"]) == 3  # Normal's three; High has none


def test_everything_the_config_says_lands_in_the_store(fresh: Store, tmp_path: Path) -> None:
    apply_config(fresh, config_from(tmp_path, CONFIG), clock=FixedClock(T0))
    with fresh.read() as s:
        agents = {a.login: a for a in s.exec(select(M.Agent)).all()}
        assert set(agents) == {"lead", "alice"}
        lead = agents["lead"]
        assert (lead.name, lead.email, lead.active, lead.created_at) == (
            "Lena Lead",
            "lead@example.com",
            True,
            T0,
        )
        assert agents["alice"].name == "alice"

        normal = one(s, M.Priority, "Normal")
        high = one(s, M.Priority, "High")
        assert normal.hours == {"mon": ["09:00", "17:00"], "fri": ["10:00", "15:00"]}
        assert normal.holidays == ["25/12", "17/05/2027"]
        assert normal.escalate_only_in_hours
        assert (normal.on_read, normal.on_new_info, normal.on_new) == (
            "stop",
            "restart",
            "continue",
        )
        assert (normal.rank, high.rank) == (0, 1)
        assert high.hours == {}
        levels = {
            lv.alert_level: lv
            for lv in s.exec(
                select(M.EscalationLevel).where(M.EscalationLevel.priority_id == normal.id)
            ).all()
        }
        assert levels[2].delegate_to_id == lead.id
        assert levels[2].notify_agents == ["alice"]
        assert levels[3].delegate_to_id is None  # "nobody" is not an agent anywhere
        assert levels[3].script == ["/bin/true", "--x"]

        support = one(s, M.Category, "Support")
        billing = one(s, M.Category, "Billing")
        assert billing.parent_id == support.id  # the parent came later in the file
        assert support.parent_id is None
        assert (billing.assign_method, billing.default_priority_id) == ("round_robin", high.id)
        links = {(c.category_id, c.agent_id) for c in s.exec(select(M.CategoryAgent)).all()}
        assert links == {
            (billing.id, agents["alice"].id),  # "ghost" does not exist: no link
            (support.id, lead.id),
            (support.id, agents["alice"].id),
        }

        supplier = one(s, M.Status, "waiting on supplier")
        assert (supplier.base, supplier.counter, supplier.is_queue) == ("active", "external", False)
        assert not one(s, M.Status, "closed").reopen_by_mail

        box = one(s, M.Mailbox, "support")
        assert (box.address, box.category_id, box.priority_id, box.ack_template) == (
            "support@example.com",
            billing.id,
            high.id,
            "ack",
        )


def test_levels_are_replaced(fresh: Store, tmp_path: Path) -> None:
    apply_config(fresh, config_from(tmp_path, CONFIG))
    with fresh.read() as s:
        normal_id = one(s, M.Priority, "Normal").id
        before = {
            lv.alert_level: lv.id
            for lv in s.exec(
                select(M.EscalationLevel).where(M.EscalationLevel.priority_id == normal_id)
            ).all()
        }
    changed = CONFIG.replace(
        """[[priority.level]]
alert_level = 3
minutes = 240
actions = ["delegate", "script"]
delegate_to = "nobody"
script = ["/bin/true", "--x"]
""",
        "",
    ).replace("minutes = 60\n", "minutes = 45\n")
    apply_config(fresh, config_from(tmp_path, changed))
    with fresh.read() as s:
        after = s.exec(
            select(M.EscalationLevel)
            .where(M.EscalationLevel.priority_id == normal_id)
            .order_by(col(M.EscalationLevel.alert_level))
        ).all()
        assert [(lv.alert_level, lv.minutes) for lv in after] == [(1, 45), (2, 120)]
        assert [lv.id for lv in after] == [before[1], before[2]]

    # A priority whose levels all go away keeps none.
    bare = "[[priority]]\nname = 'Normal'\ndeadline_minutes = 120\n"
    apply_config(fresh, config_from(tmp_path, bare))
    with fresh.read() as s:
        assert s.exec(select(M.EscalationLevel)).all() == []


def test_levels_can_be_renumbered(fresh: Store, tmp_path: Path) -> None:
    """Shifting 1,2,3 to 2,3,4 must not trip the unique (priority, alert_level) constraint."""
    apply_config(fresh, config_from(tmp_path, CONFIG))
    shifted = CONFIG
    for old, new in ((3, 4), (2, 3), (1, 2)):
        shifted = shifted.replace(f"alert_level = {old}\n", f"alert_level = {new}\n")
    apply_config(fresh, config_from(tmp_path, shifted))
    with fresh.read() as s:
        got = sorted((lv.alert_level, lv.minutes) for lv in s.exec(select(M.EscalationLevel)).all())
    assert got == [(2, 60), (3, 120), (4, 240)]


def test_mailbox_sync_state_survives_apply(fresh: Store, tmp_path: Path) -> None:
    apply_config(fresh, config_from(tmp_path, CONFIG))

    def synced(s: Session) -> None:
        box = one(s, M.Mailbox, "support")
        box.uidvalidity = 1234
        box.last_uid = 99
        box.last_success = T0
        box.last_try = T0
        box.last_error = "timeout"
        box.consecutive_failures = 2
        box.stopped_reason = "auth"

    fresh.write(synced)
    moved = CONFIG.replace('address = "support@example.com"', 'address = "help@example.com"')
    moved = moved.replace('acknowledge_template = "ack"', 'acknowledge_template = "ack2"')
    apply_config(fresh, config_from(tmp_path, moved))
    with fresh.read() as s:
        box = one(s, M.Mailbox, "support")
        assert (box.address, box.ack_template) == ("help@example.com", "ack2")
        assert (box.uidvalidity, box.last_uid, box.last_success, box.last_try) == (
            1234,
            99,
            T0,
            T0,
        )
        assert (box.last_error, box.consecutive_failures, box.stopped_reason) == (
            "timeout",
            2,
            "auth",
        )


def test_nothing_leaving_the_config_is_deleted(fresh: Store, tmp_path: Path) -> None:
    apply_config(fresh, config_from(tmp_path, CONFIG))
    before = snapshot(fresh)
    apply_config(fresh, default_config())
    with fresh.read() as s:
        names = {st.name for st in s.exec(select(M.Status)).all()}
        assert "waiting on supplier" in names
        assert {c.name for c in s.exec(select(M.Category)).all()} == {"Support", "Billing"}
        assert {p.name for p in s.exec(select(M.Priority)).all()} == {
            "Low",
            "Normal",
            "High",
            "Urgent",
        }
        assert [m.name for m in s.exec(select(M.Mailbox)).all()] == ["support"]
        assert {a.login for a in s.exec(select(M.Agent)).all()} == {"lead", "alice"}
    after = snapshot(fresh)
    assert after["Mailbox"] == before["Mailbox"]
    # Billing is not in the default config, so its members stay as they were.
    billing = _category_id(fresh, "Billing")
    assert [r for r in after["CategoryAgent"] if r["category_id"] == billing] == [
        r for r in before["CategoryAgent"] if r["category_id"] == billing
    ]


def _category_id(store: Store, name: str) -> int:
    with store.read() as s:
        cid = one(s, M.Category, name).id
        assert isinstance(cid, int)
        return cid


def test_existing_agents_are_left_alone(fresh: Store, tmp_path: Path) -> None:
    def add(s: Session) -> None:
        s.add(M.Agent(login="lead", name="Chosen Name", email="", active=False, created_at=T0))

    fresh.write(add)
    apply_config(fresh, config_from(tmp_path, CONFIG))
    with fresh.read() as s:
        lead = s.exec(select(M.Agent).where(M.Agent.login == "lead")).one()
        assert (lead.name, lead.email, lead.active) == ("Chosen Name", "", False)


def test_store_agents_resolve_delegate_to_and_category_links(fresh: Store, tmp_path: Path) -> None:
    def add(s: Session) -> None:
        s.add(M.Agent(login="nobody", name="No Body", created_at=T0))
        s.add(M.Agent(login="ghost", name="Ghost", created_at=T0))

    fresh.write(add)
    apply_config(fresh, config_from(tmp_path, CONFIG))
    with fresh.read() as s:
        nobody = s.exec(select(M.Agent).where(M.Agent.login == "nobody")).one()
        ghost = s.exec(select(M.Agent).where(M.Agent.login == "ghost")).one()
        level3 = s.exec(select(M.EscalationLevel).where(M.EscalationLevel.alert_level == 3)).one()
        assert level3.delegate_to_id == nobody.id
        billing = one(s, M.Category, "Billing")
        members = s.exec(
            select(M.CategoryAgent.agent_id).where(M.CategoryAgent.category_id == billing.id)
        ).all()
        assert ghost.id in members


def test_category_members_follow_the_config(fresh: Store, tmp_path: Path) -> None:
    apply_config(fresh, config_from(tmp_path, CONFIG))
    fewer = CONFIG.replace('agents = ["lead", "alice"]', 'agents = ["alice"]')
    apply_config(fresh, config_from(tmp_path, fewer))
    with fresh.read() as s:
        support = one(s, M.Category, "Support")
        members = s.exec(
            select(M.Agent.login)
            .join(M.CategoryAgent, col(M.CategoryAgent.agent_id) == col(M.Agent.id))
            .where(M.CategoryAgent.category_id == support.id)
        ).all()
    assert list(members) == ["alice"]


def test_desk_secret_is_made_once(fresh: Store) -> None:
    first = ensure_desk_secret(fresh)
    assert len(first) == 32
    assert ensure_desk_secret(fresh) == first
    with fresh.read() as s:
        row = s.get(M.Meta, "message_id_secret")
        assert row is not None
        assert bytes.fromhex(row.value) == first


def test_desk_secret_keeps_an_existing_one(fresh: Store) -> None:
    def put(s: Session) -> None:
        s.add(M.Meta(key="message_id_secret", value="ab" * 32))

    fresh.write(put)
    assert ensure_desk_secret(fresh) == bytes.fromhex("ab" * 32)


def test_templates_folder_is_checked_and_loaded(tmp_path: Path, db_url: str) -> None:
    """Unknown variables are config errors naming the file; good templates become rows."""
    from helpdesk_tui.config import check_config, load_config
    from helpdesk_tui.desk.setup import apply_config
    from helpdesk_tui.store import models as M
    from helpdesk_tui.store.engine import open_store

    folder = tmp_path / "templates"
    (folder / "auto").mkdir(parents=True)
    (folder / "auto" / "acknowledgement.en.txt").write_text(
        "Subject: [#{number}] {title}\n\nDear {customer_name}, we got your request {number}.\n"
    )
    (folder / "auto" / "acknowledgement.nb.txt").write_text(
        "Subject: [#{number}] {title}\n\nHei {customer_name}, saken har nummer {number}.\n"
    )
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text('[desk]\nname = "T"\ntemplates = "templates"\n')
    assert check_config(load_config(cfg_path)) == []
    store = open_store(db_url)
    apply_config(store, load_config(cfg_path))
    apply_config(store, load_config(cfg_path))
    with store.read() as s:
        rows = sorted((t.folder, t.name, t.language) for t in s.exec(select(M.ReplyTemplate)).all())
    assert rows == [("auto", "acknowledgement", "en"), ("auto", "acknowledgement", "nb")]
    (folder / "closing.en.txt").write_text("Subject: Bye {nmuber}\n\nBye {customer_name}\n")
    problems = [str(p) for p in check_config(load_config(cfg_path))]
    assert len(problems) == 1 and "closing.en.txt" in problems[0] and "nmuber" in problems[0]
    store.dispose()

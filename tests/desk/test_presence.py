"""Presence rows on a real SQLite store, and the version checks every ticket action makes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk import presence
from helpdesk_tui.desk.errors import Conflict
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from tests.conftest import make_desk

HERE, THERE, ELSEWHERE = "host-a:1", "host-b:2", "host-c:3"


@pytest.fixture
def ticket(desk: Desk) -> int:
    return desk.register(
        customer_email="carla@customer.example", subject="Printer on fire", body="It smokes."
    ).number


def _rows(store: Store) -> list[tuple[str, str, object]]:
    """(session, activity, seen_at) of every row."""
    with store.read() as s:
        return [(p.session, p.activity, p.seen_at) for p in s.exec(select(M.Presence)).all()]


def test_others_lists_other_sessions_with_names_composers_first(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    bob, lead = make_desk(store, clock, "bob"), make_desk(store, clock, "lead")
    assert presence.announce(desk, ticket, "viewing", session=HERE)
    presence.announce(lead, ticket, "viewing", session=ELSEWHERE)
    presence.announce(bob, ticket, "composing", session=THERE)
    seen = presence.others(desk, ticket, session=HERE)
    assert [(r.login, r.name, r.activity) for r in seen] == [
        ("bob", "Bob Baker", "composing"),
        ("lead", "Lena Lead", "viewing"),
    ]
    assert presence.describe(seen) == "Bob Baker (composing), Lena Lead (viewing)"
    # Bob sees alice and lead, never his own session.
    assert [r.login for r in presence.others(bob, ticket, session=THERE)] == ["alice", "lead"]


def test_my_own_other_session_is_called_mine(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    """A second SSH session of the same agent is not shown under the agent's own name, as if
    a colleague were there."""
    bob = make_desk(store, clock, "bob")
    presence.announce(desk, ticket, "composing", session=ELSEWHERE)
    presence.announce(bob, ticket, "viewing", session=THERE)
    seen = presence.others(desk, ticket, session=HERE)
    assert presence.describe(seen, "alice") == (
        "you, in another session (composing), Bob Baker (viewing)"
    )


def test_a_renewal_updates_the_one_row_and_the_activity(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    presence.announce(desk, ticket, "viewing", session=HERE)
    clock.advance(seconds=10)
    presence.announce(desk, ticket, "composing", session=HERE)
    rows = _rows(store)
    assert len(rows) == 1
    assert rows == [(HERE, "composing", clock.now())]


def test_entries_expire_after_the_ttl_and_leave_removes_them(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    bob = make_desk(store, clock, "bob")
    presence.announce(bob, ticket, "viewing", session=THERE)
    clock.advance(presence.TTL - timedelta(seconds=1))
    assert [r.login for r in presence.others(desk, ticket, session=HERE)] == ["bob"]
    clock.advance(seconds=2)
    assert presence.others(desk, ticket, session=HERE) == []
    presence.announce(bob, ticket, "viewing", session=THERE)
    assert presence.others(desk, ticket, session=HERE) != []
    presence.leave(bob, ticket, session=THERE)
    assert presence.others(desk, ticket, session=HERE) == []
    assert _rows(store) == []


def test_one_agent_in_two_terminals_shows_once_composing_wins(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    bob = make_desk(store, clock, "bob")
    presence.announce(bob, ticket, "viewing", session=THERE)
    presence.announce(bob, ticket, "composing", session=ELSEWHERE)
    seen = presence.others(desk, ticket, session=HERE)
    assert [(r.login, r.activity) for r in seen] == [("bob", "composing")]


def test_dead_rows_are_purged_by_the_next_announce_and_by_cleanup(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    bob = make_desk(store, clock, "bob")
    presence.announce(bob, ticket, "viewing", session=THERE)
    clock.advance(presence.PURGE_AFTER + timedelta(seconds=1))
    presence.announce(desk, ticket, "viewing", session=HERE)
    assert [r[0] for r in _rows(store)] == [HERE]
    clock.advance(presence.PURGE_AFTER + timedelta(seconds=1))
    assert presence.cleanup(desk) == 1
    assert _rows(store) == []


def test_announce_is_a_no_op_for_a_non_agent_or_unknown_ticket(
    store: Store, clock: FixedClock, desk: Desk, ticket: int
) -> None:
    system = make_desk(store, clock, None)
    assert not presence.announce(system, ticket, session=THERE)
    assert not presence.announce(desk, ticket + 100, session=HERE)
    assert _rows(store) == []
    with pytest.raises(ValueError, match="activity"):
        presence.announce(desk, ticket, "typing", session=HERE)


def test_session_id_is_host_and_pid() -> None:
    import os

    assert presence.session_id().endswith(f":{os.getpid()}")


# ---------------------------------------------------------------------- version checks


def test_a_stale_version_is_a_conflict_naming_who_did_what(
    desk: Desk, store: Store, clock: FixedClock, ticket: int
) -> None:
    seen = desk.show(ticket).version
    make_desk(store, clock, "bob").close(ticket)
    with pytest.raises(Conflict) as caught:
        desk.assign(ticket, "lead", expected_version=seen)
    assert (
        str(caught.value) == f"#{ticket} was changed by Bob Baker (bob) since you opened it: close"
    )
    assert caught.value.current_version == desk.show(ticket).version


@pytest.mark.parametrize("action", ["reply", "note", "ask", "forward", "merge"])
def test_messages_and_merge_check_the_version_too(
    desk: Desk, store: Store, clock: FixedClock, ticket: int, action: str
) -> None:
    other = desk.register(customer_email="x@y.example", subject="Other", body="b").number
    seen = desk.show(ticket).version
    make_desk(store, clock, "bob").set_priority(ticket, "Urgent")
    calls: dict[str, Callable[[int | None], object]] = {
        "reply": lambda v: desk.reply(ticket, "Hello", expected_version=v),
        "note": lambda v: desk.note(ticket, "Hm", expected_version=v),
        "ask": lambda v: desk.ask(ticket, "bob", "Help?", expected_version=v),
        "forward": lambda v: desk.forward(ticket, "ext@party.example", "Fyi", expected_version=v),
        "merge": lambda v: desk.merge(ticket, other, expected_version=v),
    }
    messages = len(desk.show(ticket).messages)
    with pytest.raises(Conflict, match="Bob Baker"):
        calls[action](seen)
    assert len(desk.show(ticket).messages) == messages  # nothing half-done
    calls[action](desk.show(ticket).version)  # against the current version it lands

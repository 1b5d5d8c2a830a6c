"""The content mark: screens reload for what they show, not for presence or lease heartbeats."""

from __future__ import annotations

from helpdesk_tui.desk import lease, presence
from helpdesk_tui.desk.changes import content_mark
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store.engine import Store


def test_bookkeeping_does_not_move_the_mark_and_actions_do(desk: Desk, store: Store) -> None:
    number = desk.register(customer_email="ann@customer.example", subject="Printer").number
    mark = content_mark(store)
    assert presence.announce(desk, number, "composing", session="host:1")  # a row written
    assert lease.acquire(store, "app@host:1", lease.wall_now(), kind="app")
    assert content_mark(store) == mark
    desk.note(number, "checked the toner")
    moved = content_mark(store)
    assert moved != mark
    desk.register(customer_email="bob@customer.example", subject="Scanner")
    assert content_mark(store) != moved

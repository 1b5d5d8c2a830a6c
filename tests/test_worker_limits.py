"""A duty pass works through a backlog a bounded number of tickets at a time."""

from __future__ import annotations

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.session import DeskHandle
from helpdesk_tui.store.engine import Store
from helpdesk_tui.worker import Worker
from tests.conftest import make_desk


def test_a_pass_wakes_at_most_wake_limit_tickets(
    desk: Desk, store: Store, clock: FixedClock, config: Config
) -> None:
    numbers = [
        desk.register(customer_email=f"c{i}@customer.example", subject=f"Later {i}").number
        for i in range(5)
    ]
    for n in numbers:
        desk.postpone(n, preset="1h")
    clock.advance(hours=2)
    worker = Worker(DeskHandle(make_desk(store, clock, None), config, store), parse_processes=1)
    worker.wake_limit = 2  # as the app's embedded pass sets it (tui/live.py)
    try:
        assert len(worker.run_once().reactivated) == 2
        assert len(worker.run_once().reactivated) == 2
        assert len(worker.run_once().reactivated) == 1
    finally:
        worker.close()
    assert all(desk.show(n).summary.base_status == "active" for n in numbers)

"""Dashboard figures leave out tickets that are not requests of their own (deleted, merged)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.stats import desk_stats
from helpdesk_tui.store.engine import Store

OSLO = ZoneInfo("Europe/Oslo")


def test_deleted_and_merged_tickets_count_in_no_figure(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    numbers = []
    for i in range(4):
        numbers.append(
            desk.register(customer_email=f"c{i}@customer.example", subject=f"Request {i}").number
        )
        clock.advance(hours=1)
    for n in numbers:
        desk.reply(n, "On it.")
    clock.advance(hours=2)
    for n in numbers[:3]:
        desk.close(n)
    before = desk_stats(store, clock.now(), OSLO, days=10)
    assert before.time_to_close[7].count == 3 and before.first_response[7].count == 4
    assert sum(before.incoming) == 4

    desk.delete(numbers[0])  # a closed ticket, deleted as spam
    desk.merge(numbers[3], numbers[1])  # a duplicate, merged away
    clock.advance(minutes=5)
    after = desk_stats(store, clock.now() + timedelta(seconds=1), OSLO, days=10)
    assert after.time_to_close[7].count == 2
    assert after.first_response[7].count == 2
    assert sum(after.incoming) == 2
    assert "deleted" not in dict(after.by_status) and "merged" not in dict(after.by_status)

"""How the ticket list draws its rows: the cursor across every cell, deadlines only where due
and a postponed ticket's wake-up time."""

from __future__ import annotations

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.widgets.ticket_list import TicketList, layout
from tests.tui.conftest import make_app, settle


def _backgrounds(tickets: TicketList, index: int) -> set[object]:
    """The background of every cell of row `index` as the list draws it now."""
    y = index - round(tickets.scroll_offset.y) + 1  # line 0 is the header
    strip = tickets.render_line(y)
    return {seg.style.bgcolor for seg in strip if seg.style is not None}


async def test_the_cursor_lights_every_cell_of_unread_escalated_and_tagged_rows(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        cursor_bg = tickets.get_component_rich_style("ticket-list--cursor").bgcolor
        first = tickets.current
        # Printer on fire: unread (bold), overdue (red deadline), escalated (!2).
        assert first is not None and first.number == seeded[0]
        assert first.read_status == "red" and first.alert_level == 2
        assert _backgrounds(tickets, 0) == {cursor_bg}
        await pilot.press("space")  # tag it; the cursor moves on to the next row
        await settle(pilot)
        await pilot.press("up")
        await settle(pilot)
        assert seeded[0] in tickets.tagged
        assert _backgrounds(tickets, 0) == {cursor_bg}
        # A row without the cursor keeps the list's own background everywhere.
        assert cursor_bg not in _backgrounds(tickets, 1)
        # Blurred (the sidebar has the focus): the cursor is dimmer but still whole.
        app.screen.query_one("#sidebar").focus()
        await settle(pilot)
        blurred = tickets.get_component_rich_style("ticket-list--cursor").bgcolor
        assert _backgrounds(tickets, 0) == {blurred}


async def test_the_deadline_column_is_for_active_tickets_and_wake_ups_for_postponed_ones(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    desk.close(seeded[0])  # its deadline passed hours ago
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        rows = {tickets.number_at(i): i for i in range(tickets.total)}
        cols = layout(tickets.scrollable_content_region.width)
        start = sum(c.width for c in cols[: [c.name for c in cols].index("deadline")])
        width = next(c.width for c in cols if c.name == "deadline")

        def deadline(number: int) -> str:
            y = rows[number] - round(tickets.scroll_offset.y) + 1
            return tickets.render_line(y).text[start : start + width].strip()

        assert deadline(seeded[0]) == ""  # closed: nothing is due any more
        assert deadline(seeded[5]).startswith("-")  # still open and overdue: still said
        # Postponed: its deadline is on hold; the column says when it comes back.
        woke = desk.show(seeded[4]).activate_at
        assert woke is not None
        assert deadline(seeded[4]) == f"wake {fmt.short_span((woke - clock.now()).total_seconds())}"
        assert deadline(seeded[4]) == "wake 6d"

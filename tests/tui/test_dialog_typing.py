"""Dialogs take what is typed where it is meant: a postpone phrase, a picker on its value."""

from __future__ import annotations

from textual.widgets import OptionList

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui.screens.dialogs import PickDialog
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.tui.conftest import make_app, settle


async def test_a_postpone_phrase_is_typed_without_a_tab_first(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        target = app.screen.query_one(TicketList).current
        assert target is not None
        await pilot.press("p", *"tomorrow 9:00", "enter")  # t is no preset: into the box
        await settle(pilot)
        shown = desk.show(target.number)
        assert shown.summary.base_status == "postponed"
        assert shown.activate_at is not None and shown.activate_at.hour == 9


async def test_the_priority_picker_starts_on_the_tickets_priority(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        target = app.screen.query_one(TicketList).current
        assert target is not None and target.priority is not None
        await pilot.press("P")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        box = app.screen.query_one(OptionList)
        assert box.highlighted is not None
        assert box.get_option_at_index(box.highlighted).id == target.priority
        await pilot.press("enter")  # the same again: nothing changes
        await settle(pilot)
        assert desk.show(target.number).summary.priority == target.priority


async def test_undo_after_a_batch_keeps_the_remaining_tags(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        await pilot.press("space", "space")
        await settle(pilot)
        tagged = set(app.tagged)
        was = {n: desk.show(n).summary.status for n in tagged}
        await pilot.press("semicolon", "c")  # close both; the batch uses their tags up
        await settle(pilot)
        assert app.tagged == set()
        again = min(tagged)
        app.tagged.add(again)  # tagged anew, as space on its row would
        kept = set(app.tagged)
        await pilot.press("u")  # undoes the batch close
        await settle(pilot)
        assert {n: desk.show(n).summary.status for n in tagged} == was
        assert app.tagged == kept

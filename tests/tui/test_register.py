"""Register a request (N): fields keep what was typed, drafts, and picking a known customer."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from textual.pilot import Pilot
from textual.widgets import Input, Select, TextArea

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.screens.register import RegisterScreen
from tests.tui.conftest import make_app, settle


async def open_register(pilot: Pilot[Any], app: HelpdeskApp) -> RegisterScreen:
    await settle(pilot)
    await pilot.press("N")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, RegisterScreen)
    return screen


async def test_tabbing_back_to_a_field_adds_to_it(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_register(pilot, app)
        name = screen.query_one("#name", Input)
        name.focus()
        await pilot.press(*"Nina", "tab", *"Printer", "shift+tab")
        await settle(pilot)
        await pilot.press(*" Nordmann")
        assert name.value == "Nina Nordmann"


async def test_escape_keeps_the_form_as_a_draft_until_the_request_is_saved(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_register(pilot, app)
        await pilot.press(*"nina@nord.example", "tab", *"Nina Nord")
        screen.query_one("#subject", Input).focus()
        await pilot.press(*"Scanner jams")
        screen.query_one(TextArea).focus()
        await pilot.press(*"Every second page.")
        screen.query_one("#priority", Select).value = "High"
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, RegisterScreen)

        again = await open_register(pilot, app)
        assert again is not screen
        assert again.query_one("#email", Input).value == "nina@nord.example"
        assert again.query_one("#name", Input).value == "Nina Nord"
        assert again.query_one("#subject", Input).value == "Scanner jams"
        assert again.query_one(TextArea).text == "Every second page."
        assert again.query_one("#priority", Select).value == "High"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        number = app.screen.number
        registered = desk.show(number)
        assert registered.summary.title == "Scanner jams"
        assert registered.summary.priority == "High"
        assert registered.messages[0].body == "Every second page."

        await pilot.press("escape")
        await settle(pilot)
        fresh = await open_register(pilot, app)
        assert fresh.query_one("#email", Input).value == ""
        assert fresh.query_one("#subject", Input).value == ""
        assert fresh.query_one(TextArea).text == ""


async def test_the_footer_says_escape_keeps_the_draft(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_register(pilot, app)
        shown = {b.binding.description for b in screen.active_bindings.values()}
        assert "Back (keeps draft)" in shown


async def test_picking_a_customer_keeps_the_address_that_was_typed(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    def second_address(s: Session) -> None:
        carla = s.exec(
            select(M.CustomerAddress).where(M.CustomerAddress.address == "carla@customer.example")
        ).one()
        s.add(M.CustomerAddress(customer_id=carla.customer_id, address="carla.c@home.example"))

    store.write(second_address)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_register(pilot, app)
        await pilot.press(*"carla.c")
        await settle(pilot)
        assert [c.name for c in screen.matches] == ["Carla Customer"]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert screen.query_one("#email", Input).value == "carla.c@home.example"
        assert screen.query_one("#name", Input).value == "Carla Customer"
        # Found by name, nothing typed in the address: the customer's first address.
        email = screen.query_one("#email", Input)
        email.value = ""
        screen.query_one("#name", Input).focus()
        screen.query_one("#name", Input).value = ""
        await pilot.press(*"Carla")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert email.value == "carla@customer.example"


async def test_f1_opens_the_help_from_a_text_field(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    from helpdesk_tui.tui.screens.help import HelpScreen

    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_register(pilot, app)
        email = screen.query_one("#email", Input)
        assert email.has_focus
        footer = screen.active_bindings["f1"].binding
        assert footer.show and footer.id == "register.help"
        await pilot.press("question_mark")  # a character in a text box
        assert email.value == "?" and app.screen is screen
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert ("f1", "Help", "register.help") in app.screen.lines
        await pilot.press("f1")
        await settle(pilot)
        assert app.screen is screen and email.value == "?"

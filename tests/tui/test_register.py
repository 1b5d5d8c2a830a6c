"""Register a request (N): fields keep what was typed, drafts, and picking a known customer."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui.app import HelpdeskApp
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

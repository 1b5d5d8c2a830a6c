"""Tags outlive a change of view until escape drops them; `/` with a number opens that ticket."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.screens.main import MainScreen
from tests.tui.conftest import make_app, settle


def _topbar(app: object) -> str:
    from textual.widgets import Static

    screen = app.screen  # type: ignore[attr-defined]
    return str(screen.query_one("#topbar", Static).render())


async def test_escape_drops_every_tag_and_a_pending_batch(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("space")  # one of My open
        await pilot.press("g", "a")
        await settle(pilot)
        await pilot.press("space", "space")  # two more in All
        await settle(pilot)
        assert len(app.tagged) == 3
        await pilot.press("semicolon")
        assert "applies to all 3 tagged" in _topbar(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.tagged == set() and not app.batch
        assert "tagged" not in _topbar(app)
        await pilot.press("c")  # a plain close again: the ticket under the cursor only
        await settle(pilot)
        closed = [n for n in seeded if desk.show(n).summary.base_status == "closed"]
        assert len(closed) == 1


async def test_slash_with_a_number_opens_that_ticket(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], monkeypatch: Any
) -> None:
    # The read decides, however slow this machine: the screen is not pushed before it.
    monkeypatch.setattr("helpdesk_tui.tui.app.OPEN_WAIT", 30.0)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *f"#{seeded[3]}", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen) and app.screen.number == seeded[3]
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("slash", *"99999", "enter")
        await settle(pilot)
        assert any("99999" in str(n.message) for n in app._notifications)
        assert app.is_running
        assert isinstance(app.screen, MainScreen)  # no empty ticket screen for it


async def test_v_takes_a_ticket_off_needs_review(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    def flag(s: Session) -> None:
        t = s.get(M.Ticket, seeded[1])
        assert t is not None
        t.needs_review = True  # as intake leaves a mail it could not be sure of

    store.write(flag)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "r")
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen) and main.tickets.total == 1
        await pilot.press("v")
        await settle(pilot)
        assert main.tickets.total == 0
        assert desk.show(seeded[1]).summary.needs_review is False
        assert desk.show(seeded[1]).events[-1].action == "reviewed"

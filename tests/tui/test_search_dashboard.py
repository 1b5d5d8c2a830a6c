"""Search (`/`, saved searches) and the dashboard (`D`, `g d`, palette), driven by the keyboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.search import SavedSearch, save_search, saved_searches
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.views import search_view
from helpdesk_tui.tui.screens.dashboard import DashboardScreen
from helpdesk_tui.tui.screens.main import MainScreen
from helpdesk_tui.tui.widgets.sidebar import Sidebar
from tests.tui.conftest import make_app, settle

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
SnapCompare = Callable[..., bool]


async def _search(pilot: Pilot[int], text: str) -> None:
    await settle(pilot)
    await pilot.press("slash")
    await settle(pilot)
    await pilot.press(*text)
    await pilot.press("enter")
    await settle(pilot)


def _main(pilot: Pilot[int]) -> MainScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def test_slash_searches_and_lists_matches_newest_first(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await _search(pilot, "order")
        main = _main(pilot)
        assert main.view == search_view("order")
        lst = main.tickets
        assert lst.total == 2
        assert [lst.number_at(0), lst.number_at(1)] == [seeded[4], seeded[3]]
        specs = {v.id: v for v in main.query_one(Sidebar).specs}
        assert specs[search_view("order")].label == "Search: order"
        # Field terms and phrases, through the same input.
        await _search(pilot, 'priority:urgent "on fire"')
        assert main.tickets.total == 1
        assert main.tickets.number_at(0) == seeded[0]
        await _search(pilot, "nothing-like-this")
        assert main.tickets.total == 0


async def test_bad_searches_say_why_and_keep_the_list(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        main = _main(pilot)
        before = main.view
        await _search(pilot, "stat:open")
        await _search(pilot, "priority:meh")
        assert main.view == before
        shown = [str(n.message) for n in app._notifications]
        assert any("unknown field 'stat:'" in m for m in shown)
        assert any("unknown priority 'meh'" in m for m in shown)
        # Markup in a query is text, not markup: the app keeps running.
        await _search(pilot, "[@click=app.quit]x[/] [/]")
        assert app.is_running


async def test_save_search_adds_a_sidebar_view(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await _search(pilot, "owner:me")
        await pilot.press("S")
        await pilot.press(*"Mine again", "enter")
        await settle(pilot)
        main = _main(pilot)
        saved = [v for v in main.query_one(Sidebar).specs if v.letter == "1"]
        assert [(v.label, v.id) for v in saved] == [("Mine again", search_view("owner:me"))]
        await pilot.press("g", "a")
        await settle(pilot)
        assert main.view == "all"
        await pilot.press("g", "1")
        await settle(pilot)
        assert main.view == search_view("owner:me")
        assert main.tickets.total == 4  # #3 came to alice with a question
    # A new session finds it again.
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        labels = [v.label for v in _main(pilot).query_one(Sidebar).specs]
        assert "Mine again" in labels


async def test_s_on_a_saved_search_renames_or_forgets_it(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """One entry per query: saving it again renames it (two entries of one id once broke the
    sidebar and every later start), and `S` can forget it too."""
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await _search(pilot, "owner:me")
        await pilot.press("S", *"Mine again", "enter")
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("enter")  # Rename…
        await settle(pilot)
        await pilot.press(*" (renamed)", "enter")
        await settle(pilot)
        assert saved_searches(desk.store, "alice") == [
            SavedSearch("Mine again (renamed)", "owner:me")
        ]
        labels = [v.label for v in _main(pilot).query_one(Sidebar).specs]
        assert "Mine again (renamed)" in labels and "Mine again" not in labels
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("down", "enter")  # Forget this saved search
        await settle(pilot)
        assert saved_searches(desk.store, "alice") == []
        assert app.is_running


async def test_a_store_with_one_query_saved_twice_and_ten_searches_still_starts(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    for n in range(10):
        save_search(desk.store, "alice", f"q{n}", f"status:open priority:p{n}")
    save_search(desk.store, "alice", "twice", "status:open priority:p0")
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        specs = _main(pilot).query_one(Sidebar).specs
        searches = [v for v in specs if v.id.startswith("search:")]
        assert [v.label for v in searches] == [f"q{n}" for n in range(10)]
        assert [v.letter for v in searches] == [*"123456789", ""]
        assert _main(pilot).view == "mine" and _main(pilot).tickets.total > 0


async def test_dashboard_by_key_goto_and_palette(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        text = str(screen.query_one("#by-status", Static).render())
        assert "open" in text
        assert sum(screen.query_one("#incoming", Sparkline).data or []) == len(seeded)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("g", "d")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"dashboard")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)


def _steps(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            if key.startswith("type:"):
                await pilot.press(*key.removeprefix("type:"))
            else:
                await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    return run


SCREENS = {
    "search_results": ("slash", "type:order", "enter"),
    "search_prompt": ("slash", "type:from:carla is:unread"),
    "dashboard": ("D",),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    seeded: list[int],
    screen: str,
    size: tuple[int, int],
) -> None:
    app = make_app(desk, config, clock)
    assert snap_compare(app, terminal_size=size, run_before=_steps(*SCREENS[screen]))


async def test_a_saved_search_that_no_longer_runs_says_so_in_the_list(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """Its rows are not the last view's under its name, and the list is not left waiting."""
    save_search(desk.store, "alice", "gone", "category:nosuch")  # a category since removed
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        main = _main(pilot)
        assert main.tickets.total > 0
        await pilot.press("g", "1")
        await settle(pilot)
        assert main.view == search_view("category:nosuch")
        assert main.tickets.total == 0 and not main.tickets._loading
        assert "cannot be shown" in str(main.tickets.render_line(1).text)
        assert any("nosuch" in str(n.message) for n in app._notifications)
        await pilot.press("g", "a")
        await settle(pilot)
        assert main.tickets.total > 0 and main.tickets.error == ""

"""Many agents on one store: conflicts on screen, presence on the ticket, alerts from others.

Two sessions share one real SQLite file: the app (alice) and a second Desk (bob, or a `helpdesk`
CLI process). For the conflict tests the live refresher is slowed right down: with it at its
usual 0.5 s the app would often redraw bob's change before alice's key arrives, and the test
would race it. What they show is the other case, a key pressed on a screen not yet redrawn.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static
from textual.widgets._toast import Toast

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk import presence
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.compose import ComposeScreen
from helpdesk_tui.tui.screens.dashboard import DashboardScreen
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.screens.dialogs import ConflictDialog, PickDialog
from helpdesk_tui.tui.screens.help import HelpScreen
from helpdesk_tui.tui.screens.main import MainScreen
from helpdesk_tui.tui.widgets.conversation import Conversation
from helpdesk_tui.tui.widgets.presence import PresenceLine
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.conftest import PROJECT_ROOT, make_desk
from tests.tui.conftest import settle, shown

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
ELSEWHERE = "bobs-laptop:4242"  # bob's app session


def slow_live_app(desk: Desk, config: Config, clock: FixedClock) -> HelpdeskApp:
    return HelpdeskApp(
        desk=desk, config=config, clock=clock, cursor_blink=False, live_interval=3600, duties=False
    )


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], within: float) -> float:
    """Let the app run (pilot.pause) until `condition` holds; the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await pilot.pause(0.02)
    return time.monotonic() - start


def top(app: HelpdeskApp) -> object:
    """The screen on top, unnarrowed (mypy keeps an isinstance narrowing across awaits)."""
    return app.screen


def conflict_text(app: HelpdeskApp) -> str:
    assert isinstance(app.screen, ConflictDialog), type(app.screen).__name__
    lines = [str(w.render()) for w in app.screen.query(Static)]
    return "\n".join([*lines, *(str(b.label) for b in app.screen.query(Button))])


async def open_detail(pilot: Pilot[Any], app: HelpdeskApp, number: int) -> DetailScreen:
    await settle(pilot)
    app.open_ticket(number)
    await settle(pilot)
    assert isinstance(app.screen, DetailScreen) and app.screen.detail is not None
    return app.screen


# ---------------------------------------------------------------------- conflicts


async def test_a_close_after_bob_assigned_shows_his_name_and_reapply_lands(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[0]
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, number)
        shown = detail.version_of(number)
        make_desk(store, clock, "bob").assign(number, "lead")
        await pilot.press("c")
        await settle(pilot)
        text = conflict_text(app)
        assert "by Bob Baker (bob) since you opened it: assign (owner=lead)" in text
        assert "Your close was not applied" in text
        assert desk.show(number).summary.base_status == "active"  # nothing silently done
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        after = desk.show(number)
        assert after.summary.base_status == "closed"
        assert after.summary.owner == "lead"  # bob's change stays; ours is on top of it
        assert shown is not None and after.version > shown + 1
        assert detail.version_of(number) == after.version  # the screen shows the result


async def test_drop_keeps_the_other_change_and_shows_it(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[0]
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, number)
        make_desk(store, clock, "bob").set_priority(number, "Low")
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ConflictDialog)
        await pilot.press("escape")  # escape drops, like d
        await settle(pilot)
        assert top(app) is detail
        assert desk.show(number).summary.base_status == "active"
        assert desk.show(number).summary.priority == "Low"
        header = shown(detail, "header")
        assert "Low" in header


async def test_the_dialog_works_with_the_mouse_and_lists_its_keys_on_question_mark(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[0]
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_detail(pilot, app, number)
        make_desk(store, clock, "bob").set_priority(number, "Low")
        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConflictDialog)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = {(k, d) for k, d, _id in app.screen.lines}
        assert {("r", "Re-apply"), ("d", "Drop")} <= keys
        assert any(k.startswith("esc") and d == "Drop" for k, d in keys)
        await pilot.press("escape")
        await settle(pilot)
        assert top(app) is dialog
        await pilot.click("#reapply")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert desk.show(number).summary.base_status == "closed"


async def test_a_tagged_batch_collects_conflicts_in_one_dialog_and_reapplies_all(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        # "All", newest first: seeded[5], seeded[4], seeded[3] are the first three rows.
        await pilot.press("space", "space", "space")
        await settle(pilot)
        assert app.tagged == {seeded[5], seeded[4], seeded[3]}
        bob = make_desk(store, clock, "bob")
        bob.set_priority(seeded[5], "Low")
        bob.assign(seeded[3], "lead")
        await pilot.press("semicolon", "c")
        await settle(pilot)
        text = conflict_text(app)
        assert "2 tickets were changed by someone else" in text
        assert f"#{seeded[5]} was changed by Bob Baker (bob) since you opened it: priority" in text
        assert f"#{seeded[3]} was changed by Bob Baker (bob) since you opened it: assign" in text
        assert "Re-apply all" in text
        # The ticket nobody else touched was closed at once.
        assert desk.show(seeded[4]).summary.base_status == "closed"
        assert desk.show(seeded[5]).summary.base_status == "active"
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        for n in (seeded[5], seeded[4], seeded[3]):
            assert desk.show(n).summary.base_status == "closed"
        assert desk.show(seeded[3]).summary.owner == "lead"
        assert app.tagged == set()


async def test_a_reply_whose_send_conflicts_keeps_its_text_and_reapply_sends_it(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[0]
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_detail(pilot, app, number)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press(*"The fire brigade is on its way.")
        make_desk(store, clock, "bob").note(number, "I called the customer.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = conflict_text(app)
        assert "Bob Baker (bob) since you opened it: note" in text and "kept as a draft" in text
        assert app.drafts[(number, "reply")].body == "The fire brigade is on its way."
        assert desk.show(number).messages[-1].kind == "note"
        await pilot.press("d")
        await settle(pilot)
        # Dropped: the draft is still there; r opens it again with the text.
        assert app.drafts[(number, "reply")].body == "The fire brigade is on its way."
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one("TextArea").text == "The fire brigade is on its way."  # type: ignore[attr-defined]
        make_desk(store, clock, "bob").note(number, "And again.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConflictDialog)
        await pilot.press("r")
        await settle(pilot)
        last = desk.show(number).messages[-1]
        assert last.kind == "reply" and last.body == "The fire brigade is on its way."
        assert (number, "reply") not in app.drafts


# ---------------------------------------------------------------------- presence


async def test_presence_of_another_agent_shows_on_the_detail_and_expires(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[0]
    bob = make_desk(store, clock, "bob")
    presence.announce(bob, number, "composing", session=ELSEWHERE)
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, number)
        line = detail.query_one(PresenceLine)
        assert line.display
        assert str(line.render()) == "Also here: Bob Baker (composing)"
        # Bob sees alice viewing; composing while compose is open; viewing again after it.
        assert [(r.login, r.activity) for r in presence.others(bob, number, session=ELSEWHERE)] == [
            ("alice", "viewing")
        ]
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one(PresenceLine).display  # compose shows bob too
        seen = presence.others(bob, number, session=ELSEWHERE)
        assert [(r.login, r.activity) for r in seen] == [("alice", "composing")]
        await pilot.press("escape")
        await settle(pilot)
        seen = presence.others(bob, number, session=ELSEWHERE)
        assert [(r.login, r.activity) for r in seen] == [("alice", "viewing")]
        # Bob's entry is not renewed: past the TTL the next refresh drops it.
        clock.advance(presence.TTL + timedelta(seconds=1))
        line.refresh_others()
        await settle(pilot)
        assert not line.display
        await pilot.press("q")
        await settle(pilot)
        assert presence.others(bob, number, session=ELSEWHERE) == []


async def test_the_live_refresh_brings_a_new_presence(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    number = seeded[1]
    app = HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False, duties=False)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, number)
        line = detail.query_one(PresenceLine)
        assert not line.display
        presence.announce(make_desk(store, clock, "lead"), number, "viewing", session=ELSEWHERE)
        took = await wait_until(pilot, lambda: line.display, within=10)
        assert took < 2.0
        assert str(line.render()) == "Also here: Lena Lead (viewing)"


# ---------------------------------------------------------------------- notifications


def _alert_shown(app: HelpdeskApp, text: str) -> bool:
    noted = any(text in str(n.message) for n in app._notifications)
    toasts = app.screen.query(Toast)
    return noted and any(text in str(t.render()) for t in toasts)


async def test_an_assignment_by_another_process_notifies_on_the_detail_screen(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False, duties=False)
    # The guarantee is the check interval: a commit is seen by the next check, 0.5 s later.
    assert app.live.interval <= 0.5
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    # notifications=True: run_test leaves the toasts out unless asked, and they are the point.
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await open_detail(pilot, app, seeded[0])
        await wait_until(pilot, lambda: app.live._alerts_seen is not None, within=10)
        env = dict(
            os.environ, HELPDESK_DB=store.url.removeprefix("sqlite:///"), HELPDESK_AGENT="bob"
        )
        # In a thread: the app shares this event loop and keeps running meanwhile.
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "helpdesk_tui",
                "ticket",
                "assign",
                str(seeded[3]),
                "--agent",
                "alice",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        text = f"#{seeded[3]} assigned to you"
        took = await wait_until(pilot, lambda: _alert_shown(app, text), within=10)
        assert took < 2.0, f"the alert took {took:.2f} s to appear"
        assert isinstance(app.screen, DetailScreen)
        assert rings


async def test_an_escalation_by_the_worker_notifies_as_a_warning(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    from helpdesk_tui.desk import escalation

    app = HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False, duties=False)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await open_detail(pilot, app, seeded[4])
        await wait_until(pilot, lambda: app.live._alerts_seen is not None, within=10)
        # alice's VPN ticket (seeded[1], High) is among those whose next level is due by then.
        clock.advance(minutes=31)
        system = make_desk(store, clock, None)
        report = await asyncio.to_thread(escalation.tick, system, worker_id="test-worker")
        assert seeded[1] in [f.ticket for f in report.fired]
        text = f"#{seeded[1]} reached escalation level"
        took = await wait_until(pilot, lambda: _alert_shown(app, text), within=10)
        assert took < 2.0
        shown = [n for n in app._notifications if text in str(n.message)]
        assert shown[0].severity == "warning" and shown[0].title == "Escalation"


Steps = Callable[[Pilot[Any], HelpdeskApp, list[int]], Awaitable[None]]


async def _on_compose(pilot: Pilot[Any], app: HelpdeskApp, seeded: list[int]) -> None:
    await open_detail(pilot, app, seeded[0])
    await pilot.press("r")


async def _on_dashboard(pilot: Pilot[Any], app: HelpdeskApp, seeded: list[int]) -> None:
    await pilot.press("D")


async def _on_dialog(pilot: Pilot[Any], app: HelpdeskApp, seeded: list[int]) -> None:
    await pilot.press("P")


async def _on_list(pilot: Pilot[Any], app: HelpdeskApp, seeded: list[int]) -> None:
    await pilot.press("g", "a")


SCREENS: dict[str, tuple[Steps, type]] = {
    "list": (_on_list, MainScreen),
    "compose": (_on_compose, ComposeScreen),
    "dashboard": (_on_dashboard, DashboardScreen),
    "dialog": (_on_dialog, PickDialog),
}


@pytest.mark.parametrize("where", list(SCREENS))
async def test_asks_and_assignments_notify_on_every_screen(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int], where: str
) -> None:
    steps, kind = SCREENS[where]
    app = HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False, duties=False)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.live._alerts_seen is not None, within=10)
        await steps(pilot, app, seeded)
        await settle(pilot)
        assert isinstance(app.screen, kind)
        bob = make_desk(store, clock, "bob")
        bob.take(seeded[3])
        bob.ask(seeded[3], "alice", "Could you look at this order?")
        took = await wait_until(
            pilot, lambda: _alert_shown(app, "Bob Baker asks for your help"), within=10
        )
        assert took < 2.0
        assert isinstance(app.screen, kind)


# ---------------------------------------------------------------------- snapshots

SnapCompare = Callable[..., bool]


def _conflict_steps(number: int, store: Store, clock: FixedClock) -> Callable[..., Any]:
    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await open_detail(pilot, app, number)
        make_desk(store, clock, "bob").assign(number, "lead")
        await pilot.press("c")
        await settle(pilot)
        app.clear_notifications()
        await settle(pilot)

    return run


def _presence_steps(number: int) -> Callable[..., Any]:
    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await open_detail(pilot, app, number)
        await settle(pilot)
        app.clear_notifications()
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_conflict_dialog_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    size: tuple[int, int],
) -> None:
    app = slow_live_app(desk, config, clock)
    assert snap_compare(
        app, terminal_size=size, run_before=_conflict_steps(seeded[0], store, clock)
    )


@pytest.mark.parametrize("size", SIZES)
def test_presence_line_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    size: tuple[int, int],
) -> None:
    presence.announce(make_desk(store, clock, "bob"), seeded[0], "composing", session=ELSEWHERE)
    presence.announce(make_desk(store, clock, "lead"), seeded[0], "viewing", session="lead:1")
    app = slow_live_app(desk, config, clock)
    assert snap_compare(app, terminal_size=size, run_before=_presence_steps(seeded[0]))


# ---------------------------------------------------------------------- back to the list


async def test_back_from_a_ticket_reloads_the_list_only_when_something_changed(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        generation = main.tickets.generation
        # Looked at, nothing done (not ours, so not even marked read): the list stays as it was.
        await open_detail(pilot, app, seeded[3])
        await settle(pilot)
        app.pop_screen()
        await settle(pilot)
        await settle(pilot)
        assert main.tickets.generation == generation
        # Something happened meanwhile (another agent's note): back, and the list reloads.
        await open_detail(pilot, app, seeded[3])
        make_desk(store, clock, "lead").note(seeded[3], "checked the cable")
        app.pop_screen()
        await wait_until(pilot, lambda: main.tickets.generation > generation, within=10)


async def test_the_detail_screen_is_reused_and_follows_each_ticket(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    """One DetailScreen serves every open: it shows the new ticket from the top, presence
    moves with it, and a late read of the previous ticket does not paint over it."""
    from helpdesk_tui.tui.messages import DetailLoaded

    first, second = seeded[0], seeded[1]
    bob = make_desk(store, clock, "bob")
    presence.announce(bob, second, "viewing", session=ELSEWHERE)
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, first)
        detail.conversation.scroll_end(animate=False, immediate=True)
        assert not detail.query_one(PresenceLine).display  # nobody else on the first
        await pilot.press("q")
        await settle(pilot)
        assert presence.others(bob, first, session=ELSEWHERE) == []  # alice left it
        again = await open_detail(pilot, app, second)
        assert again is detail  # the same screen, shown again
        assert shown(again, "header").startswith(f"#{second} ")
        assert again.conversation.scroll_y == 0  # a new ticket starts at its top
        line = again.query_one(PresenceLine)
        assert line.number == second and line.display
        assert str(line.render()) == "Also here: Bob Baker (viewing)"
        seen = presence.others(bob, second, session=ELSEWHERE)
        assert [(r.login, r.activity) for r in seen] == [("alice", "viewing")]
        # A read of the first ticket arriving late is ignored.
        again.post_message(DetailLoaded(desk.show(first)))
        await settle(pilot)
        assert shown(again, "header").startswith(f"#{second} ")
        assert again.number == second


async def test_a_theme_changed_while_the_ticket_screen_was_away_applies_when_it_returns(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """The kept detail screen skips Textual's restyle on a push unless the CSS changed."""
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = await open_detail(pilot, app, seeded[0])
        before = detail.conversation.rich_style.bgcolor
        await pilot.press("q")
        await settle(pilot)
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await settle(pilot)
        again = await open_detail(pilot, app, seeded[1])
        assert again is detail
        after = again.conversation.rich_style.bgcolor
        assert after != before
        assert after == app.screen.query_one(Conversation).rich_style.bgcolor
        await pilot.press("q")
        await settle(pilot)
        await open_detail(pilot, app, seeded[0])
        assert detail.conversation.rich_style.bgcolor == after


async def test_a_batch_on_tickets_tagged_by_pattern_checks_the_versions_found_then(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    """A tagged ticket whose page left the list's memory still carries the version it had
    when it was tagged: a colleague's change since then is a conflict, not a lost update."""
    app = slow_live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        await pilot.press("T")
        await settle(pilot)
        await pilot.press(*"subject:VPN", "enter")
        await settle(pilot)
        vpn = [n for n in seeded if "VPN" in desk.show(n).summary.title]
        assert vpn and app.tagged == set(vpn)
        assert app.tag_versions == {n: desk.show(n).version for n in vpn}
        lst = app.screen.query_one(TicketList)
        lst._pages.clear()  # as if the agent had scrolled far away
        assert all(lst.loaded_row(n) is None for n in vpn)
        make_desk(store, clock, "bob").set_priority(vpn[0], "Low")
        await pilot.press("semicolon", "c")
        await settle(pilot)
        text = conflict_text(app)
        assert f"#{vpn[0]} was changed by Bob Baker (bob) since you opened it: priority" in text
        assert desk.show(vpn[0]).summary.base_status == "active"

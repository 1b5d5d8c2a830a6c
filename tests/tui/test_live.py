"""Live and background: other processes' changes on screen, alerts with the bell, status bar."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlmodel import Session, select
from textual.pilot import Pilot

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config, SmtpConfig
from helpdesk_tui.desk import lease
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.alerts import AlertsScreen
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.widgets.statusbar import StatusBar
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.conftest import PROJECT_ROOT, make_desk
from tests.tui.conftest import messages_shown, settle

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]


def live_app(desk: Desk, config: Config, clock: FixedClock, **kw: Any) -> HelpdeskApp:
    # A quick check interval keeps the tests short; the default (0.5 s) is what agents get.
    # Duties only where a test is about them (they pass duty_every).
    kw.setdefault("duties", "duty_every" in kw)
    return HelpdeskApp(
        desk=desk, config=config, clock=clock, cursor_blink=False, live_interval=0.1, **kw
    )


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], within: float) -> float:
    """Let the app run until `condition` holds; the seconds it took. Fails after `within` s."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await pilot.pause(0.02)
    return time.monotonic() - start


def agent_id(store: Store, login: str) -> int:
    with store.read() as s:
        return int(s.exec(select(M.Agent.id).where(M.Agent.login == login)).one() or 0)


def status_text(app: HelpdeskApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def notes(app: HelpdeskApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_second_process_change_appears_without_a_keypress(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a", "j", "j")
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        before = tickets.current
        assert before is not None and tickets.total == len(seeded)
        env = dict(
            os.environ,
            HELPDESK_DB=store.url.removeprefix("sqlite:///"),
            HELPDESK_AGENT="bob",
        )
        # In a thread: the app shares this event loop and must keep running meanwhile.
        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "helpdesk_tui",
                "ticket",
                "new",
                "--customer",
                "zoe@elsewhere.example",
                "--subject",
                "Registered by another process",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        took = await wait_until(pilot, lambda: tickets.total == len(seeded) + 1, within=10)
        assert took < 2.0, f"the change took {took:.2f} s to appear"
        await wait_until(pilot, lambda: tickets.row(0) is not None, within=5)
        top = tickets.row(0)
        assert top is not None and top.title == "Registered by another process"
        # The new ticket arrived above the cursor; the cursor kept its ticket.
        current = tickets.current
        assert current is not None and current.number == before.number
        assert tickets.cursor == 3


async def test_the_open_ticket_rerenders_when_another_session_writes(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[0])
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        bob = make_desk(store, clock, "bob")
        bob.note(seeded[0], "Bob was here from another session.")

        def shown() -> bool:
            text = messages_shown(app.screen)
            return "Bob was here from another session." in text

        await wait_until(pilot, shown, within=5)


async def test_new_alerts_notify_ring_the_bell_and_list_on_bang(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, config, clock)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        # Alerts unread at start-up are counted, not rung.
        await wait_until(pilot, lambda: "1 alert" in status_text(app), within=5)
        assert rings == []
        bob = make_desk(store, clock, "bob")
        bob.assign(seeded[3], "alice")  # an alert for alice: assigned to you
        await wait_until(pilot, lambda: bool(rings), within=5)
        assert any(f"#{seeded[3]} assigned to you" in n for n in notes(app))
        assert all(not n.markup for n in app._notifications)
        await wait_until(pilot, lambda: "2 alerts" in status_text(app), within=5)

        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert app.screen.alerts[0].ticket == seeded[3]
        assert app.screen.alerts[0].read_at is None
        await pilot.press("x")
        await settle(pilot)
        assert [a.ticket for a in desk.alerts()] == [seeded[2]]
        await pilot.press("X")
        await settle(pilot)
        assert desk.alerts() == []
        await pilot.press("escape")
        await settle(pilot)
        await wait_until(pilot, lambda: "no alerts" in status_text(app), within=5)


async def test_the_bell_can_be_turned_off(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    quiet = replace(config, desk=replace(config.desk, bell=False))
    app = live_app(desk, quiet, clock)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: "1 alert" in status_text(app), within=5)
        make_desk(store, clock, "bob").assign(seeded[3], "alice")
        await wait_until(pilot, lambda: "2 alerts" in status_text(app), within=5)
        await wait_until(pilot, lambda: any("assigned to you" in n for n in notes(app)), within=5)
        assert rings == []


async def test_enter_on_an_alert_opens_its_ticket_and_marks_it_read(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen) and app.screen.number == seeded[2]
        assert desk.alerts() == []


def _smtp_config(config: Config, port: int = 1) -> Config:
    return replace(config, smtp=SmtpConfig(host="127.0.0.1", port=port, security="plain"))


async def test_status_bar_shows_the_daemon_queue_failures_and_mailbox_health(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    # A `helpdesk worker` holds the lease: the app only shows its state and runs no duties.
    assert lease.acquire(store, "daemon@elsewhere:42", lease.wall_now(), kind="daemon")

    def facts(s: Session) -> None:
        s.add(
            M.Mailbox(
                name="support",
                address="support@desk.example",
                last_error="connection refused",
                consecutive_failures=3,
            )
        )
        rows = s.exec(select(M.Outbox)).all()
        rows[0].state = "failed"
        rows[0].last_error = "550 no such user"

    store.write(facts)  # the seed's reply is the one outbox row
    desk.reply(seeded[0], "Another answer, still queued.")
    app = live_app(desk, _smtp_config(config), clock)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: "worker" in status_text(app), within=5)
        text = status_text(app)
        assert "daemon@elsewhere:42" in text
        assert "support failing ×3" in text and "connection refused" in text
        assert "1 queued" in text and "1 failed" in text
        assert "1 alert" in text
        assert app.live.status.duties == "daemon"
        assert not any(w.group == "duties" for w in app.workers)
        # Narrower: the details give way, the queue, the failures and the alerts stay.
        for width, kept in ((120, "connection refused"), (80, "support fail")):
            await pilot.resize_terminal(width, 36)
            await settle(pilot)
            text = status_text(app)
            assert kept in text and "1 failed" in text and "1 alert" in text, (width, text)
            assert len(text) <= width - 2


async def test_the_app_runs_the_duties_when_the_lease_is_free_and_yields_to_a_daemon(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, _smtp_config(config, port=_closed_port()), clock, duty_every=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.live.status.duties == "app", within=5)
        held = lease.read(store)
        assert held is not None and held.kind == "app"
        # The SMTP server is down: the reply waits for a retry, and the bar says so.
        await wait_until(pilot, lambda: "1 retry" in status_text(app), within=10)
        assert "this app" in status_text(app)
        # A daemon starts: it takes the lease and the app steps back at its next pass.
        assert lease.acquire(store, "daemon@elsewhere:7", lease.wall_now(), kind="daemon")
        await wait_until(pilot, lambda: app.live.status.duties == "daemon", within=5)
        await wait_until(pilot, lambda: "worker" in status_text(app), within=5)
    # Quitting gives back only a lease the app holds: the daemon's stays.
    after = lease.read(store)
    assert after is not None and after.holder == "daemon@elsewhere:7"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_app_releases_its_lease_on_quit(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, _smtp_config(config, port=_closed_port()), clock, duty_every=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.live.status.duties == "app", within=5)
        await wait_until(pilot, lambda: not app.live._duty_running, within=10)
        await pilot.press("q")
    assert lease.read(store) is None


# ---------------------------------------------------------------------- snapshots

SnapCompare = Callable[..., bool]


def _alerts_steps() -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_alerts_screen_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    size: tuple[int, int],
) -> None:
    bob = make_desk(store, clock, "bob")
    bob.assign(seeded[3], "alice")
    bob.assign(seeded[4], "alice")
    desk.mark_alerts_read([desk.alerts()[-1].id])
    app = HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False)
    assert snap_compare(app, terminal_size=size, run_before=_alerts_steps())


def test_alerts_bindings_have_ids_and_descriptions() -> None:
    from textual.binding import Binding

    for b in [*AlertsScreen.BINDINGS, *HelpdeskApp.BINDINGS]:
        assert isinstance(b, Binding)
        assert b.id and b.description, b


async def test_a_ticket_opened_from_alerts_over_another_ticket_gets_its_own_screen(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """The kept detail screen is on the stack: the alert's ticket opens on a second one, and
    going back shows each ticket where it was."""
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[0])
        await settle(pilot)
        first = app.screen
        assert isinstance(first, DetailScreen) and first.number == seeded[0]
        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("enter")
        await settle(pilot)
        second = app.screen
        assert isinstance(second, DetailScreen) and second is not first
        assert second.number == seeded[2]
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("q")
        await settle(pilot)
        assert app.screen is first and first.number == seeded[0]
        assert first.conversation.plain_text("header").startswith(f"#{seeded[0]} ")
        await pilot.press("q")
        await settle(pilot)
        app.open_ticket(seeded[1])  # the kept screen serves again
        await settle(pilot)
        assert app.screen is first and first.number == seeded[1]


async def test_without_mail_settings_the_app_still_wakes_postponed_tickets(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """Waking postponed tickets and escalations need no mailbox or SMTP server."""
    assert not config.mailboxes and config.smtp is None
    postponed = seeded[4]  # postponed for a week by the seed
    assert desk.show(postponed).summary.base_status == "postponed"
    clock.advance(days=8)
    app = live_app(desk, config, clock, duty_every=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await wait_until(
            pilot, lambda: desk.show(postponed).summary.base_status == "active", within=5
        )
        assert app.live.status.duties == "app"


async def test_the_alert_count_and_mark_all_read_cover_every_alert(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    """The status bar counts all unread alerts (not a page of 100), and X marks them all."""
    from helpdesk_tui.desk.alerts import unread_count

    agent = agent_id(store, "alice")

    def many(s: Session) -> None:
        for i in range(250):
            s.add(M.Alert(agent_id=agent, kind="mail", text=f"alert {i}", created_at=clock.now()))

    store.write(many)
    before = unread_count(desk)
    assert before >= 250
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: f"! {before} alerts" in status_text(app), within=5)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("X")
        await settle(pilot)
        assert unread_count(desk) == 0
        await pilot.press("escape")
        await settle(pilot)
        await wait_until(pilot, lambda: "no alerts" in status_text(app), within=5)


async def test_the_dashboard_follows_other_agents_changes(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    from textual.widgets import Static

    from helpdesk_tui.tui.screens.dashboard import DashboardScreen

    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        screen.LIVE_EVERY = 0.0  # no pause between reloads for this test

        def active() -> str:
            return str(screen.query_one("#now", Static).render()).splitlines()[0]

        assert active().split() == ["Active", "5"]
        make_desk(store, clock, "bob").close(seeded[5])
        await wait_until(pilot, lambda: active().split() == ["Active", "4"], within=5)


async def test_a_colleagues_question_is_told_even_in_a_burst_of_escalations(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = live_app(desk, config, clock)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.live._alerts_seen is not None, within=5)
        agent = agent_id(store, "alice")

        def burst(s: Session) -> None:
            for i in range(6):
                s.add(
                    M.Alert(
                        agent_id=agent,
                        kind="escalation",
                        text=f"#{i} overdue",
                        created_at=clock.now(),
                    )
                )
            s.add(
                M.Alert(
                    agent_id=agent,
                    kind="asked",
                    text="Bob asks for your help on #3",
                    created_at=clock.now(),
                )
            )

        store.write(burst)
        await wait_until(pilot, lambda: any("Bob asks" in n for n in notes(app)), within=5)
        assert any("more new alerts" in n for n in notes(app))

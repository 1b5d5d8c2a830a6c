"""The ticket screen's header and history: deadlines only where due, the postponed ticket's
wake-up time, history lines that say what changed, the owner's own actions leaving it read,
and clicks on the conversation's folded quotes and attachments."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import Session, select
from textual.widgets import Input, OptionList

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.records import EventRecord
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.paths import attachments_dir_for
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.detail import DetailScreen, SaveDialog, deadline_text, event_changes
from helpdesk_tui.tui.screens.dialogs import PickDialog
from helpdesk_tui.tui.widgets.conversation import Conversation
from tests.conftest import T0
from tests.tui.conftest import make_app, settle, shown


def header_line(screen: Any, label: str) -> str:
    """The header's row `label` (its text after the label column)."""
    for row in shown(screen, "header").split("\n"):
        if row.startswith(label.ljust(11)):
            return row[11:]
    raise AssertionError(f"no {label!r} row in the header:\n{shown(screen, 'header')}")


async def open_ticket(pilot: Any, app: HelpdeskApp, number: int) -> DetailScreen:
    await settle(pilot)
    app.open_ticket(number)
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DetailScreen) and screen.number == number
    return screen


async def test_a_closed_tickets_deadline_is_history_not_overdue(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    closed = desk.close(seeded[0])  # its deadline passed hours ago
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[0])
        assert closed.closed_at is not None and closed.summary.deadline_at is not None
        assert header_line(screen, "Deadline") == (
            f"closed {fmt.stamp(closed.closed_at, app.tz)}; "
            f"deadline was {fmt.stamp(closed.summary.deadline_at, app.tz)}"
        )
    look = deadline_text(closed, app.tz, clock.now())
    assert not any("error" in str(span.style) for span in look.spans)
    # Still open and overdue: said in red, as before.
    late = desk.show(seeded[5])
    assert any(
        "error" in str(span.style) for span in deadline_text(late, app.tz, clock.now()).spans
    )


async def test_a_postponed_ticket_says_when_it_wakes_up(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    postponed = desk.show(seeded[4])  # the seed postponed it by a week
    assert postponed.activate_at is not None
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[4])
        rel, _due = fmt.until(postponed.activate_at, clock.now())
        assert header_line(screen, "Postponed") == (
            f"until {fmt.stamp(postponed.activate_at, app.tz)} ({rel})"
        )
        assert rel.startswith("in ")
        assert "on hold while postponed" in header_line(screen, "Deadline")
        # An active ticket has no such row.
        screen = await open_ticket(pilot, app, seeded[5])
        assert "\nPostponed" not in shown(screen, "header")


async def test_history_says_what_close_undo_and_delete_did(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[5])
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        history = shown(screen, "history")
        assert "alice close  status=closed (undone)" in history
        assert "alice undo  undid close" in history
        assert "alice delete  status=deleted" in history
        assert "_id" not in history  # row ids mean nothing to a reader


def test_event_changes_prefer_names_and_say_only_what_changed() -> None:
    def event(action: str, before: dict[str, Any], after: dict[str, Any]) -> EventRecord:
        return EventRecord(1, 7, T0, "alice", "alice", action, before, after)

    snap = {"status_id": 1, "owner_id": 2, "priority_id": 3, "category_id": 1}
    took = event("take", snap, {**snap, "owner_id": 1, "owner": "alice"})
    assert event_changes(took, fmt_tz()) == "owner=alice"
    status = event("status", snap, {**snap, "status_id": 2, "status": "internal"})
    assert event_changes(status, fmt_tz()) == "status=internal"
    queue = event("assign", snap, {**snap, "owner_id": None, "owner": None})
    assert event_changes(queue, fmt_tz()) == "owner=-"
    until = event("postpone", snap, {**snap, "status_id": 4, "until": "2026-12-07T09:00:00+00:00"})
    assert event_changes(until, fmt_tz()) == "status=postponed, until=2026-12-07 09:00"
    # A desk that writes the status's name into every snapshot: unchanged, it is not said.
    named = {**snap, "status": "open"}
    priority = event("priority", named, {**named, "priority_id": 4, "priority": "Urgent"})
    assert event_changes(priority, fmt_tz()) == "priority=Urgent"


def fmt_tz() -> Any:
    from datetime import UTC

    return UTC


async def test_the_owners_own_action_leaves_the_ticket_read(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    assert desk.show(seeded[3]).summary.read_status == "red"  # in the queue, nobody's yet
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[3])
        await pilot.press("t")  # take it: now it is alice's, and she is looking at it
        await settle(pilot)
        after = desk.show(seeded[3]).summary
        assert after.owner == "alice" and after.read_status == "green"
        assert "Read: read" in shown(screen, "header")


async def test_a_reload_while_the_owner_looks_marks_read_but_not_under_a_dialog(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    def new_info(s: Session) -> None:
        ticket = s.get(M.Ticket, seeded[5])
        assert ticket is not None
        ticket.read_status = "yellow"  # as a customer's new mail leaves it

    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[5])
        store.write(new_info)
        await pilot.press("a")  # a dialog over the ticket: the reload does not count
        await settle(pilot)
        screen.live_refresh()
        await settle(pilot)
        assert desk.show(seeded[5]).summary.read_status == "yellow"
        await pilot.press("escape")
        await settle(pilot)
        screen.live_refresh()
        await settle(pilot)
        assert desk.show(seeded[5]).summary.read_status == "green"


async def test_the_priority_picker_marks_the_current_priority(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_ticket(pilot, app, seeded[5])  # High
        await pilot.press("P")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert [label for label in labels if "current" in label] == ["High  ● current"]
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("q")  # the list: the cursor's row says its priority
        await settle(pilot)
        await pilot.press("P")
        await settle(pilot)
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert [label for label in labels if "current" in label] == ["Urgent  ● current"]


def _click_offset(view: Conversation, text: str) -> tuple[int, int]:
    """Scroll line `text` to the top of the conversation; where a click on it lands."""
    index = next(i for i, ln in enumerate(view._lines) if text in ln.text)
    view.scroll_to(y=index, animate=False, immediate=True)
    column = view._lines[index].text.index(text)
    return column + 1 + 1, index - round(view.scroll_offset.y)  # +1: the widget's padding


async def test_a_click_on_folded_quotes_unfolds_them(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[1])
        view = screen.conversation
        offset = _click_offset(view, "quoted lines folded")
        await pilot.click(Conversation, offset=offset)
        await settle(pilot)
        assert screen.unfold
        assert "> and again" in shown(screen, "customer")


async def test_a_click_on_an_attachment_asks_where_to_save_that_one(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    for name in ("first.pdf", "second.pdf"):
        data = name.encode()
        sha = hashlib.sha256(data).hexdigest()
        path = attachments_dir_for(store.url) / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

        def add(s: Session, name: str = name, sha: str = sha, size: int = len(data)) -> None:
            msg = s.exec(select(M.Message).where(M.Message.ticket_id == seeded[2])).first()
            assert msg is not None
            s.add(
                M.Attachment(
                    message_id=msg.id,  # type: ignore[arg-type]
                    filename=name,
                    content_type="application/pdf",
                    size=size,
                    sha256=sha,
                )
            )

        store.write(add)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_ticket(pilot, app, seeded[2])
        offset = _click_offset(screen.conversation, "second.pdf")
        await pilot.click(Conversation, offset=offset)
        await settle(pilot)
        assert isinstance(app.screen, SaveDialog)  # straight to the path: no "which one?"
        assert app.screen.query_one(Input).value.endswith("second.pdf")

"""The app through the keyboard, against a real SQLite file and a fixed clock."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList, Static

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.compose import ComposeScreen
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.screens.help import HelpScreen
from helpdesk_tui.tui.screens.main import MainScreen
from helpdesk_tui.tui.screens.register import RegisterScreen
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.conftest import make_desk
from tests.tui.conftest import make_app, messages_shown, settle


async def test_phone_scenario_register_ask_reply_close(
    desk: Desk, config: Config, clock: FixedClock, store: Store
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        await pilot.press(*"nora@client.example", "tab", *"Nora Client", "tab")
        await pilot.press(*"Scanner jams", "tab", *"It jams on every page.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        number = app.screen.number
        shown = desk.show(number)
        assert shown.summary.title == "Scanner jams"
        assert shown.summary.owner == "alice"
        assert shown.customers[0].name == "Nora Client"
        assert shown.messages[0].kind == "phone"

        # Ask a colleague: pick bob in the select, write the question, send.
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press("enter", "down", "enter", "tab", *"Is this the new scanner?")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = desk.show(number)
        assert shown.summary.owner == "bob"
        assert shown.messages[-1].kind == "ask"
        assert shown.messages[-1].body == "Is this the new scanner?"

        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"We are on it.", "ctrl+s")
        await settle(pilot)
        shown = desk.show(number)
        assert shown.messages[-1].kind == "reply"
        assert shown.messages[-1].outbox_state == "queued"

        await pilot.press("c")
        await settle(pilot)
        assert desk.show(number).summary.base_status == "closed"
        assert app.drafts == {}
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.is_running


async def test_close_on_the_list_moves_to_the_next_ticket_and_undo_brings_it_back(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        first = tickets.current
        assert first is not None
        second = tickets.row(1)
        assert second is not None
        await pilot.press("c")
        await settle(pilot)
        assert desk.show(first.number).summary.base_status == "closed"
        current = tickets.current
        assert current is not None and current.number == second.number
        await pilot.press("u")
        await settle(pilot)
        assert desk.show(first.number).summary.base_status == "active"
        current = tickets.current
        assert current is not None and current.number == first.number


async def test_views_switch_with_g_and_show_their_tickets(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        # My open: alice's active tickets, closest deadline first.
        assert tickets.total == 4
        await pilot.press("g", "u")
        await settle(pilot)
        assert tickets.view == "queue"
        current = tickets.current
        assert current is not None and current.owner is None
        await pilot.press("g", "h")
        await settle(pilot)
        current = tickets.current
        assert current is not None and current.number == seeded[2]
        await pilot.press("g", "p")
        await settle(pilot)
        current = tickets.current
        assert current is not None and current.number == seeded[4]
        await pilot.press("g", "e")
        await settle(pilot)
        current = tickets.current
        assert current is not None and current.number == seeded[0]
        await pilot.press("g", "a")
        await settle(pilot)
        assert tickets.total == len(seeded)
        assert tickets.current is not None and tickets.current.number == max(seeded)


async def test_tags_and_batch_apply_the_next_action_to_all_tagged(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        await pilot.press("space", "space")
        assert len(app.tagged) == 2
        tagged = set(app.tagged)
        await pilot.press("semicolon", "P")
        await settle(pilot)
        await pilot.press("down", "down", "down", "enter")  # Urgent, High, Normal, Low
        await settle(pilot)
        for n in tagged:
            assert desk.show(n).summary.priority == "Low"
        assert app.batch is False
        assert app.tagged == set()


async def test_batch_close_by_subject_pattern(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "a")
        await settle(pilot)
        await pilot.press("T")
        await settle(pilot)
        await pilot.press(*"subject:password", "enter")
        await settle(pilot)
        assert app.tagged == {seeded[5]}, (app.tagged, seeded)
        await pilot.press("semicolon", "c")
        await settle(pilot)
        assert desk.show(seeded[5]).summary.base_status == "closed"
        assert app.tagged == set()


async def test_postpone_by_phrase_and_priority_picker(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        target = tickets.current
        assert target is not None
        await pilot.press("p", "tab", *"tomorrow 9:00", "enter")
        await settle(pilot)
        shown = desk.show(target.number)
        assert shown.summary.base_status == "postponed"
        assert shown.activate_at is not None and shown.activate_at.hour == 9
        nxt = tickets.current
        assert nxt is not None
        await pilot.press("P")
        await settle(pilot)
        # Most urgent first, the cursor on the ticket's own; Low is the last.
        await pilot.press("end", "enter")
        await settle(pilot)
        assert desk.show(nxt.number).summary.priority == "Low"


async def test_open_marks_read_and_shows_why_it_landed_here(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        current = tickets.current
        assert current is not None and current.read_status == "red"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert desk.show(current.number).summary.read_status == "green"
        text = messages_shown(app.screen)
        assert "why here: manual" in text
        await pilot.press("q")
        await settle(pilot)
        refreshed = tickets.current
        assert refreshed is not None and refreshed.read_status == "green"


async def test_quotes_fold_and_unfold(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[1])
        await settle(pilot)
        body = messages_shown(app.screen)
        assert "5 quoted lines folded" in body
        assert "> and again" not in body
        await pilot.press("o")
        await settle(pilot)
        body = messages_shown(app.screen)
        assert "> and again" in body


async def test_drafts_survive_leaving_compose(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        current = tickets.current
        assert current is not None
        await pilot.press("n", *"half a thought", "escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.drafts[(current.number, "note")].body == "half a thought"
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*" and the rest", "ctrl+s")
        await settle(pilot)
        notes = [m for m in desk.show(current.number).messages if m.kind == "note"]
        assert notes[-1].body == "half a thought and the rest"
        assert (current.number, "note") not in app.drafts


async def test_refusals_notify_and_the_app_keeps_running(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("t")  # alice's own ticket: "already yours"
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("already yours" in str(m) for m in messages)
        await pilot.press("m", *"99999", "enter")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("no ticket #99999" in str(m) for m in messages)
        assert app.is_running


async def test_help_lists_the_current_screens_keys(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        ids = {ident for _k, _d, ident in app.screen.lines}
        assert {"ticket.reply", "ticket.close", "list.goto", "list.tag", "list.batch"} <= ids
        await pilot.press("escape", "enter")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        ids = {ident for _k, _d, ident in app.screen.lines}
        assert "detail.back" in ids and "list.goto" not in ids


async def test_every_binding_has_an_id_and_a_description() -> None:
    from textual.binding import Binding

    for screen in (MainScreen, DetailScreen, ComposeScreen, RegisterScreen, HelpScreen):
        for b in screen.BINDINGS:
            assert isinstance(b, Binding)
            assert b.id and b.description, (screen, b)


async def test_keymap_from_the_settings_file_remaps_by_binding_id(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], tmp_path: Path
) -> None:
    from helpdesk_tui.config import load_config
    from helpdesk_tui.tui.app import read_keymap

    settings = tmp_path / "config.toml"
    settings.write_text('[keymap]\n"ticket.close" = "x"\n"list.down" = ["j", "ctrl+n"]\n')
    assert dict(load_config(settings).keymap) == read_keymap(str(settings))  # one meaning
    app = make_app(desk, config, clock)
    app.set_keymap(read_keymap(str(settings)))  # what run_app passes as HelpdeskApp(keymap=)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        current = tickets.current
        assert current is not None
        await pilot.press("c")  # the old key no longer closes
        await settle(pilot)
        assert desk.show(current.number).summary.base_status == "active"
        await pilot.press("x")
        await settle(pilot)
        assert desk.show(current.number).summary.base_status == "closed"
        before = tickets.cursor
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert tickets.cursor == before + 1


async def test_a_second_agent_sees_only_their_tickets(
    store: Store, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    bob = make_desk(store, clock, "bob")
    app = make_app(bob, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        assert tickets.total == 0  # bob's one ticket is postponed; the ask moved #3 to alice
        await pilot.press("g", "p")
        await settle(pilot)
        assert tickets.total == 1


async def test_palette_offers_the_screens_keys_as_commands(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        current = app.screen.query_one(TicketList).current
        assert current is not None
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"ticket: close")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert desk.show(current.number).summary.base_status == "closed"


async def test_palette_shows_a_saved_search_named_like_markup_as_text(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    from textual.command import CommandList

    from helpdesk_tui.desk.search import save_search

    assert desk.actor is not None
    save_search(store, desk.actor, "[@click=app.quit]x [/] boom", "printer")
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")  # the palette lists every view, saved ones too
        await settle(pilot)
        await pilot.press(*"boom")
        await settle(pilot)
        assert app.is_running
        shown = " ".join(str(o.prompt) for o in app.screen.query_one(CommandList).options)
        assert "[@click=app.quit]x [/] boom" in shown


async def test_merge_offers_the_same_customers_other_tickets(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    """`m` lists the customer's other tickets (the duplicate a merge is for): down, enter
    merges into the one chosen; tickets of other customers and deleted ones are not offered."""
    again = desk.register(customer_email="carla@customer.example", subject="Printer still on fire")
    gone = desk.register(customer_email="carla@customer.example", subject="Printer, once more")
    desk.delete(gone.number)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        current = app.screen.query_one(TicketList).current
        assert current is not None and current.number == seeded[0]  # Carla's printer
        await pilot.press("m")
        await settle(pilot)
        box = app.screen.query_one("#merge-candidates", OptionList)
        offered = [box.get_option_at_index(i).id for i in range(box.option_count)]
        assert offered == [str(again.number)]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert desk.show(seeded[0]).summary.base_status == "merged"
        assert "It smokes." in [m.body for m in desk.show(again.number).messages]


def _notes(app: HelpdeskApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_undo_takes_back_this_sessions_action_once_and_never_an_older_one(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    # Weeks before this session alice took a ticket from the queue: that take is not this
    # session's to undo, though it is the ticket's latest undoable change after `c`, `u`.
    desk.take(seeded[3])
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("u")  # nothing done yet: the cursor's ticket is left alone
        await settle(pilot)
        assert "nothing to undo in this session" in _notes(app)
        app.open_ticket(seeded[3])
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert desk.show(seeded[3]).summary.base_status == "closed"
        await pilot.press("u")
        await settle(pilot)
        assert desk.show(seeded[3]).summary.base_status == "active"
        await pilot.press("u")
        await settle(pilot)
        shown = desk.show(seeded[3])
        assert shown.summary.owner == "alice"  # the old take stands
        assert not any(e.undone for e in shown.events if e.action == "take")
        assert _notes(app).count("nothing to undo in this session") == 2


async def test_undo_goes_back_through_this_sessions_actions_newest_first(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[0])
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        app.open_ticket(seeded[5])
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert desk.show(seeded[5]).summary.base_status == "active"
        assert desk.show(seeded[0]).summary.base_status == "closed"
        await pilot.press("u")  # the close before it, on another ticket than this screen's
        await settle(pilot)
        assert desk.show(seeded[0]).summary.base_status == "active"
        await pilot.press("u")
        await settle(pilot)
        assert "nothing to undo in this session" in _notes(app)


async def test_undo_refuses_when_its_change_was_undone_elsewhere(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    desk.take(seeded[3])  # before the session
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[3])
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        desk.undo_last(seeded[3])  # alice's other session (or the CLI) took the close back
        await pilot.press("u")
        await settle(pilot)
        assert desk.show(seeded[3]).summary.owner == "alice"
        assert any("already undone" in n for n in _notes(app))


async def test_any_action_after_the_batch_prefix_disarms_it(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        topbar = app.screen.query_one("#topbar", Static)
        closed = app.screen.query_one(TicketList).current
        assert closed is not None
        await pilot.press("c")  # something this session can undo
        await settle(pilot)
        await pilot.press("space")
        await pilot.press("semicolon")
        assert app.batch and "next action applies to all" in str(topbar.render())
        await pilot.press("u")
        await settle(pilot)
        assert desk.show(closed.number).summary.base_status == "active"
        assert app.batch is False
        assert "next action applies" not in str(topbar.render())
        await pilot.press("semicolon", "P")
        await settle(pilot)
        await pilot.press("escape")  # the picker is cancelled: nothing done, the prefix gone
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.batch is False
        assert "next action applies" not in str(topbar.render())


async def test_undo_refuses_when_someone_changed_the_ticket_since(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[5])
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        make_desk(store, clock, "bob").set_priority(seeded[5], "Low")  # after the close
        await pilot.press("u")
        await settle(pilot)
        shown = desk.show(seeded[5]).summary
        assert (shown.base_status, shown.priority) == ("closed", "Low")
        assert any("changed after your close" in n for n in _notes(app))

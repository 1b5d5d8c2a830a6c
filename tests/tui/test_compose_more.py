"""Compose and detail extras: templates, completion, forward attachments, drafts on disk,
saving attachments, failed sends, the escalation timeline, and the register customer search."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select
from textual.pilot import Pilot
from textual.widgets import Input, SelectionList, Static, TextArea

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.drafts import drafts_file
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.mail.clean import safe_filename
from helpdesk_tui.paths import attachments_dir_for
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import Draft, HelpdeskApp
from helpdesk_tui.tui.screens.compose import ComposeScreen
from helpdesk_tui.tui.screens.detail import DetailScreen, SaveDialog
from helpdesk_tui.tui.screens.register import RegisterScreen
from helpdesk_tui.tui.widgets.conversation import Conversation
from tests.tui.conftest import make_app, settle, shown
from tests.tui.test_live import wait_until

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
GREETING = "Hello {customer_name},\n\nabout #{number} ({title}):\n\n\n{agent_name}"
BROKEN = "Dear {customer},\n\nyours, {agent_name}"


@pytest.fixture
def templates(store: Store) -> None:
    def add(s: Session) -> None:
        s.add(M.ReplyTemplate(name="greeting", language="en", body=GREETING))
        s.add(M.ReplyTemplate(name="broken", language="en", body=BROKEN))
        s.add(M.ReplyTemplate(folder="escalation", name="owner", body="not offered"))

    store.write(add)


def notes(app: HelpdeskApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def preview_text(app: HelpdeskApp) -> str:
    return str(app.screen.query_one("#preview", Static).render())


async def open_compose(pilot: Pilot[Any], app: HelpdeskApp, number: int, key: str) -> None:
    await settle(pilot)
    app.open_ticket(number)
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ComposeScreen)


async def test_a_template_previews_its_variables_and_sends_them_filled_in(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], templates: None
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press("down", "enter")  # broken, greeting (escalation notices are not offered)
        await settle(pilot)
        text = preview_text(app)
        assert "Hello Carla Customer," in text
        assert f"about #{seeded[0]} (Printer on fire):" in text
        assert "Alice Able" in text
        # The cursor sits at the end; the agent writes above the signature.
        await pilot.press("up", "up", *"The fire brigade is on its way.")
        await settle(pilot)
        assert "The fire brigade is on its way." in preview_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        sent = desk.show(seeded[0]).messages[-1]
        assert sent.kind == "reply"
        assert sent.body.startswith("Hello Carla Customer,")
        assert "{" not in sent.body and "The fire brigade is on its way." in sent.body


async def test_an_unknown_variable_is_named_in_the_preview_and_blocks_the_send(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], templates: None
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        before = len(desk.show(seeded[0]).messages)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press("enter")  # broken
        await settle(pilot)
        text = preview_text(app)
        assert "unknown template variable 'customer' at line 1, column 6" in text
        assert "customer_name" in text  # the known ones are listed
        assert app.screen.query_one("#preview").has_class("error")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert any("unknown template variable 'customer'" in n for n in notes(app))
        assert len(desk.show(seeded[0]).messages) == before
        # Fixing the name makes it sendable.
        area = app.screen.query_one(TextArea)
        area.text = area.text.replace("{customer}", "{customer_name}")
        await settle(pilot)
        assert "Dear Carla Customer," in preview_text(app)


async def _greeting(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+t")
    await settle(pilot)
    await pilot.press("down", "enter")  # broken, greeting
    await settle(pilot)


async def test_emptying_the_text_leaves_template_mode(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], templates: None
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        await _greeting(pilot)
        assert app.drafts[(seeded[0], "reply")].template
        app.screen.query_one(TextArea).clear()
        await settle(pilot)
        assert app.drafts[(seeded[0], "reply")].template == ""
        assert not app.screen.query_one("#preview").display
        assert "ctrl+t: start from a template" in str(
            app.screen.query_one("#text-label", Static).render()
        )
        await pilot.press(*"Type {on} in the search box.", "ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, ComposeScreen)
        assert desk.show(seeded[0]).messages[-1].body == "Type {on} in the search box."


async def test_no_template_in_the_picker_sends_the_text_as_typed(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int], templates: None
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        await _greeting(pilot)
        await pilot.press(*"Type {on}")
        await settle(pilot)
        assert "unknown template variable 'on'" in preview_text(app)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press("enter")  # the first choice: no template
        await settle(pilot)
        assert app.drafts[(seeded[0], "reply")].template == ""
        text = app.screen.query_one(TextArea).text
        assert text.startswith("Hello {customer_name},") and text.endswith("Type {on}")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert desk.show(seeded[0]).messages[-1].body == text


async def test_the_preview_of_a_reply_ends_with_the_signature_it_will_carry(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int], templates: None
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        await _greeting(pilot)
        shown = preview_text(app).removeprefix("Preview  \n")
        assert shown.endswith("Alice Able\n\n-- \nAlice, Support")
        await pilot.press("ctrl+s")
        await settle(pilot)

        def mailed(s: Session) -> str:
            row = s.exec(select(M.Outbox).order_by(col(M.Outbox.id).desc())).first()
            assert row is not None
            return row.body

        assert store.write(mailed) == shown
        # A note is not mailed and gets no signature.
        await open_compose(pilot, app, seeded[0], "n")
        await _greeting(pilot)
        assert preview_text(app).endswith("Alice Able")


async def test_drafts_survive_restarting_the_app(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    first = make_app(desk, config, clock)
    async with first.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, first, seeded[1], "n")
        await pilot.press(*"half a thought")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
    saved = drafts_file("alice")
    assert saved.exists() and "half a thought" in saved.read_text()
    assert oct(saved.stat().st_mode & 0o777) == "0o600"

    second = make_app(desk, config, clock)
    async with second.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, second, seeded[1], "n")
        assert second.screen.query_one(TextArea).text == "half a thought"
        await pilot.press(*" and the rest", "ctrl+s")
        await settle(pilot)
        assert desk.show(seeded[1]).messages[-1].body == "half a thought and the rest"
        await wait_until(pilot, lambda: "half a thought" not in saved.read_text(), within=5)


def _attach(store: Store, number: int, filename: str, data: bytes) -> int:
    sha = hashlib.sha256(data).hexdigest()
    path = attachments_dir_for(store.url) / sha[:2] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

    def add(s: Session) -> int:
        msg = s.exec(
            select(M.Message).where(M.Message.ticket_id == number).order_by(M.Message.id)  # type: ignore[arg-type]
        ).first()
        assert msg is not None
        row = M.Attachment(
            message_id=msg.id,  # type: ignore[arg-type]
            filename=filename,
            content_type="application/pdf",
            size=len(data),
            sha256=sha,
        )
        s.add(row)
        s.flush()
        return row.id or 0

    return store.write(add)


async def test_save_an_attachment_with_a_sanitized_name_and_never_overwrite(
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    tmp_path: Path,
) -> None:
    hostile = "../../\x1b]0;pwned\x07invoice.pdf"
    _attach(store, seeded[2], hostile, b"%PDF-1.4 invoice")
    target = tmp_path / "saved"
    target.mkdir()
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[2])
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SaveDialog)
        default = app.screen.query_one(Input).value
        assert Path(default).name == safe_filename(hostile)
        app.screen.query_one(Input).value = f"{target}/"
        await pilot.press("enter")
        await settle(pilot)
        saved = target / safe_filename(hostile)
        assert [p.name for p in target.iterdir()] == [saved.name]
        assert "/" not in saved.name and "\x1b" not in saved.name
        assert saved.read_bytes() == b"%PDF-1.4 invoice"
        assert any(f"saved {saved}" in n for n in notes(app))
        # Again to the same place: refused, the file is untouched.
        await pilot.press("s")
        await settle(pilot)
        app.screen.query_one(Input).value = f"{target}/"
        await pilot.press("enter")
        await settle(pilot)
        assert any("already exists" in n for n in notes(app))
        assert len(list(target.iterdir())) == 1


async def test_forward_picks_attachments_completes_addresses_and_goes_to_each(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    first = _attach(store, seeded[2], "invoice.pdf", b"%PDF one")
    _attach(store, seeded[2], "photo.jpg", b"JPEG two")
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[2], "f")
        to = app.screen.query_one("#to", Input)
        await pilot.press(*"ines@fi")
        await wait_until(pilot, lambda: to._suggestion == "ines@firma.example", within=5)
        await pilot.press("right")  # accepts the suggestion
        assert to.value == "ines@firma.example"
        await pilot.press(*", supplier@parts.example")
        await pilot.press("tab")
        await settle(pilot)
        box = app.screen.query_one(SelectionList)
        assert box.has_focus and box.option_count == 2
        await pilot.press("space")  # the first: invoice.pdf
        await pilot.press("tab", *"Please check these.", "ctrl+s")
        await settle(pilot)
        forwards = [m for m in desk.show(seeded[2]).messages if m.kind == "forward"]
        assert [m.to for m in forwards] == [("ines@firma.example",), ("supplier@parts.example",)]

    def attachment_ids(s: Session) -> list[list[int]]:
        rows = s.exec(select(M.Outbox).where(M.Outbox.kind == "forward")).all()
        return [list(r.attachment_ids) for r in rows]

    assert store.write(attachment_ids) == [[first], [first]]


async def test_addresses_with_names_and_quoted_commas_are_kept_whole(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        app.screen.query_one(
            "#cc", Input
        ).value = 'Ines Firma <ines@firma.example>; "Doe, John" <john@doe.example>'
        await pilot.press(*"On it.", "ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, ComposeScreen)
        sent = desk.show(seeded[0]).messages[-1]
        assert sent.kind == "reply" and sent.cc == ("ines@firma.example", "john@doe.example")


async def test_a_forward_with_one_bad_address_goes_to_nobody(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[2], "f")
        to = app.screen.query_one("#to", Input)
        to.value = "ines@firma.example, Supplier <parts>, supplier@parts.example"
        app.screen.query_one(TextArea).focus()
        await pilot.press(*"Please check.", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.focused is to
        assert any("To: 'Supplier <parts>' is not an e-mail address" in n for n in notes(app))
        assert [m for m in desk.show(seeded[2]).messages if m.kind == "forward"] == []
        # Fixed, the whole list goes out, each address once.
        to.value = "ines@firma.example, Supplier <supplier@parts.example>"
        await pilot.press("ctrl+s")
        await settle(pilot)
        forwards = [m for m in desk.show(seeded[2]).messages if m.kind == "forward"]
        assert [m.to for m in forwards] == [("ines@firma.example",), ("supplier@parts.example",)]


async def test_leaving_with_a_bad_address_warns_once_and_keeps_the_draft(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        cc = app.screen.query_one("#cc", Input)
        cc.value = "boss@customer"
        app.screen.query_one(TextArea).focus()
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen) and app.screen.focused is cc
        assert any("Cc: 'boss@customer' is not an e-mail address" in n for n in notes(app))
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ComposeScreen)
        assert app.drafts[(seeded[0], "reply")].to == "boss@customer"


async def test_tabbing_back_to_the_addresses_adds_to_them(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[2], "f")
        await pilot.press(*"ines@firma.example", "tab", "shift+tab")
        await settle(pilot)
        to = app.screen.query_one("#to", Input)
        assert to.has_focus
        await pilot.press(*", parts@supplier.example")
        assert to.value == "ines@firma.example, parts@supplier.example"


@pytest.mark.parametrize(("status", "kept"), [(0, False), (3, True)])
async def test_the_editor_replaces_the_text_only_when_it_succeeds(
    desk: Desk,
    config: Config,
    clock: FixedClock,
    seeded: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    kept: bool,
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\nprintf "from the editor\\n" > "$1"\nexit {status}\n')
    editor.chmod(0o755)
    monkeypatch.setenv("VISUAL", str(editor))
    app = make_app(desk, config, clock)
    # The headless test driver cannot hand the terminal over; the editor runs all the same.
    monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        await pilot.press(*"typed by hand", "ctrl+e")
        await settle(pilot)
        area = app.screen.query_one(TextArea)
        if kept:
            assert area.text == "typed by hand"
            said = f"failed (exit code {status}); the text is unchanged"
            assert any(said in n for n in notes(app))
        else:
            assert area.text == "from the editor\n"
        assert app.drafts[(seeded[0], "reply")].body == area.text


async def test_a_restored_forward_sent_before_its_list_loads_keeps_its_attachments(
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoice = _attach(store, seeded[2], "invoice.pdf", b"%PDF one")
    gate = threading.Event()
    templates = desk.reply_templates

    def slow_templates() -> list[Any]:
        gate.wait(10)  # the compose screen's data stays away until the send is done
        return templates()

    monkeypatch.setattr(desk, "reply_templates", slow_templates)
    app = make_app(desk, config, clock)
    app.drafts[(seeded[2], "forward")] = Draft(
        body="Please check.", to="parts@supplier.example", attachments=[invoice]
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[2])
        await settle(pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ComposeScreen), within=5)
        assert app.screen.query_one(SelectionList).option_count == 0
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ComposeScreen), within=5)
        gate.set()
        await settle(pilot)

    def attachment_ids(s: Session) -> list[list[int]]:
        rows = s.exec(select(M.Outbox).where(M.Outbox.kind == "forward")).all()
        return [list(r.attachment_ids) for r in rows]

    assert store.write(attachment_ids) == [[invoice]]


async def test_f1_opens_the_help_from_the_text_box_and_everywhere_else(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    from helpdesk_tui.tui.screens.help import HelpScreen

    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_compose(pilot, app, seeded[0], "r")
        compose = app.screen
        footer = compose.active_bindings["f1"].binding
        assert footer.show and footer.id == "compose.help"
        await pilot.press("question_mark", "f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = [k for k, _d, _i in app.screen.lines]
        assert "f1" in keys and "^s" in keys
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is compose and compose.query_one(TextArea).text == "?"
        # On a screen where ? is help, f1 is too, and the sheet names it.
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert ("f1", "Help anywhere", "app.help_f1") in app.screen.lines


async def test_a_failed_send_is_plain_on_the_ticket(
    desk: Desk, config: Config, clock: FixedClock, store: Store, seeded: list[int]
) -> None:
    def fail(s: Session) -> None:
        row = s.exec(select(M.Outbox)).one()
        row.state = "failed"
        row.last_error = "550 5.1.1 mailbox unavailable"

    store.write(fail)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[1])
        await settle(pilot)
        header = shown(app.screen, "header")
        assert "1 mail NOT SENT" in header
        failed = [b for b in app.screen.query_one(Conversation).blocks if "failed" in b.tags]
        assert len(failed) == 1 and failed[0].kind == "failed"
        text = failed[0].content.plain
        assert "NOT SENT" in text and "550 5.1.1 mailbox unavailable" in text


async def test_the_header_shows_the_escalation_levels_to_come(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    from helpdesk_tui.desk import escalation

    timeline = escalation.timeline(desk, seeded[5])
    assert timeline.levels
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.open_ticket(seeded[5])
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        header = shown(app.screen, "header")
        coming = next(ln for ln in header.splitlines() if ln.startswith("Coming"))
        for level in timeline.levels:
            stamp = level.at.astimezone(desk.tz).strftime("%Y-%m-%d %H:%M")
            assert f"L{level.alert_level} {stamp}" in coming
        assert "notify_owner" in coming


async def test_register_finds_customers_by_address_or_name_as_you_type(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen)
        await pilot.press(*"ol")
        await settle(pilot)
        assert [c.name for c in screen.matches] == ["Olav Nordmann"]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert screen.query_one("#email", Input).value == "olav@nordmann.example"
        assert screen.query_one("#name", Input).value == "Olav Nordmann"
        assert screen.focused is screen.query_one("#subject", Input)
        # By name, in the name field; a new address finds nothing and registers as new.
        screen.query_one("#name", Input).focus()
        screen.query_one("#name", Input).value = ""
        await pilot.press(*"corp")
        await settle(pilot)
        assert sorted(c.name for c in screen.matches) == ["Kim Corp", "Lee Corp"]
        screen.query_one("#email", Input).focus()
        screen.query_one("#email", Input).value = ""
        await pilot.press(*"new.person@nowhere.example")
        await settle(pilot)
        assert screen.matches == []


async def _forward_with_template(pilot: Pilot[Any], store: Store, number: int) -> None:
    _attach(store, number, "invoice.pdf", b"%PDF one")
    _attach(store, number, "photo.jpg", b"JPEG two")
    app = pilot.app
    assert isinstance(app, HelpdeskApp)
    await settle(pilot)
    app.open_ticket(number)
    await settle(pilot)
    await pilot.press("f")
    await settle(pilot)
    await pilot.press(*"parts@supplier.example", "tab", "space", "tab")
    await _greeting(pilot)
    app.clear_notifications()
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
async def test_a_forward_from_a_template_keeps_room_to_write(
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    templates: None,
    size: tuple[int, int],
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=size) as pilot:
        await _forward_with_template(pilot, store, seeded[2])
        area = app.screen.query_one(TextArea)
        assert area.has_focus
        assert area.content_region.height >= 4  # rows to write in, at 80x24 too
        preview = app.screen.query_one("#preview")
        assert preview.display and preview.region.height >= 3


# ---------------------------------------------------------------------- snapshots

SnapCompare = Callable[..., bool]


def _template_steps(number: int) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await settle(pilot)
        app.open_ticket(number)
        await settle(pilot)
        for key in ("r", "ctrl+t", "down", "enter"):
            await pilot.press(key)
            await settle(pilot)
        await pilot.press("up", "up", *"We are on it.")
        await settle(pilot)
        app.clear_notifications()
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_compose_template_preview_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    seeded: list[int],
    templates: None,
    size: tuple[int, int],
) -> None:
    app = make_app(desk, config, clock)
    assert snap_compare(app, terminal_size=size, run_before=_template_steps(seeded[0]))


@pytest.mark.parametrize("size", SIZES)
def test_compose_forward_template_snapshot(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    store: Store,
    seeded: list[int],
    templates: None,
    size: tuple[int, int],
) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await _forward_with_template(pilot, store, seeded[2])

    app = make_app(desk, config, clock)
    assert snap_compare(app, terminal_size=size, run_before=run)

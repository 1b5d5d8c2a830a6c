"""`?` in a dialog lists its keys; in a dialog's text box it is just a question mark."""

from __future__ import annotations

from textual.widgets import Input, Static

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui.screens.dialogs import PickDialog, PostponeDialog, PromptDialog
from helpdesk_tui.tui.screens.help import HelpScreen
from tests.tui.conftest import make_app, settle


async def test_question_mark_in_a_dialog_shows_its_keys(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for key, kind in (("p", PostponeDialog), ("P", PickDialog), ("a", PickDialog)):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, kind), key
            await pilot.press("question_mark")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen), key
            text = "\n".join(str(w.render()) for w in app.screen.query(Static))
            assert "Cancel" in text
            await pilot.press("escape")  # closes the help
            await settle(pilot)
            assert isinstance(app.screen, kind)
            await pilot.press("escape")  # cancels the dialog
            await settle(pilot)


async def test_question_mark_typed_into_a_prompt_stays_text(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("T")  # tag by search: a prompt
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        await pilot.press("w", "h", "y", "question_mark")
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        assert app.screen.query_one(Input).value == "why?"

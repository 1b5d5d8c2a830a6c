"""Small modal dialogs: pick one of a list, type a value, choose a postpone time, go to a view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from helpdesk_tui.desk.views import ViewSpec

# Postpone presets: key, desk preset, label.
POSTPONE = (
    ("1", "1h", "1 hour"),
    ("2", "2h", "2 hours"),
    ("3", "3h", "3 hours"),
    ("4", "4h", "4 hours"),
    ("5", "1d", "1 day"),
    ("6", "1w", "1 week"),
    ("7", "1m", "1 month"),
)


class Dialog(ModalScreen[str | None]):
    """A titled box in the middle of the screen; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickDialog(Dialog):
    """Choose one value from a list (agents, priorities, categories)."""

    def __init__(self, title: str, options: Sequence[tuple[str, Content]]) -> None:
        super().__init__(title)
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield OptionList(*[Option(label, id=value) for value, label in self.options])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PromptDialog(Dialog):
    """Type one value (a ticket number, a pattern); enter accepts."""

    def __init__(self, title: str, placeholder: str = "", *, numeric: bool = False) -> None:
        super().__init__(title)
        self.placeholder = placeholder
        self.numeric = numeric

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield Input(
                placeholder=self.placeholder,
                type="integer" if self.numeric else "text",
                id="prompt",
            )

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink", True)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)


class PostponeDialog(Dialog):
    """A preset by its digit, or a phrase like "monday 9:00" typed below."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield OptionList(
                *[
                    Option(Content.assemble((k, "bold $text-accent"), " ", label), id=p)
                    for k, p, label in POSTPONE
                ],
                id="presets",
            )
            yield Input(placeholder="or a time: monday 9:00, tomorrow, in 3 days", id="phrase")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink", True)
        self.query_one(OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        if isinstance(self.focused, Input):
            return
        for key, preset, _label in POSTPONE:
            if event.character == key:
                event.stop()
                self.dismiss(f"preset:{preset}")
                return

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(f"preset:{event.option.id}")

    @on(Input.Submitted)
    def _phrase(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(f"when:{event.value.strip()}")


class GotoDialog(Dialog):
    """`g` then a view's letter: the next key chooses the view."""

    def __init__(self, specs: Sequence[ViewSpec]) -> None:
        super().__init__("Go to view")
        self.specs = specs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield Static(
                Content("\n").join(
                    Content.assemble((v.letter, "bold $text-accent"), "  ", v.label)
                    for v in self.specs
                )
            )

    def on_key(self, event: events.Key) -> None:
        for v in self.specs:
            if event.character == v.letter:
                event.stop()
                self.dismiss(v.id)
                return

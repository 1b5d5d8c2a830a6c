"""Small modal dialogs: pick one of a list, type a value, a merge target, a postpone time, a
view, a conflict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from helpdesk_tui.desk.summary import TicketSummary
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
        Binding("question_mark", "keys", "Keys", show=False, id="dialog.help"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def action_cancel(self) -> None:
        self.dismiss(None)

    async def action_keys(self) -> None:
        """`?` lists this dialog's keys (a modal screen does not reach the App's `?`); typed
        into a text box it is just a question mark."""
        focused = self.focused
        if isinstance(focused, Input):
            focused.insert_text_at_cursor("?")
            return
        await self.app.run_action("app.help")


class PickDialog(Dialog):
    """Choose one value from a list (agents, priorities, categories)."""

    def __init__(
        self, title: str, options: Sequence[tuple[str, Content]], *, current: str | None = None
    ) -> None:
        super().__init__(title)
        self.options = options
        self.current = current
        """The value the cursor starts on (the ticket's priority now), else the first."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield OptionList(*[Option(label, id=value) for value, label in self.options])

    def on_mount(self) -> None:
        values = [value for value, _label in self.options]
        if self.current in values:
            self.query_one(OptionList).highlighted = values.index(self.current)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PromptDialog(Dialog):
    """Type one value (a ticket number, a pattern); enter accepts."""

    def __init__(
        self, title: str, placeholder: str = "", *, numeric: bool = False, value: str = ""
    ) -> None:
        super().__init__(title)
        self.placeholder = placeholder
        self.numeric = numeric
        self.value = value
        """Text to start from (a name to rename): the cursor waits at its end."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield Input(
                self.value,
                placeholder=self.placeholder,
                type="integer" if self.numeric else "text",
                id="prompt",
                select_on_focus=False,
            )
            yield from self.below()

    def below(self) -> ComposeResult:
        """What a dialog built on this one shows under the box (nothing here)."""
        yield from ()

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink", True)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)


class MergeCandidates(Message):
    """The tickets a merge most likely wants (the same customers' others), from a worker."""

    def __init__(self, tickets: list[TicketSummary]) -> None:
        super().__init__()
        self.tickets = tickets


class MergeDialog(PromptDialog):
    """Pick the ticket to merge into: type its number, or go down into the same customers'
    other tickets (a customer who wrote again instead of replying) and take one with enter."""

    def __init__(self, title: str, numbers: Sequence[int]) -> None:
        super().__init__(title, "ticket number", numeric=True)
        self.numbers = list(numbers)

    def below(self) -> ComposeResult:
        yield Static(
            Content.styled("the same customers' tickets (down, then enter):", "$text-muted"),
            id="merge-hint",
        )
        yield OptionList(id="merge-candidates")

    def on_mount(self) -> None:
        # PromptDialog's on_mount runs too: Textual calls each class's handler in the MRO.
        self.query_one("#merge-hint").display = False
        self.query_one(OptionList).display = False
        load = getattr(self.app, "load_merge_candidates", None)
        if load is not None and getattr(self.app, "views", None) is not None:
            load(self, self.numbers)

    def on_merge_candidates(self, message: MergeCandidates) -> None:
        from helpdesk_tui.tui.text import line

        message.stop()
        box = self.query_one(OptionList)
        box.set_options(
            Option(
                Content.assemble(
                    (f"#{t.number:<6}", "bold"),
                    line(t.title),
                    ("  " + t.status, "$text-muted"),
                ),
                id=str(t.number),
            )
            for t in message.tickets
        )
        box.display = bool(message.tickets)
        self.query_one("#merge-hint").display = bool(message.tickets)

    def on_key(self, event: events.Key) -> None:
        box = self.query_one(OptionList)
        if event.key == "down" and isinstance(self.focused, Input) and box.display:
            event.stop()
            box.focus()
            box.highlighted = 0
        elif event.key == "up" and self.focused is box and box.highlighted in (0, None):
            event.stop()
            self.query_one(Input).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


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
            yield Input(
                placeholder="or type a time: monday 9:00, tomorrow, in 3 days",
                id="phrase",
                select_on_focus=False,  # the first letter typed is already in it
            )

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink", True)
        self.query_one(OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        if isinstance(self.focused, Input):
            return
        box = self.query_one("#phrase", Input)
        char = event.character
        if box.value:
            # A phrase is under way but the focus has not reached its box yet (keys typed
            # quickly): the rest of it, enter included, belongs to the phrase too.
            if event.key == "enter":
                event.stop()
                event.prevent_default()
                self.dismiss(f"when:{box.value.strip()}")
                return
            if event.is_printable and char:
                event.stop()
                event.prevent_default()
                box.insert_text_at_cursor(char)
            return
        for key, preset, _label in POSTPONE:
            if char == key:
                event.stop()
                self.dismiss(f"preset:{preset}")
                return
        if event.is_printable and char and not char.isspace() and char != "?":
            # Typing a phrase ("monday 9:00") goes to the phrase box without a tab first.
            event.stop()
            event.prevent_default()
            box.focus()
            box.insert_text_at_cursor(char)

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
                    if v.letter
                )
            )

    def on_key(self, event: events.Key) -> None:
        for v in self.specs:
            if v.letter and event.character == v.letter:
                event.stop()
                self.dismiss(v.id)
                return


class ConflictDialog(Dialog):
    """Someone else changed the ticket(s) first: re-apply the action to them as they are now,
    or drop it (the screen below reloads and shows their change). Nothing is lost silently."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reapply", "Re-apply", id="conflict.reapply"),
        Binding("d", "drop", "Drop", id="conflict.drop"),
        Binding("escape", "drop", "Drop", show=False, id="conflict.cancel"),
        # A modal screen cuts off the App's bindings, so `?` is bound here again.
    ]

    def __init__(self, action: str, messages: Sequence[str], *, draft_kept: bool = False) -> None:
        many = len(messages) > 1
        super().__init__(
            f"{len(messages)} tickets were changed by someone else"
            if many
            else "Changed by someone else"
        )
        self.action = action
        self.messages = list(messages)
        self.draft_kept = draft_kept

    def compose(self) -> ComposeResult:
        from helpdesk_tui.tui.text import line

        many = len(self.messages) > 1
        verb = f"Your {self.action}"
        with Vertical(classes="dialog conflict"):
            yield Static(Content(self.title_text), classes="dialog-title")
            # The desk's words quote agent names: untrusted, so inert Content, one per line.
            yield Static(
                Content("\n").join(line(m, "$text-warning") for m in self.messages),
                id="conflict-messages",
            )
            was = "was not applied to them" if many else "was not applied"
            kept = " Your text is kept as a draft." if self.draft_kept else ""
            yield Static(Content(f"{verb} {was}.{kept}"), id="conflict-what")
            with Horizontal(id="conflict-buttons"):
                yield Button(
                    Content.assemble(("R", "bold underline"), "e-apply all" if many else "e-apply"),
                    id="reapply",
                    variant="warning",
                )
                yield Button(Content.assemble(("D", "bold underline"), "rop"), id="drop")
            yield Static(
                Content(
                    f"r: {self.action} again, on the ticket{'s' if many else ''} as now · "
                    "d/escape: drop it and see the change · ?: keys"
                ),
                classes="dim",
            )

    def on_mount(self) -> None:
        self.query_one("#reapply", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)

    def action_reapply(self) -> None:
        self.dismiss("reapply")

    def action_drop(self) -> None:
        self.dismiss("drop")

"""`?`: the keys of the screen below, generated from its active bindings (never hand-kept)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def binding_lines(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(key, description, id) for every binding active on `screen`, screen's own first."""
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    for key, active in screen.active_bindings.items():
        b = active.binding
        if not b.description or b.system or not b.id:
            # Textual's own scrolling and focus keys have no id: they are noise here.
            continue
        label = (b.id or b.action) + b.description
        display = screen.app.get_key_display(b)
        if label in seen:
            # One binding on several keys ("j,down") arrives once per key: join them.
            for i, (k, d, ident) in enumerate(out):
                if ident + d == label:
                    out[i] = (f"{k}, {display}", d, ident)
            continue
        seen.add(label)
        del key
        out.append((display, b.description, b.id or ""))
    return out


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened from."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close help", id="help.close"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.lines = binding_lines(under)
        self.under_title = getattr(under, "help_title", type(under).__name__)

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _d, _i in self.lines), default=4) + 2
        said = max((len(d) for _k, d, _i in self.lines), default=4) + 2
        # Each key's binding id, dim at the end: what [keymap] in the settings names.
        body = Content("\n").join(
            Content.assemble(
                (k.ljust(width), "bold $text-accent"), d.ljust(said), (i or "", "$text-muted")
            )
            for k, d, i in self.lines
        )
        with VerticalScroll(classes="dialog help"):
            yield Static(Content(f"Keys: {self.under_title}"), classes="dialog-title")
            yield Static(body, id="help-keys")
            yield Static(
                Content(
                    "ctrl+p opens the command palette; escape closes this help. "
                    "[keymap] in the settings remaps a key by the id shown beside it."
                ),
                classes="dim",
            )

    def action_close(self) -> None:
        self.dismiss(None)

"""Compose: reply, reply all, forward, internal note, ask a colleague; drafts kept on the App.

A draft lives in App.drafts keyed by (ticket, kind) and is updated on every change, so leaving
the screen (escape, or a crash of the send) loses nothing; it is dropped only when the desk
confirms the send. Persisting drafts across restarts is for a later slice. ctrl+e suspends the
app and opens $VISUAL/$EDITOR on the draft.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Select, Static, TextArea

from helpdesk_tui.tui.app import Draft
from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.desk.service import Desk
    from helpdesk_tui.tui.app import HelpdeskApp

TITLES = {
    "reply": "Reply to the customer",
    "reply_all": "Reply to all",
    "forward": "Forward to an external party",
    "note": "Internal note",
    "ask": "Ask a colleague (internal; the ticket moves to them)",
}


class ComposeScreen(Screen[None]):
    """Write one message for one ticket; ctrl+s sends and returns at once."""

    help_title = "compose"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="compose.send"),
        # priority: TextArea binds ctrl+e to "end of line", and the editor must win.
        Binding("ctrl+e", "editor", "$EDITOR", id="compose.editor", priority=True),
        Binding("escape", "back", "Back (keeps draft)", id="compose.back"),
    ]

    def __init__(self, number: int, kind: str) -> None:
        super().__init__()
        self.number = number
        self.kind = kind

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    @property
    def draft(self) -> Draft:
        return self.helpdesk.drafts.setdefault((self.number, self.kind), Draft())

    def compose(self) -> ComposeResult:
        draft = self.draft
        yield Static(
            Content.assemble(
                ("helpdesk", "bold"),
                "  ",
                (f"#{self.number}", "$text-accent"),
                "  ",
                TITLES.get(self.kind, self.kind),
            ),
            id="topbar",
        )
        with Vertical(id="compose"):
            if self.kind == "forward":
                yield Static(Content("To"), classes="label")
                yield Input(value=draft.to, placeholder="name@example.com", id="to")
            if self.kind == "ask":
                me = self.helpdesk.desk.actor if self.helpdesk.desk else None
                options = [
                    (Content.assemble(line(a.name or a.login), "  ", line(a.login, "dim")), a.login)
                    for a in self.helpdesk.agents
                    if a.login != me
                ]
                known = {login for _label, login in options}
                yield Static(Content("Colleague"), classes="label")
                yield Select[str](
                    options,
                    prompt="pick a colleague",
                    value=draft.agent if draft.agent in known else Select.NULL,
                    id="agent",
                )
            yield Static(Content("Text"), classes="label")
            yield TextArea(draft.body, id="body", soft_wrap=True, show_line_numbers=False)
        yield Footer()

    def on_mount(self) -> None:
        blink = getattr(self.app, "cursor_blink", True)
        for widget in self.query(Input):
            widget.cursor_blink = blink
        self.query_one(TextArea).cursor_blink = blink
        area = self.query_one(TextArea)
        area.move_cursor(area.document.end)  # a restored draft continues where it stopped
        first = self.query("#to, #agent").first() if self.kind in ("forward", "ask") else None
        (first or area).focus()

    # ------------------------------------------------------------------ draft

    @on(TextArea.Changed)
    def _body_changed(self, event: TextArea.Changed) -> None:
        self.draft.body = event.text_area.text

    @on(Input.Changed, "#to")
    def _to_changed(self, event: Input.Changed) -> None:
        self.draft.to = event.value

    @on(Select.Changed, "#agent")
    def _agent_changed(self, event: Select.Changed) -> None:
        self.draft.agent = event.value if isinstance(event.value, str) else ""

    def action_back(self) -> None:
        self.dismiss(None)

    def action_editor(self) -> None:
        from textual.app import SuspendNotSupported

        area = self.query_one(TextArea)
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        fd, name = tempfile.mkstemp(prefix=f"helpdesk-{self.number}-", suffix=".txt")
        path = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(area.text)
            try:
                with self.app.suspend():
                    subprocess.run([*shlex.split(editor), str(path)], check=False)
            except SuspendNotSupported:
                self.helpdesk.say("this terminal cannot hand over to an editor", severity="error")
                return
            except OSError as exc:
                self.helpdesk.say(f"cannot run {editor}: {exc}", severity="error")
                return
            area.text = path.read_text(encoding="utf-8", errors="replace")
            self.draft.body = area.text
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    # ------------------------------------------------------------------ send

    def action_send(self) -> None:
        body = self.query_one(TextArea).text
        number, kind = self.number, self.kind
        call: Any
        if kind in ("reply", "reply_all"):
            all_ = kind == "reply_all"

            def call(d: Desk, n: int) -> Any:
                return d.reply(n, body, reply_all=all_)

        elif kind == "note":

            def call(d: Desk, n: int) -> Any:
                return d.note(n, body)

        elif kind == "forward":
            to = self.query_one("#to", Input).value.strip()
            if not to:
                self.helpdesk.say("a forward needs an address", severity="warning")
                return

            def call(d: Desk, n: int) -> Any:
                return d.forward(n, to, body)

        elif kind == "ask":
            value = self.query_one("#agent", Select).value
            if not isinstance(value, str):
                self.helpdesk.say("pick a colleague to ask", severity="warning")
                return
            colleague = value

            def call(d: Desk, n: int) -> Any:
                return d.ask(n, colleague, body)

        else:
            return
        if not body.strip():
            self.helpdesk.say("write something first", severity="warning")
            return
        if self.helpdesk.desk is None:
            self.helpdesk.say("the desk is still opening", severity="warning")
            return
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else self.app
        self.helpdesk.perform(below, kind, [number], call)
        self.dismiss(None)

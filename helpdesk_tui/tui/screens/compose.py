"""Compose: reply, reply all, forward, internal note, ask a colleague; drafts that persist.

A draft lives in App.drafts keyed by (ticket, kind), is updated on every change and written to
the agent's drafts file a moment later (desk/drafts.py), so leaving the screen, a failed send
or restarting the app loses nothing; it is dropped only when the desk confirms the send.
ctrl+e suspends the app and opens $VISUAL/$EDITOR on the draft.

Reply templates (ctrl+t) are ReplyTemplate rows; once one is applied, the text is a template
and a preview under it shows the text as it will be sent, with the variables filled in, or
names the unknown variable and where it is. Emptying the text, or "No template" in the ctrl+t
picker, makes it plain text again (a literal "{" is then sent as typed).

Addresses complete from the desk's customers as they are typed (a Suggester whose lookups run
in a thread, off the event loop). A forward can carry attachments of the ticket and go to
several addresses (one forward each, all checked before the first is queued).
"""

from __future__ import annotations

import asyncio
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
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Footer, Input, Select, SelectionList, Static, TextArea

from helpdesk_tui.tui.app import Draft
from helpdesk_tui.tui.screens.dialogs import PickDialog
from helpdesk_tui.tui.text import line, text
from helpdesk_tui.tui.widgets.presence import PresenceLine

if TYPE_CHECKING:
    from helpdesk_tui.desk.records import AttachmentRecord
    from helpdesk_tui.desk.service import Desk, TemplateRecord
    from helpdesk_tui.tui.app import HelpdeskApp

TITLES = {
    "reply": "Reply to the customer",
    "reply_all": "Reply to all",
    "forward": "Forward to an external party",
    "note": "Internal note",
    "ask": "Ask a colleague (internal; the ticket moves to them)",
}
NO_TEMPLATE = "-"
"""The picker's choice that leaves template mode (template ids are numbers)."""
ADDRESS_FIELDS = {"to": "To", "cc": "Cc"}
"""The address fields a compose screen may have (by id), with the name a message gives them."""


class CustomerSuggester(Suggester):
    """Completes the last address of a comma-separated list from the desk's customers."""

    def __init__(self, app: HelpdeskApp) -> None:
        super().__init__(use_cache=True, case_sensitive=True)
        self.helpdesk = app

    async def get_suggestion(self, value: str) -> str | None:
        desk = self.helpdesk.desk
        if desk is None:
            return None
        # The address being typed starts after a separator, a space or the "<" of a name.
        start = max(value.rfind(ch) for ch in ",; <") + 1
        token = value[start:]
        if len(token) < 2:
            return None
        found = await asyncio.to_thread(desk.suggest_address, token)
        if found is None or not found.startswith(token.lower()):
            return None
        close = ">" if value[start - 1 : start] == "<" else ""
        return value + found[len(token) :] + close


class ComposeData(Message):
    """What the screen needs from the store: templates, their variables, the attachments,
    and the signature a reply gets below its text."""

    def __init__(
        self,
        templates: list[TemplateRecord],
        values: dict[str, str],
        attachments: list[AttachmentRecord],
        signature: str = "",
    ) -> None:
        super().__init__()
        self.templates = templates
        self.values = values
        self.attachments = attachments
        self.signature = signature


def preview(body: str, values: dict[str, str] | None, signature: str = "") -> tuple[Content, bool]:
    """The text as it will be sent, or the template's problems; True when it can be sent.

    `signature` is the agent's, for a reply: shown below the text as the desk will add it.
    """
    from helpdesk_tui.desk.service import signed
    from helpdesk_tui.mail.templates import TemplateError, check_template, render

    if values is None:
        return Content.styled("loading the ticket's variables…", "$text-muted"), False
    problems = check_template(body, values)
    if problems:
        known = ", ".join(sorted(values))
        return (
            Content.assemble(
                ("✗ ", "$text-error bold"),
                line(problems[0], "$text-error bold"),
                (f"  (and {len(problems) - 1} more)" if len(problems) > 1 else "", "$text-error"),
                "\n",
                ("known variables: ", "$text-muted"),
                (known, "$text-muted"),
            ),
            False,
        )
    try:
        rendered = render(body, values)
    except TemplateError as exc:  # pragma: no cover - check_template saw the same problems
        return line(str(exc), "$text-error bold"), False
    added = signed(rendered, signature)[len(rendered) :]
    return Content.assemble(text(rendered), text(added).stylize("$text-muted")), True


class ComposeScreen(Screen[None]):
    """Write one message for one ticket; ctrl+s sends and returns at once."""

    help_title = "compose"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="compose.send"),
        # priority: TextArea binds ctrl+e to "end of line", and the editor must win.
        Binding("ctrl+e", "editor", "$EDITOR", id="compose.editor", priority=True),
        Binding("ctrl+t", "template", "Template", id="compose.template", priority=True),
        Binding("escape", "back", "Back (keeps draft)", id="compose.back"),
        # Shown here, where the focus is always in a text box and ? is a character; the App's
        # f1 binding does the work (it is hidden in the footers of screens where ? works).
        Binding("f1", "app.help", "Help", id="compose.help", priority=True),
    ]

    expected_version: int | None = None
    """The ticket's version on the screen compose was opened from; a send checks it."""

    def __init__(self, number: int, kind: str) -> None:
        super().__init__()
        self.number = number
        self.kind = kind
        self.templates: list[TemplateRecord] = []
        self.values: dict[str, str] | None = None
        self.signature = ""
        """The agent's signature, which the desk puts under a reply (not a note or forward)."""
        self.attachments: list[AttachmentRecord] = []
        self._warned_leaving: dict[str, str] | None = None
        """The address fields as they were when escape warned about them: a second escape
        with nothing changed leaves anyway (the draft keeps what was typed)."""

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
        yield PresenceLine(self.number, "composing", id="presence")
        suggester = CustomerSuggester(self.helpdesk)
        with VerticalScroll(id="compose"):
            if self.kind == "forward":
                yield Static(Content("To (several: separate with commas)"), classes="label")
                yield Input(
                    value=draft.to,
                    placeholder="name@example.com",
                    id="to",
                    suggester=suggester,
                    # Tabbing back to add an address must not select (and so replace) the list.
                    select_on_focus=False,
                )
                yield Static(Content("Attachments"), classes="label", id="attachments-label")
                yield SelectionList[int](id="attachments")
            if self.kind in ("reply", "reply_all"):
                yield Static(Content("Cc"), classes="label")
                yield Input(
                    value=draft.to,
                    placeholder="optional",
                    id="cc",
                    suggester=suggester,
                    select_on_focus=False,
                )
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
            yield Static(self._text_label(), classes="label", id="text-label")
            yield TextArea(draft.body, id="body", soft_wrap=True, show_line_numbers=False)
            yield Static(Content(""), id="preview")
        yield Footer()

    def _text_label(self) -> Content:
        template = self.draft.template
        if not template:
            return Content.assemble("Text", ("   ctrl+t: start from a template", "$text-muted"))
        return Content.assemble(
            "Text from template ",
            line(template, "$text-accent"),
            ("   preview below", "$text-muted"),
        )

    def on_mount(self) -> None:
        blink = getattr(self.app, "cursor_blink", True)
        for widget in self.query(Input):
            widget.cursor_blink = blink
        self.query_one(TextArea).cursor_blink = blink
        area = self.query_one(TextArea)
        area.move_cursor(area.document.end)  # a restored draft continues where it stopped
        first = self.query("#to, #agent").first() if self.kind in ("forward", "ask") else None
        (first or area).focus()
        self._update_preview()
        desk = self.helpdesk.desk
        if desk is not None:
            number, forward = self.number, self.kind == "forward"
            reply = self.kind in ("reply", "reply_all")

            def fetch() -> None:
                templates = desk.reply_templates()
                values = desk.template_values(number)
                atts: list[AttachmentRecord] = []
                if forward:
                    detail = desk.show(number)
                    atts = [a for m in detail.messages for a in m.attachments]
                signature = ""
                if reply:
                    from helpdesk_tui.desk.errors import DeskError

                    # An actor who is no agent cannot send a reply; the send will say so.
                    with contextlib.suppress(DeskError):
                        signature = desk.whoami().signature
                self.post_message(ComposeData(templates, values, atts, signature))

            self.app.run_worker(fetch, thread=True, group="compose-data", exit_on_error=False)

    def on_compose_data(self, message: ComposeData) -> None:
        message.stop()
        self.templates, self.values = message.templates, message.values
        self.signature = message.signature
        self.attachments = message.attachments
        if self.kind == "forward":
            chosen = set(self.draft.attachments)
            box = self.query_one("#attachments", SelectionList)
            box.clear_options()
            box.add_options(
                [
                    (
                        Content.assemble(
                            line(a.filename), (f"  {a.content_type}, {a.size} bytes", "dim")
                        ),
                        a.id,
                        a.id in chosen,
                    )
                    for a in self.attachments
                ]
            )
            if self.attachments:
                box.highlighted = 0
            box.display = bool(self.attachments)
            self.query_one("#attachments-label").display = bool(self.attachments)
        self._update_preview()

    # ------------------------------------------------------------------ draft

    def _changed(self) -> None:
        self.helpdesk.draft_changed()

    @on(TextArea.Changed)
    def _body_changed(self, event: TextArea.Changed) -> None:
        self.draft.body = event.text_area.text
        if self.draft.template and not self.draft.body.strip():
            # Nothing of the template is left: what is typed next is plain text.
            self.draft.template = ""
            self.query_one("#text-label", Static).update(self._text_label())
        self._update_preview()
        self._changed()

    @on(Input.Changed, "#to, #cc")
    def _to_changed(self, event: Input.Changed) -> None:
        self.draft.to = event.value
        self._changed()

    @on(Select.Changed, "#agent")
    def _agent_changed(self, event: Select.Changed) -> None:
        self.draft.agent = event.value if isinstance(event.value, str) else ""
        self._changed()

    @on(SelectionList.SelectedChanged, "#attachments")
    def _attachments_changed(self, event: SelectionList.SelectedChanged[int]) -> None:
        self.draft.attachments = list(event.selection_list.selected)
        self._changed()

    def _update_preview(self) -> None:
        box = self.query_one("#preview", Static)
        if not self.draft.template:
            box.display = False
            return
        box.display = True
        content, ok = preview(self.draft.body, self.values, self.signature)
        box.set_class(not ok, "error")
        box.update(Content.assemble(("Preview  ", "bold $text-muted"), "\n", content))

    # ------------------------------------------------------------------ templates

    def action_template(self) -> None:
        options: list[tuple[str, Content]] = []
        if self.draft.template:
            options.append(
                (
                    NO_TEMPLATE,
                    Content.assemble(
                        ("No template", "bold"), ("  send the text as typed", "$text-muted")
                    ),
                )
            )
        elif not self.templates:
            self.helpdesk.say("the desk has no reply templates yet", severity="warning")
            return
        options += [
            (
                str(t.id),
                Content.assemble(line(t.label, "bold"), "  ", line(t.body[:50], "$text-muted")),
            )
            for t in self.templates
        ]

        def chosen(value: str | None) -> None:
            if value == NO_TEMPLATE:
                self.leave_template()
                return
            template = next((t for t in self.templates if str(t.id) == value), None)
            if template is not None:
                self.apply_template(template)

        self.app.push_screen(PickDialog("Start from a template", options), chosen)

    def apply_template(self, template: TemplateRecord) -> None:
        """The template's text goes where the cursor is (or replaces an empty text)."""
        area = self.query_one(TextArea)
        self.draft.template = template.label
        if area.text.strip():
            area.insert(template.body)
        else:
            area.text = template.body
            area.move_cursor(area.document.end)
        self.draft.body = area.text
        self.query_one("#text-label", Static).update(self._text_label())
        self._update_preview()
        self._changed()
        area.focus()

    def leave_template(self) -> None:
        """The text stays as it is and is sent as typed, variables and braces included."""
        self.draft.template = ""
        self.query_one("#text-label", Static).update(self._text_label())
        self._update_preview()
        self._changed()
        self.query_one(TextArea).focus()

    # ------------------------------------------------------------------ addresses, leaving

    def _address_values(self) -> dict[str, str]:
        return {i.id or "": i.value for i in self.query(Input) if i.id in ADDRESS_FIELDS}

    def _addresses(self, *, leaving: bool = False) -> dict[str, list[str]] | None:
        """Every address field's bare addresses; None after naming the first refused entry.

        Checked as a whole before anything is queued: a forward to three addresses must not
        go to the first and then fail on the second.
        """
        from helpdesk_tui.desk.service import parse_addresses

        out: dict[str, list[str]] = {}
        for field, value in self._address_values().items():
            addresses, refused = parse_addresses(value)
            if refused:
                then = "; escape again to leave anyway (the draft keeps it)" if leaving else ""
                self.helpdesk.say(
                    f"{ADDRESS_FIELDS[field]}: {refused[0]!r} is not an e-mail address "
                    "(write name@example.com or Name <name@example.com>, several separated "
                    f"by commas){then}",
                    severity="error",
                )
                self.query_one(f"#{field}", Input).focus()
                return None
            out[field] = addresses
        return out

    def action_back(self) -> None:
        values = self._address_values()
        if values != self._warned_leaving and self._addresses(leaving=True) is None:
            self._warned_leaving = values
            return
        self.dismiss(None)

    # ------------------------------------------------------------------ editor

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
                    done = subprocess.run([*shlex.split(editor), str(path)], check=False)
            except SuspendNotSupported:
                self.helpdesk.say("this terminal cannot hand over to an editor", severity="error")
                return
            except OSError as exc:
                self.helpdesk.say(f"cannot run {editor}: {exc}", severity="error")
                return
            if done.returncode != 0:
                # vim's :cq, a crash, a killed editor: what it left is not what the agent meant.
                self.helpdesk.say(
                    f"{editor} failed (exit code {done.returncode}); the text is unchanged",
                    severity="error",
                )
                return
            area.text = path.read_text(encoding="utf-8", errors="replace")
            self.draft.body = area.text
            self._changed()
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    # ------------------------------------------------------------------ send

    def _final_body(self) -> str | None:
        """The text to send: a template is rendered, and refused while it has problems."""
        body = self.query_one(TextArea).text
        if not self.draft.template:
            return body
        content, ok = preview(body, self.values)
        if not ok:
            self.helpdesk.say(
                f"the template cannot be sent yet: {content.plain.splitlines()[0].lstrip('✗ ')}",
                severity="error",
            )
            return None
        from helpdesk_tui.mail.templates import render

        assert self.values is not None
        return render(body, self.values)

    def action_send(self) -> None:
        addresses = self._addresses()
        if addresses is None:
            return
        body = self._final_body()
        if body is None:
            return
        number, kind = self.number, self.kind
        call: Any
        if kind in ("reply", "reply_all"):
            all_ = kind == "reply_all"
            cc = addresses.get("cc", [])

            def call(d: Desk, n: int, v: int | None) -> Any:
                return d.reply(n, body, reply_all=all_, cc=cc, expected_version=v)

        elif kind == "note":

            def call(d: Desk, n: int, v: int | None) -> Any:
                return d.note(n, body, expected_version=v)

        elif kind == "forward":
            to_list = addresses.get("to", [])
            if not to_list:
                self.helpdesk.say("a forward needs an address", severity="warning")
                self.query_one("#to", Input).focus()
                return
            # From the draft, not the list on screen: a restored forward sent before the
            # ticket's attachments are listed still carries the ones it saved.
            attachment_ids = list(self.draft.attachments)

            def call(d: Desk, n: int, v: int | None) -> Any:
                result = None
                for to in to_list:
                    # Each forward bumps the version: only the first checks what was shown.
                    result = d.forward(
                        n, to, body, attachment_ids=attachment_ids, expected_version=v
                    )
                    v = None
                return result

        elif kind == "ask":
            value = self.query_one("#agent", Select).value
            if not isinstance(value, str):
                self.helpdesk.say("pick a colleague to ask", severity="warning")
                return
            colleague = value

            def call(d: Desk, n: int, v: int | None) -> Any:
                return d.ask(n, colleague, body, expected_version=v)

        else:
            return
        if not body.strip():
            self.helpdesk.say("write something first", severity="warning")
            return
        if self.helpdesk.desk is None:
            self.helpdesk.say("the desk is still opening", severity="warning")
            return
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else self.app
        # A conflict keeps the draft (dropped only when the desk confirms) and offers re-apply.
        self.helpdesk.perform(below, kind, [number], call, {number: self.expected_version})
        self.dismiss(None)

"""Register a request by hand (the phone scenario): customer, subject, text, queue, owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Select, Static, TextArea

from helpdesk_tui.tui.messages import Registered
from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.tui.app import HelpdeskApp

NOBODY = "-"


class RegisterScreen(Screen[None]):
    """Tab moves between fields; ctrl+s saves and opens the new ticket."""

    help_title = "register request"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="register.save"),
        Binding("escape", "back", "Back", id="register.back"),
    ]

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.helpdesk
        me = app.desk.actor if app.desk else None
        yield Static(
            Content.assemble(("helpdesk", "bold"), "  ", ("Register a request", "$text-accent")),
            id="topbar",
        )
        with VerticalScroll(id="register"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield Static(Content("Customer e-mail"), classes="label")
                    yield Input(placeholder="name@example.com", id="email")
                with Vertical():
                    yield Static(Content("Customer name"), classes="label")
                    yield Input(placeholder="optional", id="name")
            yield Static(Content("Subject"), classes="label")
            yield Input(id="subject")
            yield Static(Content("Text"), classes="label")
            yield TextArea(id="body", soft_wrap=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Static(Content("Category"), classes="label")
                    cats = app.choices.categories
                    yield Select[str](
                        [(line(c), c) for c in cats],
                        allow_blank=not cats,
                        value=cats[0] if cats else Select.NULL,
                        id="category",
                    )
                with Vertical():
                    yield Static(Content("Priority"), classes="label")
                    yield Select[str](
                        [(line(p), p) for p in app.choices.priorities],
                        prompt="category default",
                        id="priority",
                    )
                with Vertical():
                    yield Static(Content("Owner"), classes="label")
                    owners = [(Content.styled("(queue)", "italic"), NOBODY)] + [
                        (line(a.login), a.login) for a in app.agents
                    ]
                    yield Select[str](
                        owners,
                        allow_blank=False,
                        value=me if me in {a.login for a in app.agents} else NOBODY,
                        id="owner",
                    )
        yield Footer()

    def on_mount(self) -> None:
        blink = getattr(self.app, "cursor_blink", True)
        for widget in self.query(Input):
            widget.cursor_blink = blink
        self.query_one(TextArea).cursor_blink = blink
        self.query_one("#email", Input).focus()

    def action_back(self) -> None:
        self.dismiss(None)

    def _select(self, name: str) -> str | None:
        value = self.query_one(f"#{name}", Select).value
        return value if isinstance(value, str) and value != NOBODY else None

    def action_save(self) -> None:
        email = self.query_one("#email", Input).value.strip()
        subject = self.query_one("#subject", Input).value.strip()
        if not email or not subject:
            self.helpdesk.say(
                "a request needs the customer's e-mail and a subject", severity="warning"
            )
            return
        fields: dict[str, Any] = {
            "customer_email": email,
            "customer_name": self.query_one("#name", Input).value.strip(),
            "subject": subject,
            "body": self.query_one(TextArea).text,
            "category": self._select("category"),
            "priority": self._select("priority"),
            "owner": self._select("owner"),
            "via": "phone",
        }
        if self.helpdesk.desk is None:
            self.helpdesk.say("the desk is still opening", severity="warning")
            return
        self.helpdesk.register(self, fields)

    def on_registered(self, message: Registered) -> None:
        from helpdesk_tui.tui.screens.detail import DetailScreen

        message.stop()
        self.helpdesk.say(f"registered #{message.number}")
        self.app.switch_screen(DetailScreen(message.number))

"""Register a request by hand (the phone scenario): customer, subject, text, queue, owner.

The customer is found as the agent types: an address prefix or part of a name looks the desk's
customers up in a thread worker, and the matches appear under the fields (down moves into
them, enter takes one). Typing on past the matches registers a new customer.

Escape keeps what was typed in App.register_draft (in memory, for this session of the app);
N brings it back, and it is dropped once the desk has registered the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from helpdesk_tui.tui.messages import Registered
from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.desk.records import CustomerRecord
    from helpdesk_tui.tui.app import HelpdeskApp


class CustomersFound(Message):
    def __init__(self, generation: int, customers: list[CustomerRecord]) -> None:
        super().__init__()
        self.generation = generation
        self.customers = customers


def matching_address(c: CustomerRecord, typed: str) -> str:
    """The customer's address that the typed text found (whole, prefix, part), else the first."""
    if not c.addresses:
        return ""
    needle = typed.strip().lower()
    # The whole address first, then one it starts, then one it is part of; min() keeps the
    # customer's order among equals.
    best = min(c.addresses, key=lambda a: (a != needle, not a.startswith(needle), needle not in a))
    return best if needle and needle in best else c.addresses[0]


def customer_prompt(c: CustomerRecord, typed: str = "") -> Content:
    first = matching_address(c, typed)
    shown = [first, *(a for a in c.addresses if a != first)] if first else []
    return Content.assemble(
        line(c.name or "(no name)", "bold"),
        "  ",
        line(", ".join(shown[:3]), "$text-accent"),
        # The gap stays outside line(), which trims the ends of what it cleans.
        *(("  ", line(c.company, "$text-muted")) if c.company else ()),
    )


NOBODY = "-"


class RegisterScreen(Screen[None]):
    """Tab moves between fields; ctrl+s saves and opens the new ticket."""

    help_title = "register request"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="register.save"),
        Binding("escape", "back", "Back (keeps draft)", id="register.back"),
        # As in compose: the focus is always in a field, where ? is a character.
        Binding("f1", "app.help", "Help", id="register.help", priority=True),
        Binding("down", "to_matches", "Known customers", show=False, id="register.matches"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.matches: list[CustomerRecord] = []
        self._generation = 0
        self._saving: Worker[Any] | None = None

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    @property
    def draft(self) -> dict[str, str]:
        return self.helpdesk.register_draft

    def compose(self) -> ComposeResult:
        app = self.helpdesk
        me = app.desk.actor if app.desk else None
        draft = self.draft
        yield Static(
            Content.assemble(("helpdesk", "bold"), "  ", ("Register a request", "$text-accent")),
            id="topbar",
        )
        with VerticalScroll(id="register"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield Static(Content("Customer e-mail"), classes="label")
                    # No select on focus, here and below: tabbing back to a field and typing
                    # must add to what is there, not replace it.
                    yield Input(
                        draft.get("email", ""),
                        placeholder="name@example.com",
                        id="email",
                        select_on_focus=False,
                    )
                with Vertical():
                    yield Static(Content("Customer name"), classes="label")
                    yield Input(
                        draft.get("name", ""),
                        placeholder="optional",
                        id="name",
                        select_on_focus=False,
                    )
            yield OptionList(id="matches")
            yield Static(Content("Subject"), classes="label")
            yield Input(draft.get("subject", ""), id="subject", select_on_focus=False)
            yield Static(Content("Text"), classes="label")
            yield TextArea(draft.get("body", ""), id="body", soft_wrap=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Static(Content("Category"), classes="label")
                    cats = app.choices.categories
                    category = draft.get("category", "")
                    yield Select[str](
                        [(line(c), c) for c in cats],
                        allow_blank=not cats,
                        value=category if category in cats else cats[0] if cats else Select.NULL,
                        id="category",
                    )
                with Vertical():
                    yield Static(Content("Priority"), classes="label")
                    priority = draft.get("priority", "")
                    yield Select[str](
                        [(line(p), p) for p in app.choices.priorities],
                        prompt="category default",
                        value=priority if priority in app.choices.priorities else Select.NULL,
                        id="priority",
                    )
                with Vertical():
                    yield Static(Content("Owner"), classes="label")
                    owners = [(Content.styled("(queue)", "italic"), NOBODY)] + [
                        (line(a.login), a.login) for a in app.agents
                    ]
                    logins = {a.login for a in app.agents}
                    owner = draft.get("owner", "")
                    default = me if me in logins else NOBODY
                    yield Select[str](
                        owners,
                        allow_blank=False,
                        value=owner if owner in logins or owner == NOBODY else default,
                        id="owner",
                    )
        yield Footer()

    def on_mount(self) -> None:
        blink = getattr(self.app, "cursor_blink", True)
        for widget in self.query(Input):
            widget.cursor_blink = blink
        area = self.query_one(TextArea)
        area.cursor_blink = blink
        area.move_cursor(area.document.end)  # a restored draft continues where it stopped
        self.query_one("#email", Input).focus()
        self.query_one("#matches").display = False

    # ------------------------------------------------------------------ draft

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _keep(self, event: Input.Changed | TextArea.Changed | Select.Changed) -> None:
        widget = event.control
        if widget is None or widget.id is None:
            return
        if isinstance(event, TextArea.Changed):
            value = event.text_area.text
        elif isinstance(event, Select.Changed):
            value = event.value if isinstance(event.value, str) else ""
        else:
            value = event.value
        self.draft[widget.id] = value

    # ------------------------------------------------------------------ customer search

    @on(Input.Changed, "#email, #name")
    def _search(self, event: Input.Changed) -> None:
        self._generation += 1
        generation, text = self._generation, event.value
        desk = self.helpdesk.desk
        if desk is None or len(text.strip()) < 2:
            self._show_matches(generation, [])
            return

        def find() -> None:
            self.post_message(CustomersFound(generation, desk.find_customers(text)))

        self.app.run_worker(find, thread=True, group="customer-search", exit_on_error=False)

    def on_customers_found(self, message: CustomersFound) -> None:
        message.stop()
        self._show_matches(message.generation, message.customers)

    def _show_matches(self, generation: int, customers: list[CustomerRecord]) -> None:
        if generation != self._generation:
            return  # an older search answered late
        email = self.query_one("#email", Input).value.strip().lower()
        # The exact customer already typed in full needs no suggestion.
        self.matches = [c for c in customers if email not in c.addresses or len(customers) > 1]
        box = self.query_one("#matches", OptionList)
        box.set_options([Option(customer_prompt(c, email), id=str(c.id)) for c in self.matches])
        box.display = bool(self.matches)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "to_matches":
            focused = self.focused
            return bool(self.matches) and focused is not None and focused.id in ("email", "name")
        return True

    def action_to_matches(self) -> None:
        box = self.query_one("#matches", OptionList)
        box.focus()
        box.highlighted = 0

    @on(OptionList.OptionSelected, "#matches")
    def _pick(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = next((c for c in self.matches if str(c.id) == event.option.id), None)
        if chosen is None:
            return
        email = self.query_one("#email", Input)
        # The address the agent was typing, not just the customer's first one.
        address = matching_address(chosen, email.value)
        with self.prevent(Input.Changed):
            email.value = address
            self.query_one("#name", Input).value = chosen.name
        self.draft.update(email=address, name=chosen.name)
        self.matches = []
        self.query_one("#matches").display = False
        self.query_one("#subject", Input).focus()

    def action_back(self) -> None:
        if self._saving is not None and self._saving.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        ):
            # Leaving now would keep the draft of a request the desk is registering: a second
            # N would offer it again. The save takes a moment; then this screen moves on.
            self.helpdesk.say("saving the request…")
            return
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
        self._saving = self.helpdesk.register(self, fields)

    def on_registered(self, message: Registered) -> None:
        from helpdesk_tui.tui.screens.detail import DetailScreen

        message.stop()
        self.draft.clear()
        self.helpdesk.say(f"registered #{message.number}")
        self.app.switch_screen(DetailScreen(message.number))

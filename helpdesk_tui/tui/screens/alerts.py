"""The alerts list: escalations, assignments and questions for this agent; mark them read."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from datetime import tzinfo

    from helpdesk_tui.desk.records import AlertRecord
    from helpdesk_tui.tui.app import HelpdeskApp
    from helpdesk_tui.tui.live import LiveStatus

KIND_LABELS = {
    "escalation": ("escalation", "$text-error"),
    "assigned": ("assigned", "$text-accent"),
    "asked": ("asked", "$text-warning"),
    "reactivated": ("back", "$text-success"),
    "mail": ("mail", "$text-primary"),
}


class AlertsLoaded(Message):
    def __init__(self, alerts: list[AlertRecord]) -> None:
        super().__init__()
        self.alerts = alerts


def alert_prompt(a: AlertRecord, tz: tzinfo) -> Content:
    label, style = KIND_LABELS.get(a.kind, (a.kind, ""))
    unread = a.read_at is None
    mark = Content.styled("● ", "$text-error") if unread else Content("  ")
    ticket = f"#{a.ticket}" if a.ticket else ""
    return Content.assemble(
        mark,
        (fmt.stamp(a.created_at, tz), "$text-muted"),
        "  ",
        (label.ljust(11), f"{style} bold" if unread else "$text-muted"),
        (ticket.ljust(7), "$text-accent"),
        line(a.text, "bold" if unread else "$text-muted"),
    )


class AlertsScreen(Screen[None]):
    """Newest first; unread ones marked. Enter opens the ticket and marks the alert read."""

    help_title = "alerts"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open ticket", id="alerts.open"),
        Binding("x", "mark_read", "Mark read", id="alerts.mark_read"),
        Binding("X", "mark_all_read", "Mark all read", id="alerts.mark_all"),
        Binding("escape,q", "back", "Back", id="alerts.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[AlertRecord] = []

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(
            Content.assemble(("helpdesk", "bold"), "  ", ("Alerts", "$text-accent")), id="topbar"
        )
        yield OptionList(id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load()

    def load(self) -> None:
        desk = self.helpdesk.desk
        if desk is None:
            return

        def fetch() -> None:
            self.post_message(AlertsLoaded(desk.alerts(unread_only=False, limit=200)))

        self.app.run_worker(fetch, thread=True, group="alerts", exit_on_error=False)

    def live_refresh(self) -> None:
        self.load()

    def set_status(self, status: LiveStatus) -> None:
        """The live machinery's status; the list reloads on changes instead."""

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        message.stop()
        tz = self.helpdesk.tz
        box = self.query_one(OptionList)
        keep = box.highlighted
        self.alerts = message.alerts
        box.set_options([Option(alert_prompt(a, tz), id=str(a.id)) for a in self.alerts])
        if not self.alerts:
            box.add_option(Option(Content.styled("No alerts", "$text-muted"), disabled=True))
        elif keep is not None:
            box.highlighted = min(keep, len(self.alerts) - 1)
        else:
            box.highlighted = 0

    @property
    def current(self) -> AlertRecord | None:
        index = self.query_one(OptionList).highlighted
        if index is None or index >= len(self.alerts):
            return None
        return self.alerts[index]

    def _mark(self, ids: list[int] | None) -> None:
        """Mark `ids` read, or with None every unread alert up to the newest one listed
        (beyond the page shown, not those that arrived since)."""
        desk = self.helpdesk.desk
        if desk is None or ids == []:
            return
        newest = max((a.id for a in self.alerts), default=None)

        def write() -> None:
            from helpdesk_tui.desk.alerts import mark_all_read

            if ids is None:
                mark_all_read(desk, newest)
            else:
                desk.mark_alerts_read(ids)
            self.post_message(AlertsLoaded(desk.alerts(unread_only=False, limit=200)))

        self.app.run_worker(write, thread=True, group="alerts-mark", exit_on_error=False)

    def action_mark_read(self) -> None:
        a = self.current
        if a is not None and a.read_at is None:
            self._mark([a.id])

    def action_mark_all_read(self) -> None:
        if self.alerts:
            self._mark(None)

    def action_open(self) -> None:
        a = self.current
        if a is None:
            return
        if a.read_at is None:
            self._mark([a.id])
        if a.ticket is not None:
            self.helpdesk.open_ticket(a.ticket)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open()

    def action_back(self) -> None:
        self.dismiss(None)

"""Ticket actions shared by the list and the detail screen: keys, pickers, and the desk calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen

from helpdesk_tui.tui.messages import ActionDone, Outcome
from helpdesk_tui.tui.text import line

# The dialogs (tui/screens/dialogs.py) are imported by the actions that open them: the app's
# first frame shows none and their classes cost it about 2.5 ms.

if TYPE_CHECKING:
    from helpdesk_tui.desk.service import Desk
    from helpdesk_tui.desk.summary import TicketSummary
    from helpdesk_tui.tui.app import DeskCall, HelpdeskApp

TICKET_BINDINGS: list[BindingType] = [
    Binding("r", "reply", "Reply", id="ticket.reply"),
    Binding("R", "reply_all", "Reply all", show=False, id="ticket.reply_all"),
    Binding("f", "forward", "Forward", show=False, id="ticket.forward"),
    Binding("n", "note", "Note", show=False, id="ticket.note"),
    Binding("h", "ask", "Ask a colleague", show=False, id="ticket.ask"),
    Binding("a", "assign", "Assign", show=False, id="ticket.assign"),
    Binding("t", "take", "Take", show=False, id="ticket.take"),
    Binding("c", "close_ticket", "Close", id="ticket.close"),
    Binding("p", "postpone", "Postpone", show=False, id="ticket.postpone"),
    Binding("P", "priority", "Priority", show=False, id="ticket.priority"),
    Binding("m", "merge", "Merge into", show=False, id="ticket.merge"),
    Binding("d", "delete", "Delete", show=False, id="ticket.delete"),
    Binding("u", "undo", "Undo", show=False, id="ticket.undo"),
    Binding("v", "mark_reviewed", "Mark reviewed", show=False, id="ticket.reviewed"),
]


class TicketScreen(Screen[None]):
    """A screen that acts on tickets: subclasses say which ones and what to do afterwards."""

    BINDINGS: ClassVar[list[BindingType]] = TICKET_BINDINGS

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    # ------------------------------------------------------------------ to override

    def targets(self) -> list[int]:
        """The tickets the next action applies to (consumes a `;` prefix on the list)."""
        return []

    def before_action(self, numbers: list[int]) -> None:
        """Called just before an action runs (the list remembers where the cursor goes)."""

    def after_action(self, outcome: Outcome) -> None:
        """Reload what the screen shows."""

    def summary_of(self, number: int) -> TicketSummary | None:
        """Ticket `number` as this screen shows it (no read): its list row, if it has one."""
        from helpdesk_tui.tui.widgets.ticket_list import TicketList

        for tickets in self.query(TicketList):
            return tickets.loaded_row(number)
        return None

    def version_of(self, number: int) -> int | None:
        """The version of ticket `number` as this screen shows it (None: not on screen).

        Every action passes it as expected_version, so a change someone else made since the
        screen was drawn is a conflict the agent sees, never an update silently lost.
        """
        return None

    # ------------------------------------------------------------------ plumbing

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        self.helpdesk.remember(message.outcome)
        outcome = message.outcome
        if outcome.done:
            shown = ", ".join(f"#{n}" for n in outcome.done[:5])
            more = f" and {len(outcome.done) - 5} more" if len(outcome.done) > 5 else ""
            self.helpdesk.say(f"{outcome.action}: {shown}{more}")
        self.after_action(outcome)
        if outcome.conflicts:
            from helpdesk_tui.tui.conflicts import offer

            offer(self.helpdesk, outcome, self)

    def run_desk(self, action: str, numbers: list[int], call: DeskCall) -> None:
        if not numbers:
            self.helpdesk.say("no ticket here", severity="warning")
            return
        if self.helpdesk.desk is None:
            self.helpdesk.say("the desk is still opening", severity="warning")
            return
        self.before_action(numbers)
        versions = {n: self.version_of(n) for n in numbers}
        self.helpdesk.perform(self, action, numbers, call, versions)

    def _single(self) -> int | None:
        numbers = self.targets()
        if len(numbers) > 1:
            self.helpdesk.say("that action works on one ticket at a time", severity="warning")
            return None
        if not numbers:
            self.helpdesk.say("no ticket here", severity="warning")
            return None
        return numbers[0]

    # ------------------------------------------------------------------ compose

    def _open_compose(self, kind: str) -> None:
        from helpdesk_tui.tui.screens.compose import ComposeScreen

        number = self._single()
        if number is not None:
            screen = ComposeScreen(number, kind)
            screen.expected_version = self.version_of(number)
            self.app.push_screen(screen)

    def action_reply(self) -> None:
        self._open_compose("reply")

    def action_reply_all(self) -> None:
        self._open_compose("reply_all")

    def action_forward(self) -> None:
        self._open_compose("forward")

    def action_note(self) -> None:
        self._open_compose("note")

    def action_ask(self) -> None:
        self._open_compose("ask")

    # ------------------------------------------------------------------ direct actions

    def action_take(self) -> None:
        self.run_desk("take", self.targets(), lambda d, n, v: d.take(n, expected_version=v))

    def action_close_ticket(self) -> None:
        self.run_desk("close", self.targets(), lambda d, n, v: d.close(n, expected_version=v))

    def action_delete(self) -> None:
        self.run_desk("delete", self.targets(), lambda d, n, v: d.delete(n, expected_version=v))

    def action_mark_reviewed(self) -> None:
        """The agent has checked what intake was unsure of: off the "Needs review" view."""
        self.run_desk(
            "reviewed", self.targets(), lambda d, n, v: d.mark_reviewed(n, expected_version=v)
        )

    def action_undo(self) -> None:
        """Take back this session's newest action (all its tickets), never an older change.

        Not the cursor's ticket: the desk undoes a ticket's latest undoable change, and with
        nothing done here that was something the agent did weeks ago. Taken off the list as
        it starts, so a second `u` goes on to the action before it, never the same one again.
        """
        self.disarm_batch()  # undo acts on what was done, not on the tagged tickets
        app = self.helpdesk
        if not app.last_acted:
            app.say("nothing to undo in this session", severity="warning")
            return
        action, written = app.last_acted.pop()
        self.run_desk(
            "undo",
            list(written),
            lambda d, n, _v: d.undo_last(n, expected=(action, written.get(n))),
        )

    def disarm_batch(self) -> None:
        """Drop a `;` prefix for an action that is not applied to the tagged tickets."""
        app = self.helpdesk
        if app.batch:
            app.batch = False
            update = getattr(self, "update_topbar", None)  # the list shows the banner
            if update is not None:
                update()

    # ------------------------------------------------------------------ actions with a choice

    def action_assign(self) -> None:
        from helpdesk_tui.tui.screens.dialogs import PickDialog

        numbers = self.targets()
        if not numbers:
            return
        options = [("-", Content.styled("(unassigned queue)", "italic"))] + [
            (a.login, Content.assemble(line(a.login, "bold"), "  ", line(a.name)))
            for a in self.helpdesk.agents
        ]

        def chosen(login: str | None) -> None:
            if login is None:
                return
            who = None if login == "-" else login
            self.run_desk("assign", numbers, lambda d, n, v: d.assign(n, who, expected_version=v))

        self.app.push_screen(PickDialog("Assign to", options), chosen)

    def action_priority(self) -> None:
        from helpdesk_tui.tui.screens.dialogs import PickDialog

        numbers = self.targets()
        if not numbers:
            return
        # The tickets' priority now (when they share one) is marked: the agent sees where
        # they start, and that choosing it again changes nothing.
        shown = {s.priority if s is not None else None for s in map(self.summary_of, numbers)}
        current = shown.pop() if len(shown) == 1 else None
        options = [
            (
                p,
                Content.assemble(line(p, "bold"), ("  ● current", "$text-accent"))
                if p == current
                else line(p),
            )
            for p in self.helpdesk.choices.priorities
        ]

        def chosen(name: str | None) -> None:
            if name is not None:
                self.run_desk(
                    "priority",
                    numbers,
                    lambda d, n, v: d.set_priority(n, name, expected_version=v),
                )

        self.app.push_screen(PickDialog("Priority", options, current=current), chosen)

    def action_postpone(self) -> None:
        from helpdesk_tui.tui.screens.dialogs import (
            PostponeDialog,
        )

        numbers = self.targets()
        if not numbers:
            return

        def chosen(value: str | None) -> None:
            if value is None:
                return
            kind, _, text = value.partition(":")
            if kind == "preset":
                self.run_desk(
                    "postpone",
                    numbers,
                    lambda d, n, v: d.postpone(n, preset=text, expected_version=v),
                )
                return
            until = self._when(text)
            if until is not None:
                self.run_desk(
                    "postpone",
                    numbers,
                    lambda d, n, v: d.postpone(n, until=until, expected_version=v),
                )

        self.app.push_screen(PostponeDialog("Postpone until"), chosen)

    def _when(self, text: str) -> Any:
        from zoneinfo import ZoneInfo

        from helpdesk_tui.desk.when import WhenError, parse_when

        desk = self.helpdesk.desk
        tz = desk.tz if desk is not None else ZoneInfo("UTC")
        try:
            return parse_when(text, self.helpdesk.clock.now(), tz)
        except WhenError as exc:
            self.helpdesk.say(str(exc), severity="error")
            return None

    def action_merge(self) -> None:
        from helpdesk_tui.tui.screens.dialogs import MergeDialog

        numbers = self.targets()
        if not numbers:
            return

        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                into = int(value.lstrip("#"))
            except ValueError:
                self.helpdesk.say(f"not a ticket number: {value}", severity="error")
                return

            def merge(d: Desk, n: int, v: int | None) -> Any:
                return d.merge(n, into, expected_version=v)

            self.run_desk("merge", numbers, merge)

        label = f"Merge #{numbers[0]} into ticket" if len(numbers) == 1 else "Merge into ticket"
        self.app.push_screen(MergeDialog(label, numbers), chosen)

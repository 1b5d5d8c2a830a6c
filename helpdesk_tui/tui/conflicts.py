"""Conflicts: an action met tickets someone else changed first; the agent re-applies or drops.

The desk refuses a change made against an old version (optimistic locking, desk.errors.Conflict)
and App.perform collects those tickets in Outcome.conflicts. One dialog then lists them all (a
tagged batch included): re-apply runs the same desk call again against each ticket's current
version; drop reloads the screen so the agent sees the other change. A reply or note that met a
conflict stays in the drafts (they are dropped only when the desk confirms a send).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from helpdesk_tui.tui.screens.dialogs import ConflictDialog

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from helpdesk_tui.tui.app import HelpdeskApp
    from helpdesk_tui.tui.messages import Outcome

_NAMES = {"reply_all": "reply", "ask": "question", "priority": "priority change"}


def _alive(app: HelpdeskApp, target: MessagePump | None) -> MessagePump:
    """Where results of a re-apply go: the screen that asked if still open, else the top one."""
    if isinstance(target, Screen) and target in app.screen_stack:
        return target
    top = app.screen
    return top if hasattr(top, "after_action") else app


def offer(app: HelpdeskApp, outcome: Outcome, target: MessagePump | None) -> None:
    """Show the conflict dialog for `outcome`; its answer re-applies or drops."""
    from helpdesk_tui.tui.app import COMPOSE_KINDS

    conflicts = list(outcome.conflicts)
    if not conflicts:
        return
    composed = outcome.action in COMPOSE_KINDS
    name = _NAMES.get(outcome.action, outcome.action)

    def chosen(choice: str | None) -> None:
        where = _alive(app, target)
        if choice == "reapply" and outcome.call is not None and app.desk is not None:
            numbers = [c.number for c in conflicts]
            versions = {c.number: c.current_version for c in conflicts}
            app.perform(where, outcome.action, numbers, outcome.call, dict(versions))
            return
        refresh = getattr(where, "live_refresh", None)
        if refresh is not None:
            refresh()
        if composed:
            app.say(f"your {name} is kept as a draft: open it again to send it")

    messages = [c.message for c in conflicts]
    app.push_screen(ConflictDialog(name, messages, draft_kept=composed), chosen)

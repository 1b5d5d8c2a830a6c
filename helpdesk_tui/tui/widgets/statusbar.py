"""The status bar: who runs the duties, sync state and mailbox health, outbox queue, alerts."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.tui.live import LiveStatus

SEP = Content.styled("  │  ", "$text-muted")


def _hm(when: datetime | None, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%H:%M") if when is not None else "never"


def status_content(status: LiveStatus, tz: tzinfo, *, narrow: bool = False) -> Content:
    """One line; on a narrow terminal the labels shrink and mailbox details go."""
    parts: list[Content] = []
    # Who runs the duties.
    if status.duties == "app":
        state = "syncing…" if status.running else "idle"
        who = Content.assemble(
            ("duties ", "$text-muted"), ("this app", "bold"), " ", (state, "$text-accent")
        )
    elif status.duties in ("daemon", "other"):
        label = "worker" if status.duties == "daemon" else "another app"
        who = Content.assemble(("duties ", "$text-muted"), (label, "bold"))
        if status.holder and not narrow:
            who = Content.assemble(who, " ", line(status.holder, "$text-muted"))
    else:
        who = Content.styled("no mail configured", "$text-muted")
    parts.append(who)
    # Mailboxes: health, last success, last error.
    for mb in status.mailboxes:
        if mb.stopped:
            parts.append(Content.assemble(line(mb.name, "bold"), " ", ("stopped", "$text-error")))
        elif not mb.ok:
            text = Content.assemble(
                line(mb.name, "bold"), " ", (f"failing ×{mb.failures}", "$text-error")
            )
            if not narrow:
                text = Content.assemble(text, " ", line(mb.last_error[:40], "$text-error"))
            parts.append(text)
        else:
            parts.append(
                Content.assemble(
                    line(mb.name, "bold"), " ", ("ok ", "$text-success"), _hm(mb.last_success, tz)
                )
            )
    if status.last_error and status.duties == "app" and not narrow:
        parts.append(line(status.last_error[:50], "$text-error"))
    # Outbox queue.
    q = status.outbox
    waiting = q.get("queued", 0) + q.get("sending", 0)
    out = [Content.styled("outbox ", "$text-muted"), Content(f"{waiting} queued")]
    if q.get("retry", 0):
        out += [Content(" · "), Content.styled(f"{q['retry']} retry", "$text-warning")]
    if q.get("failed", 0):
        out += [Content(" · "), Content.styled(f"{q['failed']} failed", "$text-error bold")]
    parts.append(Content.assemble(*out))
    # Alerts.
    n = status.unread_alerts
    parts.append(
        Content.styled(f"! {n} alert{'s' if n != 1 else ''}", "$text-warning bold")
        if n
        else Content.styled("no alerts", "$text-muted")
    )
    return SEP.join(parts)


class StatusBar(Static):
    """A one-line bar the App's live machinery updates through `set_status`."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Content(""), id=id)
        self.status: LiveStatus | None = None
        self.tz: tzinfo | None = None

    def show(self, status: LiveStatus, tz: tzinfo) -> None:
        self.status, self.tz = status, tz
        self.update(status_content(status, tz, narrow=self.size.width < 100))

    def on_resize(self) -> None:
        if self.status is not None and self.tz is not None:
            self.show(self.status, self.tz)

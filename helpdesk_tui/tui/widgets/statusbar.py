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


def status_content(status: LiveStatus, tz: tzinfo, *, width: int = 120) -> Content:
    """One line of at most `width` cells. The outbox and the alert count always show; the
    details before them (holder, mailbox errors) go first when the line is too long, and
    what still does not fit is cut with an ellipsis."""
    tail = [_outbox(status), _alerts(status)]
    for detail in (3, 2, 1, 0):
        line_ = SEP.join([*_head(status, tz, detail), *tail])
        if line_.cell_length <= width:
            return line_
    rest = SEP.join(tail)
    head = SEP.join(_head(status, tz, 0))
    room = width - rest.cell_length - SEP.cell_length
    if room < 8:
        return rest.truncate(width, ellipsis=True)
    return Content.assemble(head.truncate(room, ellipsis=True), SEP, rest)


def _head(status: LiveStatus, tz: tzinfo, detail: int) -> list[Content]:
    """Who runs the duties and each mailbox: detail 3 says everything, 2 drops the lease
    holder's name, 1 the error texts, 0 the mailboxes' last success."""
    parts: list[Content] = []
    if status.duties == "app":
        state = "syncing…" if status.running else "idle"
        parts.append(
            Content.assemble(
                ("duties ", "$text-muted"), ("this app", "bold"), " ", (state, "$text-accent")
            )
        )
    elif status.duties in ("daemon", "other"):
        label = "worker" if status.duties == "daemon" else "another app"
        who = Content.assemble(("duties ", "$text-muted"), (label, "bold"))
        if status.holder and detail >= 3:
            who = Content.assemble(who, " ", line(status.holder, "$text-muted"))
        parts.append(who)
    else:
        parts.append(Content.styled("duties off", "$text-muted"))
    if not status.mailboxes:
        parts.append(Content.styled("no mailbox", "$text-muted"))
    failing = False
    for mb in status.mailboxes:
        if mb.stopped:
            failing = True
            parts.append(Content.assemble(line(mb.name, "bold"), " ", ("stopped", "$text-error")))
        elif not mb.ok:
            failing = True
            text = Content.assemble(
                line(mb.name, "bold"), " ", (f"failing ×{mb.failures}", "$text-error")
            )
            if detail >= 2:
                text = Content.assemble(text, " ", line(mb.last_error[:40], "$text-error"))
            parts.append(text)
        else:
            ok = Content.assemble(line(mb.name, "bold"), " ", ("ok", "$text-success"))
            if detail >= 1:
                ok = Content.assemble(ok, " ", _hm(mb.last_success, tz))
            parts.append(ok)
    # The pass's own error, unless a failing mailbox above already says it.
    if status.last_error and status.duties == "app" and detail >= 2 and not failing:
        parts.append(line(status.last_error[:50], "$text-error"))
    return parts


def _outbox(status: LiveStatus) -> Content:
    q = status.outbox
    waiting = q.get("queued", 0) + q.get("sending", 0)
    out = [Content.styled("outbox ", "$text-muted"), Content(f"{waiting} queued")]
    if q.get("retry", 0):
        out += [Content(" · "), Content.styled(f"{q['retry']} retry", "$text-warning")]
    if q.get("failed", 0):
        out += [Content(" · "), Content.styled(f"{q['failed']} failed", "$text-error bold")]
    return Content.assemble(*out)


def _alerts(status: LiveStatus) -> Content:
    n = status.unread_alerts
    if not n:
        return Content.styled("no alerts", "$text-muted")
    return Content.styled(f"! {n} alert{'s' if n != 1 else ''}", "$text-warning bold")


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
        # The bar's padding takes a cell on each side.
        self.update(status_content(status, tz, width=max(self.size.width - 2, 20)))

    def on_resize(self) -> None:
        if self.status is not None and self.tz is not None:
            self.show(self.status, self.tz)

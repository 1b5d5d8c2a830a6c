"""One ticket: header, conversation, attachments, why each mail landed here, and history.

Message kinds are told apart by colour and label (customer, reply, internal note, question to a
colleague, forward, external party); long quotes fold to one line. Opening marks it read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Static

from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.messages import DetailLoaded, Outcome
from helpdesk_tui.tui.screens.base import TICKET_BINDINGS, TicketScreen
from helpdesk_tui.tui.text import line, plain

if TYPE_CHECKING:
    from datetime import tzinfo

    from helpdesk_tui.desk.records import EventRecord, MessageRecord, TicketDetail

QUOTE_FOLD = 3  # quote runs longer than this fold to one line until `o`
_QUOTE = re.compile(r"^\s*>")

# kind -> (label, css class)
KINDS = {
    "customer": ("customer", "msg-customer"),
    "phone": ("phone call", "msg-customer"),
    "reply": ("reply", "msg-reply"),
    "ack": ("acknowledgement", "msg-reply"),
    "note": ("internal note", "msg-note"),
    "ask": ("asks a colleague", "msg-ask"),
    "forward": ("forwarded", "msg-forward"),
    "external": ("external party", "msg-external"),
}
READ = {
    "red": ("unread", "$text-error"),
    "yellow": ("new info", "$text-warning"),
    "green": ("read", "$text-success"),
}


def fold_quotes(body: str, unfold: bool) -> Content:
    """The body with runs of quoted lines folded to one dim line (unless `unfold`)."""
    lines = plain(body).rstrip("\n").split("\n")
    parts: list[Content] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        if len(run) > QUOTE_FOLD and not unfold:
            parts.append(
                Content.styled(f"┆ {len(run)} quoted lines folded (o unfolds)", "dim italic")
            )
        else:
            parts.extend(Content.styled(q, "$text-muted") for q in run)
        run.clear()

    for ln in lines:
        if _QUOTE.match(ln):
            run.append(ln)
            continue
        flush()
        parts.append(Content(ln))
    flush()
    return Content("\n").join(parts)


def header(d: TicketDetail, now_tz: tzinfo, now: object) -> Content:
    s = d.summary
    read_label, read_style = READ.get(s.read_status, (s.read_status, ""))
    deadline = "-"
    overdue = False
    if s.deadline_at is not None:
        rel, overdue = fmt.until(s.deadline_at, now)  # type: ignore[arg-type]
        deadline = f"{fmt.stamp(s.deadline_at, now_tz)} ({rel})"
    t = d.time_spent
    customers = Content(", ").join(
        Content.assemble(line(c.name or "-", "bold"), " ", line(", ".join(c.addresses)))
        for c in d.customers
    ) or Content("-")
    level = f"{s.alert_level}" if s.alert_level else "0"
    if d.next_alert_at is not None and d.escalation_running:
        level += f", next alert {fmt.stamp(d.next_alert_at, now_tz)}"
    rows: list[tuple[str, Content]] = [
        ("Status", Content.assemble(line(s.status, "bold"), "   Read: ", (read_label, read_style))),
        (
            "Priority",
            Content.assemble(line(s.priority or "-"), "   Category: ", line(s.category or "-")),
        ),
        ("Owner", line(s.owner or "(unassigned)")),
        ("Customers", customers),
        (
            "Deadline",
            Content.styled(deadline, "$text-error bold") if overdue else Content(deadline),
        ),
        ("Escalation", Content(level)),
        (
            "Time spent",
            Content(
                f"queue {fmt.span(t.queue)} ({fmt.span(t.queue_work)} working) · "
                f"internal {fmt.span(t.internal)} · external {fmt.span(t.external)}"
            ),
        ),
    ]
    if d.followers:
        rows.append(("Followers", line(", ".join(d.followers))))
    if d.external_parties:
        rows.append(("External", line(", ".join(d.external_parties))))
    if s.tags:
        rows.append(("Tags", line(" ".join(s.tags))))
    if d.merged_into:
        rows.append(("Merged into", Content(f"#{d.merged_into}")))
    title = Content.assemble((f"#{s.number} ", "bold $text-accent"), line(s.title, "bold"))
    body = Content("\n").join(
        Content.assemble((label.ljust(11), "$text-muted"), value) for label, value in rows
    )
    return Content("\n").join([title, body])


def message_block(m: MessageRecord, tz: tzinfo, unfold: bool) -> Content:
    label, _cls = KINDS.get(m.kind, (m.kind, ""))
    who = m.from_name or m.from_addr or m.author or "?"
    top = Content.assemble(
        (f"{label}  ", "bold"),
        line(who, "bold"),
        " ",
        line(f"<{m.from_addr}>" if m.from_addr else ""),
        ("  " + fmt.stamp(m.created_at, tz), "$text-muted"),
    )
    parts = [top]
    if m.to or m.cc:
        parts.append(Content.assemble(("to ", "$text-muted"), line(", ".join(m.to + m.cc))))
    if m.subject:
        parts.append(Content.assemble(("subject ", "$text-muted"), line(m.subject)))
    parts.append(Content(""))
    parts.append(fold_quotes(m.body, unfold))
    if m.attachments:
        parts.append(Content(""))
        for a in m.attachments:
            parts.append(
                Content.assemble(
                    ("📎 ", ""),
                    line(a.filename, "underline"),
                    (f"  {a.content_type}, {a.size} bytes", "$text-muted"),
                )
            )
    if m.outbox_state:
        style = "$text-error" if m.outbox_state == "failed" else "$text-muted"
        parts.append(
            Content.assemble(
                ("outbox: ", "$text-muted"),
                (m.outbox_state, style),
                " ",
                line(m.outbox_error, "$text-error"),
            )
        )
    if m.thread_rule or m.thread_evidence:
        parts.append(
            Content.assemble(
                ("why here: ", "$text-muted italic"),
                line(m.thread_rule, "italic"),
                " — " if m.thread_evidence else "",
                line(m.thread_evidence, "$text-muted italic"),
            )
        )
    if m.needs_review:
        parts.append(
            Content.assemble(("needs review: ", "$text-warning bold"), line(m.review_error))
        )
    return Content("\n").join(parts)


def event_line(e: EventRecord, tz: tzinfo) -> Content:
    who = e.agent or e.os_user or "system"
    changed = ", ".join(
        f"{k}={v}"
        for k, v in e.after.items()
        if k
        in (
            "owner",
            "priority",
            "category",
            "status",
            "until",
            "asked",
            "to",
            "into",
            "tag",
            "read_status",
        )
    )
    return Content.assemble(
        (fmt.stamp(e.at, tz), "$text-muted"),
        "  ",
        line(who, "bold"),
        " ",
        line(e.action),
        "  ",
        line(changed, "$text-muted"),
        (" (undone)", "$text-warning") if e.undone else "",
    )


class DetailScreen(TicketScreen):
    """A ticket; the action keys act on it, q goes back."""

    help_title = "ticket"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "back", "Back", id="detail.back"),
        Binding("j,down", "scroll_down", "Scroll down", show=False, id="detail.down"),
        Binding("k,up", "scroll_up", "Scroll up", show=False, id="detail.up"),
        Binding("o", "unfold", "Unfold quotes", show=False, id="detail.unfold"),
        *TICKET_BINDINGS,
    ]

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
        self.detail: TicketDetail | None = None
        self.unfold = False

    def compose(self) -> ComposeResult:
        yield Static(Content(f"#{self.number}"), id="topbar")
        with VerticalScroll(id="conversation"):
            yield Static(Content("Loading…"), classes="ticket-header")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conversation").focus()
        self.helpdesk.load_detail(self, self.number, True)

    async def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        self.detail = message.detail
        await self.render_detail()

    async def render_detail(self) -> None:
        d = self.detail
        if d is None:
            return
        desk = self.helpdesk.desk
        from datetime import UTC

        tz = desk.tz if desk is not None else UTC
        now = self.helpdesk.clock.now()
        self.query_one("#topbar", Static).update(
            Content.assemble(
                ("helpdesk", "bold"),
                "  ",
                (f"#{d.number}", "$text-accent"),
                "  ",
                line(d.summary.title),
            )
        )
        box = self.query_one("#conversation", VerticalScroll)
        await box.remove_children()
        widgets: list[Static] = [Static(header(d, tz, now), classes="ticket-header")]
        for m in d.messages:
            _label, cls = KINDS.get(m.kind, (m.kind, "msg-customer"))
            internal = " msg-internal" if m.visibility == "internal" else ""
            widgets.append(
                Static(message_block(m, tz, self.unfold), classes=f"message {cls}{internal}")
            )
        history = Content("\n").join(event_line(e, tz) for e in d.events)
        widgets.append(Static(Content.assemble(("History\n", "bold"), history), classes="history"))
        await box.mount_all(widgets)

    def targets(self) -> list[int]:
        return [self.number]

    def after_action(self, outcome: Outcome) -> None:
        if outcome.action == "merge" and outcome.done:
            result = outcome.results.get(self.number)
            number = getattr(result, "number", None)
            if isinstance(number, int):
                self.number = number
        self.helpdesk.load_detail(self, self.number, False)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one("#conversation", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#conversation", VerticalScroll).scroll_up(animate=False)

    async def action_unfold(self) -> None:
        self.unfold = not self.unfold
        await self.render_detail()

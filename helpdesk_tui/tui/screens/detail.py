"""One ticket: header, conversation, attachments, why each mail landed here, and history.

Message kinds are told apart by colour and label (customer, reply, internal note, question to a
colleague, forward, external party); long quotes fold to one line. Opening marks it read. The
header shows the escalation levels still to come with their wall-clock times; a mail that could
not be sent says so on its message and in the header. `s` saves an attachment to a chosen path
(the name sanitized, never overwriting a file). Changes by others re-render the ticket in place.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.style import Style
from textual.widgets import Input, Static

from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.messages import DetailLoaded, Outcome
from helpdesk_tui.tui.screens.base import TICKET_BINDINGS, TicketScreen
from helpdesk_tui.tui.screens.dialogs import Dialog, PickDialog
from helpdesk_tui.tui.text import line, plain, plain_line
from helpdesk_tui.tui.widgets.conversation import Block, Conversation
from helpdesk_tui.tui.widgets.keyfooter import KeyFooter
from helpdesk_tui.tui.widgets.presence import PresenceLine

if TYPE_CHECKING:
    from datetime import tzinfo

    from helpdesk_tui.desk.escalation import Timeline
    from helpdesk_tui.desk.records import (
        AttachmentRecord,
        EventRecord,
        MessageRecord,
        TicketDetail,
    )
    from helpdesk_tui.desk.summary import TicketSummary

QUOTE_FOLD = 3  # quote runs longer than this fold to one line until `o`
_QUOTE = re.compile(r"^\s*>")

# kind -> (label, look: the Conversation's component for its bar and tint)
KINDS = {
    "customer": ("customer", "customer"),
    "phone": ("phone call", "customer"),
    "reply": ("reply", "reply"),
    "ack": ("acknowledgement", "reply"),
    "note": ("internal note", "note"),
    "ask": ("asks a colleague", "ask"),
    "forward": ("forwarded", "forward"),
    "external": ("external party", "external"),
}
READ = {
    "red": ("unread", "$text-error"),
    "yellow": ("new info", "$text-warning"),
    "green": ("read", "$text-success"),
}


def clickable(content: Content, action: str) -> Content:
    """`content` that runs `action` when clicked, as its key would (the conversation's lines
    keep the style's meta and Textual dispatches it). Only our own words get an action: the
    stranger's text is plain Content and can carry none."""
    return content.stylize(Style.from_meta({"@click": action}))


def fold_quotes(body: str, unfold: bool) -> Content:
    """The body with runs of quoted lines folded to one dim line (unless `unfold`)."""
    lines = plain(body).rstrip("\n").split("\n")
    parts: list[Content] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        if len(run) > QUOTE_FOLD and not unfold:
            marker = Content.styled(f"┆ {len(run)} quoted lines folded (o unfolds)", "dim italic")
            parts.append(clickable(marker, "screen.unfold"))
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


def coming(timeline: Timeline | None, tz: tzinfo) -> Content:
    """The levels still to come, each with its wall-clock time and what it will do."""
    if timeline is None:
        return Content.styled("…", "$text-muted")
    if not timeline.levels:
        return line(timeline.note or "no levels to come", "$text-muted")
    parts: list[Content] = []
    for lv in timeline.levels:
        what = ", ".join(lv.actions) or "alert"
        if lv.delegate_to:
            what += f" → {lv.delegate_to}"
        # After a raise_priority the chain goes on under the higher priority: say so.
        moved = lv.priority is not None and lv.priority != timeline.priority
        parts.append(
            Content.assemble(
                line(f"[{lv.priority}]" if moved else "", "$text-warning"),
                " " if moved else "",
                (f"L{lv.alert_level} ", "bold"),
                (fmt.stamp(lv.at, tz), "$text-error bold" if lv.overdue else ""),
                " ",
                line(what, "$text-muted"),
            )
        )
    return Content("  ·  ").join(parts)


def deadline_text(d: TicketDetail, tz: tzinfo, now: datetime) -> Content:
    """The deadline as it matters now: only an active ticket can be overdue (in red)."""
    s = d.summary
    if s.deadline_at is None:
        return Content("-")
    when = fmt.stamp(s.deadline_at, tz)
    if s.base_status == "active":
        rel, overdue = fmt.until(s.deadline_at, now)
        text = f"{when} ({rel})"
        return Content.styled(text, "$text-error bold") if overdue else Content(text)
    if s.base_status == "postponed":
        return Content(f"{when} (on hold while postponed)")
    if s.base_status == "closed":
        closed = f"closed {fmt.stamp(d.closed_at, tz)}; " if d.closed_at is not None else ""
        return Content.styled(f"{closed}deadline was {when}", "$text-muted")
    return Content.styled(f"deadline was {when}", "$text-muted")


def _postponed_row(d: TicketDetail, tz: tzinfo, now: datetime) -> list[tuple[str, Content]]:
    """When a postponed ticket wakes up: its own header row, the first thing to know."""
    if d.summary.base_status != "postponed" or d.activate_at is None:
        return []
    rel, due = fmt.until(d.activate_at, now)
    # Past its time the worker has not woken it yet (the worker may not be running).
    note = "due to wake up now" if due else rel
    return [("Postponed", Content(f"until {fmt.stamp(d.activate_at, tz)} ({note})"))]


def header(
    d: TicketDetail, now_tz: tzinfo, now: datetime, timeline: Timeline | None = None
) -> Content:
    s = d.summary
    read_label, read_style = READ.get(s.read_status, (s.read_status, ""))
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
        *_postponed_row(d, now_tz, now),
        ("Owner", line(s.owner or "(unassigned)")),
        ("Customers", customers),
        ("Deadline", deadline_text(d, now_tz, now)),
        ("Escalation", Content(level)),
        ("Coming", coming(timeline, now_tz)),
        (
            "Time spent",
            Content(
                f"queue {fmt.span(t.queue)} ({fmt.span(t.queue_work)} working) · "
                f"internal {fmt.span(t.internal)} · external {fmt.span(t.external)}"
            ),
        ),
    ]
    unsent = [m for m in d.messages if m.outbox_state in ("failed", "retry")]
    if unsent:
        failed = sum(1 for m in unsent if m.outbox_state == "failed")
        text = (
            f"{failed} mail{'s' if failed != 1 else ''} NOT SENT (see below)"
            if failed
            else f"{len(unsent)} mail{'s' if len(unsent) != 1 else ''} waiting to retry"
        )
        rows.append(("Outbox", Content.styled(text, "$text-error bold")))
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
            row = Content.assemble(
                ("📎 ", ""),
                line(a.filename, "underline"),
                (f"  {a.content_type}, {a.size} bytes", "$text-muted"),
            )
            parts.append(clickable(row, f"screen.save_one({a.id})"))
    if m.outbox_state == "failed":
        parts.append(
            Content.assemble(
                ("✗ NOT SENT: ", "$text-error bold reverse"),
                " ",
                line(m.outbox_error or "the server refused it", "$text-error bold"),
                ("  (helpdesk outbox retry, or write again)", "$text-muted"),
            )
        )
    elif m.outbox_state == "retry":
        parts.append(
            Content.assemble(
                ("⟳ not sent yet, will retry: ", "$text-warning bold"),
                line(m.outbox_error, "$text-warning"),
            )
        )
    elif m.outbox_state:
        parts.append(Content.assemble(("outbox: ", "$text-muted"), (m.outbox_state, "$text-muted")))
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


# What an action makes of the status. Events keep the status's id only (the desk's snapshot of
# the row), so the action says it: the desk picks a status of that base for it.
STATUS_BY_ACTION = {
    "close": "closed",
    "delete": "deleted",
    "merge": "merged",
    "postpone": "postponed",
    "reactivate": "active (woke up)",
    "reopen": "active (reopened)",
}
_EVENT_FIELDS = ("owner", "priority", "category", "asked", "to", "tag")


def event_changes(e: EventRecord, tz: tzinfo) -> str:
    """What an event changed, in the history's `key=value` words (names, never row ids)."""
    before, after = e.before, e.after
    said: list[str] = []
    if e.action == "undo":
        said.append(f"undid {before.get('action') or 'a change'}")
    moved = before.get("status_id") != after.get("status_id") if "status_id" in after else True
    name = after.get("status")
    if isinstance(name, str) and name and moved and name != before.get("status"):
        said.append(f"status={name}")
    elif e.action in STATUS_BY_ACTION and moved:
        said.append(f"status={STATUS_BY_ACTION[e.action]}")
    for key in _EVENT_FIELDS:
        if key in after and (key not in before or after[key] != before[key]):
            said.append(f"{key}={after[key] if after[key] is not None else '-'}")
    until = after.get("until")
    if isinstance(until, str):
        try:
            said.append(f"until={fmt.stamp(datetime.fromisoformat(until), tz)}")
        except ValueError:
            said.append(f"until={until}")
    if after.get("into") is not None:
        said.append(f"into=#{after['into']}")
    if e.action == "merged_in" and after.get("from") is not None:
        said.append(f"from=#{after['from']}")
    if e.action == "read" and "read_status" in after:
        said.append(f"read_status={after['read_status']}")
    return ", ".join(said)


def event_line(e: EventRecord, tz: tzinfo) -> Content:
    who = e.agent or e.os_user or "system"
    return Content.assemble(
        (fmt.stamp(e.at, tz), "$text-muted"),
        "  ",
        line(who, "bold"),
        " ",
        line(e.action),
        "  ",
        line(event_changes(e, tz), "$text-muted"),
        (" (undone)", "$text-warning") if e.undone else "",
    )


class TimelineLoaded(Message):
    def __init__(self, number: int, timeline: Timeline | None) -> None:
        super().__init__()
        self.number = number
        self.timeline = timeline


class SaveDialog(Dialog):
    """Where to save an attachment: a folder or a file path, prefilled with a safe name."""

    def __init__(self, title: str, default: str) -> None:
        super().__init__(title)
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            yield Input(value=self.default, id="path")
            yield Static(
                Content("enter saves; an existing file is never overwritten"), classes="dim"
            )

    def on_mount(self) -> None:
        box = self.query_one(Input)
        box.cursor_blink = getattr(self.app, "cursor_blink", True)
        box.focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class SaveError(Exception):
    """An attachment could not be saved; the message says why."""


def save_target(chosen: str, filename: str) -> Path:
    """The file to create: into a folder under the sanitized name, or the path's sanitized name."""
    from helpdesk_tui.mail.clean import safe_filename

    path = Path(chosen).expanduser()
    if chosen.endswith(("/", "\\")) or path.is_dir():
        return path / safe_filename(filename)
    return path.parent / safe_filename(path.name, default=safe_filename(filename))


def save_attachment(root: Path, attachment: AttachmentRecord, chosen: str) -> Path:
    """Copy an attachment's bytes from the content-addressed store; never overwrite."""
    import shutil

    source = root / attachment.sha256[:2] / attachment.sha256
    target = save_target(chosen, attachment.filename)
    if not target.parent.is_dir():
        raise SaveError(f"no folder {target.parent}")
    if not source.is_file():
        raise SaveError(f"the bytes of {attachment.filename!r} are missing from the store")
    try:
        with source.open("rb") as src, target.open("xb") as dst:
            shutil.copyfileobj(src, dst)
    except FileExistsError:
        raise SaveError(f"{target} already exists; choose another name") from None
    except OSError as exc:
        raise SaveError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


class DetailScreen(TicketScreen):
    """A ticket; the action keys act on it, q goes back."""

    help_title = "ticket"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "back", "Back", id="detail.back"),
        Binding("j,down", "scroll_down", "Scroll down", show=False, id="detail.down"),
        Binding("k,up", "scroll_up", "Scroll up", show=False, id="detail.up"),
        Binding("o", "unfold", "Unfold quotes", show=False, id="detail.unfold"),
        Binding("s", "save_attachment", "Save attachment", show=False, id="detail.save"),
        *TICKET_BINDINGS,
    ]

    def __init__(self, number: int, detail: TicketDetail | None = None) -> None:
        super().__init__()
        self.number = number
        self.detail: TicketDetail | None = detail
        """Given when the App read the ticket before opening it: the first frame shows it."""
        self.timeline: Timeline | None = None
        self.unfold = False
        self._shown: tuple[object, ...] | None = None
        """What the conversation shows (number, messages, unfold)."""

    def compose(self) -> ComposeResult:
        yield Static(Content(f"#{self.number}"), id="topbar")
        yield PresenceLine(self.number, "viewing", id="presence")
        yield Conversation(id="conversation")

    @property
    def conversation(self) -> Conversation:
        return self.query_one("#conversation", Conversation)

    async def on_mount(self) -> None:
        self.conversation.focus()
        # The footer builds a widget per key (~10 ms): it arrives one frame after the ticket.
        self.call_after_refresh(self.mount, KeyFooter())
        self._begin()

    def retarget(self, number: int, detail: TicketDetail | None) -> None:
        """Show another ticket on this screen, before the App pushes it again.

        The App keeps one detail screen and reuses it: composing a screen, its footer and
        its widgets for every ticket, and pruning them on the way back, cost more than
        reading the ticket (and the prune made Textual lay the list out again under the
        agent's next key).
        """
        self.number = number
        self.detail = detail
        self.timeline = None
        self.unfold = False
        self._shown = None
        self.query_one(PresenceLine).follow(number)
        self._begin(renew_presence=True)

    def _begin(self, *, renew_presence: bool = False) -> None:
        """Draw the ticket read before the push (or say it is loading), then check it."""
        if self.detail is not None:
            self._draw_ticket()  # before the first frame: no "Loading…" frame
        else:
            self.query_one("#topbar", Static).update(Content(f"#{self.number}"), layout=False)
            self.conversation.set_blocks([Block("header", Content("Loading…"))], keep_scroll=False)
        # The timeline, the read mark and presence are store calls in threads: started after
        # the ticket's first frame, they do not compete with it for the interpreter.
        self.call_after_refresh(self._after_first_frame, self.number, renew_presence)

    def _after_first_frame(self, number: int, renew_presence: bool) -> None:
        if number != self.number:
            return
        if self.detail is not None:
            self._load_timeline()
        # Read before the push: only the read mark (the owner's first look) is left to do.
        self.helpdesk.load_detail(self, self.number, True, known=self.detail)
        if renew_presence:  # a new screen's presence line announces itself when mounted
            self.query_one(PresenceLine).renew()

    def on_screen_suspend(self) -> None:
        if self not in self.app.screen_stack:  # popped, not covered by compose or a dialog
            self.query_one(PresenceLine).leave()

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        """Pushed again: keep the styles applied last time unless the CSS changed since.

        Textual re-applies every node's styles on a push. For this kept screen that was
        ~3 ms of each open and, worse, a new virtual node per component class of every
        widget (the footer's keys, the conversation's looks): cyclic garbage that made each
        full collection walk thousands of dead nodes. A theme change while the screen was
        off the stack moved the App's CSS count (refresh_css updates the stack only), and
        then the styles are refreshed as usual. Screen's own handler runs after this one
        (the message pump calls each class's handler along the MRO) and reads the flag.
        """
        if self._css_update_count == self.app._css_update_count:
            event.refresh_styles = False
        else:
            self._css_update_count = self.app._css_update_count

    @staticmethod
    def _fingerprint(d: TicketDetail) -> tuple[object, ...]:
        # Time counters move with the clock; a re-render is due only when the ticket changed.
        return (
            d.version,
            d.summary,
            d.messages,
            d.events,
            d.customers,
            d.followers,
            d.external_parties,
            d.next_alert_at,
        )

    async def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        if message.detail.number != self.number:
            return  # read for the ticket this screen showed before
        old = self.detail
        if old is not None and self._fingerprint(old) == self._fingerprint(message.detail):
            return
        self.detail = message.detail
        self._load_timeline()
        await self.render_detail()

    def _load_timeline(self) -> None:
        desk, number = self.helpdesk.desk, self.number
        if desk is None:
            return

        def fetch() -> None:
            from helpdesk_tui.desk import escalation

            self.post_message(TimelineLoaded(number, escalation.timeline(desk, number)))

        self.app.run_worker(fetch, thread=True, group="timeline", exit_on_error=False)

    def on_timeline_loaded(self, message: TimelineLoaded) -> None:
        message.stop()
        if message.number != self.number:
            return
        self.timeline = message.timeline
        self._render_header()

    def _render_header(self) -> None:
        d = self.detail
        if d is None or not self._shown:
            return
        tz = self.helpdesk.tz
        self.conversation.replace_block(
            0, Block("header", header(d, tz, self.helpdesk.clock.now(), self.timeline))
        )

    def live_refresh(self) -> None:
        """Another session or the worker changed the store: reload; re-render only on change."""
        if self.detail is not None:
            # The owner is looking at it (this screen on top, not under a dialog, and the
            # terminal focused as far as it reports focus): what just arrived is in front of
            # them, so it counts as read.
            looking = self.app.screen is self and self.app.app_focus
            self.helpdesk.load_detail(self, self.number, looking)
        for others in self.query(PresenceLine):
            others.refresh_others()

    async def render_detail(self) -> None:
        """Show the ticket (async for the callers that await it; it mounts nothing)."""
        self._draw_ticket()

    def _draw_ticket(self) -> None:
        d = self.detail
        if d is None:
            return
        tz = self.helpdesk.tz
        now = self.helpdesk.clock.now()
        self.query_one("#topbar", Static).update(
            Content.assemble(
                ("helpdesk", "bold"),
                "  ",
                (f"#{d.number}", "$text-accent"),
                "  ",
                line(d.summary.title),
            ),
            layout=False,
        )
        history = Content("\n").join(event_line(e, tz) for e in d.events)
        blocks = [Block("header", header(d, tz, now, self.timeline))]
        for m in d.messages:
            _label, look = KINDS.get(m.kind, (m.kind, "customer"))
            tags = {"internal"} if m.visibility == "internal" else set()
            if m.outbox_state == "failed":
                look = "failed"
                tags.add("failed")
            blocks.append(Block(look, message_block(m, tz, self.unfold), frozenset(tags)))
        blocks.append(Block("history", Content.assemble(("History\n", "bold"), history)))
        # The same ticket again (a live change, the read mark): the reader stays where they were.
        same = self._shown is not None and self._shown[0] == d.number
        self._shown = (d.number, d.messages, self.unfold)
        self.conversation.set_blocks(blocks, keep_scroll=same)

    def targets(self) -> list[int]:
        return [self.number]

    def summary_of(self, number: int) -> TicketSummary | None:
        d = self.detail
        return d.summary if d is not None and d.number == number else None

    def version_of(self, number: int) -> int | None:
        d = self.detail
        return d.version if d is not None and d.number == number else None

    def after_action(self, outcome: Outcome) -> None:
        if outcome.action == "merge" and outcome.done:
            result = outcome.results.get(self.number)
            number = getattr(result, "number", None)
            if isinstance(number, int):
                self.number = number
        # The agent's own action, with the ticket in front of them: if it is theirs now (a
        # take, a merge into their ticket) it is read, never left unread or "new info".
        self.helpdesk.load_detail(self, self.number, True)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.conversation.scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.conversation.scroll_up(animate=False)

    async def action_unfold(self) -> None:
        self.unfold = not self.unfold
        await self.render_detail()

    # ------------------------------------------------------------------ attachments

    @property
    def attachments(self) -> list[AttachmentRecord]:
        d = self.detail
        return [a for m in d.messages for a in m.attachments] if d is not None else []

    def action_save_attachment(self) -> None:
        atts = self.attachments
        if not atts:
            self.helpdesk.say("this ticket has no attachments", severity="warning")
            return
        if len(atts) == 1:
            self._ask_path(atts[0])
            return
        options = [
            (
                str(a.id),
                Content.assemble(line(a.filename, "bold"), (f"  {a.size} bytes", "$text-muted")),
            )
            for a in atts
        ]

        def chosen(value: str | None) -> None:
            pick = next((a for a in atts if str(a.id) == value), None)
            if pick is not None:
                self._ask_path(pick)

        self.app.push_screen(PickDialog("Save which attachment?", options), chosen)

    def action_save_one(self, attachment_id: int) -> None:
        """A click on an attachment's line: save that one (`s` asks which when there are more)."""
        pick = next((a for a in self.attachments if a.id == attachment_id), None)
        if pick is not None:
            self._ask_path(pick)

    def _ask_path(self, attachment: AttachmentRecord) -> None:
        from helpdesk_tui.mail.clean import safe_filename

        home = Path.home()
        folder = home / "Downloads" if (home / "Downloads").is_dir() else home
        default = str(folder / safe_filename(attachment.filename))

        def chosen(value: str | None) -> None:
            if value:
                self._save(attachment, value)

        title = f"Save {plain_line(attachment.filename)} to"  # a stranger's file name
        self.app.push_screen(SaveDialog(title, default), chosen)

    def _save(self, attachment: AttachmentRecord, chosen: str) -> None:
        desk = self.helpdesk.desk
        if desk is None:
            return
        from helpdesk_tui.paths import attachments_dir_for

        root = attachments_dir_for(desk.store.url)
        app = self.helpdesk

        def write() -> None:
            try:
                target = save_attachment(root, attachment, chosen)
            except SaveError as exc:
                app.call_from_thread(app.say, str(exc), severity="error")
                return
            app.call_from_thread(app.say, f"saved {target}")

        self.app.run_worker(write, thread=True, group="attachment-save", exit_on_error=False)

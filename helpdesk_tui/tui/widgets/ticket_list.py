"""The ticket list: a line-API ScrollView over SQL that renders only the rows on screen.

Modelled on toolong's log view: the widget knows the view's size and the keys of every
PAGE-th row (anchors), fetches pages of rows by key in a worker as they scroll into sight,
and keeps the most recent pages in an LRU. Nothing here ever holds every ticket, so the list is
as quick at 100,000 tickets as at 100 (a DataTable freezes for 19 s at 100,000 rows).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.messages import PageLoaded, ViewLoaded
from helpdesk_tui.tui.text import plain_line

if TYPE_CHECKING:
    from helpdesk_tui.desk.records import TicketSummary
    from helpdesk_tui.desk.views import Key
    from helpdesk_tui.tui.app import HelpdeskApp

PAGE = 100
MAX_PAGES = 64  # 6,400 rows in memory at most
MAX_STRIPS = 256  # rendered rows kept: a screenful many times over
PREFETCH = 40  # rows from a page's edge at which the next page is fetched
DOT = "●"


class Column(NamedTuple):
    name: str
    title: str
    width: int


def layout(width: int) -> list[Column]:
    """Columns for a width: fixed ones first, the rest to subject (and customer when it fits)."""
    fixed = [
        Column("mark", "", 3),
        Column("number", "#", 7),
        Column("priority", "Pri", 7),
        Column("owner", "Owner", 9),
        Column("deadline", "Deadline", 9),
        Column("level", "Esc", 4),
        Column("updated", "Upd", 5),
    ]
    if width < 70:
        fixed = [c for c in fixed if c.name not in ("updated", "level")]
    rest = max(width - sum(c.width for c in fixed), 8)
    show_customer = rest >= 40
    customer_w = min(24, rest // 3) if show_customer else 0
    subject_w = rest - customer_w
    cols = [*fixed[:3], Column("subject", "Subject", subject_w)]
    if show_customer:
        cols.append(Column("customer", "Customer", customer_w))
    cols += fixed[3:]
    return cols


def _cell(text: str, width: int, right: bool = False) -> str:
    """Fit text to width cells with one space of gutter on the right."""
    if width <= 1:
        return " " * max(width, 0)
    inner = width - 1
    if cell_len(text) > inner:
        text = set_cell_size(text, inner - 1) + "…" if inner > 1 else set_cell_size(text, inner)
    fitted = set_cell_size(text, inner) if not right else " " * (inner - cell_len(text)) + text
    return fitted + " "


class TicketList(ScrollView, can_focus=True):
    """A virtual list of tickets; posts Highlighted and Open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="list.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("home", "first", "First ticket", show=False, id="list.first"),
        Binding("end,G", "last", "Last ticket", show=False, id="list.last"),
        Binding("enter", "open", "Open", id="list.open"),
    ]
    """Cursor keys; the ticket actions live on the screen."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "ticket-list--header",
        "ticket-list--cursor",
        "ticket-list--unread",
        "ticket-list--overdue",
        "ticket-list--red",
        "ticket-list--yellow",
        "ticket-list--green",
        "ticket-list--tagged",
        "ticket-list--escalated",
        "ticket-list--dim",
    }

    DEFAULT_CSS = """
    TicketList { background: $surface; }
    TicketList > .ticket-list--header { background: $panel; color: $text-muted; text-style: bold; }
    TicketList > .ticket-list--cursor { background: $block-cursor-blurred-background; }
    TicketList:focus > .ticket-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    TicketList > .ticket-list--unread { text-style: bold; }
    TicketList > .ticket-list--overdue { color: $error; text-style: bold; }
    TicketList > .ticket-list--red { color: $error; }
    TicketList > .ticket-list--yellow { color: $warning; }
    TicketList > .ticket-list--green { color: $success; }
    TicketList > .ticket-list--tagged { color: $accent; text-style: bold; }
    TicketList > .ticket-list--escalated { color: $warning; text-style: bold; }
    TicketList > .ticket-list--dim { color: $text-muted; }
    """

    # repaint=False: a reactive repaints the whole widget by default, 35 rows for every j/k;
    # watch_cursor repaints just the two rows that changed (or all of them after a scroll).
    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    """Index of the highlighted row in the view."""

    class Highlighted(Message):
        def __init__(self, ticket: TicketSummary | None) -> None:
            super().__init__()
            self.ticket = ticket

    class Open(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = "mine"
        self.total = 0
        self.loaded = False
        self.generation = 0
        self._anchors: list[Key] = []
        self._pages: OrderedDict[int, list[TicketSummary]] = OrderedDict()
        self._pending: set[int] = set()
        self.tagged: set[int] = set()
        self._loading = False
        self.error = ""
        """Why the view on screen could not be read; its rows are gone, not the last view's."""
        self._keep_index = False
        self.previewed = False
        """Rows on screen came from the start-up fast path; the desk has not loaded yet."""
        self.loaded_mark: tuple[int, ...] | None = None
        """desk.changes.content_mark as the last load began (set by the loading thread)."""
        self._base_style: Style | None = None
        # (index, cursor?, width, focus, minute) -> (ticket, tagged?, strip): a row is drawn
        # again only when its ticket or its place changed. Building a row costs ~0.3 ms (a
        # Strip and its caches, untrusted text cleaned cell by cell); a frame needs 35.
        self._strips: OrderedDict[tuple[object, ...], tuple[TicketSummary, bool, Strip]] = (
            OrderedDict()
        )

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    # ------------------------------------------------------------------ data

    def on_mount(self) -> None:
        app = self.helpdesk
        if app.desk is None and app.views is None:
            self._preview()

    def _preview(self) -> None:
        """Show the view's first rows with the first frame, read before the desk is open.

        A few milliseconds of stdlib sqlite3 on the event loop, once: the desk (SQLAlchemy,
        SQLModel) takes 0.5-0.9 s to import and open in its worker, and until now the list
        stayed empty that long. Nothing is paged until the desk's own load replaces these rows.
        """
        from helpdesk_tui.desk import first_page as fp

        db = fp.store_file(self.helpdesk._db)
        # The rows a screen shows, not a page: each costs a little before the first frame.
        rows = max(1, min(PAGE, self.app.size.height))
        found = fp.first_page(db, fp.acting_login(), self.view, rows) if db else None
        if found is None:
            return
        self.total = found.total
        self._pages[0] = list(found.rows)
        self.previewed = True
        # Not laid out yet (width 0): the screen's width lets the first frame draw the rows.
        self.virtual_size = Size(self.size.width or self.app.size.width, self.total + 1)
        self.refresh()

    def load(self, view: str, *, focus: int | None = None, keep_index: bool = False) -> None:
        """(Re)load a view; the cursor goes to ticket `focus`, or stays at its index."""
        if self.previewed and view == self.view and focus is None:
            # The desk's first load: the cursor stays on the ticket the agent moved it to.
            current = self.current
            focus, keep_index = (current.number if current else None), True
        self.previewed = False
        if view != self.view:
            keep_index = False
        self.view = view
        self.generation += 1
        self._keep_index = keep_index
        # Until the new anchors arrive the old rows stay on screen (no flicker), but no page
        # may be fetched with them: it would be filed under the new generation.
        self._loading = True
        hint = self.cursor if keep_index else 0
        self.helpdesk.load_view(self, view, self.generation, focus, hint, PAGE)

    def _on_screen(self) -> tuple[object, ...]:
        """What the rows on screen would show now (pages in memory only; nothing is fetched)."""
        top = round(self.scroll_offset.y)
        rows: list[object] = [self.loaded, self.total]
        for index in range(top, min(top + self._rows_visible, self.total)):
            page = self._pages.get(index // PAGE)
            offset = index % PAGE
            rows.append(page[offset] if page is not None and offset < len(page) else None)
        return tuple(rows)

    def on_view_loaded(self, message: ViewLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        # A reload (back from a ticket, a live refresh) mostly brings the rows already shown:
        # then nothing is repainted (watch_cursor repaints what a moved cursor changes).
        shown = self._on_screen()
        self.total = message.total
        self._anchors = message.anchors
        self._pages.clear()
        self._pending.clear()
        if message.rows is not None:
            self._pages[message.page] = [r.ticket for r in message.rows]
        self.loaded = True
        self._loading = False
        self.error = message.error
        self.virtual_size = Size(self.size.width, self.total + 1)
        if message.index is not None:
            index = message.index
        elif self._keep_index:
            index = self.cursor
        else:
            index = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = max(0, min(index, self.total - 1))
        if self._on_screen() != shown:
            self.refresh()

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        self._pending.discard(message.page)
        self._pages[message.page] = [r.ticket for r in message.rows]
        self._pages.move_to_end(message.page)
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        self.refresh()
        if message.page == self.cursor // PAGE:
            self.post_message(self.Highlighted(self.current))

    def row(self, index: int) -> TicketSummary | None:
        """The ticket at `index` if its page is in memory; otherwise ask for the page."""
        if index < 0 or index >= self.total:
            return None
        page_no, offset = divmod(index, PAGE)
        page = self._pages.get(page_no)
        if page is None:
            self._request(page_no)
            return None
        self._pages.move_to_end(page_no)
        # Prefetch the neighbour before the cursor gets there, so j/k never meets a gap.
        if offset >= PAGE - PREFETCH and page_no + 1 not in self._pages:
            self._request(page_no + 1)
        elif offset < PREFETCH and page_no > 0 and page_no - 1 not in self._pages:
            self._request(page_no - 1)
        return page[offset] if offset < len(page) else None

    def _request(self, page_no: int) -> None:
        if page_no in self._pending or not self.loaded or self._loading:
            return
        if page_no > 0 and page_no - 1 >= len(self._anchors):
            return
        after = self._anchors[page_no - 1] if page_no > 0 else None
        self._pending.add(page_no)
        self.helpdesk.load_page(self, self.view, self.generation, page_no, after, PAGE)

    @property
    def current(self) -> TicketSummary | None:
        return self.row(self.cursor)

    def number_at(self, index: int) -> int | None:
        ticket = self.row(index)
        return ticket.number if ticket else None

    def loaded_row(self, number: int) -> TicketSummary | None:
        """Ticket `number` as the list last showed it, if its page is in memory (no fetch)."""
        for page in self._pages.values():
            for ticket in page:
                if ticket.number == number:
                    return ticket
        return None

    # ------------------------------------------------------------------ cursor

    @property
    def _rows_visible(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.total - 1)) if self.total else 0

    def watch_cursor(self, old: int, new: int) -> None:
        top = round(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + self._rows_visible:
            self.scroll_to(y=new - self._rows_visible + 1, animate=False, immediate=True)
        else:
            # No scroll: repaint just the two rows (row i is virtual line i + 1).
            self.refresh_line(old + 1)
            self.refresh_line(new + 1)
            self.post_message(self.Highlighted(self.row(new)))
            return
        self.refresh()
        self.post_message(self.Highlighted(self.row(new)))

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_page_down(self) -> None:
        self.cursor += self._rows_visible

    def action_page_up(self) -> None:
        self.cursor -= self._rows_visible

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = self.total - 1

    def action_open(self) -> None:
        ticket = self.current
        if ticket is not None:
            self.post_message(self.Open(ticket.number))

    def on_click(self, event: events.Click) -> None:
        index = round(self.scroll_offset.y) + event.y - 1
        if event.y < 1 or index >= self.total:
            return
        self.focus()
        self.cursor = index
        if event.chain >= 2:
            self.action_open()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.size.width, self.total + 1)
        self.refresh()

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        self._base_style = None
        self._strips.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        # rich_style walks every ancestor's styles: once per style change, not once per line.
        base = self._base_style
        if base is None:
            base = self._base_style = self.rich_style
        cols = layout(width)
        if y == 0:
            header = self.get_component_rich_style("ticket-list--header")
            text = "".join(_cell(c.title, c.width) for c in cols)
            return Strip([Segment(text, base + header)]).adjust_cell_length(width, base + header)
        index = round(self.scroll_offset.y) + y - 1
        if index >= self.total:
            if index == 0 and self.loaded:
                dim = base + self.get_component_rich_style("ticket-list--dim")
                searching = self.view.startswith("search:")
                empty = "  No tickets match" if searching else "  No tickets in this view"
                if self.error:
                    empty = "  This view cannot be shown: " + plain_line(self.error)
                return Strip([Segment(empty, dim)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        ticket = self.row(index)
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("ticket-list--cursor")
        if ticket is None:
            dim = style + self.get_component_rich_style("ticket-list--dim", partial=True)
            return Strip([Segment("  …", dim)]).adjust_cell_length(width, style)
        now: datetime = self.helpdesk.clock.now()
        key = (
            index,
            index == self.cursor,
            width,
            self.has_focus,
            now.replace(second=0, microsecond=0),
        )
        tagged = ticket.number in self.tagged
        cached = self._strips.get(key)
        if cached is not None and cached[1] == tagged and cached[0] == ticket:
            self._strips.move_to_end(key)
            return cached[2]
        segments = self._segments(ticket, cols, style, now, on_cursor=index == self.cursor)
        strip = Strip(segments).adjust_cell_length(width, style)
        self._strips[key] = (ticket, tagged, strip)
        if len(self._strips) > MAX_STRIPS:
            self._strips.popitem(last=False)
        return strip

    def _segments(
        self,
        t: TicketSummary,
        cols: list[Column],
        style: Style,
        now: datetime,
        *,
        on_cursor: bool = False,
    ) -> list[Segment]:
        # Partial component styles carry only what their CSS sets (a colour, bold): a full
        # one brings the widget's background too, and on the cursor row that covered the
        # cursor's in every cell it styled (all of an unread row, the dot, the deadline).
        # On the cursor row the text takes the cursor's colour (red on the cursor's blue is
        # hard to read) and keeps its weight; the read dot keeps its colour, its only meaning.
        def comp(name: str) -> Style:
            part = self.get_component_rich_style(f"ticket-list--{name}", partial=True)
            return part.without_color if on_cursor else part

        def dot(name: str) -> Style:
            return self.get_component_rich_style(f"ticket-list--{name}", partial=True)

        row_style = style + comp("unread") if t.read_status == "red" else style
        # Only an active ticket has a deadline to meet: a closed one's passed deadline is no
        # longer overdue, a postponed one's is not running; its escalation level is history.
        active = t.base_status == "active"
        out: list[Segment] = []
        for c in cols:
            if c.name == "mark":
                tag = "*" if t.number in self.tagged else " "
                out.append(Segment(tag, style + comp("tagged")))
                out.append(Segment(DOT, style + dot(t.read_status)))
                out.append(Segment(" ", style))
            elif c.name == "number":
                out.append(Segment(_cell(str(t.number), c.width, right=True), row_style))
            elif c.name == "priority":
                out.append(Segment(_cell(plain_line(t.priority or ""), c.width), row_style))
            elif c.name == "subject":
                out.append(Segment(_cell(plain_line(t.title), c.width), row_style))
            elif c.name == "customer":
                out.append(Segment(_cell(plain_line(t.customer), c.width), row_style))
            elif c.name == "owner":
                out.append(Segment(_cell(plain_line(t.owner or "-"), c.width), row_style))
            elif c.name == "deadline":
                text, overdue = fmt.until(t.deadline_at, now) if active else ("", False)
                cell_style = row_style + comp("overdue") if overdue else row_style
                if t.base_status == "postponed" and t.activate_at is not None:
                    # Its deadline is on hold: what matters is when it comes back.
                    left = (t.activate_at - now).total_seconds()
                    text = f"wake {fmt.short_span(left)}" if left > 0 else "wake now"
                    cell_style = row_style + comp("dim")
                out.append(Segment(_cell(text, c.width), cell_style))
            elif c.name == "level":
                text = f"!{t.alert_level}" if t.alert_level else ""
                look = comp("escalated") if active else comp("dim")
                out.append(Segment(_cell(text, c.width), row_style + look))
            elif c.name == "updated":
                out.append(Segment(_cell(fmt.ago(t.updated_at, now), c.width), row_style))
        return out

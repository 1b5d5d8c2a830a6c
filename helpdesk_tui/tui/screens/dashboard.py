"""The dashboard: tickets by status and priority, what is overdue, response times, and intake.

The figures come from one App-level worker (desk/stats.py); the screen paints placeholders at
once and fills them when the worker's message arrives, so opening it never waits on the store.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Sparkline, Static

from helpdesk_tui.tui import fmt
from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.desk.stats import DeskStats, Spread
    from helpdesk_tui.tui.app import HelpdeskApp

BAR = "█"


class DashboardLoaded(Message):
    """The worker's figures for the dashboard."""

    def __init__(self, stats: DeskStats) -> None:
        super().__init__()
        self.stats = stats


def _bars(rows: tuple[tuple[str, int], ...], width: int = 12) -> Content:
    """Label, count and a bar scaled to the largest count, one line each."""
    if not rows:
        return Content.styled("no tickets", "$text-muted")
    top = max(n for _l, n in rows) or 1
    # Padded after cleaning: line() trims the ends, so padding inside it was lost and the
    # counts of long and short names did not line up.
    names = [line(label) for label, _n in rows]
    label_w = min(max(name.cell_length for name in names), 14)
    lines = []
    for name, (_label, n) in zip(names, rows, strict=True):
        bar = BAR * max(1 if n else 0, round(width * n / top))
        lines.append(
            Content.assemble(
                name.truncate(label_w, ellipsis=True, pad=True),
                f" {n:>6} ",
                (bar, "$accent"),
            )
        )
    return Content("\n").join(lines)


def _spread(value: Spread) -> tuple[str, str]:
    if value.median is None or value.p90 is None:
        return "-", "-"
    return fmt.span(value.median), fmt.span(value.p90)


class DashboardScreen(Screen[None]):
    """Desk figures at a glance; `r` reloads them."""

    help_title = "dashboard"
    # Kept beside the screen rather than in app.tcss: the rules concern this screen alone.
    DEFAULT_CSS = """
    DashboardScreen #dash-title { height: 1; background: $panel; padding: 0 1; }
    DashboardScreen #dash-grid {
        grid-size: 2 2; grid-columns: 1fr 1fr; grid-rows: auto auto; grid-gutter: 0 1;
        height: auto; padding: 0 1;
    }
    DashboardScreen .dash-panel { height: auto; padding: 0 1; border: round $panel-lighten-1; }
    DashboardScreen .dash-head { color: $text-accent; }
    DashboardScreen #dash-incoming {
        height: 1fr; min-height: 3; padding: 0 1; margin: 0 1;
        border: round $panel-lighten-1;
    }
    DashboardScreen #incoming { height: 1fr; min-height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "back", "Back", id="dashboard.back"),
        Binding("r", "reload", "Reload", id="dashboard.reload"),
    ]
    """Dashboard keys."""

    @property
    def helpdesk(self) -> HelpdeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("Dashboard", "bold"), id="dash-title")
        with Grid(id="dash-grid"):
            with Vertical(classes="dash-panel", id="dash-status"):
                yield Static(Content.styled("Tickets by status", "bold"), classes="dash-head")
                yield Static("…", id="by-status")
            with Vertical(classes="dash-panel", id="dash-priority"):
                yield Static(Content.styled("Active by priority", "bold"), classes="dash-head")
                yield Static("…", id="by-priority")
            with Vertical(classes="dash-panel", id="dash-now"):
                yield Static(Content.styled("Now", "bold"), classes="dash-head")
                yield Static("…", id="now")
            with Vertical(classes="dash-panel", id="dash-times"):
                yield Static(
                    Content.styled("First reply · time to close", "bold"), classes="dash-head"
                )
                yield Static("…", id="times")
        with Vertical(id="dash-incoming"):
            yield Static(Content.styled("Incoming per day", "bold"), id="incoming-head")
            yield Sparkline([], id="incoming")
        yield Footer()

    LIVE_EVERY = 5.0
    """Seconds between reloads for other agents' changes: the figures cost ~0.2 s of a
    worker at 100,000 tickets, and a busy desk changes every second."""

    _reloaded_at = 0.0
    _live_timer: Timer | None = None

    def on_mount(self) -> None:
        self.action_reload()

    def live_refresh(self) -> None:
        """The store changed elsewhere: reload, at most every LIVE_EVERY seconds."""
        if self._live_timer is not None:
            return  # a reload is already due
        wait = self._reloaded_at + self.LIVE_EVERY - time.monotonic()
        if wait <= 0:
            self.action_reload()
            return

        def due() -> None:
            self._live_timer = None
            self.action_reload()

        self._live_timer = self.set_timer(wait, due)

    def desk_ready(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        if self.helpdesk.views is not None:
            self._reloaded_at = time.monotonic()
            self.helpdesk.load_dashboard(self)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_dashboard_loaded(self, message: DashboardLoaded) -> None:
        message.stop()
        st = message.stats
        tz = self.helpdesk.desk.tz if self.helpdesk.desk is not None else None
        when = fmt.stamp(st.at, tz) if tz is not None else st.at.isoformat()
        self.query_one("#dash-title", Static).update(
            Content.assemble(("Dashboard", "bold"), ("  ·  figures at " + when, "$text-muted"))
        )
        self.query_one("#by-status", Static).update(_bars(st.by_status))
        self.query_one("#by-priority", Static).update(_bars(st.by_priority))
        self.query_one("#now", Static).update(
            Content("\n").join(
                [
                    Content(f"Active      {st.active:>7}"),
                    Content.assemble(
                        "Overdue     ",
                        (f"{st.overdue:>7}", "$text-error bold" if st.overdue else ""),
                    ),
                    Content.assemble(
                        "Unassigned  ",
                        (f"{st.unassigned:>7}", "$text-warning bold" if st.unassigned else ""),
                    ),
                ]
            )
        )
        # Narrow enough for half of an 80-column terminal.
        rows = [Content.styled(f"{'':10}{'median':>8}{'p90':>8}{'n':>5}", "$text-muted")]
        for title, table in (("Reply", st.first_response), ("Close", st.time_to_close)):
            for days, value in sorted(table.items()):
                med, p90 = _spread(value)
                rows.append(Content(f"{title:6}{days:>2}d {med:>8}{p90:>8}{value.count:>5}"))
        self.query_one("#times", Static).update(Content("\n").join(rows))
        total = sum(st.incoming)
        today = st.incoming[-1] if st.incoming else 0
        peak = max(st.incoming, default=0)
        self.query_one("#incoming-head", Static).update(
            Content.assemble(
                ("Incoming per day", "bold"),
                (
                    f"  last {st.incoming_days} days: {total} · peak {peak} · today {today}",
                    "$text-muted",
                ),
            )
        )
        self.query_one("#incoming", Sparkline).data = list(st.incoming)

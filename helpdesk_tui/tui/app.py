"""The Textual app: owns the desk, runs every desk call in a named thread worker, routes results.

Screens never call the desk themselves: they ask the App, whose thread workers post the results
back as Messages to the screen that asked (harlequin's pattern). Long-lived work belongs to the
App so that popping a screen (say, compose right after "send") never cancels it, and one
Worker.StateChanged handler turns every failure into a one-line notification.

Nothing heavy is imported here: SQLAlchemy, SQLModel and the desk load inside the first worker,
so the first frame is painted while the store opens (sqlmodel alone costs about 0.3 s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.message_pump import MessagePump
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from helpdesk_tui.desk.drafts import DraftData
from helpdesk_tui.tui import strips
from helpdesk_tui.tui.commands import HelpdeskCommands
from helpdesk_tui.tui.idle_gc import CHECK_EVERY as IDLE_CHECK_EVERY
from helpdesk_tui.tui.idle_gc import IdleCollector
from helpdesk_tui.tui.live import DutyDone, Live, LiveUpdate
from helpdesk_tui.tui.messages import (
    ActionDone,
    AgentsLoaded,
    CountsLoaded,
    DeskFailed,
    DeskOpened,
    DetailLoaded,
    Outcome,
    PageLoaded,
    Registered,
    TaggedFound,
    ViewLoaded,
)
from helpdesk_tui.tui.text import plain_line

if TYPE_CHECKING:
    from helpdesk_tui.clock import Clock
    from helpdesk_tui.config import Config
    from helpdesk_tui.desk.records import AgentRecord, TicketDetail
    from helpdesk_tui.desk.service import Desk
    from helpdesk_tui.desk.views import Key, TicketViews
    from helpdesk_tui.tui.screens.detail import DetailScreen

DeskCall = Callable[["Desk", int, "int | None"], Any]
"""A desk call for one ticket: (desk, number, the version the screen showed, or None)."""
COMPOSE_KINDS = ("reply", "reply_all", "forward", "note", "ask")
OPEN_WAIT = 0.06  # seconds a ticket's read may take before its screen opens without it
UNDO_DEPTH = 50  # of this session's actions, how many `u` can take back one by one


Draft = DraftData
"""A message being written; kept on the App and in the agent's drafts file (desk/drafts.py)."""


class DraftsLoaded(Message):
    """The agent's drafts from the last session."""

    def __init__(self, drafts: dict[tuple[int, str], DraftData]) -> None:
        super().__init__()
        self.drafts = drafts


@dataclass(frozen=True)
class Choices:
    """Names the pickers offer, read from the store (the config may not list the demo's)."""

    priorities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


class HelpdeskApp(App[int]):
    """The help desk in a terminal. Inject `desk` and `config` (tests) or let it open them."""

    CSS_PATH = str(Path(__file__).parent / "app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "helpdesk"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {HelpdeskCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        # f1 works where ? is a character (a text box); priority, so no widget takes it first.
        Binding("f1", "help", "Help anywhere", id="app.help_f1", priority=True, show=False),
        Binding("exclamation_mark", "alerts", "Alerts", id="app.alerts"),
    ]
    """App-wide keys; each screen adds its own (and `?` lists them)."""

    def __init__(
        self,
        *,
        desk: Desk | None = None,
        config: Config | None = None,
        db: str | None = None,
        config_path: str | None = None,
        clock: Clock | None = None,
        keymap: Mapping[str, str] | None = None,
        cursor_blink: bool = True,
        live_interval: float = 0.5,
        duty_every: float = 10.0,
        duties: bool = True,
        idle_gc: bool = False,
    ) -> None:
        super().__init__()
        strips.install()  # frames' lines freed by reference counting, not by full collections
        if clock is None:
            from helpdesk_tui.clock import SystemClock

            clock = SystemClock()
        self.clock: Clock = clock
        self.desk: Desk | None = desk
        self.config: Config | None = config
        self.views: TicketViews | None = None
        self._db = db
        self._config_path = config_path
        self.agents: list[AgentRecord] = []
        self.choices = Choices()
        self.drafts: dict[tuple[int, str], Draft] = {}
        self.register_draft: dict[str, str] = {}  # the register screen's fields, by widget id
        self.tagged: set[int] = set()
        self.tag_versions: dict[int, int] = {}
        """Each tagged ticket's version when it was tagged: what a batch on it expects when
        its row is no longer in the list's memory (a live reload keeps rows on screen fresh)."""
        self.batch = False
        self.last_acted: list[tuple[str, dict[int, int | None]]] = []
        """This session's undoable actions, oldest first: (action, {ticket: the id of the event
        it wrote, None if its result does not show it}). `u` takes the newest off, and undoes
        nothing the agent did before this session (screens/base.py checks the event ids)."""
        self.cursor_blink = cursor_blink
        self.desk_error = ""
        # duties=False: this app never runs the worker's duties (tests that are not about them,
        # so that no escalation fires under their fixed clock while they look at a screen).
        self.live = Live(self, interval=live_interval, duty_every=duty_every, duties=duties)
        # Process-wide (gc.freeze, thresholds): only the real app turns it on, never a test
        # that runs many apps in one process.
        self.idle_gc: IdleCollector | None = IdleCollector() if idle_gc else None
        self._draft_file: Any = None
        self._draft_generation = 0
        self._draft_timer: Timer | None = None
        self._opening: int | None = None
        self._detail_screen: DetailScreen | None = None
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        from helpdesk_tui.tui.screens.main import MainScreen

        # MainScreen starts open_desk after its first frame: the opening thread imports
        # SQLAlchemy and runs migrations, and its GIL time would delay that frame by ~0.5 s.
        self.push_screen(MainScreen())

    @work(thread=True, group="desk-open", exclusive=True, exit_on_error=False)
    def open_desk(self) -> None:
        from helpdesk_tui.desk.views import TicketViews

        desk, config = self.desk, self.config
        if desk is None:
            from helpdesk_tui.desk.session import open_desk

            try:
                handle = open_desk(
                    db=self._db,
                    config_path=Path(self._config_path) if self._config_path else None,
                    clock=self.clock,
                )
            except Exception as exc:
                self.post_message(DeskFailed(f"{type(exc).__name__}: {exc}"))
                raise
            desk, config = handle.desk, handle.config
        if config is None:
            from helpdesk_tui.config import default_config

            config = default_config()
        views = TicketViews(desk.store, desk.actor, clock=desk.clock, tz=desk.tz)
        self.post_message(DeskOpened(desk, config, views))

    @property
    def tz(self) -> tzinfo:
        """The desk's time zone for what screens show; UTC until the desk is open."""
        return self.desk.tz if self.desk is not None else UTC

    def on_desk_opened(self, message: DeskOpened) -> None:
        self.desk, self.config, self.views = message.desk, message.config, message.views
        if self.idle_gc is not None:
            # What exists now lives as long as the app; full collections wait for idle moments.
            self.idle_gc.start()
            self.set_interval(IDLE_CHECK_EVERY, self.idle_gc.tick, name="idle-gc")
        if self.config.keymap:
            # As the full load checked it; run_app applied the same table before the first
            # frame, and an app handed its config (not a file) gets it here.
            self.set_keymap(dict(self.config.keymap))
        self.sub_title = plain_line(f"{self.config.desk.name} · {self.desk.actor or '?'}")
        self.load_agents()
        self.load_drafts()
        self.live.start()
        for screen in self.screen_stack:
            ready = getattr(screen, "desk_ready", None)
            if ready is not None:
                ready()

    def on_desk_failed(self, message: DeskFailed) -> None:
        """Shown in the top bar; run_app also prints it after the agent quits."""
        self.desk_error = message.error
        for screen in self.screen_stack:
            update = getattr(screen, "update_topbar", None)
            if update is not None:
                update()

    @work(thread=True, group="agents", exclusive=True, exit_on_error=False)
    def load_agents(self) -> None:
        desk, views = self._need()
        agents = desk.agents()
        self.choices = Choices(*views.choices())
        self.post_message(AgentsLoaded(agents))

    def on_agents_loaded(self, message: AgentsLoaded) -> None:
        self.agents = [a for a in message.agents if a.active]

    def _need(self) -> tuple[Desk, TicketViews]:
        if self.desk is None or self.views is None:
            raise RuntimeError("the desk is still opening")
        return self.desk, self.views

    # ------------------------------------------------------------------ errors

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker failure ends here as one line; the app keeps running."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        from helpdesk_tui.desk.errors import DeskError

        text = str(error) if isinstance(error, DeskError) else f"{type(error).__name__}: {error}"
        self.say(text, severity="error")

    def say(self, text: str, *, severity: str = "information") -> None:
        """notify() for text that may quote a stranger (a subject in an error): never markup."""
        level = severity if severity in ("information", "warning", "error") else "information"
        self.notify(plain_line(text), severity=level, markup=False)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ list data

    @work(thread=True, group="list-view", exclusive=True, exit_on_error=False)
    def load_view(
        self,
        target: MessagePump,
        view: str,
        generation: int,
        focus: int | None,
        hint: int,
        stride: int,
    ) -> None:
        """Size, anchors, where ticket `focus` now sits, and the page the cursor will be on."""
        from helpdesk_tui.desk import changes
        from helpdesk_tui.desk.errors import DeskError

        desk, views = self._need()
        # Taken before the rows are read: anything added later makes the list stale (the
        # list screen compares it when it comes back into view).
        mark = changes.content_mark_or_none(desk.store)
        try:
            total, anchors = views.size_and_anchors(view, stride)
        except Exception as exc:
            # The list must not keep the last view's rows under this view's name, nor wait
            # for it for ever; the error still reaches the notification below.
            text = str(exc) if isinstance(exc, DeskError) else f"{type(exc).__name__}: {exc}"
            target.post_message(ViewLoaded(view, generation, 0, [], None, 0, [], error=text))
            raise
        index = None
        if focus is not None:
            key = views.key_of(view, focus)
            if key is not None:
                index = views.position(view, key)
        page = min(index if index is not None else hint, max(total - 1, 0)) // stride
        after = anchors[page - 1] if 0 < page <= len(anchors) else None
        rows = views.page(view, after, stride) if page == 0 or after is not None else None
        target.post_message(ViewLoaded(view, generation, total, anchors, index, page, rows))
        if hasattr(target, "loaded_mark"):
            target.loaded_mark = mark
        self.post_message(CountsLoaded(views.counts()))

    @work(thread=True, group="list-page", exit_on_error=False)
    def load_page(
        self,
        target: MessagePump,
        view: str,
        generation: int,
        page: int,
        after: Key | None,
        limit: int,
    ) -> None:
        _desk, views = self._need()
        target.post_message(PageLoaded(view, generation, page, views.page(view, after, limit)))

    @work(thread=True, group="counts", exclusive=True, exit_on_error=False)
    def load_counts(self) -> None:
        _desk, views = self._need()
        self.post_message(CountsLoaded(views.counts()))

    def on_counts_loaded(self, message: CountsLoaded) -> None:
        for screen in self.screen_stack:
            update = getattr(screen, "set_counts", None)
            if update is not None:
                update(message.counts)

    @work(thread=True, group="tag-find", exclusive=True, exit_on_error=False)
    def find_tagged(self, target: MessagePump, view: str, pattern: str) -> None:
        _desk, views = self._need()
        target.post_message(TaggedFound(views.versions_matching(view, pattern), pattern))

    @work(thread=True, group="merge-candidates", exclusive=True, exit_on_error=False)
    def load_merge_candidates(self, target: MessagePump, numbers: Sequence[int]) -> None:
        from helpdesk_tui.tui.screens.dialogs import MergeCandidates

        _desk, views = self._need()
        target.post_message(MergeCandidates(views.merge_candidates(numbers)))

    # ------------------------------------------------------------------ search and dashboard

    @work(thread=True, group="search-check", exclusive=True, exit_on_error=False)
    def check_search(self, view: str, then: Callable[[str], None]) -> None:
        """Resolve a search's names and dates before the list switches to it (errors say why)."""
        _desk, views = self._need()
        with views.store.read() as s:
            views.compile(s, view)
        self.call_from_thread(then, view)

    @work(thread=True, group="saved-searches", exclusive=True, exit_on_error=False)
    def load_saved_searches(self, then: Callable[[list[Any]], None]) -> None:
        from helpdesk_tui.desk.search import saved_searches

        desk, _views = self._need()
        found = saved_searches(desk.store, desk.actor or "_") if desk.actor else []
        self.call_from_thread(then, found)

    @work(thread=True, group="saved-searches", exit_on_error=False)
    def save_search(
        self, name: str, query: str, then: Callable[[list[Any]], None], *, delete: bool = False
    ) -> None:
        from helpdesk_tui.desk.search import delete_search, save_search

        desk, _views = self._need()
        if not desk.actor:
            raise RuntimeError("saving a search needs an acting agent")
        if delete:
            kept = delete_search(desk.store, desk.actor, name)
        else:
            kept = save_search(desk.store, desk.actor, name, query)
        self.call_from_thread(then, kept)

    @work(thread=True, group="dashboard", exclusive=True, exit_on_error=False)
    def load_dashboard(self, target: MessagePump) -> None:
        from helpdesk_tui.desk.stats import desk_stats
        from helpdesk_tui.tui.screens.dashboard import DashboardLoaded

        desk, _views = self._need()
        target.post_message(DashboardLoaded(desk_stats(desk.store, self.clock.now(), desk.tz)))

    # ------------------------------------------------------------------ tickets

    @work(thread=True, group="detail", exclusive=True, exit_on_error=False)
    def load_detail(
        self,
        target: MessagePump,
        number: int,
        mark_read: bool,
        *,
        known: TicketDetail | None = None,
    ) -> None:
        """Read ticket `number` for `target` (unless `known`, just read), and mark it read."""
        desk, _views = self._need()
        detail = known if known is not None and known.number == number else desk.show(number)
        if detail is not known:
            target.post_message(DetailLoaded(detail))
        s = detail.summary
        if mark_read and s.read_status != "green" and s.owner is not None and s.owner == desk.actor:
            # The owner's first look marks it read: a write transaction (and an escalation
            # step) that the screen need not wait for; the header turns green a moment later.
            target.post_message(DetailLoaded(desk.read(number)))

    @work(thread=True, group="actions", exit_on_error=False)
    def perform(
        self,
        target: MessagePump,
        action: str,
        numbers: Sequence[int],
        call: DeskCall,
        versions: Mapping[int, int | None] | None = None,
    ) -> None:
        """Run one desk call per ticket; report what was done, then raise what was refused.

        `versions` are what the screen showed: a ticket changed since then is a conflict,
        collected for the conflict dialog (tui/conflicts.py), not an error.
        """
        from helpdesk_tui.desk.errors import Conflict, DeskError
        from helpdesk_tui.tui.messages import Conflicted

        desk, _views = self._need()
        outcome = Outcome(action, call=call)
        seen = versions or {}
        for number in numbers:
            try:
                outcome.results[number] = call(desk, number, seen.get(number))
                outcome.done.append(number)
            except Conflict as exc:
                outcome.conflicts.append(Conflicted(number, str(exc), exc.current_version))
            except DeskError as exc:
                outcome.errors.append(str(exc))
        target.post_message(ActionDone(outcome))
        self.post_message(CountsLoaded(self._need()[1].counts()))
        if outcome.errors:
            more = f" (and {len(outcome.errors) - 1} more)" if len(outcome.errors) > 1 else ""
            raise DeskError(outcome.errors[0] + more)

    def on_action_done(self, message: ActionDone) -> None:
        # Reached only when the target screen was gone; remember what undo should act on.
        self.remember(message.outcome)
        if message.outcome.conflicts:
            from helpdesk_tui.tui.conflicts import offer

            offer(self, message.outcome, None)

    def remember(self, outcome: Outcome) -> None:
        """After an action: drop the drafts it sent and note what `u` should undo."""
        for number in outcome.done:
            self.drafts.pop((number, outcome.action), None)
        if outcome.done and outcome.action in COMPOSE_KINDS:
            self.draft_changed()
            self.live.kick()  # mail was queued: the duties send it now, not at the next pass
        from helpdesk_tui.desk.service import UNDOABLE  # loaded: the action just ran on it

        # Only what the desk can undo: `u` after anything else would undo an older change.
        if outcome.done and outcome.action in UNDOABLE:
            actor = self.desk.actor if self.desk is not None else None
            written: dict[int, int | None] = {}
            for number in outcome.done:
                events = getattr(outcome.results.get(number), "events", ())
                ours = [
                    e.id
                    for e in events
                    if e.ticket == number and e.action == outcome.action and e.agent == actor
                ]
                written[number] = ours[-1] if ours else None
            self.last_acted.append((outcome.action, written))
            del self.last_acted[:-UNDO_DEPTH]

    @work(thread=True, group="register", exclusive=True, exit_on_error=False)
    def register(self, target: MessagePump, fields: dict[str, Any]) -> None:
        desk, _views = self._need()
        detail = desk.register(**fields)
        target.post_message(Registered(detail.number))
        self.post_message(CountsLoaded(self._need()[1].counts()))

    # ------------------------------------------------------------------ live and drafts

    def on_live_update(self, message: LiveUpdate) -> None:
        self.live.on_live_update(message)

    def on_duty_done(self, message: DutyDone) -> None:
        self.live.on_duty_done(message)

    @work(thread=True, group="drafts-load", exclusive=True, exit_on_error=False)
    def load_drafts(self) -> None:
        from helpdesk_tui.desk.drafts import DraftFile, drafts_file

        desk, _views = self._need()
        self._draft_file = DraftFile(drafts_file(desk.actor or "_"), desk.store.url)
        self.post_message(DraftsLoaded(self._draft_file.load()))

    def on_drafts_loaded(self, message: DraftsLoaded) -> None:
        for key, draft in message.drafts.items():
            self.drafts.setdefault(key, draft)  # what was typed while loading wins

    def draft_changed(self) -> None:
        """Save the drafts a moment after the typing pauses (in a thread, atomically)."""
        self._draft_generation += 1
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(0.3, self._save_drafts)

    def _drafts_snapshot(self) -> dict[tuple[int, str], DraftData]:
        from dataclasses import replace

        return {k: replace(d, attachments=list(d.attachments)) for k, d in self.drafts.items()}

    def _save_drafts(self) -> None:
        file, generation = self._draft_file, self._draft_generation
        if file is None:
            return
        snapshot = self._drafts_snapshot()
        self.run_worker(
            lambda: file.save(snapshot, generation),
            thread=True,
            group="drafts-save",
            exit_on_error=False,
        )

    async def on_event(self, event: events.Event) -> None:
        if self.idle_gc is not None and isinstance(event, events.InputEvent):
            self.idle_gc.touched()
        await super().on_event(event)

    def on_unmount(self) -> None:
        self.live.close()
        if self.idle_gc is not None:
            self.idle_gc.stop()
        if self._draft_file is not None and self._draft_timer is not None:
            # A pending save runs now: the last keystrokes before quitting are kept too.
            self._draft_timer.stop()
            self._draft_file.save(self._drafts_snapshot(), self._draft_generation)

    # ------------------------------------------------------------------ app actions

    def action_alerts(self) -> None:
        from helpdesk_tui.tui.screens.alerts import AlertsScreen

        if isinstance(self.screen, AlertsScreen):
            self.pop_screen()
            return
        self.push_screen(AlertsScreen())

    def action_help(self) -> None:
        from helpdesk_tui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_dashboard(self) -> None:
        from helpdesk_tui.tui.screens.dashboard import DashboardScreen

        if isinstance(self.screen, DashboardScreen):
            self.pop_screen()
            return
        self.push_screen(DashboardScreen())

    def action_register_request(self) -> None:
        from helpdesk_tui.tui.screens.register import RegisterScreen

        self.push_screen(RegisterScreen())

    def open_ticket(self, number: int) -> None:
        """Show a ticket: read it first (~10 ms), so the screen's first frame is the ticket.

        Pushing at once would paint "Loading…", then lay the whole screen out again for the
        conversation: two full frames where one will do. A read slower than OPEN_WAIT (or a
        desk still opening) pushes the screen anyway, and it fills in when the data arrives.
        """
        self._opening = number
        if self.desk is None:
            self._push_detail(number, None)  # it says the desk is still opening, once
            return
        self._preload_detail(number)
        self.set_timer(OPEN_WAIT, lambda: self._push_detail(number, None))

    @work(thread=True, group="detail-preload", exclusive=True, exit_on_error=False)
    def _preload_detail(self, number: int) -> None:
        from helpdesk_tui.desk.errors import NotFound

        desk, _views = self._need()
        try:
            detail: TicketDetail | None = desk.show(number)
        except NotFound as exc:  # `/ 99999`: say so where the agent is, open nothing
            self.call_from_thread(self._not_opened, number, str(exc))
            return
        except Exception:  # noqa: BLE001 - the screen opens, reads again and says what failed
            detail = None
        self.call_from_thread(self._push_detail, number, detail)

    def _not_opened(self, number: int, why: str) -> None:
        if self._opening == number:  # else the timer pushed the screen, which says it too
            self._opening = None
            self.say(why, severity="error")

    def _push_detail(self, number: int, detail: TicketDetail | None) -> None:
        if self._opening != number:
            return  # already pushed (by the read or by the timer)
        self._opening = None
        from helpdesk_tui.tui.screens.detail import DetailScreen

        # One detail screen, kept installed and shown again for each ticket (see
        # DetailScreen.retarget); a second one only while the first is still on the stack.
        screen = self._detail_screen
        if screen is None:
            screen = self._detail_screen = DetailScreen(number, detail)
            self.install_screen(screen, "ticket-detail")
        elif screen in self.screen_stack:
            screen = DetailScreen(number, detail)
        else:
            screen.retarget(number, detail)
        self.push_screen(screen)


def read_keymap(config: str | None) -> dict[str, str]:
    """`[keymap]` from the settings file the desk will load, read before the first frame.

    tomllib only: the config module costs the first frame ~15 ms, and the keys must be right
    from the first keystroke. The full load, in the desk's opening worker, checks the table
    (an unknown binding id is a ConfigError naming it); here what is unreadable is no keymap.
    """
    from helpdesk_tui import paths

    path = Path(config) if config else paths.config_file()
    if not path.is_file():
        return {}
    import tomllib

    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("keymap")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    if not isinstance(table, dict):
        return {}
    from helpdesk_tui.keymap import keys_of

    keymap: dict[str, str] = {}
    for ident, value in table.items():
        keys = keys_of(value)
        if keys is not None:
            keymap[ident] = ",".join(keys)
    return keymap


def run_app(db: str | None, config: str | None) -> int:
    """Run the app until the agent quits; the exit code for the shell."""
    import sys

    from helpdesk_tui.shared import preflight

    # Before the first frame: an agent outside the store's group gets one line, not a screen.
    problem = preflight(db, config)
    if problem:
        print(f"helpdesk: {problem}", file=sys.stderr)
        return 1
    app = HelpdeskApp(db=db, config_path=config, idle_gc=True, keymap=read_keymap(config))
    result = app.run()
    if app.desk_error:
        print(f"helpdesk: {app.desk_error}", file=sys.stderr)
        return 1
    return result or 0

"""Live and background: other sessions' changes on screen, the embedded worker, alerts.

A timer on the event loop starts a short thread worker every `interval` seconds that asks the
store for its change token (Store.change_token: SQLite's `PRAGMA data_version`, or PostgreSQL's
change notices, each on a connection of its own; the number moves whenever a write commits).
Only when it changed does the worker read the status bar's facts and the agent's unread alerts,
and the screens reload what they show (the list: the page under the cursor and the sidebar
counts, keeping the cursor on its ticket).
Nothing here blocks the event loop: every query runs in a thread worker, and its result comes
back as one coalescing message.

The App also runs the worker's duties (Worker.run_once: mail in and out where configured,
waking postponed tickets and escalations always) in an App-level thread worker, but only while
it holds the worker lease (desk/lease.py): a running `helpdesk worker` daemon takes the lease
and the app then only shows the daemon's state.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer

from helpdesk_tui.tui.text import plain_line

if TYPE_CHECKING:
    from helpdesk_tui.desk.records import AlertRecord
    from helpdesk_tui.tui.app import HelpdeskApp
    from helpdesk_tui.worker import Worker

STATUS_EVERY = 5.0  # seconds: the status bar's facts are re-read at least this often
NOTIFY_AT_MOST = 3  # alerts notified one by one; more arrive as one summary line
APP_PASS_LIMIT = 100  # tickets an in-app duty pass wakes up, and escalates, at most


@dataclass(frozen=True)
class MailboxHealth:
    name: str
    ok: bool
    last_success: datetime | None
    last_error: str
    failures: int
    stopped: str


@dataclass(frozen=True)
class LiveStatus:
    """What the status bar shows; built in a worker thread, read on the event loop."""

    duties: str = "off"  # off (nothing to do) | app (this app runs them) | daemon | other
    holder: str = ""  # the lease holder when someone else runs the duties
    running: bool = False  # a duty pass is under way in this app
    last_pass: datetime | None = None
    last_error: str = ""
    mailboxes: tuple[MailboxHealth, ...] = ()
    outbox: dict[str, int] = field(default_factory=dict)
    unread_alerts: int = 0


class LiveUpdate(Message):
    """The store changed (or the status is due): new status, unread alerts, reload or not."""

    def __init__(
        self,
        changed: bool,
        status: LiveStatus | None,
        alerts: list[AlertRecord] | None,
        touched: bool = False,
    ) -> None:
        super().__init__()
        self.changed = changed
        self.status = status
        self.alerts = alerts
        self.touched = touched  # only bookkeeping moved (presence, lease): presence lines re-read

    def can_replace(self, message: Message) -> bool:
        # A newer update replaces an unhandled older one unless the older asked for more.
        return isinstance(message, LiveUpdate) and not (
            (message.changed and not self.changed) or (message.touched and not self.touched)
        )


class DutyDone(Message):
    """A duty pass finished (or was skipped because another process holds the lease)."""

    def __init__(self, held: bool, holder: str, error: str, at: datetime | None) -> None:
        super().__init__()
        self.held = held
        self.holder = holder
        self.error = error
        self.at = at


class Live:
    """The app's live machinery; the App creates one and starts it when the desk opens."""

    def __init__(
        self,
        app: HelpdeskApp,
        *,
        interval: float = 0.5,
        duty_every: float = 10.0,
        duties: bool = True,
    ) -> None:
        self.app = app
        self.duties = duties
        self.interval = interval
        self.duty_every = duty_every
        self.status = LiveStatus()
        self.stop = threading.Event()
        self._timer: Timer | None = None
        self._version: int | None = None
        self._mark: tuple[int, ...] | None = None  # desk.changes.content_mark at the last reload
        self._outbox_seen: dict[str, int] | None = None
        self._checking = False
        self._status_at = 0.0
        self._pending_reload = False
        self._alerts_seen: int | None = None
        # duties
        self._duty_running = False
        self._next_duty = 0.0
        self._held = False
        self._holder = ""
        self._renewed_at = 0.0
        self._last_pass: datetime | None = None
        self._last_error = ""
        self._worker: Worker | None = None
        self._lease_name = ""

    # ------------------------------------------------------------------ lifecycle

    @property
    def duties_configured(self) -> bool:
        # Waking postponed tickets and firing escalations need no mail settings: without
        # mailboxes or SMTP the pass still runs them (and the sync and outbox parts idle).
        return self.duties and self.app.config is not None

    def start(self) -> None:
        if self._timer is not None:
            return
        from helpdesk_tui.desk.lease import holder_id

        self._lease_name = holder_id("app")
        self._timer = self.app.set_interval(self.interval, self.tick, name="live")
        self.tick()

    def close(self) -> None:
        """On exit: stop the timer, let a running pass finish its batch, give the lease back."""
        self.stop.set()
        if self._timer is not None:
            self._timer.stop()
        if not self._duty_running:
            self._release()

    def _release(self) -> None:
        desk = self.app.desk
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._held and desk is not None:
            from helpdesk_tui.desk.lease import release

            with contextlib.suppress(Exception):  # the TTL frees the lease anyway
                release(desk.store, self._lease_name)
            self._held = False

    def kick(self) -> None:
        """Run the duties at the next tick (after a send, so the mail leaves at once)."""
        self._next_duty = 0.0

    # ------------------------------------------------------------------ the tick (event loop)

    def tick(self) -> None:
        if self.stop.is_set() or self.app.desk is None:
            return
        if self._pending_reload and not self._busy():
            self._pending_reload = False
            self._reload_screens()
        if not self._checking:
            self._checking = True
            self.app.run_worker(self._check, thread=True, group="live-check", exit_on_error=False)
        if (
            self.duties_configured
            and not self._duty_running
            and time.monotonic() >= self._next_duty
        ):
            self._duty_running = True
            self._next_duty = time.monotonic() + self.duty_every
            self.status = _replace(self.status, running=True)
            self._show_status()
            self.app.run_worker(self._duty_pass, thread=True, group="duties", exit_on_error=False)

    def _busy(self) -> bool:
        """An action is in flight: its own reload follows, and ours would race with it."""
        return any(
            w.group in ("actions", "list-view", "register") and w.is_running
            for w in self.app.workers
        )

    # ------------------------------------------------------------------ the check (thread)

    def _data_version(self) -> int | None:
        desk = self.app.desk
        if desk is None or self.stop.is_set():
            return None
        return desk.store.change_token()

    def _check(self) -> None:
        try:
            if self.stop.is_set():
                return
            version = self._data_version()
            now = time.monotonic()
            touched = False
            if version is None:
                # The store cannot tell (in-memory): reload every STATUS_EVERY seconds instead.
                changed = now - self._status_at >= STATUS_EVERY
            else:
                moved = self._version is not None and version != self._version
                self._version = version
                changed = moved and self._content_moved()
                touched = moved and not changed
                if touched:
                    self._status_at = 0.0  # bookkeeping only: refresh the status bar alone
            self._renew_if_due(now)
            if not changed and now - self._status_at < STATUS_EVERY and self._status_at:
                return
            self._status_at = now
            status, alerts = self._read_status()
            if status.outbox != self._outbox_seen:
                # A send that went out or failed shows on its ticket: reload for it too.
                changed = changed or self._outbox_seen is not None
                self._outbox_seen = status.outbox
            self.app.post_message(LiveUpdate(changed, status, alerts, touched))
        finally:
            self._checking = False

    def _content_moved(self) -> bool:
        """Skip reloads for presence and lease heartbeats (desk/changes.py says why)."""
        from helpdesk_tui.desk.changes import content_mark

        desk = self.app.desk
        if desk is None:
            return True
        mark = content_mark(desk.store)
        moved = mark != self._mark
        self._mark = mark
        return moved

    def _renew_if_due(self, now: float) -> None:
        """Keep the lease alive during a long pass (a pass renews it too)."""
        from helpdesk_tui.desk import lease

        desk = self.app.desk
        if not self._held or desk is None or now - self._renewed_at < lease.RENEW_EVERY:
            return
        self._renewed_at = now
        self._held = lease.renew(desk.store, self._lease_name, lease.wall_now(), kind="app")

    def _read_status(self) -> tuple[LiveStatus, list[AlertRecord] | None]:
        from helpdesk_tui.desk import lease, mailboxes, outbox

        desk = self.app.desk
        assert desk is not None
        configured = {m.name for m in self.app.config.mailboxes} if self.app.config else set()
        health = tuple(
            MailboxHealth(
                m.name,
                not m.last_error and not m.stopped_reason,
                m.last_success,
                m.last_error,
                m.consecutive_failures,
                m.stopped_reason,
            )
            for m in mailboxes.status(desk.store)
            # What this config syncs, or what a worker (maybe with the shared config) has
            # tried: a row nothing ever synced, such as the demo's address, has no health.
            if m.name in configured or m.last_success or m.last_error or m.stopped_reason
        )
        from helpdesk_tui.desk.alerts import unread_count

        alerts: list[AlertRecord] | None = None
        unread = 0
        if desk.actor:
            try:
                alerts = desk.alerts(unread_only=True, limit=100)  # the newest, to notify
                unread = unread_count(desk)  # all of them, for the status bar
            except Exception:  # noqa: BLE001 - an actor who is not an agent has no alerts
                alerts = None
        current = lease.read(desk.store)
        live_holder = current if current is not None and current.alive(lease.wall_now()) else None
        if self._held:
            duties, holder = "app", ""
        elif live_holder is not None:
            duties = "daemon" if live_holder.kind == "daemon" else "other"
            holder = live_holder.holder
        else:
            duties, holder = ("app" if self.duties_configured else "off"), ""
        status = LiveStatus(
            duties=duties,
            holder=holder,
            running=self._duty_running,
            last_pass=self._last_pass,
            last_error=self._last_error,
            mailboxes=health,
            outbox=outbox.queue_counts(desk.store),
            unread_alerts=unread,
        )
        return status, alerts

    # ------------------------------------------------------------------ duties (thread)

    def _duty_pass(self) -> None:
        from helpdesk_tui.desk import lease

        desk, config = self.app.desk, self.app.config
        held, holder, error, at = False, "", "", None
        try:
            if desk is None or config is None or self.stop.is_set():
                return
            held = lease.acquire(desk.store, self._lease_name, lease.wall_now(), kind="app")
            self._held = held
            self._renewed_at = time.monotonic()
            if not held:
                current = lease.read(desk.store)
                holder = current.holder if current else ""
                if self._worker is not None:
                    self._worker.close()  # the daemon took over: drop our IMAP connections
                    self._worker = None
                return
            worker = self._worker or self._make_worker()
            report = worker.run_once()
            at = desk.clock.now()
            problems = [f"{s.mailbox}: {s.error}" for s in report.sync if s.error]
            out = report.outbox
            if out is not None and out.failed:
                problems.append(f"outbox: {out.failed} failed")
            error = "; ".join(problems)
        except Exception as exc:  # noqa: BLE001 - shown in the status bar, and tried again
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._duty_running = False
            if self.stop.is_set():
                self._release()
            self.app.post_message(DutyDone(held, holder, error, at))

    def _make_worker(self) -> Worker:
        from helpdesk_tui.desk.service import Desk
        from helpdesk_tui.desk.session import DeskHandle
        from helpdesk_tui.worker import Worker

        desk, config = self.app.desk, self.app.config
        assert desk is not None and config is not None
        # The daemon's identity: intake and escalation act as the system, not as this agent.
        system = Desk(desk.store, desk.clock, "", os_user=desk.os_user, options=desk.options)
        self._worker = Worker(
            DeskHandle(system, config, desk.store), parse_processes=1, stop=self.stop
        )
        # A pass shares the process (and its GIL) with the screen: a backlog after a long
        # weekend is worked through 100 tickets a pass (every duty_every seconds), so keys
        # stay quick while it drains; a `helpdesk worker` daemon takes 500 at a time.
        self._worker.wake_limit = self._worker.escalation_limit = APP_PASS_LIMIT
        return self._worker

    # ------------------------------------------------------------------ results (event loop)

    def on_duty_done(self, message: DutyDone) -> None:
        if message.at is not None:
            self._last_pass = message.at
        if message.held:
            self._last_error = message.error
        self.status = _replace(
            self.status,
            running=False,
            duties="app" if message.held else ("daemon" if "daemon" in message.holder else "other"),
            holder="" if message.held else message.holder,
            last_pass=self._last_pass,
            last_error=self._last_error,
        )
        self._status_at = 0.0  # re-read the queue and mailbox facts at the next tick
        self._show_status()

    def on_live_update(self, message: LiveUpdate) -> None:
        if message.status is not None:
            self.status = _replace(
                message.status,
                running=self._duty_running,
                last_pass=self._last_pass,
                last_error=self._last_error,
            )
            self._show_status()
        if message.alerts is not None:
            self._alerts(message.alerts)
        if message.touched and not message.changed:
            self._refresh_presence()
        if message.changed:
            if self._busy():
                self._pending_reload = True
            else:
                self._reload_screens()

    def _show_status(self) -> None:
        for screen in self.app.screen_stack:
            update = getattr(screen, "set_status", None)
            if update is not None:
                update(self.status)

    def _refresh_presence(self) -> None:
        """Someone opened, left or started composing on a ticket: only presence lines re-read."""
        from helpdesk_tui.tui.widgets.presence import PresenceLine

        for screen in reversed(self.app.screen_stack):
            for line in screen.query(PresenceLine):
                line.refresh_others()
            if not isinstance(screen, ModalScreen):
                break

    def _reload_screens(self) -> None:
        """The visible screens reload: the top one, and those under modal dialogs."""
        for screen in reversed(self.app.screen_stack):
            refresh = getattr(screen, "live_refresh", None)
            if refresh is not None:
                refresh()
            if not isinstance(screen, ModalScreen):
                break

    def _alerts(self, alerts: list[AlertRecord]) -> None:
        newest = max((a.id for a in alerts), default=0)
        if self._alerts_seen is None:
            # Start-up: what was already unread shows as a count, not as a burst of bells.
            self._alerts_seen = newest
            return
        fresh = sorted((a for a in alerts if a.id > self._alerts_seen), key=lambda a: a.id)
        self._alerts_seen = max(self._alerts_seen, newest)
        if not fresh:
            return
        # A colleague's question or a ticket handed over outranks a burst of escalations that
        # came in the same check: those are the ones told one by one.
        fresh.sort(key=lambda a: (a.kind not in ("asked", "assigned"), a.id))
        for a in fresh[:NOTIFY_AT_MOST]:
            self.app.notify(
                plain_line(a.text),
                title=_ALERT_TITLES.get(a.kind, "Alert"),
                severity="warning" if a.kind == "escalation" else "information",
                markup=False,
                timeout=8,
            )
        if len(fresh) > NOTIFY_AT_MOST:
            more = len(fresh) - NOTIFY_AT_MOST
            self.app.notify(f"{more} more new alerts: ! lists them", markup=False)
        cfg = self.app.config
        if cfg is None or cfg.desk.bell:
            self.app.bell()


_ALERT_TITLES = {
    "escalation": "Escalation",
    "assigned": "Assigned to you",
    "asked": "A colleague asks",
    "reactivated": "Back from postponed",
    "mail": "New mail",
}


def _replace(status: LiveStatus, **changes: Any) -> LiveStatus:
    from dataclasses import replace

    return replace(status, **changes)

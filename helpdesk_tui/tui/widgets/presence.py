"""The "Also here: Bob Baker (composing)" line; it also keeps this session's presence alive.

Mounted on the detail screen (viewing) and on compose (composing): on mount it announces, every
RENEW_EVERY seconds it renews and re-reads the others (so an entry past its TTL disappears even
when nothing else is written), the live refresh calls `refresh_others()`, and on unmount it
leaves. Every store call runs in a thread worker; presence is a hint, so its failures are
swallowed instead of interrupting the agent.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar

from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from helpdesk_tui.tui.text import line

if TYPE_CHECKING:
    from helpdesk_tui.desk.presence import PresenceRecord
    from helpdesk_tui.desk.service import Desk


class PresenceSeen(Message):
    """Who else is on the ticket, read in a worker."""

    def __init__(self, number: int, records: list[PresenceRecord]) -> None:
        super().__init__()
        self.number = number
        self.records = records

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PresenceSeen) and message.number == self.number


class PresenceLine(Static):
    """Others on ticket `number`; hidden while there are none."""

    DEFAULT_CSS: ClassVar[str] = """
    PresenceLine {
        height: auto;
        padding: 0 1;
        color: $text-warning;
        background: $warning 10%;
        display: none;
    }
    """

    def __init__(self, number: int, activity: str, *, id: str | None = None) -> None:
        super().__init__(Content(""), id=id, markup=False)
        self.number = number
        self.activity = activity
        self.records: list[PresenceRecord] = []
        self._reading = False
        self.active = True
        """False once left: a screen kept for reuse renews nothing until it follows again."""

    def _desk(self) -> Desk | None:
        return getattr(self.app, "desk", None)

    def on_mount(self) -> None:
        from helpdesk_tui.desk.presence import RENEW_EVERY

        self.call_after_refresh(self.renew)
        self.set_interval(RENEW_EVERY, self.renew, name="presence-renew")

    def follow(self, number: int) -> None:
        """Be about ticket `number` now (a reused screen shows another ticket); the caller
        renews when it suits it (after the ticket's first frame)."""
        self.number = number
        self.records = []
        self.display = False
        self.active = True

    def renew(self) -> None:
        """Announce (or renew) this session, then read the others: one worker, two calls."""
        if self.active:
            self._run(announce=True)

    def refresh_others(self) -> None:
        """Re-read the others only (the live refresh saw the store change)."""
        self._run(announce=False)

    def _run(self, *, announce: bool) -> None:
        desk, number, activity = self._desk(), self.number, self.activity
        if desk is None or not self.active or (self._reading and not announce):
            return
        self._reading = True

        def work() -> None:
            from helpdesk_tui.desk import presence

            try:
                if announce:
                    presence.announce(desk, number, activity)
                records = presence.others(desk, number)
            except Exception:  # noqa: BLE001 - a hint: a busy store must not alarm the agent
                return
            finally:
                self._reading = False
            self.post_message(PresenceSeen(number, records))

        self.run_worker(work, thread=True, group="presence", exit_on_error=False)

    def on_presence_seen(self, message: PresenceSeen) -> None:
        message.stop()
        if message.number != self.number or not self.active:
            return
        self.records = message.records
        self.display = bool(message.records)
        if message.records:
            from helpdesk_tui.desk.presence import describe

            desk = self._desk()
            me = desk.actor if desk is not None else None
            self.update(
                Content.assemble(("Also here: ", "bold"), line(describe(message.records, me)))
            )

    def on_unmount(self) -> None:
        self.leave()

    def leave(self) -> None:
        """Leave, unless another screen of this session still shows the ticket (then say so)."""
        desk, number = self._desk(), self.number
        was_active, self.active = self.active, False
        if desk is None or not was_active:
            return
        still = ""
        screen = None
        with contextlib.suppress(Exception):
            screen = self.screen
        for under in self.app.screen_stack:
            if under is screen:
                continue
            for other in under.query(PresenceLine):
                if other.number == number and other is not self and other.active:
                    still = other.activity

        def work() -> None:
            from helpdesk_tui.desk import presence

            with contextlib.suppress(Exception):  # the TTL retires the row anyway
                if still:
                    presence.announce(desk, number, still)
                else:
                    presence.leave(desk, number)

        # The App's worker: this widget's own workers are cancelled as it goes. While the app
        # itself shuts down no worker starts; the TTL retires the row then.
        with contextlib.suppress(Exception):
            self.app.run_worker(work, thread=True, group="presence-leave", exit_on_error=False)

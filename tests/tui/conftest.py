"""TUI fixtures: a seeded desk on a real SQLite file, a fixed clock, and settling workers."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.worker import WorkerCancelled

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from tests.conftest import T0

# Everything a stranger can put in a subject or body to attack a terminal or Textual's markup.
HOSTILE = (
    "Re: [/] x \x1b[2J\x1b[31mRED\x1b[0m \x1b]52;c;cHduZWQ=\x07 \x1b]0;pwned\x07 "
    "\x9b31m C1 [@click=app.quit]x[/] [/] \u202eexe.pdf\u202c \x07bell\x7f end"
)
# What must never reach the terminal from the payload.
FORBIDDEN = ("\x1b]52;", "\x1b]0;pwned", "\x9b", "\x1b[2J", "\u202e")

# (email, name, subject, body, priority, owner)
TICKETS: tuple[tuple[str, str, str, str, str, str | None], ...] = (
    (
        "carla@customer.example",
        "Carla Customer",
        "Printer on fire",
        "It smokes.",
        "Urgent",
        "alice",
    ),
    (
        "olav@nordmann.example",
        "Olav Nordmann",
        "VPN drops every hour",
        "Hello,\n\nthe VPN drops.\n\n> On Monday you wrote:\n> try again\n> and again\n"
        "> and again\n> and again\n\nOlav",
        "High",
        "alice",
    ),
    ("ines@firma.example", "Ines Firma", "Invoice charged twice", "See attached.", "Normal", None),
    ("sam@shop.example", "", "Where is my order?", "Order 42.", "Low", None),
    ("kim@corp.example", "Kim Corp", "New laptop for Eva", "Please order one.", "Normal", "bob"),
    ("lee@corp.example", "Lee Corp", "Password reset", "Locked out.", "High", "alice"),
)


def seed(desk: Desk, clock: FixedClock, store: Store) -> list[int]:
    """Deterministic tickets in several states; the clock ends 3 hours after T0."""
    clock.set(T0)
    numbers: list[int] = []
    for email, name, subject, body, priority, owner in TICKETS:
        clock.advance(minutes=7)
        d = desk.register(
            customer_email=email,
            customer_name=name,
            subject=subject,
            body=body,
            priority=priority,
            owner=owner,
            via="phone",
        )
        numbers.append(d.number)
    clock.advance(minutes=5)
    desk.reply(numbers[1], "Could you try the new client?\n\nAlice")
    desk.note(numbers[1], "Probably the old client again.")
    desk.postpone(numbers[4], preset="1w")
    bob = Desk(store, clock, "bob", os_user="tester", options=desk.options)
    bob.take(numbers[2])
    bob.ask(numbers[2], "alice", "Can you check the invoice numbers?")

    def escalate(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        t = s.get(M.Ticket, numbers[0])
        assert t is not None
        t.alert_level = 2

    store.write(escalate)
    clock.set(T0 + timedelta(hours=3))
    return numbers


def make_app(desk: Desk, config: Config, clock: FixedClock) -> HelpdeskApp:
    # No duties: a pass would fire escalations under the fixed clock mid-test (test_live's
    # apps run them).
    return HelpdeskApp(desk=desk, config=config, clock=clock, cursor_blink=False, duties=False)


async def settle(pilot: Pilot[int]) -> None:
    """Let every worker finish and every posted result be handled (no sleeps for timing)."""
    for _ in range(6):
        # An exclusive worker (a ticket's reload) replaced by a newer one is the app working
        # as meant; the next round waits for the newer one.
        with contextlib.suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def shown(screen: Screen[Any], *kinds: str) -> str:
    """The text of a detail screen's conversation blocks of `kinds` (header, history, or a
    message look: customer, reply, note, ask, forward, external, failed; all when none)."""
    from helpdesk_tui.tui.widgets.conversation import Conversation

    return screen.query_one(Conversation).plain_text(*kinds)


def messages_shown(screen: Screen[Any]) -> str:
    """The text of every message block on a detail screen (no header, no history)."""
    from helpdesk_tui.tui.widgets.conversation import Conversation

    return "\n".join(b.content.plain for b in screen.query_one(Conversation).message_blocks())


@pytest.fixture
def seeded(desk: Desk, clock: FixedClock, store: Store) -> list[int]:
    return seed(desk, clock, store)

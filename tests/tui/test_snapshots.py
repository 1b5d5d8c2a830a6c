"""SVG snapshots of every screen at 120x36 and 80x24, from seeded data and a fixed clock.

Update after a deliberate change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the SVGs in tests/tui/__snapshots__ before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from tests.tui.conftest import make_app, settle

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
SnapCompare = Callable[..., bool]


def _steps(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Press keys, settling after each; "type:TEXT" types TEXT and settles once."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            if key.startswith("type:"):
                await pilot.press(*key.removeprefix("type:"))
            else:
                await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    return run


SCREENS = {
    "list_my_open": (),
    "list_all": ("g", "a"),
    "list_tagged_batch": ("g", "a", "space", "space", "semicolon"),
    "detail": ("j", "enter"),
    "compose_reply": ("r", "type:Thanks, we are looking at it.", "enter", "type:Carla"),
    "compose_ask": ("h",),
    "register": ("N",),
    "help": ("question_mark",),
    "postpone": ("p",),
    "goto": ("g",),
    "assign": ("a",),
    "priority": ("P",),
    "merge": ("m",),
    "tag_search": ("T",),
    "compose_forward": ("enter", "f"),
    "compose_note": ("enter", "n"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(
    snap_compare: SnapCompare,
    desk: Desk,
    config: Config,
    clock: FixedClock,
    seeded: list[int],
    screen: str,
    size: tuple[int, int],
) -> None:
    app = make_app(desk, config, clock)
    assert snap_compare(app, terminal_size=size, run_before=_steps(*SCREENS[screen]))

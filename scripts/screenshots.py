"""Write screenshots/*.svg of the app from the demo data (500 tickets, seed 1, a fixed clock).

Run from the project root: `.venv/bin/python scripts/screenshots.py [OUT_DIR]`. The store is a
throwaway SQLite file; the same code and data give the same SVGs, so README images can be
regenerated whenever the screens change.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpdesk_tui.clock import FixedClock  # noqa: E402
from helpdesk_tui.desk.demo import fill_demo  # noqa: E402
from helpdesk_tui.desk.session import open_desk  # noqa: E402
from helpdesk_tui.store.engine import open_store  # noqa: E402
from helpdesk_tui.tui.app import HelpdeskApp  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SIZE = (120, 36)
# name -> keys pressed on a fresh app
SHOTS: dict[str, tuple[str, ...]] = {
    "list-my-open": (),
    "list-unassigned-queue": ("g", "u"),
    "list-all-tagged": ("g", "a", "space", "space", "space", "semicolon"),
    "ticket-detail": ("g", "a", "enter"),
    "compose-reply": ("g", "a", "r", *"Thanks, we are on it.", "enter"),
    "compose-template": ("g", "a", "r", "ctrl+t", "enter"),
    "alerts": ("exclamation_mark",),
    "register-request": ("N",),
    "postpone": ("p",),
    "help": ("question_mark",),
    "search": ("slash", *"printer -status:closed", "enter"),
    "dashboard": ("D",),
}


async def _settle(app: HelpdeskApp, pilot: object) -> None:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    for _ in range(6):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def _shoot(db: str, name: str, keys: tuple[str, ...], out: Path) -> Path:
    clock = FixedClock(NOW)
    handle = open_desk(db=db, actor="alice", clock=clock)
    app = HelpdeskApp(desk=handle.desk, config=handle.config, clock=clock, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(app, pilot)
        app.clear_notifications()
        await _settle(app, pilot)
        path = Path(app.save_screenshot(f"{name}.svg", str(out)))
    handle.store.dispose()
    return path


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="helpdesk-shots-") as tmp:
        # The app keeps drafts in the data dir: shots must not write into the user's own.
        os.environ["HELPDESK_DATA_DIR"] = str(Path(tmp) / "data")
        for name, keys in SHOTS.items():
            # A fresh copy per shot: opening a ticket marks it read, and shots must not leak.
            db = str(Path(tmp) / f"{name}.sqlite3")
            store = open_store(f"sqlite:///{db}")
            fill_demo(store, tickets=500, seed=1, clock=FixedClock(NOW))
            store.dispose()
            path = asyncio.run(_shoot(db, name, keys, out))
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

"""Strips never cache themselves (tui/strips.py): a drawn line is freed when dropped."""

from __future__ import annotations

import gc

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui import strips
from tests.tui.conftest import make_app, settle


def test_whole_width_divide_and_crop_extend_answer_the_strip_without_caching_it() -> None:
    strips.install()
    line = Strip([Segment("hello", Style(bold=True)), Segment(" world")])
    assert line.divide([11]) == [line]
    assert line.crop_extend(0, 11, None) is line
    assert not strips.self_cached(line)
    # Other answers are unchanged and still cached.
    left, right = line.divide([5, 11])
    assert (left.text, right.text) == ("hello", " world")
    assert line.divide([5, 11])[0] is left
    assert line.crop_extend(0, 14, None).text == "hello world   "
    assert line.crop_extend(6, 11, None).text == "world"


def test_a_dropped_line_is_freed_without_the_cycle_collector() -> None:
    strips.install()
    marker = "freed-by-refcount " * 3
    gc.disable()
    try:
        line = Strip([Segment(marker)])
        line.divide([line.cell_length])
        line.crop_extend(0, line.cell_length, None)
        del line
        alive = [o for o in gc.get_objects() if type(o) is Strip and o.text == marker]
    finally:
        gc.enable()
    assert alive == []


async def test_the_app_draws_no_line_that_holds_itself(
    desk: Desk, config: Config, clock: FixedClock, seeded: list[int]
) -> None:
    app = make_app(desk, config, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter")
        await settle(pilot)
        await pilot.press("q", "k")
        await settle(pilot)
        cyclic = [o for o in gc.get_objects() if type(o) is Strip and strips.self_cached(o)]
        assert cyclic == []

"""Full collections wait for idle moments; young ones stay automatic; thresholds come back."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from helpdesk_tui.tui import idle_gc
from helpdesk_tui.tui.idle_gc import IdleCollector


@pytest.fixture
def collector() -> Iterator[IdleCollector]:
    before = gc.get_threshold()
    c = IdleCollector()
    c.start()
    try:
        yield c
    finally:
        c.stop()
        gc.unfreeze()  # the test process runs many things: give its objects back
        assert gc.get_threshold() == before


def _make_cycles() -> None:
    for _ in range(50_000):
        a: list[object] = []
        a.append(a)


def test_no_full_collection_while_keys_arrive_then_one_when_idle(
    collector: IdleCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    young, _middle, oldest = gc.get_threshold()
    assert oldest >= 1_000_000 and young > 0  # full ones deferred, young ones automatic
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    collector.last_input = collector.last_collect = now[0]
    _make_cycles()
    now[0] += 0.5
    collector.touched()  # typing
    assert not collector.tick()
    now[0] += idle_gc.IDLE_AFTER + 0.1  # the agent paused
    assert collector.tick() and collector.collections == 1
    assert not collector.tick()  # nothing new since: nothing to do


def test_a_full_collection_is_forced_after_long_non_stop_typing(
    collector: IdleCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    collector.last_input = collector.last_collect = now[0]
    _make_cycles()
    now[0] += idle_gc.FORCE_AFTER + 1
    collector.touched()
    assert collector.tick()

"""desk/views.py: keyset pages and anchors agree with a plain full sort, on every view."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import Session

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.search import SearchError
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.views import VIEWS, Key, TicketViews, search_view
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from tests.conftest import T0


@pytest.fixture
def many(desk: Desk, clock: FixedClock) -> list[int]:
    """37 tickets; some lose their deadline, so the NULL-last pass is exercised too."""
    numbers = []
    priorities = ["Urgent", "High", "Normal", "Low"]
    for i in range(37):
        clock.set(T0 + timedelta(minutes=3 * (i % 5)))  # equal deadlines: the id breaks ties
        d = desk.register(
            customer_email=f"c{i}@customer.example",
            subject=f"Ticket {i} {'printer' if i % 3 == 0 else 'vpn'}",
            priority=priorities[i % 4],
            owner="alice" if i % 2 else None,
        )
        numbers.append(d.number)
    low = numbers[0::6] + numbers[3::4]  # some unassigned, some mine

    def no_deadline(s: Session) -> None:
        for n in low:
            t = s.get(M.Ticket, n)
            assert t is not None
            t.deadline_at = None

    desk.store.write(no_deadline)
    for n in numbers[:6]:
        desk.postpone(n, preset="1d" if n % 2 else "1w")
    desk.close(numbers[7])
    desk.delete(numbers[8])
    return numbers


def _walk(views: TicketViews, view: str, limit: int) -> list[int]:
    out: list[int] = []
    after: Key | None = None
    while True:
        rows = views.page(view, after, limit)
        out += [r.ticket.number for r in rows]
        if len(rows) < limit:
            return out
        after = rows[-1].key


@pytest.mark.parametrize("view", [v.id for v in VIEWS])
def test_pages_anchors_and_positions_agree(
    store: Store, desk: Desk, many: list[int], view: str
) -> None:
    views = TicketViews(store, "alice")
    whole = [r.ticket.number for r in views.page(view, None, 1000)]
    assert len(whole) == views.count(view)
    assert len(set(whole)) == len(whole)
    for limit in (1, 4, 7):
        assert _walk(views, view, limit) == whole
    stride = 5
    anchors = views.anchors(view, stride)
    assert len(anchors) == len(whole) // stride
    for p, key in enumerate(anchors):
        assert key[2] == whole[(p + 1) * stride - 1]
        after_anchor = views.page(view, key, stride)
        assert [r.ticket.number for r in after_anchor] == whole[(p + 1) * stride :][:stride]
    for i, number in enumerate(whole):
        found = views.key_of(view, number)
        assert found is not None
        assert views.position(view, found) == i


def test_views_hold_what_their_names_say(store: Store, desk: Desk, many: list[int]) -> None:
    views = TicketViews(store, "alice")
    mine = views.page("mine", None, 100)
    assert mine and all(r.ticket.owner == "alice" for r in mine)
    assert all(r.ticket.base_status == "active" for r in mine)
    queue = views.page("queue", None, 100)
    assert queue and all(r.ticket.owner is None for r in queue)
    deadlines = [r.ticket.deadline_at for r in queue if r.ticket.deadline_at is not None]
    assert deadlines == sorted(deadlines)  # closest first
    assert queue[-1].ticket.deadline_at is None  # no deadline sorts last
    assert all(r.ticket.base_status == "postponed" for r in views.page("postponed", None, 100))
    everything = {r.ticket.number for r in views.page("all", None, 100)}
    assert many[8] not in everything  # deleted
    assert many[7] in everything  # closed
    counts = views.counts()
    assert counts["all"] == len(everything)
    printers = sorted(n for n in everything if "printer" in desk.show(n).summary.title)
    assert views.numbers_matching("all", "PRINTER") == printers[::-1]
    assert views.numbers_matching("all", "subject:printer") == printers[::-1]
    assert views.numbers_matching("all", "xylophone") == []


def test_tag_by_search_is_narrowed_to_the_view(desk: Desk, many: list[int]) -> None:
    """T takes the search language of `/`, within the view on screen (mutt's tag-pattern)."""
    views = TicketViews(desk.store, "alice")
    mine = {r.ticket.number for r in views.page("mine", None, 100)}
    found = views.versions_matching("mine", "vpn priority:high")
    expected = {
        n
        for n in mine
        if "vpn" in desk.show(n).summary.title and desk.show(n).summary.priority == "High"
    }
    assert expected and set(found) == expected
    assert found == {n: desk.show(n).version for n in expected}
    assert set(views.versions_matching("all", "vpn priority:high")) > expected
    with pytest.raises(SearchError):
        views.versions_matching("mine", "priority:nosuch")


def test_asked_view_lists_tickets_reassigned_to_me(
    store: Store, desk: Desk, clock: FixedClock, many: list[int]
) -> None:
    bob = Desk(store, clock, "bob", os_user="t", options=desk.options)
    bob.ask(many[10], "alice", "Help?")
    asked = TicketViews(store, "alice").page("asked", None, 10)
    assert [r.ticket.number for r in asked] == [many[10]]
    assert TicketViews(store, "nobody").count("mine") == 0


def test_the_app_module_imports_no_database_libraries() -> None:
    code = (
        "import sys, helpdesk_tui.tui.app, helpdesk_tui.tui.screens.main;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'sqlmodel', 'alembic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_size_and_anchors_in_one_pass_equal_count_and_every_stride_th_key(
    desk: Desk, store: Store, clock: FixedClock, seeded: list[int]
) -> None:
    views = TicketViews(store, "alice", clock=clock, tz=desk.tz)
    for view in ("all", "mine", "queue", search_view("printer"), search_view("xylophone")):
        total, anchors = views.size_and_anchors(view, 2)
        assert total == views.count(view)
        whole = [r.ticket.number for r in views.page(view, None, 1000)]
        assert len(whole) == total
        assert [a[2] for a in anchors] == whole[1::2]


def test_a_search_with_words_sees_a_tag_another_agent_adds(
    store: Store, desk: Desk, clock: FixedClock, many: list[int]
) -> None:
    """A tag changes no message and not the ticket row; the walk's cache still has to go."""
    views = TicketViews(store, "alice", clock=clock)
    view = search_view("printer tag:vip")
    assert views.count(view) == 0
    bob = Desk(store, clock, "bob", os_user="t", options=desk.options)
    bob.tag(many[3], "vip")  # "Ticket 3 printer"
    assert [r.ticket.number for r in views.page(view, None, 10)] == [many[3]]
    bob.tag(many[3], "vip", on=False)
    assert views.count(view) == 0


def test_postponed_rows_carry_their_wake_up_time(desk: Desk, many: list[int]) -> None:
    views = TicketViews(desk.store, "alice")
    rows = views.page("postponed", None, 100)
    assert rows
    for r in rows:
        assert r.ticket.activate_at is not None
        assert r.ticket.activate_at == desk.show(r.ticket.number).activate_at
    assert all(r.ticket.activate_at is None for r in views.page("mine", None, 100))

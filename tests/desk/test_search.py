"""The search language: parsing every term, clear errors, inert hostile input, and the SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.search import (
    SearchError,
    SearchQuery,
    Term,
    delete_search,
    parse_moment,
    parse_query,
    save_search,
    saved_searches,
    search,
)
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.stats import desk_stats, spread
from helpdesk_tui.desk.views import SEARCH_CAP, TicketViews, search_view
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from tests.conftest import T0, make_desk

OSLO = ZoneInfo("Europe/Oslo")

# ---------------------------------------------------------------------------- parsing


def test_free_words_phrases_and_prefixes() -> None:
    q = parse_query('printer "on fire" vpn* -toner')
    assert q.terms == (
        Term("", "printer"),
        Term("", "on fire", phrase=True),
        Term("", "vpn", prefix=True),
        Term("", "toner", negated=True),
    )
    assert [t.fts() for t in q.terms] == ['"printer"', '"on fire"', '"vpn" *', '"toner"']


@pytest.mark.parametrize(
    ("text", "field", "value", "fts"),
    [
        ("from:carla@customer.example", "from", "carla@customer.example", "{sender people} :"),
        ("to:support", "to", "support", "{recipients} :"),
        ('subject:"on fire"', "subject", "on fire", "{subject} :"),
        ("status:open", "status", "open", None),
        ("priority:high", "priority", "high", None),
        ("owner:me", "owner", "me", None),
        ("category:support", "category", "support", None),
        ("tag:vip", "tag", "vip", None),
        ("is:unread", "is", "unread", None),
        ("is:overdue", "is", "overdue", None),
        ("before:2026-11-01", "before", "2026-11-01", None),
        ('after:"2 days ago"', "after", "2 days ago", None),
        ("after:2 days ago", "after", "2 days ago", None),
        ("after:3d", "after", "3d", None),
        ("STATUS:Open", "status", "Open", None),
    ],
)
def test_every_field_term(text: str, field: str, value: str, fts: str | None) -> None:
    (term,) = parse_query(text).terms
    assert (term.field, term.value) == (field, value)
    if fts is None:
        assert not term.is_text
    else:
        assert term.fts().startswith(fts)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("foo:bar", "unknown field 'foo:'"),
        ("Re: printer", "unknown field 're:'"),
        ("status:", "'status:' needs a value"),
        ('owner:""', "'owner:' needs a value"),
        ("is:sleepy", "unknown 'is:sleepy'"),
        ("", "nothing to search for"),
        ("!!! ...", "nothing to search for"),
        ("-printer", "excluded words need a word or field:value"),
        ("-owner:me -printer", "excluded words need a word or field:value"),
        ("x" * 1001, "too long"),
        (" ".join(f"w{i}" for i in range(30)), "too many terms"),
    ],
)
def test_bad_input_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(SearchError, match=r".*") as info:
        parse_query(text)
    assert says in str(info.value)


def test_dates_read_in_the_desk_zone() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday; 13:00 in Oslo
    midnight = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert parse_moment("today", now, OSLO) == midnight
    assert parse_moment("yesterday", now, OSLO) == midnight - timedelta(days=1)
    assert parse_moment("monday", now, OSLO) == midnight - timedelta(days=2)
    assert parse_moment("2 days ago", now, OSLO) == midnight - timedelta(days=2)
    assert parse_moment("3d", now, OSLO) == midnight - timedelta(days=3)
    assert parse_moment("3h", now, OSLO) == now - timedelta(hours=3)
    assert parse_moment("2026-11-01", now, OSLO) == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    with pytest.raises(SearchError, match="cannot read the date"):
        parse_moment("the day after", now, OSLO)


HOSTILE = [
    '"; DROP TABLE ticket; --',
    "' OR 1=1 --",
    "NEAR(printer fire) AND NOT x OR y",
    "printer* ^ {body} : fire",
    'a"b"c "unterminated',
    "\x1b[2J\x1b]52;c;cHduZWQ=\x07 \x00 \u202eexe",
    "subject:(x OR y)",
    "printer)) OR ((1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_inert(store: Store, desk: Desk, clock: FixedClock, text: str) -> None:
    _seed(desk, clock)
    try:
        found = search(store, text, login="alice", now=clock.now(), tz=OSLO)
    except SearchError:
        found = []
    assert isinstance(found, list)
    with store.read() as s:
        assert s.exec(sa.select(sa.func.count()).select_from(M.Ticket)).one()[0] == 5  # type: ignore[call-overload]


# ---------------------------------------------------------------------------- the SQL


def _seed(desk: Desk, clock: FixedClock) -> list[int]:
    clock.set(T0)
    numbers = []
    for email, name, subject, body, priority, owner in (
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
            "VPN drops",
            "The café wifi is fine.",
            "High",
            None,
        ),
        (
            "ines@firma.example",
            "Ines Firma",
            "Invoice twice",
            "Charged twice for the printer",
            "Normal",
            "bob",
        ),
        ("sam@shop.example", "", "Where is my order?", "Order 42.", "Low", None),
        ("kim@corp.example", "Kim Corp", "New laptop", "Please order one.", "Normal", "alice"),
    ):
        clock.advance(days=1)
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
    clock.advance(hours=1)
    desk.reply(numbers[0], "We sent a technician with an extinguisher.")
    desk.note(numbers[1], "Toner for the printer is on order.")
    desk.tag(numbers[2], "billing")
    desk.close(numbers[3])
    return numbers


def _find(store: Store, clock: FixedClock, text: str, login: str = "alice") -> list[int]:
    return search(store, text, login=login, now=clock.now(), tz=OSLO)


def test_search_finds_the_right_tickets_newest_first(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    n = _seed(desk, clock)
    assert _find(store, clock, "printer") == [n[2], n[1], n[0]]  # body, note, subject
    assert _find(store, clock, "extinguisher") == [n[0]]  # a reply
    assert _find(store, clock, '"on fire"') == [n[0]]
    assert _find(store, clock, '"fire on"') == []
    assert _find(store, clock, "cafe") == [n[1]]  # diacritics folded
    assert _find(store, clock, "extin*") == [n[0]]
    assert _find(store, clock, "printer -toner") == [n[2], n[0]]
    # Words match across a ticket's rows: the customer's name and a body word.
    assert _find(store, clock, "carla smokes") == [n[0]]
    assert _find(store, clock, "nordmann") == [n[1]]
    assert _find(store, clock, "from:carla") == [n[0]]
    assert _find(store, clock, "from:ines@firma.example") == [n[2]]
    assert _find(store, clock, "subject:printer") == [n[0]]
    assert _find(store, clock, "to:carla@customer.example") == [n[0]]  # the reply's recipient


def test_field_filters(store: Store, desk: Desk, clock: FixedClock) -> None:
    n = _seed(desk, clock)
    assert _find(store, clock, "status:closed") == [n[3]]
    assert _find(store, clock, "status:open status:closed") == list(reversed(n))
    assert _find(store, clock, "order") == [n[4], n[3], n[1]]  # closed ones too
    assert _find(store, clock, "order -status:closed") == [n[4], n[1]]
    assert _find(store, clock, "order status:closed") == [n[3]]
    assert _find(store, clock, "priority:urgent") == [n[0]]
    assert _find(store, clock, "owner:me") == [n[4], n[0]]
    assert _find(store, clock, "owner:bob") == [n[2]]
    assert _find(store, clock, "owner:none") == [n[3], n[1]]
    assert _find(store, clock, "-owner:none owner:me") == [n[4], n[0]]
    assert _find(store, clock, "category:support") == list(reversed(n))
    assert _find(store, clock, "tag:billing") == [n[2]]
    desk.read(n[0])
    assert _find(store, clock, "is:unread printer") == [n[2], n[1]]
    assert _find(store, clock, "after:2026-11-26") == [n[4], n[3], n[2]]
    assert _find(store, clock, "before:2026-11-26") == [n[1], n[0]]
    clock.advance(days=20)
    assert _find(store, clock, "is:overdue") == [n[4], n[2], n[1], n[0]]
    assert _find(store, clock, "after:2 days ago") == []


NEGATABLE = (
    "owner:alice",
    "owner:me",
    "owner:bob",
    "owner:none",
    "category:support",
    "category:none",
    "priority:high",
    "priority:urgent",
    "tag:billing",
    "status:closed",
    "is:overdue",
    "is:unread",
    "is:unassigned",
    "is:escalated",
    "is:review",
    "before:2026-11-26",
    "after:2026-11-26",
    "from:carla",
    "to:carla@customer.example",
    "subject:printer",
    "printer",
)


@pytest.mark.parametrize("term", NEGATABLE)
def test_a_term_and_its_negation_split_the_tickets(
    store: Store, desk: Desk, clock: FixedClock, term: str
) -> None:
    """X and -X together are every ticket, once: a ticket with an empty owner, category,
    priority or deadline is not X, so it is -X (NOT over NULL is unknown in SQL, not true)."""
    n = _seed(desk, clock)

    def empty_columns(s: Session) -> None:
        vpn = s.get(M.Ticket, n[1])  # already unassigned
        assert vpn is not None
        vpn.category_id = None
        vpn.priority_id = None
        vpn.deadline_at = None
        s.add(vpn)

    store.write(empty_columns)
    clock.advance(days=20)  # the rest are overdue
    # A positive term of another field for every ticket (one of the same field would widen).
    every = "after:2000-01-01" if term.startswith("status:") else "status:open status:closed"
    assert sorted(_find(store, clock, every)) == n
    has = _find(store, clock, f"{every} {term}")
    has_not = _find(store, clock, f"{every} -{term}")
    assert sorted(has + has_not) == n, (has, has_not)


def test_excluded_fields_alone_are_a_filter(store: Store, desk: Desk, clock: FixedClock) -> None:
    n = _seed(desk, clock)
    assert _find(store, clock, "-owner:alice") == [n[3], n[2], n[1]]  # the queue too
    assert _find(store, clock, "-owner:alice -status:closed") == [n[2], n[1]]
    assert _find(store, clock, "-tag:billing -priority:normal") == [n[3], n[1], n[0]]
    assert str(parse_query("-owner:alice -is:unread")) == "-owner:alice -is:unread"


def test_a_required_term_holds_by_itself(store: Store, desk: Desk, clock: FixedClock) -> None:
    """+field:value is not one more alternative of its field: it narrows, whatever else."""
    n = _seed(desk, clock)
    desk.tag(n[0], "billing")
    desk.tag(n[0], "vip")
    desk.tag(n[4], "vip")
    assert _find(store, clock, "tag:vip tag:billing") == [n[4], n[2], n[0]]
    assert _find(store, clock, "tag:vip +tag:billing") == [n[0]]
    assert _find(store, clock, "+tag:vip +tag:billing") == [n[0]]
    assert _find(store, clock, "owner:bob owner:none +owner:me") == []
    assert _find(store, clock, "order status:closed +status:open") == []
    assert _find(store, clock, "order status:open status:closed +status:closed") == [n[3]]
    assert _find(store, clock, "+printer") == _find(store, clock, "printer")
    assert str(parse_query('+status:"Waiting on me" +owner:me')) == (
        '+status:"Waiting on me" +owner:me'
    )


@pytest.mark.parametrize(
    "text", [*HOSTILE, 'vpn "on fire', "vpn* -toner +owner:me after:2 days ago", 'a"b"c']
)
def test_a_parsed_query_reads_back_as_itself(text: str) -> None:
    """The CLI joins its filters to a parsed query by writing it out again."""
    try:
        query = parse_query(text)
    except SearchError:
        return
    again = parse_query(str(query))

    def meaning(q: SearchQuery) -> list[tuple[str, str, bool, bool, bool]]:
        return [(t.field, t.value, t.negated, t.prefix, t.required) for t in q.terms]

    assert meaning(again) == meaning(query)
    assert str(again) == str(query)


def test_unknown_names_raise_clear_errors(store: Store, desk: Desk, clock: FixedClock) -> None:
    _seed(desk, clock)
    for text, says in (
        ("status:sleeping", "unknown status 'sleeping'; known:"),
        ("priority:meh", "unknown priority 'meh'; known: High, Low, Normal, Urgent"),
        ("owner:nobody-here", "no agent with login 'nobody-here'"),
        ("category:nope", "unknown category 'nope'"),
        ("after:someday", "cannot read the date"),
    ):
        with pytest.raises(SearchError) as info:
            _find(store, clock, text)
        assert says in str(info.value)


def test_the_index_follows_changes(store: Store, desk: Desk, clock: FixedClock) -> None:
    n = _seed(desk, clock)

    def rename(s: Session) -> None:
        customer = s.exec(select(M.Customer).where(M.Customer.name == "Kim Corp")).one()
        customer.name = "Kimberly Zebra"
        ticket = s.get(M.Ticket, n[3])
        assert ticket is not None
        ticket.title = "Lost parcel"
        s.add_all([customer, ticket])

    store.write(rename)
    assert _find(store, clock, "zebra") == [n[4]]
    # The ticket's row was "Kim Corp kim@corp.example"; the old words are gone from it (the
    # registration message still has the old sender name, as it should).
    assert _find(store, clock, '"zebra kim"') == [n[4]]
    with store.engine.connect() as conn:
        if store.is_sqlite:
            people = "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?"
            assert conn.exec_driver_sql(people, ('{people} : "corp kim"',)).scalar() == 0
            assert conn.exec_driver_sql(people, ('{people} : "zebra kim"',)).scalar() == 1
        else:  # the ticket's own row (message_id 0), people under weight B
            people = (
                "SELECT count(*) FROM search_row WHERE message_id = 0 "
                "AND doc @@ to_tsquery('helpdesk_search', %s)"
            )
            assert conn.exec_driver_sql(people, ("corp:B <-> kim:B",)).scalar() == 0
            assert conn.exec_driver_sql(people, ("zebra:B <-> kim:B",)).scalar() == 1
    assert _find(store, clock, "parcel status:closed") == [n[3]]
    desk.merge(n[1], n[0])  # the VPN ticket's messages move to #1
    assert _find(store, clock, "cafe") == [n[0]]
    assert _find(store, clock, "cafe status:merged") == []

    def drop(s: Session) -> None:
        s.execute(sa.delete(M.TicketTag))
        s.execute(sa.delete(M.Message).where(M.Message.ticket_id == n[2]))  # type: ignore[arg-type]

    store.write(drop)
    assert _find(store, clock, "charged") == []
    with store.engine.connect() as conn:
        if store.is_sqlite:
            # FTS5's own consistency check passes after inserts, updates, moves and deletes.
            conn.exec_driver_sql(
                "INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 0)"
            )
        else:
            # One row per ticket and per message, each under its current ticket, no strays.
            expected = (
                "SELECT id, 0 FROM ticket UNION ALL SELECT ticket_id, id FROM message ORDER BY 1, 2"
            )
            stored = "SELECT ticket_id, message_id FROM search_row ORDER BY 1, 2"
            assert conn.exec_driver_sql(stored).all() == conn.exec_driver_sql(expected).all()


def test_bulk_inserted_messages_are_indexed(store: Store, desk: Desk, clock: FixedClock) -> None:
    """Intake writes with Core bulk inserts too; the triggers see those."""
    n = _seed(desk, clock)

    def bulk(s: Session) -> None:
        s.connection().execute(
            sa.insert(M.Message),
            [
                {
                    "ticket_id": n[4],
                    "direction": "in",
                    "body_text": f"quasar {i}",
                    "to_addrs": [],
                    "cc_addrs": [],
                    "created_at": clock.now(),
                }
                for i in range(3)
            ],
        )

    store.write(bulk)
    assert _find(store, clock, "quasar") == [n[4]]


def test_views_page_a_search_by_key(store: Store, desk: Desk, clock: FixedClock) -> None:
    n = _seed(desk, clock)
    views = TicketViews(store, "alice", clock=clock, tz=OSLO)
    view = search_view("printer")
    assert views.count(view) == 3
    first = views.page(view, None, 2)
    assert [r.ticket.number for r in first] == [n[2], n[1]]
    rest = views.page(view, first[-1].key, 2)
    assert [r.ticket.number for r in rest] == [n[0]]
    assert views.key_of(view, n[0]) is not None
    assert views.position(view, rest[0].key) == 2
    assert views.count(search_view("status:closed")) == 1  # filters only: plain SQL paging
    assert [t.number for t in views.search("smokes")] == [n[0]]
    assert SEARCH_CAP >= 500


def test_a_view_of_filters_and_excluded_words_runs_on_either_index(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    """No positive word: the excluded ones are probes into search_fts, or search_row."""
    n = _seed(desk, clock)
    views = TicketViews(store, "alice", clock=clock, tz=OSLO)
    view = search_view("status:open -printer -order")
    assert [r.ticket.number for r in views.page(view, None, 10)] == []
    assert views.count(search_view("status:open -printer")) == 1  # the laptop: "order one"
    assert [t.number for t in views.search("status:open -toner -smokes")] == [n[4], n[2]]


def test_saved_searches_are_per_agent(store: Store, desk: Desk, clock: FixedClock) -> None:
    _seed(desk, clock)
    assert saved_searches(store, "alice") == []
    save_search(store, "alice", "Printers", "printer status:open")
    save_search(store, "alice", "Mine", "owner:me")
    kept = save_search(store, "alice", "Printers", "printer")
    assert [(x.name, x.query) for x in kept] == [("Mine", "owner:me"), ("Printers", "printer")]
    assert saved_searches(store, "bob") == []
    with pytest.raises(SearchError):
        save_search(store, "alice", "Bad", "foo:bar")
    with pytest.raises(SearchError):
        save_search(store, "alice", "  ", "printer")
    assert [x.name for x in delete_search(store, "alice", "Mine")] == ["Printers"]
    assert [x.name for x in saved_searches(store, "alice")] == ["Printers"]


# ---------------------------------------------------------------------------- dashboard


def test_spread_is_nearest_rank() -> None:
    assert spread([]).median is None
    assert (spread([5]).median, spread([5]).p90) == (5, 5)
    values = list(range(1, 11))
    assert (spread(values).median, spread(values).p90, spread(values).count) == (5, 9, 10)


def test_desk_stats(store: Store, desk: Desk, clock: FixedClock) -> None:
    n = _seed(desk, clock)
    bob = make_desk(store, clock, "bob")
    bob.reply(n[2], "Refunded.")
    stats = desk_stats(store, clock.now(), OSLO, days=10)
    assert dict(stats.by_status) == {"open": 4, "closed": 1}
    assert dict(stats.by_priority) == {"Urgent": 1, "High": 1, "Normal": 2}
    assert [p for p, _n in stats.by_priority] == ["Urgent", "High", "Normal"]
    assert (stats.active, stats.unassigned) == (4, 1)
    assert stats.overdue == 3  # all but the newest passed their deadline during the days
    assert stats.first_response[7].count == stats.first_response[30].count == 2
    assert stats.time_to_close[30].count == 1
    assert len(stats.incoming) == 10 and sum(stats.incoming) == 5
    assert stats.incoming[-6:] == (0, 1, 1, 1, 1, 1)  # one a day, the last one today

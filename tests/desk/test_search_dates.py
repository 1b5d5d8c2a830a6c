"""Search dates look back and name days in the desk's zone; deadline phrases look ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.search import SearchError, parse_moment, parse_query, search
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.when import WhenError, parse_when
from helpdesk_tui.store.engine import Store

OSLO = ZoneInfo("Europe/Oslo")
# Wednesday 25 November 2026, 13:00 in Oslo (UTC+1).
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        # Days, weeks and months name a day: its start in the desk's zone.
        ("2 days ago", oslo(2026, 11, 23)),
        ("2d", oslo(2026, 11, 23)),
        ("2 d", oslo(2026, 11, 23)),
        ("0d", oslo(2026, 11, 25)),
        ("1w", oslo(2026, 11, 18)),
        ("2 weeks ago", oslo(2026, 11, 11)),
        # A month: Gmail's newer_than:1m and postpone's 1m preset. Summer time ended at 03:00
        # on 25 October, so that midnight was still UTC+2.
        ("1mo", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        ("1m", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        ("1 month ago", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        ("3 months ago", oslo(2026, 8, 25)),
        # Hours and minutes are the clock's.
        ("3h", NOW - timedelta(hours=3)),
        ("90min", NOW - timedelta(minutes=90)),
        ("2 hours ago", NOW - timedelta(hours=2)),
        # Weekdays and times of day: the most recent one, as a search looks back.
        ("monday", oslo(2026, 11, 23)),
        ("mon", oslo(2026, 11, 23)),
        ("monday 9:00", oslo(2026, 11, 23, 9, 0)),
        ("wednesday", oslo(2026, 11, 25)),
        ("wednesday 9:00", oslo(2026, 11, 25, 9, 0)),
        ("wednesday 14:00", oslo(2026, 11, 18, 14, 0)),  # today's is still to come
        ("thursday", oslo(2026, 11, 19)),
        ("last monday", oslo(2026, 11, 23)),
        ("last wednesday", oslo(2026, 11, 18)),
        ("last friday 16:30", oslo(2026, 11, 20, 16, 30)),
        ("9:00", oslo(2026, 11, 25, 9, 0)),
        ("14:00", oslo(2026, 11, 24, 14, 0)),
        ("today", oslo(2026, 11, 25)),
        ("yesterday", oslo(2026, 11, 24)),
        ("yesterday 15:00", oslo(2026, 11, 24, 15, 0)),
        ("2026-11-01", oslo(2026, 11, 1)),
        ("2026-12-01 08:30", oslo(2026, 12, 1, 8, 30)),
    ],
)
def test_search_dates_look_back(phrase: str, expected: datetime) -> None:
    assert parse_moment(phrase, NOW, OSLO) == expected


def test_a_month_back_from_the_31st_is_the_end_of_a_shorter_month() -> None:
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert parse_moment("1mo", now, OSLO) == oslo(2026, 2, 28)


@pytest.mark.parametrize("phrase", ["the day after", "last week", "last", "5 fortnights"])
def test_unreadable_search_dates_say_what_works(phrase: str) -> None:
    with pytest.raises(SearchError, match="cannot read the date") as info:
        parse_moment(phrase, NOW, OSLO)
    assert "1mo" in str(info.value) and "last friday" in str(info.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("after:1 month ago", "1 month ago"),
        ("after:last friday", "last friday"),
        ("after:monday 9:00", "monday 9:00"),
        ("before:2026-12-01 08:30", "2026-12-01 08:30"),
    ],
)
def test_an_unquoted_date_phrase_is_one_term(text: str, value: str) -> None:
    (term,) = parse_query(text).terms
    assert term.value == value


def test_a_number_after_a_date_is_still_a_word() -> None:
    terms = parse_query("after:monday 42 printer").terms
    assert [(t.field, t.value) for t in terms] == [("after", "monday"), ("", "42"), ("", "printer")]


def test_relative_days_agree_with_the_date_they_name(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    """The audit's case: a ticket at 00:33 on the day two days ago is after:2d, as it is
    after:<that date>; one seconds before that midnight is not."""
    clock.set(oslo(2026, 11, 22, 23, 59))
    late = desk.register(customer_email="a@c.example", subject="Late").number
    clock.set(oslo(2026, 11, 23, 0, 33))
    early = desk.register(customer_email="b@c.example", subject="Early").number
    clock.set(NOW)

    def find(text: str) -> list[int]:
        return search(store, text, login="alice", now=clock.now(), tz=OSLO)

    assert find("after:2026-11-23") == [early]
    assert find("after:2d") == find('after:"2 days ago"') == find("after:2 days ago") == [early]
    assert find("before:2d") == [late]
    assert find("after:monday") == find("after:last monday") == [early]
    assert find("after:1m") == find("after:1mo") == [early, late]


# ---------------------------------------------------------------------------- deadlines


def test_deadline_phrases_still_look_ahead() -> None:
    assert parse_when("monday", NOW, OSLO) == oslo(2026, 11, 30, 9, 0)
    assert parse_when("monday 9:00", NOW, OSLO) == oslo(2026, 11, 30, 9, 0)
    assert parse_when("next monday", NOW, OSLO) == oslo(2026, 11, 30, 9, 0)
    assert parse_when("next wednesday", NOW, OSLO) == oslo(2026, 12, 2, 9, 0)
    assert parse_when("14:00", NOW, OSLO) == oslo(2026, 11, 25, 14, 0)
    assert parse_when("9:00", NOW, OSLO) == oslo(2026, 11, 26, 9, 0)
    assert parse_when("today", NOW, OSLO) == oslo(2026, 11, 25, 17, 0)
    assert parse_when("in 2 days", NOW, OSLO) == NOW + timedelta(days=2)
    assert parse_when("in 90min", NOW, OSLO) == NOW + timedelta(minutes=90)
    assert parse_when("in 1 month", NOW, OSLO) == oslo(2026, 12, 25, 13, 0)
    assert parse_when("in 3mo", NOW, OSLO) == oslo(2027, 2, 25, 13, 0)
    assert parse_when("last friday", NOW, OSLO) == oslo(2026, 11, 20, 9, 0)


def test_a_bare_m_in_a_deadline_is_refused_not_guessed() -> None:
    """'in 5m' meant five minutes; postpone's 1m preset is a month. Neither is guessed."""
    with pytest.raises(WhenError, match="minutes or months") as info:
        parse_when("in 5m", NOW, OSLO)
    assert "90min" in str(info.value) and "1mo" in str(info.value)
    with pytest.raises(WhenError, match="takes a weekday"):
        parse_when("next week", NOW, OSLO)

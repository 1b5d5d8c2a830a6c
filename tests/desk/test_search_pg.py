"""PostgreSQL's search index (search_pg.py, migration 0003) splits and folds as FTS5 does."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.search import search
from helpdesk_tui.desk.search_pg import tsquery_text
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store.engine import Store


def test_tsquery_text_quotes_every_token_and_labels_the_last_for_a_prefix() -> None:
    assert tsquery_text(["on", "fire"], "", False) == "'on' <-> 'fire'"
    assert tsquery_text(["carla", "exa"], "B", True) == "'carla':B <-> 'exa':*B"


def _find(store: Store, clock: FixedClock, text: str) -> list[int]:
    return search(store, text, login="alice", now=clock.now(), tz=ZoneInfo("UTC"))


# Both backends: these are the promises the PostgreSQL index has to keep as FTS5 keeps them.
def test_addresses_split_into_words_and_diacritics_fold(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    a = desk.register(customer_email="bjørn.sæther@fjord.example", subject="Kjøleskap i brann")
    b = desk.register(customer_email="zoë@crème.example", subject="Façade_repair needed")
    assert _find(store, clock, "from:bjørn") == [a.number]
    assert _find(store, clock, "from:fjord") == [a.number]
    assert _find(store, clock, "from:sæther") == [a.number]
    assert _find(store, clock, "creme") == [b.number]
    assert _find(store, clock, "facade") == [b.number]
    assert _find(store, clock, "repair") == [b.number]
    assert _find(store, clock, "subject:fjord") == []
    assert _find(store, clock, "kjøle*") == [a.number]
    assert _find(store, clock, '"i brann"') == [a.number]
    assert _find(store, clock, "-brann from:example") == [b.number]


def test_letters_of_their_own_match_as_written_and_on_postgresql_also_folded(
    store: Store, desk: Desk, clock: FixedClock
) -> None:
    """What the README promises: accents fold on both (łodz finds łódź); ø æ ß ł đ are letters
    of their own to SQLite's unicode61 (no mark to drop), while PostgreSQL's unaccent folds
    them too."""
    n = desk.register(customer_email="a@b.example", subject="Møterom ærlig Straße Łódź Đakovo")
    for written in ("møterom", "MØTEROM", "ærlig", "straße", "łódź", "đakovo", "łodz"):
        assert _find(store, clock, written) == [n.number], written
    folded = [_find(store, clock, w) for w in ("moterom", "aerlig", "strasse", "lodz", "dakovo")]
    assert folded == ([[]] * 5 if store.is_sqlite else [[n.number]] * 5)


@pytest.mark.postgresql_only("checks the PostgreSQL text search configuration itself")
def test_the_configuration_folds_with_unaccent(store: Store) -> None:
    with store.engine.connect() as conn:
        vector = conn.exec_driver_sql(
            "SELECT to_tsvector('helpdesk_search', 'Crème BRÛLÉE')::text"
        ).scalar()
    assert vector == "'brulee':2 'creme':1"

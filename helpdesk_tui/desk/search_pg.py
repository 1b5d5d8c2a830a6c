"""The search language on PostgreSQL: terms to tsquery over `search_row` (migration 0003).

Same meaning as on SQLite: a ticket matches when each word matches one of its rows (a message,
or the ticket's own row of subject and customers). Each positive word is a semi-join against
the GIN index over the stored tsvectors and each negated one a per-ticket NOT EXISTS; the
planner, which keeps statistics on how common each word is, picks the order, so no rarest-word
walk is needed here. Field restrictions are tsvector weights: A subject, B sender and people,
C recipients, D body.

Every user word reaches PostgreSQL as a bound parameter, inside a tsquery string built only from
`\\w` tokens in single quotes, so no user text is ever SQL or tsquery syntax.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Session, col, select

from helpdesk_tui.desk.search import Compiled, Term, _tokens
from helpdesk_tui.store import models as M

TEXT_CONFIG = "helpdesk_search"
# The tsvector weights (see migration 0003) that each text field searches; "" searches all.
WEIGHTS = {"": "", "from": "B", "to": "C", "subject": "A"}

_row = sa.table(
    "search_row",
    sa.column("ticket_id", sa.Integer),
    sa.column("message_id", sa.Integer),
    sa.column("doc", pg.TSVECTOR),
)


def tsquery_text(tokens: list[str], weight: str, prefix: bool) -> str:
    """A phrase of tokens as tsquery text: 'a':B <-> 'b':*B. Tokens are \\w only."""
    parts = []
    for i, token in enumerate(tokens):
        label = ("*" if prefix and i == len(tokens) - 1 else "") + weight
        quoted = "'" + token.replace("'", "''") + "'"
        parts.append(f"{quoted}:{label}" if label else quoted)
    return " <-> ".join(parts)


def _index_tokens(value: str) -> list[str]:
    # The index splits at every ASCII punctuation mark, underscore included (as unicode61 does).
    return [part for word in _tokens(value) for part in word.split("_") if part]


def _matches(term: Term) -> sa.ColumnElement[bool]:
    """Whether a search_row row matches one text term."""
    tokens = _index_tokens(term.value)
    if not tokens:
        return sa.false()
    text = tsquery_text(tokens, WEIGHTS[term.field], term.prefix)
    query = sa.func.to_tsquery(
        sa.literal(TEXT_CONFIG, type_=pg.REGCONFIG), sa.bindparam(None, text, type_=sa.String)
    )
    return _row.c.doc.bool_op("@@")(query)


def has_row(term: Term) -> sa.ColumnElement[bool]:
    """Whether the ticket in the outer query has a row matching `term` (negated words)."""
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(_row)
        .where(_row.c.ticket_id == col(M.Ticket.id), _matches(term))
    )


def matching_ids(
    s: Session, compiled: Compiled, *, limit: int, before: int | None = None
) -> list[int]:
    """Up to `limit` ticket numbers (below `before`, if given) that match, newest first."""
    t = M.Ticket
    conds = [compiled.without_words()]
    for term in compiled.match:
        conds.append(col(t.id).in_(sa.select(_row.c.ticket_id).where(_matches(term))))
    if before is not None:
        conds.append(col(t.id) < before)
    rows = s.exec(select(t.id).where(*conds).order_by(col(t.id).desc()).limit(limit)).all()
    return [int(i) for i in rows if i is not None]

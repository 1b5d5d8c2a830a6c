"""What the screens show changed, as opposed to bookkeeping (presence, lease heartbeats).

The store's change token moves on every commit, including the soft writes that presence and the
worker lease make every few seconds from every session; reloading every screen for those would
make N agents reload N times as often. Every change a screen shows adds a row to one of these
tables (an action writes an audit event, mail adds a message, escalation an event and an alert),
so their largest ids together tell, in four index look-ups, whether to reload.
"""

from __future__ import annotations

import sqlalchemy as sa

from helpdesk_tui.store.engine import Store

_MARK = sa.text(
    "SELECT (SELECT max(id) FROM ticketevent), (SELECT max(id) FROM message),"
    " (SELECT max(id) FROM ticket), (SELECT max(id) FROM alert)"
)


def content_mark(store: Store) -> tuple[int, ...]:
    """Moves whenever a ticket, message, event or alert was added since the last call."""
    with store.read() as s:
        row = s.connection().execute(_MARK).one()
    return tuple(int(v or 0) for v in row)


def content_mark_or_none(store: Store) -> tuple[int, ...] | None:
    """The mark, or None (read as "changed", which is always safe) if it cannot be read."""
    try:
        return content_mark(store)
    except Exception:  # noqa: BLE001 - unknown means reload
        return None

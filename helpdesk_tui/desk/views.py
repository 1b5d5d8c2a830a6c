"""Read-side queries for the ticket list: counts, keyset pages and page anchors, never OFFSET.

The list in the app is virtual: it asks for a page at a time. Paging is by key (the view's sort
columns plus the ticket number), because OFFSET degrades with depth (12 ms at offset 5,000 on
these machines). To jump anywhere (the scrollbar, `G`) without OFFSET, `anchors()` returns the
key of every `stride`-th row in one window-function pass that SQLite runs in C; a page then
starts after its anchor, so any row is one indexed query away, as toolong's background line
scan makes any line of a huge log one seek away.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.desk.records import TicketSummary
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store

if TYPE_CHECKING:
    from helpdesk_tui.clock import Clock
    from helpdesk_tui.desk.search import Compiled

# A key orders rows inside a view: (0 when the sort column has a value, else 1; the value;
# the ticket number). Views sorted by number alone leave the value None.
Key = tuple[int, Any, int]


@dataclass(frozen=True)
class ViewSpec:
    """A sidebar view: what it shows and in which order."""

    id: str
    label: str
    letter: str  # `g` then this letter switches to the view
    order: str  # deadline | activate | newest


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("mine", "My open", "m", "deadline"),
    ViewSpec("queue", "Unassigned queue", "u", "deadline"),
    ViewSpec("asked", "Asked for help", "h", "newest"),
    ViewSpec("escalated", "Escalated", "e", "deadline"),
    ViewSpec("postponed", "Postponed", "p", "activate"),
    ViewSpec("review", "Needs review", "r", "newest"),
    ViewSpec("all", "All", "a", "newest"),
)
VIEW_BY_ID = {v.id: v for v in VIEWS}
# A search is a view too: "search:" + the query, newest first. Queries with words list the
# newest SEARCH_CAP matches (the full-text walk stops there); filter-only queries list all.
SEARCH_PREFIX = "search:"
SEARCH_CAP = 500


def search_view(query: str) -> str:
    """The view id of a search."""
    return SEARCH_PREFIX + query


def is_search(view: str) -> bool:
    return view.startswith(SEARCH_PREFIX)


def _visible(bases: dict[str, list[int]]) -> list[int]:
    """Statuses of tickets that are still themselves (not deleted, not merged away): IN over
    these rather than NOT IN, so SQLite can use the status indexes."""
    return [sid for base, ids in bases.items() if base not in ("deleted", "merged") for sid in ids]


@dataclass(frozen=True)
class ListRow:
    """One row of the list with the key that pages after it."""

    key: Key
    ticket: TicketSummary


class TicketViews:
    """The list's queries for one acting agent; safe to call from worker threads."""

    def __init__(
        self,
        store: Store,
        login: str | None,
        *,
        clock: Clock | None = None,
        tz: ZoneInfo | None = None,
    ) -> None:
        self.store = store
        self.login = login
        self._me: int | None = None
        self._bases: dict[str, list[int]] | None = None
        if clock is None:
            from helpdesk_tui.clock import SystemClock

            clock = SystemClock()
        self.clock = clock
        self.tz = tz or ZoneInfo("UTC")
        # view -> (change stamp, matching numbers): every query of a load shares one walk.
        self._found: dict[str, tuple[tuple[Any, ...], list[int]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup

    def _setup(self, s: Session) -> tuple[int | None, dict[str, list[int]]]:
        if self._bases is None:
            bases: dict[str, list[int]] = {}
            for sid, base in s.exec(select(M.Status.id, M.Status.base)).all():
                bases.setdefault(base, []).append(sid)  # type: ignore[arg-type]
            self._bases = bases
            if self.login:
                self._me = s.exec(select(M.Agent.id).where(M.Agent.login == self.login)).first()
        return self._me, self._bases

    def forget(self) -> None:
        """Statuses or agents changed (a config reload): look them up again."""
        self._bases = None
        self._me = None

    def _filter(self, s: Session, view: str) -> sa.ColumnElement[bool]:
        me, bases = self._setup(s)
        t = M.Ticket
        active = col(t.status_id).in_(bases.get("active", []))
        if view == "mine":
            return sa.and_(col(t.owner_id) == me, active) if me else sa.false()
        if view == "queue":
            return sa.and_(col(t.owner_id).is_(None), active)
        if view == "asked":
            if not me:
                return sa.false()
            asked = select(M.Alert.ticket_id).where(M.Alert.agent_id == me, M.Alert.kind == "asked")
            live = bases.get("active", []) + bases.get("postponed", [])
            return sa.and_(col(t.owner_id) == me, col(t.status_id).in_(live), col(t.id).in_(asked))
        if view == "escalated":
            return sa.and_(col(t.alert_level) > 0, active)
        if view == "postponed":
            return col(t.status_id).in_(bases.get("postponed", []))
        visible = _visible(bases)
        if view == "review":
            return sa.and_(col(t.needs_review).is_(True), col(t.status_id).in_(visible))
        if view == "all":
            return col(t.status_id).in_(visible)
        if is_search(view):
            return self._search_filter(s, view)
        raise KeyError(f"unknown view {view!r}")

    def compile(self, s: Session, view: str) -> Compiled:
        """A search view's query against this store (SearchError when it cannot run)."""
        from helpdesk_tui.desk.search import compile_query, parse_query

        me, _bases = self._setup(s)
        query = parse_query(view.removeprefix(SEARCH_PREFIX))
        return compile_query(s, query, me=me, now=self.clock.now(), tz=self.tz)

    def _search_filter(self, s: Session, view: str) -> sa.ColumnElement[bool]:
        from helpdesk_tui.desk.search import matching_ids

        compiled = self.compile(s, view)
        if not compiled.match:
            return compiled.without_words()
        # Any change to tickets or messages, or a new minute (is:overdue), walks again. Not
        # every action touches the ticket row (a tag does not), but every one logs an event.
        # Each max is one seek on an index (the rowid, ix_ticket_updated_at): about 3 us
        # together at 100,000 tickets and 750,000 events, in one round trip.
        newest = sa.select(
            sa.select(sa.func.max(M.Message.id)).scalar_subquery(),
            sa.select(sa.func.max(M.Ticket.updated_at)).scalar_subquery(),
            sa.select(sa.func.max(M.TicketEvent.id)).scalar_subquery(),
        )
        stamp = (*s.execute(newest).one(), self.clock.now().replace(second=0, microsecond=0))
        with self._lock:
            cached = self._found.get(view)
        if cached is not None and cached[0] == stamp:
            ids = cached[1]
        else:
            ids = matching_ids(s, compiled, limit=SEARCH_CAP)
            with self._lock:
                self._found.pop(view, None)
                self._found[view] = (stamp, ids)
                while len(self._found) > 8:
                    self._found.pop(next(iter(self._found)))
        return col(M.Ticket.id).in_(ids) if ids else sa.false()

    @staticmethod
    def _sort_column(view: str) -> Any:
        spec = VIEW_BY_ID.get(view)
        order = spec.order if spec is not None else "newest"
        if order == "deadline":
            return col(M.Ticket.deadline_at)
        if order == "activate":
            return col(M.Ticket.activate_at)
        return None

    # ------------------------------------------------------------------ queries

    def count(self, view: str) -> int:
        with self.store.read() as s:
            return self._count(s, self._filter(s, view))

    def counts(self) -> dict[str, int]:
        """Every view's size, for the sidebar."""
        with self.store.read() as s:
            return {v.id: self._count(s, self._filter(s, v.id)) for v in VIEWS}

    @staticmethod
    def _count(s: Session, where: sa.ColumnElement[bool]) -> int:
        return int(s.exec(select(sa.func.count()).select_from(M.Ticket).where(where)).one())

    def page(self, view: str, after: Key | None, limit: int) -> list[ListRow]:
        """Up to `limit` rows that follow `after` (None: from the top)."""
        with self.store.read() as s:
            keys = self._keys_after(s, view, after, limit)
            return self._rows(s, keys)

    def _keys_after(self, s: Session, view: str, after: Key | None, limit: int) -> list[Key]:
        where = self._filter(s, view)
        t = M.Ticket
        c = self._sort_column(view)
        if c is None:
            q = select(t.id).where(where)
            if after is not None:
                q = q.where(col(t.id) < after[2])
            ids = s.exec(q.order_by(col(t.id).desc()).limit(limit)).all()
            return [(0, None, int(i)) for i in ids if i is not None]
        # Two index-friendly passes instead of ORDER BY (c IS NULL): valued rows, then the rest.
        keys: list[Key] = []
        if after is None or after[0] == 0:
            valued = sa.select(c, col(t.id)).where(where, c.is_not(None))
            if after is not None:
                valued = valued.where(
                    sa.or_(c > after[1], sa.and_(c == after[1], col(t.id) > after[2]))
                )
            for value, tid in s.execute(valued.order_by(c, col(t.id)).limit(limit)).all():
                keys.append((0, value, int(tid)))
        if len(keys) < limit:
            empty = sa.select(col(t.id)).where(where, c.is_(None))
            if after is not None and after[0] == 1:
                empty = empty.where(col(t.id) > after[2])
            rest = s.scalars(empty.order_by(col(t.id)).limit(limit - len(keys))).all()
            keys.extend((1, None, int(tid)) for tid in rest if tid is not None)
        return keys

    def anchors(self, view: str, stride: int) -> list[Key]:
        """Keys of rows stride-1, 2*stride-1, ...: page p (p >= 1) starts after anchors[p-1]."""
        return self.size_and_anchors(view, stride)[1]

    def size_and_anchors(self, view: str, stride: int) -> tuple[int, list[Key]]:
        """The view's size and its anchors in one pass over its rows (a search view's filter
        is resolved once, and the count comes with the numbering instead of a query of its
        own): what opening a view needs before its first page."""
        with self.store.read() as s:
            where = self._filter(s, view)
            t = M.Ticket
            c = self._sort_column(view)
            if c is None:
                order: list[Any] = [col(t.id).desc()]
                cols: list[Any] = [sa.literal(0).label("nr"), sa.null().label("v"), col(t.id)]
            else:
                nr = sa.case((c.is_(None), 1), else_=0)
                order = [nr, c, col(t.id)]
                cols = [nr.label("nr"), c.label("v"), col(t.id)]
            rn = sa.func.row_number().over(order_by=order).label("rn")
            total = sa.func.count().over().label("total")
            inner = sa.select(*cols, rn, total).where(where).subquery()
            rows = s.execute(
                sa.select(inner.c.nr, inner.c.v, inner.c.id, inner.c.rn, inner.c.total)
                # Every stride-th row, and the last one, which brings the total.
                .where(sa.or_(inner.c.rn % stride == 0, inner.c.rn == inner.c.total))
                .order_by(inner.c.rn)
            ).all()
            if not rows:
                return 0, []
            anchors = [(int(nr), v, int(tid)) for nr, v, tid, n, _ in rows if n % stride == 0]
            return int(rows[-1][4]), anchors

    def position(self, view: str, key: Key) -> int:
        """How many rows of the view come before `key` (an indexed count, not a scan of rows)."""
        with self.store.read() as s:
            where = self._filter(s, view)
            t = M.Ticket
            c = self._sort_column(view)
            if c is None:
                before: sa.ColumnElement[bool] = col(t.id) > key[2]
            elif key[0] == 0:
                before = sa.and_(
                    c.is_not(None), sa.or_(c < key[1], sa.and_(c == key[1], col(t.id) < key[2]))
                )
            else:
                before = sa.or_(c.is_not(None), col(t.id) < key[2])
            return self._count(s, sa.and_(where, before))

    def key_of(self, view: str, number: int) -> Key | None:
        """The key of a ticket in a view (None when the view does not hold it)."""
        with self.store.read() as s:
            where = self._filter(s, view)
            c = self._sort_column(view)
            t = M.Ticket
            if c is None:
                found = s.exec(select(t.id).where(where, col(t.id) == number)).first()
                return (0, None, number) if found is not None else None
            row = s.exec(select(c, t.id).where(where, col(t.id) == number)).first()
            if row is None:
                return None
            return (0 if row[0] is not None else 1, row[0], number)

    def numbers_matching(self, view: str, query: str, limit: int = 10_000) -> list[int]:
        """Tickets of the view that a search finds (mutt's tag-pattern), newest first."""
        return list(self.versions_matching(view, query, limit))

    def versions_matching(self, view: str, query: str, limit: int = 10_000) -> dict[int, int]:
        """numbers_matching with each ticket's version: what a batch on them expects.

        `query` is the search language of `/` (SearchError when it cannot run), narrowed to
        the view on screen: `T from:acme.example is:unread` in "My open" tags just those.
        """
        with self.store.read() as s:
            where = sa.and_(self._filter(s, view), self._filter(s, search_view(query)))
            q = (
                select(M.Ticket.id, M.Ticket.version)
                .where(where)
                .order_by(col(M.Ticket.id).desc())
                .limit(limit)
            )
            return {int(i): int(v) for i, v in s.exec(q).all() if i is not None}

    # ------------------------------------------------------------------ rows

    def _rows(self, s: Session, keys: Sequence[Key]) -> list[ListRow]:
        if not keys:
            return []
        ids = [k[2] for k in keys]
        t, st, pr, ag, cat = M.Ticket, M.Status, M.Priority, M.Agent, M.Category
        first_customer = (
            select(
                sa.func.coalesce(
                    sa.func.nullif(M.Customer.name, ""),
                    select(M.CustomerAddress.address)
                    .where(M.CustomerAddress.customer_id == M.Customer.id)
                    .order_by(col(M.CustomerAddress.id))
                    .limit(1)
                    .scalar_subquery(),
                )
            )
            .join(M.TicketCustomer, col(M.TicketCustomer.customer_id) == col(M.Customer.id))
            .where(col(M.TicketCustomer.ticket_id) == col(t.id))
            .order_by(col(M.Customer.id))
            .limit(1)
            .scalar_subquery()
        )
        tags = (
            # group_concat on SQLite, string_agg on PostgreSQL.
            select(sa.func.aggregate_strings(col(M.TicketTag.tag), " "))
            .where(col(M.TicketTag.ticket_id) == col(t.id))
            .scalar_subquery()
        )
        columns: list[Any] = [
            t.id,
            t.title,
            st.name,
            st.base,
            pr.name,
            pr.rank,
            ag.login,
            first_customer,
            cat.name,
            t.created_at,
            t.updated_at,
            t.deadline_at,
            t.read_status,
            t.alert_level,
            t.message_count,
            t.needs_review,
            tags,
            t.version,
            t.activate_at,
        ]
        q = (
            sa.select(*columns)
            .select_from(t)
            .join(st, col(st.id) == col(t.status_id))
            .outerjoin(pr, col(pr.id) == col(t.priority_id))
            .outerjoin(ag, col(ag.id) == col(t.owner_id))
            .outerjoin(cat, col(cat.id) == col(t.category_id))
            .where(col(t.id).in_(ids))
        )
        by_id: dict[int, TicketSummary] = {}
        for row in s.execute(q).all():
            (tid, title, sname, base, pname, prank, login, cust, cname) = row[:9]
            (created, updated, deadline, read, level, count, review, tag_text, version) = row[9:18]
            by_id[int(tid)] = TicketSummary(
                number=int(tid),
                title=title,
                status=sname,
                base_status=base,
                priority=pname,
                priority_rank=int(prank or 0),
                owner=login,
                customer=cust or "",
                category=cname,
                created_at=created,
                updated_at=updated,
                deadline_at=deadline,
                read_status=read,
                alert_level=int(level),
                message_count=int(count),
                needs_review=bool(review),
                tags=tuple(sorted((tag_text or "").split())),
                version=int(version),
                activate_at=row[18],
            )
        return [ListRow(k, by_id[k[2]]) for k in keys if k[2] in by_id]

    def merge_candidates(self, numbers: Sequence[int], limit: int = 10) -> list[TicketSummary]:
        """Tickets a merge of `numbers` most likely wants: the same customers' other tickets
        that can take a merge (not deleted or merged), those still active first, newest first.

        A customer who writes again instead of replying makes the duplicate a merge is for.
        """
        if not numbers:
            return []
        with self.store.read() as s:
            _me, bases = self._setup(s)
            t, tc = M.Ticket, M.TicketCustomer
            customers = select(tc.customer_id).where(col(tc.ticket_id).in_(list(numbers)))
            shared = select(tc.ticket_id).where(col(tc.customer_id).in_(customers))
            inactive = sa.case((col(t.status_id).in_(bases.get("active", [])), 0), else_=1)
            q = (
                select(t.id)
                .where(
                    col(t.id).in_(shared),
                    col(t.id).not_in(list(numbers)),
                    col(t.status_id).in_(_visible(bases)),
                )
                .order_by(inactive, col(t.id).desc())
                .limit(limit)
            )
            keys = [(0, None, int(i)) for i in s.exec(q).all() if i is not None]
            return [r.ticket for r in self._rows(s, keys)]

    def search(self, query: str, limit: int = 200) -> list[TicketSummary]:
        """The newest `limit` tickets a query matches (SearchError names what is wrong)."""
        return [r.ticket for r in self.page(search_view(query), None, limit)]

    def choices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Priority names (most urgent first) and category names, for the pickers."""
        with self.store.read() as s:
            priorities = s.exec(select(M.Priority.name).order_by(col(M.Priority.rank).desc())).all()
            categories = s.exec(select(M.Category.name).order_by(col(M.Category.id))).all()
            return tuple(priorities), tuple(categories)

"""The desk rules on a real SQLite file: every action, its event, and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.errors import Conflict, InvalidAction, NotFound, UnknownAgent
from helpdesk_tui.desk.records import TicketDetail
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.mail.msgid import parse_message_id
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from tests.conftest import make_desk


def _new(desk: Desk, **kw: object) -> TicketDetail:
    args: dict[str, object] = {
        "customer_email": "Carla@Customer.example",
        "customer_name": "Carla Customer",
        "subject": "Printer on fire",
        "body": "It smokes.",
    }
    args.update(kw)
    return desk.register(**args)  # type: ignore[arg-type]


def _events(d: TicketDetail) -> list[str]:
    return [e.action for e in d.events]


# --------------------------------------------------------------------------- agents


def test_first_agent_bootstraps_then_only_agents_may_add(store: Store, clock: FixedClock) -> None:
    stranger = make_desk(store, clock, "mallory")
    stranger.add_agent("root1", "First", "first@desk.example")
    with pytest.raises(UnknownAgent, match="helpdesk agent add mallory"):
        stranger.add_agent("mallory", "Mallory", "m@desk.example")
    first = make_desk(store, clock, "root1")
    assert first.add_agent("two", "Two", "two@desk.example").login == "two"
    with pytest.raises(InvalidAction, match="exists already"):
        first.add_agent("two", "Two", "two@desk.example")
    with pytest.raises(InvalidAction, match="not a valid login"):
        first.add_agent("bad login", "X", "x@desk.example")


def test_unknown_actor_is_refused_with_how_to_be_added(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    with pytest.raises(UnknownAgent, match="helpdesk agent add zed"):
        _new(make_desk(store, clock, "zed"))


def test_disabled_agent_cannot_act(desk: Desk, store: Store, clock: FixedClock) -> None:
    desk.set_agent_active("bob", False)
    with pytest.raises(UnknownAgent):
        _new(make_desk(store, clock, "bob"))
    with pytest.raises(InvalidAction, match="not active"):
        _new(desk, owner="bob")


# --------------------------------------------------------------------------- register and read


def test_register_phone_request(desk: Desk, clock: FixedClock) -> None:
    d = _new(desk, priority="High")
    s = d.summary
    assert s.status == "open" and s.base_status == "active"
    assert s.priority == "High" and s.owner is None and s.category == "Support"
    assert s.read_status == "red"
    assert d.customers[0].addresses == ("carla@customer.example",)
    assert d.customers[0].name == "Carla Customer"
    assert [m.kind for m in d.messages] == ["phone"]
    assert d.messages[0].thread_evidence.startswith("registered by alice")
    assert s.deadline_at == clock.now() + timedelta(hours=1)  # High: 60 working minutes
    assert _events(d) == ["create"]
    assert d.events[0].os_user == "tester" and d.events[0].agent == "alice"


def test_register_reuses_customer_by_address(desk: Desk) -> None:
    a = _new(desk)
    b = _new(desk, customer_email="carla@customer.example", customer_name="")
    assert a.customers[0].id == b.customers[0].id


def test_register_refuses_bad_input(desk: Desk) -> None:
    with pytest.raises(InvalidAction, match="not an e-mail address"):
        _new(desk, customer_email="nobody")
    with pytest.raises(InvalidAction, match="subject"):
        _new(desk, subject="  ")
    with pytest.raises(NotFound, match="no priority named 'Whenever'"):
        _new(desk, priority="Whenever")
    with pytest.raises(NotFound, match="no category"):
        _new(desk, category="Nope")
    with pytest.raises(NotFound, match="no agent"):
        _new(desk, owner="ghost")


def test_deadline_counts_working_hours(desk: Desk, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 27, 16, 0, tzinfo=UTC))  # Friday 16:00, desk zone UTC
    d = _new(desk, priority="Normal")  # 120 working minutes
    assert d.summary.deadline_at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_round_robin_and_fewest_active(desk: Desk, store: Store) -> None:
    def setup(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        cat = s.exec(select(M.Category).where(M.Category.name == "Support")).one()
        cat.assign_method = "round_robin"
        for login in ("alice", "bob"):
            agent = s.exec(select(M.Agent).where(M.Agent.login == login)).one()
            assert cat.id is not None and agent.id is not None
            s.add(M.CategoryAgent(category_id=cat.id, agent_id=agent.id))

    store.write(setup)
    owners = [_new(desk).summary.owner for _ in range(4)]
    assert owners == ["alice", "bob", "alice", "bob"]

    def fewest(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        cat = s.exec(select(M.Category).where(M.Category.name == "Support")).one()
        cat.assign_method = "fewest_active"

    store.write(fewest)
    desk.close(1)
    desk.close(3)  # alice now has none active, bob two
    assert _new(desk).summary.owner == "alice"


def test_read_marks_green_only_for_owner(desk: Desk, store: Store, clock: FixedClock) -> None:
    d = _new(desk, owner="bob")
    assert desk.read(d.number).summary.read_status == "red"  # alice is not the owner
    bob = make_desk(store, clock, "bob")
    clock.advance(minutes=5)
    r = bob.read(d.number)
    assert r.summary.read_status == "green"
    assert r.first_read_at == clock.now()
    assert _events(r)[-1] == "read"
    clock.advance(minutes=5)
    assert bob.read(d.number).first_read_at == r.first_read_at
    assert _events(bob.show(d.number)).count("read") == 1


def test_unknown_ticket(desk: Desk) -> None:
    for action in (
        lambda: desk.show(99),
        lambda: desk.reply(99, "x"),
        lambda: desk.close(99),
        lambda: desk.merge(99, 1),
        lambda: desk.postpone(99, preset="1h"),
    ):
        with pytest.raises(NotFound, match="no ticket #99"):
            action()


# --------------------------------------------------------------------------- messages


def test_reply_queues_outbox_and_sets_replied_at_once(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    d = _new(desk)
    clock.advance(minutes=30)
    m = desk.reply(d.number, "We are on it.")
    assert m.direction == "out" and m.visibility == "external" and m.outbox_state == "queued"
    assert m.to == ("carla@customer.example",)
    assert parse_message_id(m.rfc_message_id, desk.secret()) == (d.number, m.id)
    first = desk.show(d.number)
    assert first.replied_at == clock.now() and first.reply_count == 1
    assert first.first_reply_seconds == 1800
    clock.advance(minutes=30)
    desk.reply(d.number, "Fixed.")
    again = desk.show(d.number)
    assert again.replied_at == first.replied_at and again.reply_count == 2
    with store.read() as s:
        items = s.exec(select(M.Outbox).order_by(M.Outbox.id)).all()  # type: ignore[arg-type]
        assert [o.recipients for o in items] == [["carla@customer.example"]] * 2
        assert items[0].body.endswith("-- \nAlice, Support")
    with pytest.raises(InvalidAction, match="needs a text"):
        desk.reply(d.number, "  ")


def test_reply_threads_on_customer_message_and_reply_all(desk: Desk, store: Store) -> None:
    d = _new(desk)

    def add_mail(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        s.add(
            M.Message(
                ticket_id=d.number,
                direction="in",
                visibility="external",
                kind="customer",
                from_addr="carla@customer.example",
                to_addrs=["support@desk.example"],
                cc_addrs=["boss@customer.example"],
                subject="more",
                body_text="also",
                rfc_message_id="<abc@customer.example>",
                references="<root@customer.example>",
                created_at=datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC),
            )
        )

    store.write(add_mail)
    m = desk.reply(d.number, "ok", reply_all=True)
    assert m.cc == ("boss@customer.example",)
    with store.read() as s:
        item = s.exec(select(M.Outbox)).one()
        assert item.headers["In-Reply-To"] == "<abc@customer.example>"
        assert item.headers["References"] == "<root@customer.example> <abc@customer.example>"


def test_reply_all_never_copies_an_address_of_the_desk(desk: Desk, store: Store) -> None:
    """Our mailboxes, the agents, and what we sent this ticket's mail from stay out of Cc."""
    d = _new(desk)

    def add_mail(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        s.add(M.Mailbox(name="sales", address="sales@desk.example"))
        # A reply sent from an address the desk no longer has in its config (the demo's case:
        # its mail is addressed to an address no mailbox knows).
        s.add(
            M.Message(
                ticket_id=d.number,
                direction="out",
                visibility="external",
                kind="reply",
                from_addr="help@old-desk.example",
                to_addrs=["carla@customer.example"],
                subject="Re: Printer on fire",
                body_text="We are on it.",
                created_at=datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC),
            )
        )
        s.add(
            M.Message(
                ticket_id=d.number,
                direction="in",
                visibility="external",
                kind="customer",
                from_addr="carla@customer.example",
                to_addrs=["Help@Old-Desk.example", "sales@desk.example"],
                cc_addrs=["bob@desk.example", "Boss@Customer.example", "boss@customer.example"],
                subject="more",
                body_text="also",
                created_at=datetime(2026, 11, 23, 10, 0, 2, tzinfo=UTC),
            )
        )

    store.write(add_mail)
    m = desk.reply(d.number, "ok", reply_all=True)
    assert m.cc == ("boss@customer.example",)
    with store.read() as s:
        item = s.exec(select(M.Outbox)).one()
        assert item.recipients == ["carla@customer.example", "boss@customer.example"]


def test_note_is_internal_and_not_mailed(desk: Desk, store: Store) -> None:
    d = _new(desk)
    m = desk.note(d.number, "Called them back")
    assert m.visibility == "internal" and m.kind == "note" and m.outbox_state is None
    with store.read() as s:
        assert s.exec(select(M.Outbox)).first() is None


def test_ask_colleague(desk: Desk, store: Store, clock: FixedClock) -> None:
    d = _new(desk, owner="alice")
    m = desk.ask(d.number, "bob", "Do you know this printer?")
    assert m.visibility == "internal" and m.kind == "ask"
    after = desk.show(d.number)
    assert after.summary.owner == "bob" and after.summary.status == "internal"
    assert after.followers == ("alice",)
    bob = make_desk(store, clock, "bob")
    assert [a.kind for a in bob.alerts()] == ["asked"]
    with pytest.raises(InvalidAction, match="yourself"):
        bob.ask(d.number, "bob", "hm")
    with pytest.raises(NotFound):
        desk.ask(d.number, "ghost", "?")


def test_forward_to_supplier(desk: Desk, store: Store) -> None:
    d = _new(desk)
    m = desk.forward(d.number, "Orders@Supplier.example", "Please check stock.")
    assert (
        m.visibility == "internal" and m.kind == "forward" and m.to == ("orders@supplier.example",)
    )
    assert "Forwarded message" in m.body and "It smokes." in m.body
    after = desk.show(d.number)
    assert after.external_parties == ("orders@supplier.example",)
    assert after.summary.status == "external"
    with store.read() as s:
        item = s.exec(select(M.Outbox)).one()
        assert item.kind == "forward" and item.recipients == ["orders@supplier.example"]
    with pytest.raises(NotFound, match="no attachment 5"):
        desk.forward(d.number, "x@supplier.example", attachment_ids=[5])


# --------------------------------------------------------------------------- lifecycle


def test_assign_take_priority_category(desk: Desk, store: Store, clock: FixedClock) -> None:
    d = _new(desk)
    assert desk.assign(d.number, "bob").summary.owner == "bob"
    with pytest.raises(InvalidAction, match="already with bob"):
        desk.assign(d.number, "bob")
    assert desk.take(d.number).summary.owner == "alice"
    with pytest.raises(InvalidAction, match="already yours"):
        desk.take(d.number)
    clock.advance(minutes=10)
    p = desk.set_priority(d.number, "Urgent")
    assert p.summary.priority == "Urgent"
    assert p.summary.deadline_at == clock.now() + timedelta(minutes=30)
    with pytest.raises(InvalidAction, match="already"):
        desk.set_priority(d.number, "Urgent")
    assert desk.assign(d.number, None).summary.owner is None
    assert _events(desk.show(d.number))[-4:] == ["assign", "take", "priority", "assign"]


def test_close_and_reply_to_closed(desk: Desk, clock: FixedClock) -> None:
    d = _new(desk)
    clock.advance(hours=1)
    c = desk.close(d.number)
    assert c.summary.base_status == "closed" and c.closed_at == clock.now()
    assert c.close_seconds == 3600 and c.next_alert_at is None
    with pytest.raises(InvalidAction, match="cannot close #1: it is closed"):
        desk.close(d.number)
    desk.reply(d.number, "one more thing")  # allowed: a closed ticket can still be answered
    assert desk.reopen(d.number).summary.base_status == "active"


def test_postpone_presets_until_and_reactivation(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    d = _new(desk, owner="bob")
    p = desk.postpone(d.number, preset="2h")
    assert p.summary.base_status == "postponed" and p.activate_at == clock.now() + timedelta(
        hours=2
    )
    with pytest.raises(InvalidAction, match="into the past"):
        desk.postpone(d.number, until=clock.now() - timedelta(minutes=1))
    with pytest.raises(InvalidAction, match="unknown postpone preset"):
        desk.postpone(d.number, preset="5h")
    month = desk.postpone(d.number, preset="1m")
    assert month.activate_at == datetime(2026, 12, 23, 10, 0, tzinfo=UTC)
    desk.postpone(d.number, preset="1h")
    assert desk.reactivate_due() == []
    clock.advance(hours=1)
    assert desk.reactivate_due() == [d.number]
    back = desk.show(d.number)
    assert back.summary.base_status == "active" and back.activate_at is None
    bob = make_desk(store, clock, "bob")
    assert "reactivated" in [a.kind for a in bob.alerts()]


def test_delete_restore(desk: Desk) -> None:
    d = _new(desk)
    desk.postpone(d.number, preset="1d")
    gone = desk.delete(d.number)
    assert gone.summary.base_status == "deleted"
    assert d.number not in [t.number for t in desk.list_tickets()]
    with pytest.raises(InvalidAction, match="it is deleted; restore it first"):
        desk.reply(d.number, "hello?")
    back = desk.restore(d.number)
    assert back.summary.base_status == "postponed" and back.activate_at is not None
    with pytest.raises(InvalidAction, match="cannot restore"):
        desk.restore(d.number)


def test_time_accrues_into_status_buckets(desk: Desk, clock: FixedClock) -> None:
    d = _new(desk, owner="alice")
    clock.advance(minutes=10)
    desk.ask(d.number, "bob", "help")  # 10 min in the queue, then internal
    clock.advance(minutes=20)
    desk.forward(d.number, "s@supplier.example", "stock?")  # 20 min internal, then external
    clock.advance(minutes=5)
    spent = desk.show(d.number).time_spent
    assert (spent.queue, spent.internal, spent.external) == (600, 1200, 300)
    assert spent.queue_work == 600  # Monday 10:00-10:10 is inside working hours


# --------------------------------------------------------------------------- merge, split, undo


def test_merge_moves_messages_and_customers_and_unmerge(desk: Desk) -> None:
    a = _new(desk)
    b = _new(desk, customer_email="dan@other.example", subject="Same printer")
    desk.note(b.number, "dup")
    survivor = desk.merge(b.number, into=a.number)
    assert survivor.number == a.number
    assert len(survivor.messages) == 3 and survivor.summary.message_count == 3
    assert {c.addresses[0] for c in survivor.customers} == {
        "carla@customer.example",
        "dan@other.example",
    }
    assert desk.resolve(b.number) == a.number
    merged = desk.show(b.number)
    assert merged.summary.base_status == "merged" and merged.merged_into == a.number
    assert survivor.merged_from == (b.number,)
    restored = desk.unmerge(a.number)
    assert restored.number == b.number and restored.summary.base_status == "active"
    assert len(restored.messages) == 2 and restored.summary.message_count == 2
    assert desk.show(a.number).summary.message_count == 1
    assert len(desk.show(a.number).customers) == 1
    with pytest.raises(InvalidAction, match="no merge to undo"):
        desk.unmerge(a.number)


def test_merge_refusals(desk: Desk) -> None:
    a, b, c = _new(desk), _new(desk), _new(desk)
    with pytest.raises(InvalidAction, match="into itself"):
        desk.merge(a.number, a.number)
    desk.merge(b.number, a.number)
    with pytest.raises(InvalidAction, match="was itself merged into #1"):
        desk.merge(c.number, b.number)
    with pytest.raises(InvalidAction, match="it is merged"):
        desk.merge(b.number, c.number)
    desk.delete(c.number)
    with pytest.raises(InvalidAction, match="deleted"):
        desk.merge(a.number, c.number)


def test_split(desk: Desk) -> None:
    a = _new(desk)
    extra = desk.note(a.number, "about the scanner, really")
    new = desk.split(a.number, [extra.id], subject="Scanner")
    assert new.summary.title == "Scanner" and [m.id for m in new.messages] == [extra.id]
    assert new.linked_to == a.number and new.customers == desk.show(a.number).customers
    assert desk.show(a.number).summary.message_count == 1
    with pytest.raises(InvalidAction, match="every message"):
        desk.split(a.number, [a.messages[0].id])
    with pytest.raises(NotFound, match="no message 999"):
        desk.split(a.number, [999])


def test_undo_close_assign_postpone(desk: Desk, store: Store, clock: FixedClock) -> None:
    d = _new(desk)
    desk.assign(d.number, "bob")
    desk.close(d.number)
    assert desk.undo_last(d.number).summary.base_status == "active"
    assert desk.undo_last(d.number).summary.owner is None
    desk.postpone(d.number, preset="1w")
    assert desk.undo_last(d.number).activate_at is None
    with pytest.raises(InvalidAction, match="nothing to undo"):
        desk.undo_last(d.number)
    desk.close(d.number)
    with pytest.raises(InvalidAction, match="was not yours"):
        make_desk(store, clock, "bob").undo_last(d.number)


def test_undo_refuses_when_changed_since(desk: Desk, store: Store, clock: FixedClock) -> None:
    d = _new(desk)
    desk.assign(d.number, "bob")
    make_desk(store, clock, "bob").close(d.number)
    desk_undo = desk.undo_last
    with pytest.raises(InvalidAction, match="not yours"):
        desk_undo(d.number)


def test_undo_merge(desk: Desk) -> None:
    a, b = _new(desk), _new(desk)
    desk.merge(b.number, a.number)
    assert desk.undo_last(b.number).summary.base_status == "active"


def test_optimistic_lock_names_who_changed_what(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    d = _new(desk)
    make_desk(store, clock, "bob").take(d.number)
    with pytest.raises(Conflict, match=r"changed by Bob Baker \(bob\) .*: take") as info:
        desk.close(d.number, expected_version=d.version)
    assert desk.close(d.number, expected_version=info.value.current_version)


def test_tags_and_list_filters(desk: Desk) -> None:
    a = _new(desk, owner="bob")
    b = _new(desk)
    desk.tag(a.number, "VIP")
    assert desk.show(a.number).summary.tags == ("vip",)
    assert [t.number for t in desk.list_tickets(owner="bob")] == [a.number]
    assert [t.number for t in desk.list_tickets(unassigned=True)] == [b.number]
    desk.close(b.number)
    assert [t.number for t in desk.list_tickets(status="closed")] == [b.number]
    with pytest.raises(NotFound, match="no status"):
        desk.list_tickets(status="nonsense")
    with pytest.raises(InvalidAction, match="not a valid tag"):
        desk.tag(a.number, "two words")


# --------------------------------------------------------------------------- customer lookup


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("øy", ["Øystein Ås"]),
        ("ØYSTEIN", ["Øystein Ås"]),
        ("ås", ["Åse Berg", "Øystein Ås"]),
        ("ärz", ["Ärztehaus Süd"]),
        ("SÜD", ["Ärztehaus Süd"]),
        ("bråten", ["Bob Bråten"]),
        ("50%", ["Rabatt 50% GmbH"]),  # LIKE and GLOB wildcards are plain characters
        ("_", ["snake_case Ltd"]),
        ("[x", ["Odd [x] Name"]),
        ("*", ["Star * Corp"]),
        ("?", []),
        ("ø.", []),  # nor is a regular expression's
    ],
)
def test_customers_are_found_by_any_case_of_their_name(
    desk: Desk, typed: str, found: list[str]
) -> None:
    names = [
        "Øystein Ås",
        "Åse Berg",
        "Ärztehaus Süd",
        "Bob Bråten",
        "Rabatt 50% GmbH",
        "snake_case Ltd",
        "Odd [x] Name",
        "Star * Corp",
        "Oystein Plain",
    ]
    for i, name in enumerate(names):
        _new(desk, customer_email=f"c{i}@customer.example", customer_name=name)
    assert [c.name for c in desk.find_customers(typed)] == found


def _clock_of(store: Store, number: int) -> tuple[object, ...]:
    with store.read() as s:
        t = s.get(M.Ticket, number)
        assert t is not None
        return (t.deadline_at, t.alert_level, t.next_alert_at, t.read_status)


@pytest.mark.parametrize("action", ["priority", "assign", "take"])
def test_undo_puts_back_an_overdue_deadline_and_its_escalation(
    desk: Desk, store: Store, clock: FixedClock, action: str
) -> None:
    """Taking back a mistaken priority or assignment must not hide an SLA breach: the
    deadline, the escalation level reached and the read status come back as they were."""
    d = desk.register(
        customer_email="c@customer.example", subject="Down", priority="High", owner="alice"
    )
    if action == "take":
        desk.assign(d.number, "bob")
        make_desk(store, clock, "bob").read(d.number)  # green for its owner
    else:
        desk.read(d.number)
    clock.advance(days=3)

    def overdue(s: Session) -> None:
        t = s.get(M.Ticket, d.number)
        assert t is not None
        t.alert_level = 2  # as the escalation engine would have left it

    store.write(overdue)
    before = _clock_of(store, d.number)
    deadline = before[0]
    assert isinstance(deadline, datetime) and deadline < clock.now()
    assert before[3] == "green"
    if action == "priority":
        desk.set_priority(d.number, "Low")
    elif action == "assign":
        desk.assign(d.number, "bob")
    else:
        desk.take(d.number)
    assert _clock_of(store, d.number) != before  # the action restarted the clock
    desk.undo_last(d.number)
    assert _clock_of(store, d.number) == before


def test_mark_reviewed_and_assigning_to_yourself(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    d = desk.register(customer_email="c@customer.example", subject="Odd mail", owner="bob")
    with pytest.raises(InvalidAction, match="needs no review"):
        desk.mark_reviewed(d.number)

    def flag(s: Session) -> None:
        t = s.get(M.Ticket, d.number)
        assert t is not None
        t.needs_review = True

    store.write(flag)
    assert desk.mark_reviewed(d.number).summary.needs_review is False
    # Assigning a ticket to yourself is taking it: you know it, it is not "unread" for you.
    make_desk(store, clock, "bob").read(d.number)
    assert desk.show(d.number).summary.read_status == "green"
    desk.assign(d.number, "alice")
    assert desk.show(d.number).summary.read_status == "green"
    desk.assign(d.number, "bob")
    assert desk.show(d.number).summary.read_status == "red"


def test_reactivation_works_through_a_backlog_in_small_transactions(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    numbers = [
        desk.register(customer_email=f"c{i}@customer.example", subject=f"Later {i}").number
        for i in range(7)
    ]
    for n in numbers:
        desk.postpone(n, preset="1h")
    clock.advance(hours=2)
    writes = 0
    real = desk._write

    def counting(fn: Any) -> Any:
        nonlocal writes
        writes += 1
        return real(fn)

    desk._write = counting  # type: ignore[method-assign]
    assert sorted(desk.reactivate_due(limit=5, chunk=2)) == numbers[:5]
    assert writes == 3  # 2 + 2 + 1: the write lock is never held for the whole backlog
    assert sorted(desk.reactivate_due(chunk=2)) == numbers[5:]
    assert desk.reactivate_due() == []

"""The `helpdesk` command: the app with no arguments, a scriptable CLI in the spirit of RT's `rt`.

People get tables, scripts get `--json`. Exit codes: 0 done, 1 refused or not found (one line
on stderr), 2 usage.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import argparse

    from helpdesk_tui.desk.escalation import Timeline
    from helpdesk_tui.desk.records import TicketDetail, TicketSummary
    from helpdesk_tui.desk.service import Desk
    from helpdesk_tui.desk.session import DeskHandle

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A refusal to print as one line on stderr with exit code 1."""


# ---------------------------------------------------------------------------- output helpers


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    import json

    json.dump(_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _text(value: object) -> Any:
    """Untrusted text as an inert Rich Text (no markup, no control characters)."""
    from rich.text import Text

    from helpdesk_tui.mail.clean import clean_text

    return Text(clean_text(str(value)))


def _fmt_time(value: datetime | None, handle: DeskHandle) -> str:
    if value is None:
        return "-"
    return value.astimezone(handle.desk.tz).strftime("%Y-%m-%d %H:%M")


def _read_body(value: str | None) -> str:
    if value is None:
        return ""
    if value == "-":
        return sys.stdin.read()
    return value


# ---------------------------------------------------------------------------- ticket views


def ticket_json(d: TicketDetail, upcoming: Timeline | None = None) -> dict[str, Any]:
    """The ticket for scripts; `upcoming` (desk.escalation.timeline) adds the levels to come."""
    s = d.summary
    return {
        "number": s.number,
        "status": s.status,
        "base_status": s.base_status,
        "subject": s.title,
        "priority": s.priority,
        "owner": s.owner,
        "category": s.category,
        "customers": [
            {"name": c.name, "addresses": list(c.addresses), "company": c.company}
            for c in d.customers
        ],
        "created": s.created_at.isoformat(),
        "updated": s.updated_at.isoformat(),
        "replied_at": d.replied_at.isoformat() if d.replied_at else None,
        "closed_at": d.closed_at.isoformat() if d.closed_at else None,
        "deadline": s.deadline_at.isoformat() if s.deadline_at else None,
        "activate_at": d.activate_at.isoformat() if d.activate_at else None,
        "merged_into": d.merged_into,
        "merged_from": list(d.merged_from),
        "read_status": s.read_status,
        "first_read_at": d.first_read_at.isoformat() if d.first_read_at else None,
        "alert_level": s.alert_level,
        "next_alert_at": d.next_alert_at.isoformat() if d.next_alert_at else None,
        "escalation": {
            "alert_level": s.alert_level,
            "running": d.escalation_running,
            "next_alert_at": d.next_alert_at.isoformat() if d.next_alert_at else None,
            "seconds_left": d.escalation_seconds_left,
            **({"upcoming": timeline_json(upcoming)["levels"]} if upcoming is not None else {}),
        },
        "time_spent": d.time_spent.as_dict(),
        "time_to_first_reply": {
            "seconds": d.first_reply_seconds,
            "working_seconds": d.first_reply_work_seconds,
        },
        "time_to_close": {"seconds": d.close_seconds, "working_seconds": d.close_work_seconds},
        "reply_count": d.reply_count,
        "message_count": s.message_count,
        "tags": list(s.tags),
        "followers": list(d.followers),
        "external_parties": list(d.external_parties),
        "version": d.version,
        "messages": [
            {
                "id": m.id,
                "direction": m.direction,
                "visibility": m.visibility,
                "kind": m.kind,
                "author": m.author,
                "from": m.from_addr,
                "from_name": m.from_name,
                "to": list(m.to),
                "cc": list(m.cc),
                "subject": m.subject,
                "body": m.body,
                "created": m.created_at.isoformat(),
                "message_id": m.rfc_message_id,
                "thread_rule": m.thread_rule,
                "why": m.thread_evidence,
                "needs_review": m.needs_review,
                "review_error": m.review_error,
                "outbox_state": m.outbox_state,
                "outbox_error": m.outbox_error,
                "attachments": [
                    {"id": a.id, "filename": a.filename, "type": a.content_type, "size": a.size}
                    for a in m.attachments
                ],
            }
            for m in d.messages
        ],
        "events": [
            {
                "at": e.at.isoformat(),
                "agent": e.agent,
                "os_user": e.os_user,
                "action": e.action,
                "undone": e.undone,
            }
            for e in d.events
        ],
    }


def summary_json(s: TicketSummary) -> dict[str, Any]:
    return {
        "number": s.number,
        "subject": s.title,
        "status": s.status,
        "base_status": s.base_status,
        "priority": s.priority,
        "owner": s.owner,
        "customer": s.customer,
        "category": s.category,
        "read_status": s.read_status,
        "deadline": s.deadline_at.isoformat() if s.deadline_at else None,
        "alert_level": s.alert_level,
        "updated": s.updated_at.isoformat(),
        "needs_review": s.needs_review,
        "tags": list(s.tags),
    }


def print_ticket_list(rows: Sequence[TicketSummary], handle: DeskHandle) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("#", "status", "prio", "owner", "customer", "subject", "deadline", "updated"):
        table.add_column(name, overflow="ellipsis", no_wrap=True)
    for s in rows:
        table.add_row(
            str(s.number),
            _text(s.status),
            _text(s.priority or "-"),
            _text(s.owner or "-"),
            _text(s.customer),
            _text(s.title),
            _fmt_time(s.deadline_at, handle),
            _fmt_time(s.updated_at, handle),
        )
    console = _console()
    console.print(table)
    console.print(f"{len(rows)} ticket(s)")


def print_ticket(d: TicketDetail, handle: DeskHandle) -> None:
    from rich.text import Text

    console = _console()
    s = d.summary
    head = Text(f"#{s.number} ", style="bold")
    head.append(_text(s.title))
    console.print(head)
    customers = ", ".join(
        f"{c.name} <{c.addresses[0]}>" if c.name and c.addresses else (c.addresses or ("?",))[0]
        for c in d.customers
    )
    spent = d.time_spent
    rows = [
        ("status", f"{s.status} ({s.base_status})"),
        ("priority", s.priority or "-"),
        ("owner", s.owner or "(queue)"),
        ("category", s.category or "-"),
        ("customers", customers),
        ("deadline", _fmt_time(s.deadline_at, handle)),
        ("read", s.read_status),
        ("replied", _fmt_time(d.replied_at, handle)),
        (
            "time spent",
            f"queue {spent.queue}s, internal {spent.internal}s, external {spent.external}s",
        ),
    ]
    if d.activate_at:
        rows.append(("wakes up", _fmt_time(d.activate_at, handle)))
    if d.merged_into:
        rows.append(("merged into", f"#{d.merged_into}"))
    if d.followers:
        rows.append(("followers", ", ".join(d.followers)))
    if s.tags:
        rows.append(("tags", ", ".join(s.tags)))
    for key, value in rows:
        line = Text(f"  {key:<11} ", style="dim")
        line.append(_text(value))
        console.print(line)
    for m in d.messages:
        console.print()
        who = m.author or (f"{m.from_name} <{m.from_addr}>" if m.from_name else m.from_addr)
        label = {
            ("in", "external"): "customer",
            ("out", "external"): "reply",
            ("out", "internal"): m.kind,
            ("in", "internal"): "external party",
        }.get((m.direction, m.visibility), m.kind)
        line = Text(f"--- {label} ", style="bold")
        line.append(_text(who))
        line.append(f"  {_fmt_time(m.created_at, handle)}", style="dim")
        if m.visibility == "internal":
            line.append("  [internal]", style="yellow")
        if m.outbox_state and m.outbox_state != "sent":
            line.append(f"  [{m.outbox_state}]", style="red" if m.outbox_state == "failed" else "")
        console.print(line)
        if m.thread_evidence:
            console.print(Text("    why here: ", style="dim") + _text(m.thread_evidence))
        if m.needs_review:
            console.print(Text("    needs review: ", style="red") + _text(m.review_error))
        if m.outbox_error:
            console.print(Text("    send error: ", style="red") + _text(m.outbox_error))
        for a in m.attachments:
            console.print(
                Text(f"    attachment {a.id}: ", style="dim")
                + _text(f"{a.filename} ({a.size} bytes)")
            )
        console.print(_text(m.body.rstrip()))


# ---------------------------------------------------------------------------- commands


def _handle(args: argparse.Namespace, *, actor: str | None = None) -> DeskHandle:
    from helpdesk_tui.desk.session import open_desk

    return open_desk(
        db=getattr(args, "db", None),
        config_path=Path(args.config) if getattr(args, "config", None) else None,
        actor=actor,
    )


def _emit(args: argparse.Namespace, detail: TicketDetail, line: str) -> int:
    """The ticket as JSON for scripts, or one line for people."""
    if getattr(args, "json", False):
        _print_json(ticket_json(detail))
    else:
        print(line)
    return EXIT_OK


def _done(args: argparse.Namespace, handle: DeskHandle, detail: TicketDetail, verb: str) -> None:
    _emit(args, detail, f"#{detail.number} {verb} ({detail.summary.status})")


def cmd_ticket_new(args: argparse.Namespace) -> int:
    h = _handle(args)
    d = h.desk.register(
        customer_email=args.customer,
        customer_name=args.name or "",
        subject=args.subject,
        body=_read_body(args.body),
        priority=args.priority,
        category=args.category,
        owner=args.owner,
    )
    return _emit(args, d, f"#{d.number} registered")


def cmd_ticket_list(args: argparse.Namespace) -> int:
    h = _handle(args)
    owner = h.desk.actor if args.mine else args.owner
    if args.search is not None:
        rows = _search_rows(h.desk, args)
    else:
        rows = h.desk.list_tickets(
            status=args.status,
            owner=owner,
            unassigned=args.unassigned,
            review=args.review,
            include_hidden=args.all,
            limit=args.limit,
        )
    if args.json:
        _print_json([summary_json(s) for s in rows])
    else:
        print_ticket_list(rows, h)
    return EXIT_OK


def _search_rows(desk: Desk, args: argparse.Namespace) -> list[TicketSummary]:
    """`ticket list --search`: the app's search language, narrowed by the other filters.

    Each filter is a required term (+status:open), not a plain one: the same field twice in a
    query widens it, so `--mine --search owner:bob` would list alice's and bob's tickets. The
    query is parsed before the filters join it, so an unclosed quote cannot swallow them.
    """
    from helpdesk_tui.desk.search import SearchQuery, Term, parse_query
    from helpdesk_tui.desk.views import TicketViews

    if args.all:
        raise CliError("--all does not combine with --search; use status:deleted or status:merged")
    flags: list[Term] = []
    if args.status:
        flags.append(Term("status", args.status.replace('"', ""), required=True))
    if args.mine:
        flags.append(Term("owner", "me", required=True))
    elif args.owner:
        flags.append(Term("owner", args.owner.replace('"', ""), required=True))
    elif args.unassigned:
        flags.append(Term("owner", "none", required=True))
    if args.review:
        flags.append(Term("is", "review", required=True))
    query = str(SearchQuery(args.search, (*parse_query(args.search).terms, *flags)))
    views = TicketViews(desk.store, desk.actor, clock=desk.clock, tz=desk.tz)
    return views.search(query, limit=args.limit)


def cmd_ticket_show(args: argparse.Namespace) -> int:
    h = _handle(args)
    d = h.desk.read(args.number) if args.mark_read else h.desk.show(args.number)
    if args.json:
        from helpdesk_tui.desk.escalation import timeline

        _print_json(ticket_json(d, timeline(h.desk, d.number)))
    else:
        print_ticket(d, h)
    return EXIT_OK


def timeline_json(t: Timeline) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "number": t.number,
        "priority": t.priority,
        "owner": t.owner,
        "base_status": t.base_status,
        "alert_level": t.alert_level,
        "running": t.running,
        "next_alert_at": iso(t.next_alert_at),
        "seconds_left": t.seconds_left,
        "deadline": iso(t.deadline_at),
        "assuming": list(t.assuming),
        "note": t.note,
        "levels": [
            {
                "alert_level": lv.alert_level,
                "at": lv.at.isoformat(),
                "priority": lv.priority,
                "actions": list(lv.actions),
                "overdue": lv.overdue,
                "delegate_to": lv.delegate_to,
                "notify_agents": list(lv.notify_agents),
                "email_to": lv.email_to,
                "script": list(lv.script),
            }
            for lv in t.levels
        ],
    }


def parse_span(text: str, now: datetime, tz: Any) -> timedelta:
    """ "3h", "2d", "1w", "90min"; "1m" is a month in the desk's zone, as postpone's presets."""
    import re

    from helpdesk_tui.desk.when import add_months

    m = re.fullmatch(r"\s*(\d+)\s*(min|h|d|w|m)\s*", text.lower())
    if m is None or int(m[1]) == 0:
        raise CliError(f"not a length of time: {text!r} (try 3h, 2d, 1w, 1m or 90min)")
    n, unit = int(m[1]), m[2]
    if unit == "m":
        return add_months(now, n, tz) - now
    units = {"min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return timedelta(**{units[unit]: n})


def cmd_ticket_timeline(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from helpdesk_tui.desk.escalation import timeline

    h = _handle(args)
    span = parse_span(args.if_postpone, h.desk.clock.now(), h.desk.tz) if args.if_postpone else None
    t = timeline(
        h.desk,
        args.number,
        if_postpone=span,
        if_priority=args.if_priority,
        if_assign=args.if_assign,
    )
    if args.json:
        _print_json(timeline_json(t))
        return EXIT_OK
    console = _console()
    head = Text(f"#{t.number} ", style="bold")
    head.append(_text(f"{t.priority or 'no priority'}, {t.owner or '(queue)'}, {t.base_status}"))
    head.append(f", level {t.alert_level}", style="dim")
    console.print(head)
    if t.assuming:
        console.print(Text("  assuming ", style="dim") + _text(", ".join(t.assuming)))
    if t.note:
        console.print(Text("  ", style="dim") + _text(t.note))
    if not t.levels:
        console.print("  no escalation levels to come")
        return EXIT_OK
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("level", f"when ({h.desk.options.timezone})", "priority", "actions"):
        table.add_column(name, overflow="fold")
    for lv in t.levels:
        actions = []
        for action in lv.actions:
            if action == "delegate" and lv.delegate_to:
                action = f"delegate to {lv.delegate_to}"
            elif action == "notify_agents" and lv.notify_agents:
                action = f"notify {', '.join(lv.notify_agents)}"
            elif action == "email_address" and lv.email_to:
                action = f"mail {lv.email_to}"
            actions.append(action)
        when = _fmt_time(lv.at, h) + (" (overdue)" if lv.overdue else "")
        table.add_row(
            str(lv.alert_level), when, _text(lv.priority or "-"), _text(", ".join(actions))
        )
    console.print(table)
    return EXIT_OK


def _message_done(args: argparse.Namespace, text: str, record: Any) -> int:
    if getattr(args, "json", False):
        _print_json(record)
    else:
        print(text)
    return EXIT_OK


def cmd_ticket_reply(args: argparse.Namespace) -> int:
    h = _handle(args)
    m = h.desk.reply(args.number, _read_body(args.body), cc=args.cc or (), reply_all=args.all)
    return _message_done(args, f"#{m.ticket} reply queued for {', '.join(m.to + m.cc)}", m)


def cmd_ticket_note(args: argparse.Namespace) -> int:
    h = _handle(args)
    m = h.desk.note(args.number, _read_body(args.body))
    return _message_done(args, f"#{m.ticket} note added", m)


def cmd_ticket_forward(args: argparse.Namespace) -> int:
    h = _handle(args)
    m = h.desk.forward(
        args.number, args.to, _read_body(args.body), attachment_ids=args.attachment or ()
    )
    return _message_done(args, f"#{m.ticket} forwarded to {args.to}", m)


def cmd_ticket_ask(args: argparse.Namespace) -> int:
    h = _handle(args)
    m = h.desk.ask(args.number, args.agent, _read_body(args.body))
    return _message_done(args, f"#{m.ticket} asked {args.agent} for help", m)


def _simple(
    action: Callable[[DeskHandle, argparse.Namespace], TicketDetail], verb: str
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        h = _handle(args)
        _done(args, h, action(h, args), verb)
        return EXIT_OK

    return run


def cmd_ticket_postpone(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk.when import WhenError, parse_when

    h = _handle(args)
    if args.until:
        try:
            when = parse_when(args.until, h.desk.clock.now(), h.desk.tz)
        except WhenError as exc:
            raise CliError(str(exc)) from exc
        d = h.desk.postpone(args.number, until=when)
    else:
        d = h.desk.postpone(args.number, preset=args.for_)
    return _emit(args, d, f"#{d.number} postponed until {_fmt_time(d.activate_at, h)}")


def cmd_ticket_merge(args: argparse.Namespace) -> int:
    h = _handle(args)
    d = h.desk.merge(args.number, args.into)
    return _emit(args, d, f"#{args.number} merged into #{d.number}")


def cmd_ticket_split(args: argparse.Namespace) -> int:
    h = _handle(args)
    d = h.desk.split(args.number, args.message, subject=args.subject)
    return _emit(args, d, f"#{d.number} split off #{args.number}")


def cmd_ticket_tag(args: argparse.Namespace) -> int:
    h = _handle(args)
    for tag in args.tags:
        h.desk.tag(args.number, tag, on=not args.remove)
    print(f"#{args.number} {'untagged' if args.remove else 'tagged'} {', '.join(args.tags)}")
    return EXIT_OK


def cmd_agent_add(args: argparse.Namespace) -> int:
    h = _handle(args)
    a = h.desk.add_agent(args.login, args.name, args.email, args.signature or "")
    if args.json:
        _print_json(a)
    else:
        print(f"agent {a.login} added")
    return EXIT_OK


def cmd_agent_list(args: argparse.Namespace) -> int:
    h = _handle(args)
    agents = h.desk.agents()
    if args.json:
        _print_json(agents)
        return EXIT_OK
    for a in agents:
        state = "" if a.active else "  (inactive)"
        print(f"{a.login:<16} {a.name} <{a.email}>{state}")
    return EXIT_OK


def cmd_agent_active(args: argparse.Namespace) -> int:
    h = _handle(args)
    a = h.desk.set_agent_active(args.login, args.active)
    print(f"agent {a.login} {'enabled' if a.active else 'disabled'}")
    return EXIT_OK


def cmd_config_init(args: argparse.Namespace) -> int:
    import os

    from helpdesk_tui import paths
    from helpdesk_tui.config import EXAMPLE_CONFIG

    # --config is SUPPRESSed when absent (so the top level's value survives): no attribute.
    given = getattr(args, "config", None)
    target = Path(given) if given else paths.user_config_file()
    if target.exists() and not args.force:
        raise CliError(f"{target} exists already; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    print(f"wrote {target}")
    system = paths.system_config_file()
    if not given and not os.environ.get("HELPDESK_CONFIG") and system.exists():
        # On a shared server the user's own file now wins over the one that names the store.
        print(f"note: it comes before {system} now; copy its [store] url to share that store")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from helpdesk_tui import paths
    from helpdesk_tui.config import ConfigError, check_config, load_config

    given = getattr(args, "config", None)
    target = Path(given) if given else paths.config_file()
    if not target.exists():
        raise CliError(f"no config file at {target}; `helpdesk config init` writes an example")
    try:
        cfg = load_config(target)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_REFUSED
    problems = check_config(cfg, _known_agents(args))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EXIT_REFUSED
    print(f"{target}: ok")
    return EXIT_OK


def _known_agents(args: argparse.Namespace) -> list[str]:
    """Agents already in the store, read without applying anything (a check changes nothing)."""
    from helpdesk_tui import paths
    from helpdesk_tui.desk.session import agent_logins
    from helpdesk_tui.store.engine import Store, StoreError

    url = paths.db_url(args.db) if getattr(args, "db", None) else paths.default_db_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    store = Store(url)
    try:
        return agent_logins(store)
    except (StoreError, Exception):  # noqa: BLE001 - no store yet: check against config alone
        return []
    finally:
        store.dispose()


def cmd_demo(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk.demo import fill_demo, store_is_empty

    h = _handle(args, actor="")
    if args.if_empty and not store_is_empty(h.store):
        return EXIT_OK
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("demo data", total=args.tickets)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = fill_demo(
            h.store, tickets=args.tickets, seed=args.seed, progress=tick, config=h.config
        )
    print(
        f"demo data: {summary.tickets} tickets, {summary.messages} messages, "
        f"{summary.agents} agents, {summary.customers} customers in {h.store.url}"
    )
    return EXIT_OK


def cmd_outbox_list(args: argparse.Namespace) -> int:
    h = _handle(args)
    items = h.desk.outbox(states=args.state or None)
    if args.json:
        _print_json([_outbox_json(o) for o in items])
        return EXIT_OK
    for o in items:
        err = f"  {o.last_error}" if o.last_error else ""
        to = ", ".join(o.recipients)
        print(f"{o.id:>6} #{o.ticket or '-':<6} {o.state:<8} {o.attempts} {to}{err}")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import threading

    from helpdesk_tui.worker import Worker, freeze_startup_objects, install_signal_handlers

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    h = _handle(args, actor="")
    freeze_startup_objects()
    stop = threading.Event()
    install_signal_handlers(stop)
    worker = Worker(h, stop=stop)
    if args.once:
        from helpdesk_tui.desk import lease

        # One pass, but never beside a daemon or an app that runs the duties already.
        keeper = lease.Keeper(h.store, lease.holder_id("once"), kind="once")
        keeper.start()
        try:
            if not keeper.held.is_set():
                now = lease.wall_now()
                current = lease.live_holder(h.store, now)
                who = lease.describe(current, now) if current else "another process"
                raise CliError(
                    f"not running the duties: {who} runs them for this store; a lease whose "
                    f"holder stopped is free after {lease.TTL:.0f} s"
                )
            report = worker.run_once()
        finally:
            keeper.close()
            worker.close()
        for sync in report.sync:
            state = f"error: {sync.error}" if sync.error else "ok"
            print(
                f"{sync.mailbox}: {sync.imported} imported, {sync.duplicates} duplicates, "
                f"{sync.needs_review} for review, {sync.acknowledged} acknowledged ({state})"
            )
        if report.reactivated:
            print(f"reactivated: {', '.join(f'#{n}' for n in report.reactivated)}")
        return EXIT_OK
    worker.run_forever(poll_seconds=args.poll)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from helpdesk_tui.worker import freeze_startup_objects, import_archive

    h = _handle(args, actor="")
    freeze_startup_objects()
    path = Path(args.path)
    if not path.exists():
        raise CliError(f"no such file or folder: {path}")
    if args.mailbox and args.mailbox not in {m.name for m in h.config.mailboxes}:
        raise CliError(f"no mailbox named '{args.mailbox}' in the config")
    with Progress() as progress:
        task = progress.add_task(f"importing {path.name}", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        results = import_archive(h, path, mailbox=args.mailbox, kind=args.kind, progress=tick)
    new = sum(1 for r in results if not r.duplicate)
    review = sum(1 for r in results if r.needs_review and not r.duplicate)
    again = len(results) - new
    print(f"{len(results)} messages: {new} imported, {again} already there, {review} for review")
    return EXIT_OK


def cmd_mailbox_status(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk import mailboxes

    h = _handle(args, actor="")
    rows = mailboxes.status(h.store)
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no mailboxes configured")
    for r in rows:
        health = (
            "stopped: " + r.stopped_reason
            if r.stopped_reason
            else (
                f"failing ({r.consecutive_failures}x): {r.last_error}"
                if r.consecutive_failures
                else "ok"
            )
        )
        print(
            f"{r.name} <{r.address}>: {r.imported} imported, {r.needs_review} for review, "
            f"acks {r.acks_queued} queued / {r.acks_suppressed} suppressed; "
            f"last success {_fmt_time(r.last_success, h)}; {health}"
        )
    return EXIT_OK


def cmd_mailbox_resume(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk import mailboxes

    h = _handle(args, actor="")
    mailboxes.resume(h.store, args.name)
    print(f"mailbox {args.name} resumed")
    return EXIT_OK


def cmd_mailbox_explain(args: argparse.Namespace) -> int:
    from helpdesk_tui.mail.autoreply import ack_decision
    from helpdesk_tui.mail.parse import parse_message

    path = Path(args.file)
    if not path.exists():
        raise CliError(f"no such file: {path}")
    from helpdesk_tui.config import load_config

    cfg = load_config(
        Path(args.config) if getattr(args, "config", None) else _default_config_path()
    )
    parsed = parse_message(path.read_bytes())
    own = [m.address for m in cfg.mailboxes]
    verdict = ack_decision(parsed, own, cfg.desk.domain, cfg.desk.domain)
    result = {
        "file": str(path),
        "from": parsed.from_addr,
        "subject": parsed.subject,
        "message_id": parsed.message_id,
        "needs_review": parsed.needs_review,
        "review_reason": parsed.review_reason,
        "acknowledge": verdict.acknowledge,
        "reason": verdict.reason,
    }
    if args.json:
        _print_json(result)
    else:
        word = "would be acknowledged" if verdict.acknowledge else "would NOT be acknowledged"
        print(f"{path.name}: {word}: {verdict.reason}")
        print("  (the per-sender rate limit applies on top of this when it arrives)")
    return EXIT_OK


def _default_config_path() -> Path | None:
    from helpdesk_tui import paths

    p = paths.config_file()
    return p if p.exists() else None


def _outbox_json(o: Any) -> dict[str, Any]:
    return {
        "id": o.id,
        "ticket": o.ticket,
        "kind": o.kind,
        "state": o.state,
        "attempts": o.attempts,
        "next_attempt_at": o.next_attempt_at.isoformat() if o.next_attempt_at else None,
        "last_error": o.last_error,
        "message_id": o.message_id,
        "recipients": list(o.recipients),
        "subject": o.subject,
        "created": o.created_at.isoformat(),
        "sent_at": o.sent_at.isoformat() if o.sent_at else None,
        "ambiguous": o.ambiguous,
    }


def cmd_outbox_show(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk import outbox

    h = _handle(args, actor="")
    record, body = outbox.show(h.store, args.id)
    if args.json:
        _print_json({**_outbox_json(record), "body": body})
        return EXIT_OK
    console = _console()
    for key, value in _outbox_json(record).items():
        console.print(_text(f"{key:<16}{value}"))
    console.print()
    console.print(_text(body))
    return EXIT_OK


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk import outbox

    h = _handle(args)
    h.desk.whoami()
    record = outbox.retry_now(h.store, h.desk.clock, args.id)
    print(f"outbox item {record.id} queued again")
    return EXIT_OK


def cmd_outbox_cancel(args: argparse.Namespace) -> int:
    from helpdesk_tui.desk import outbox

    h = _handle(args)
    h.desk.whoami()
    record = outbox.cancel(h.store, args.id)
    print(f"outbox item {record.id} cancelled")
    return EXIT_OK


def cmd_setup_shared(args: argparse.Namespace) -> int:
    from helpdesk_tui import paths
    from helpdesk_tui.desk.shared_setup import SetupError, setup_shared

    config = Path(args.system_config) if args.system_config else paths.system_config_file()
    try:
        r = setup_shared(Path(args.directory), args.group, system_config=config)
    except SetupError as exc:
        raise CliError(str(exc)) from exc
    print(f"{r.directory}: group {r.group}, mode 2770 (setgid)")
    print(f"store {r.db_file}: {'created' if r.created_store else 'migrated'}, mode 0660")
    for line in r.fixed:
        print(f"  fixed {line}")
    for line in r.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if r.config_written:
        print(f"wrote {r.config_path}: agents without a config of their own use this store")
    elif r.config_note:
        print(r.config_note)
        print(r.config_snippet, end="")
    else:
        print(f"{r.config_path} names this store already")
    print(
        "next steps:\n"
        f"  usermod -aG {r.group} LOGIN      for each agent (they log in again afterwards)\n"
        f"  useradd --system --gid {r.group} --home-dir {r.directory} "
        "--shell /usr/sbin/nologin helpdesk\n"
        "  install docs/helpdesk-worker.service as /etc/systemd/system/helpdesk-worker.service,\n"
        "  then: systemctl enable --now helpdesk-worker\n"
        "  helpdesk backup /var/backups/helpdesk/   from cron, for a consistent copy"
    )
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    from helpdesk_tui import paths
    from helpdesk_tui.desk.backup import BackupError, BackupUnsupported, backup

    if getattr(args, "db", None):
        url = paths.db_url(args.db)
    elif getattr(args, "config", None):
        url = paths.default_db_url(paths.configured_store_url(Path(args.config)))
    else:
        url = paths.default_db_url()
    try:
        r = backup(url, Path(args.path), force=args.force)
    except BackupUnsupported as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    print(
        f"{r.path}: {r.size / 1e6:.1f} MB, {r.tickets} tickets, {r.messages} messages, "
        f"{r.attachments} attachments; integrity ok ({r.seconds:.1f} s)"
    )
    return EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from helpdesk_tui.tui.app import run_app
    except ImportError:
        raise CliError(
            "the terminal app is not built yet; use the `helpdesk ticket` commands"
        ) from None
    return run_app(db=getattr(args, "db", None), config=getattr(args, "config", None))


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    # Imported here: the app's start (`helpdesk` alone, see _app_only) never builds a parser.
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", default=argparse.SUPPRESS, help="database file or SQLAlchemy URL (HELPDESK_DB)"
    )
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file (HELPDESK_CONFIG)")
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="helpdesk",
        parents=[common],
        description="A keyboard-driven help desk. No command opens the app.",
    )
    parser.set_defaults(func=cmd_app)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        group: Any,
        name: str,
        func: Callable[[argparse.Namespace], int],
        help_: str,
        *,
        js: bool = False,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(
            name, help=help_, parents=[common, json_opt] if js else [common]
        )
        p.set_defaults(func=func)
        return p

    ticket = sub.add_parser("ticket", help="work on tickets", parents=[common]).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )

    p = add(ticket, "new", cmd_ticket_new, "register a request (phone, walk-in)", js=True)
    p.add_argument("--customer", required=True, metavar="EMAIL")
    p.add_argument("--name", help="the customer's name")
    p.add_argument("--subject", required=True)
    p.add_argument("--body", help="text, or - to read standard input")
    p.add_argument("--priority")
    p.add_argument("--category")
    p.add_argument("--owner", metavar="LOGIN")

    p = add(ticket, "list", cmd_ticket_list, "list tickets", js=True)
    p.add_argument("--status", help="a status name or a base status (active, closed, ...)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--owner", metavar="LOGIN")
    who.add_argument("--mine", action="store_true")
    who.add_argument("--unassigned", action="store_true")
    p.add_argument("--review", action="store_true", help="mail flagged for review")
    p.add_argument("--all", action="store_true", help="include deleted and merged")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument(
        "--search",
        metavar="QUERY",
        help='words, "phrases" and from: to: subject: status: priority: owner: category: '
        "tag: is: before: after: terms, newest first; the other options narrow it",
    )

    p = add(ticket, "show", cmd_ticket_show, "show a ticket with its conversation", js=True)
    p.add_argument("number", type=int)
    p.add_argument("--mark-read", action="store_true", help="mark it read if it is yours")

    for name, func, help_ in (
        ("reply", cmd_ticket_reply, "reply to the customer"),
        ("note", cmd_ticket_note, "add an internal note"),
    ):
        p = add(ticket, name, func, help_, js=True)
        p.add_argument("number", type=int)
        p.add_argument("--body", required=True, help="text, or - to read standard input")
        if name == "reply":
            p.add_argument("--cc", action="append", metavar="ADDR")
            p.add_argument("--all", action="store_true", help="reply to all the customer wrote to")

    p = add(ticket, "forward", cmd_ticket_forward, "forward to an external party", js=True)
    p.add_argument("number", type=int)
    p.add_argument("--to", required=True, metavar="ADDR")
    p.add_argument("--body", help="text, or - to read standard input")
    p.add_argument("--attachment", type=int, action="append", metavar="ID")

    p = add(ticket, "ask", cmd_ticket_ask, "ask a colleague for help", js=True)
    p.add_argument("number", type=int)
    p.add_argument("--agent", required=True, metavar="LOGIN")
    p.add_argument("--body", required=True, help="text, or - to read standard input")

    p = add(
        ticket,
        "assign",
        _simple(lambda h, a: h.desk.assign(a.number, a.agent), "assigned"),
        "assign to an agent",
        js=True,
    )
    p.add_argument("number", type=int)
    p.add_argument("--agent", required=True, metavar="LOGIN")
    p = add(
        ticket,
        "unassign",
        _simple(lambda h, a: h.desk.assign(a.number, None), "back in the queue"),
        "put back in the queue",
        js=True,
    )
    p.add_argument("number", type=int)

    for name, verb, fn in (
        ("take", "taken", lambda h, a: h.desk.take(a.number)),
        ("close", "closed", lambda h, a: h.desk.close(a.number)),
        ("reopen", "reopened", lambda h, a: h.desk.reopen(a.number)),
        ("delete", "deleted", lambda h, a: h.desk.delete(a.number)),
        ("restore", "restored", lambda h, a: h.desk.restore(a.number)),
        ("unmerge", "restored from its merge", lambda h, a: h.desk.unmerge(a.number)),
        ("undo", "undone", lambda h, a: h.desk.undo_last(a.number)),
    ):
        p = add(ticket, name, _simple(fn, verb), f"{name} a ticket", js=True)
        p.add_argument("number", type=int)
    p = add(
        ticket,
        "reviewed",
        _simple(lambda h, a: h.desk.mark_reviewed(a.number), "marked reviewed"),
        "take a ticket off the review list (ticket list --review)",
        js=True,
    )
    p.add_argument("number", type=int)

    p = add(ticket, "postpone", cmd_ticket_postpone, "put aside until a time", js=True)
    p.add_argument("number", type=int)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--until", metavar="WHEN", help="'monday 9:00', 'tomorrow', '2026-12-01 08:30'"
    )
    when.add_argument("--for", dest="for_", choices=["1h", "2h", "3h", "4h", "1d", "1w", "1m"])

    p = add(ticket, "merge", cmd_ticket_merge, "merge a ticket into another", js=True)
    p.add_argument("number", type=int)
    p.add_argument("--into", type=int, required=True)

    p = add(ticket, "split", cmd_ticket_split, "split messages off into a new ticket", js=True)
    p.add_argument("number", type=int)
    p.add_argument("--message", type=int, action="append", required=True, metavar="ID")
    p.add_argument("--subject")

    for name, verb, help_, fn in (
        (
            "priority",
            "priority changed",
            "change the priority",
            lambda h, a: h.desk.set_priority(a.number, a.value),
        ),
        (
            "category",
            "moved",
            "move to a category",
            lambda h, a: h.desk.set_category(a.number, a.value),
        ),
        (
            "status",
            "status changed",
            "set an active status",
            lambda h, a: h.desk.set_status(a.number, a.value),
        ),
    ):
        p = add(ticket, name, _simple(fn, verb), help_, js=True)
        p.add_argument("number", type=int)
        p.add_argument("value", metavar=name.upper())

    p = add(ticket, "tag", cmd_ticket_tag, "tag a ticket")
    p.add_argument("number", type=int)
    p.add_argument("tags", nargs="+")
    p.add_argument("--remove", action="store_true")

    p = add(
        ticket, "timeline", cmd_ticket_timeline, "escalation levels to come, and what-ifs", js=True
    )
    p.add_argument("number", type=int)
    p.add_argument("--if-postpone", metavar="SPAN", help="as if postponed now for 3h, 2d, 1w, 1m")
    p.add_argument("--if-priority", metavar="PRIORITY", help="as if the priority changed now")
    p.add_argument("--if-assign", metavar="LOGIN", help="as if assigned to LOGIN now")

    agent = sub.add_parser("agent", help="manage agents", parents=[common]).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = add(agent, "add", cmd_agent_add, "add an agent (anyone may add the first)", js=True)
    p.add_argument("login")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--signature")
    add(agent, "list", cmd_agent_list, "list agents", js=True)
    p = add(agent, "disable", cmd_agent_active, "disable an agent")
    p.add_argument("login")
    p.set_defaults(active=False)
    p = add(agent, "enable", cmd_agent_active, "enable an agent")
    p.add_argument("login")
    p.set_defaults(active=True)

    config = sub.add_parser("config", help="settings file", parents=[common]).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = add(config, "init", cmd_config_init, "write a commented example config")
    p.add_argument("--force", action="store_true")
    add(config, "check", cmd_config_check, "validate the config")

    outbox = sub.add_parser("outbox", help="outgoing mail", parents=[common]).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = add(outbox, "list", cmd_outbox_list, "list outgoing mail", js=True)
    p.add_argument(
        "--state",
        action="append",
        choices=["queued", "sending", "sent", "retry", "failed", "cancelled"],
    )
    p = add(outbox, "show", cmd_outbox_show, "show one outgoing mail", js=True)
    p.add_argument("id", type=int)
    p = add(outbox, "retry", cmd_outbox_retry, "send a failed or waiting mail again now")
    p.add_argument("id", type=int)
    p = add(outbox, "cancel", cmd_outbox_cancel, "never send this mail")
    p.add_argument("id", type=int)

    p = add(sub, "worker", cmd_worker, "run the background worker (IMAP, outbox, escalation)")
    p.add_argument("--once", action="store_true", help="one full pass of every duty, then exit")
    p.add_argument(
        "--poll", type=float, default=10.0, help="seconds between passes (IDLE wakes it earlier)"
    )
    p.add_argument("-v", "--verbose", action="store_true")

    p = add(sub, "import", cmd_import, "import an mbox file or a Maildir folder")
    p.add_argument("kind", choices=["mbox", "maildir"])
    p.add_argument("path")
    p.add_argument("--mailbox", help="file the mail as if it came to this mailbox")

    mailbox = sub.add_parser("mailbox", help="mailboxes", parents=[common]).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    add(mailbox, "status", cmd_mailbox_status, "sync health and counters", js=True)
    p = add(
        mailbox, "explain", cmd_mailbox_explain, "would this mail be acknowledged, and why", js=True
    )
    p.add_argument("file")
    p = add(
        mailbox, "resume", cmd_mailbox_resume, "resume a mailbox stopped by UIDVALIDITY changes"
    )
    p.add_argument("name")

    p = add(sub, "setup-shared", cmd_setup_shared, "prepare a store for agents of one group")
    p.add_argument("--group", required=True, help="the Unix group of the agents")
    p.add_argument("directory", help="the shared folder, e.g. /srv/helpdesk")
    p.add_argument(
        "--system-config",
        metavar="FILE",
        help="where agents find the store (default /etc/helpdesk-tui/config.toml)",
    )

    p = add(sub, "backup", cmd_backup, "a consistent copy of the live store (SQLite)")
    p.add_argument("path", help="the copy's file, or a folder for a dated file")
    p.add_argument("--force", action="store_true", help="replace an existing file")

    p = add(sub, "demo", cmd_demo, "fill the store with demo data")
    p.add_argument("--tickets", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--if-empty", action="store_true", help="only when the store has no tickets")

    return parser


def _app_only(argv: Sequence[str]) -> argparse.Namespace | None:
    """`helpdesk [--db X] [--config Y]` parsed without building every subcommand's parser.

    The full parser costs the app's first frame about 10 ms; anything but these two options
    (help, a command, an abbreviation, a value that looks like an option) returns None and
    goes through it as before.
    """
    from types import SimpleNamespace

    args = cast("argparse.Namespace", SimpleNamespace(func=cmd_app, command=None))
    rest = list(argv)
    while rest:
        name, eq, value = rest.pop(0).partition("=")
        if name not in ("--db", "--config"):
            return None
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        setattr(args, name.removeprefix("--"), value)
    return args


def _search_value(argv: Sequence[str]) -> list[str]:
    """`--search -owner:me` as `--search=-owner:me`.

    argparse reads a word that starts with - after an option as another option, and the
    search language's exclusions all start with one; only the = form gets them through.
    """
    out: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return [*out, arg, *rest]
        if arg == "--search" and rest:
            arg = f"--search={rest.pop(0)}"
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = _app_only(words)
    if args is None:
        args = build_parser().parse_args(_search_value(words))
    if args.func is cmd_app:
        # The app paints first and opens the store in a worker: importing the store here
        # would cost the first frame about 0.3 s.
        try:
            code: int = cmd_app(args)
            return code
        except CliError as exc:
            print(f"helpdesk: {exc}", file=sys.stderr)
            return EXIT_REFUSED

    from helpdesk_tui.config import ConfigError
    from helpdesk_tui.desk.errors import DeskError
    from helpdesk_tui.store.engine import StoreError

    try:
        result: int = args.func(args)
        return result
    except (CliError, DeskError, StoreError) as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"helpdesk: {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

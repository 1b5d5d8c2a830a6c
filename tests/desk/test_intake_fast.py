"""The bulk intake path files mail exactly as the per-mail ORM path does: same rows, same ids."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.intake import IncomingMail, IngestResult, Intake
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.setup import apply_config
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import open_store
from tests.conftest import CORPUS, T0, make_desk

SECRET = "ab" * 32


def _mail(
    n: int,
    *,
    sender: str | None = None,
    name: str | None = "Carla Customer",
    subject: str | None = None,
    msgid: str | None = None,
    in_reply_to: str | None = None,
    extra: dict[str, str] | None = None,
    attachment: bytes | None = None,
) -> bytes:
    m = EmailMessage()
    addr = sender or f"customer{n % 7}@customer.example"
    m["From"] = f"{name} <{addr}>" if name else addr
    m["To"] = "support@desk.example"
    m["Subject"] = subject if subject is not None else f"Printer problem {n}"
    m["Date"] = format_datetime(T0)
    m["Message-ID"] = msgid or f"<m{n}@customer.example>"
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(f"Mail number {n}.\n\nIt still does not work.")
    if attachment is not None:
        m.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"f{n}.pdf")
    return m.as_bytes()


class _Side:
    """One store, desk and intake; the test runs the same mail through two of them."""

    def __init__(self, root: Path, config: Config, clock: FixedClock, *, bulk: bool) -> None:
        self.store = open_store(f"sqlite:///{root / 'desk.sqlite3'}")
        apply_config(self.store, config)

        def setup(s: Session) -> None:
            s.add(M.Meta(key="message_id_secret", value=SECRET))
            cat = s.exec(select(M.Category)).first()
            s.add(
                M.Mailbox(
                    name="support",
                    address="support@desk.example",
                    category_id=cat.id if cat else None,
                    ack_template="acknowledgement",
                )
            )

        self.store.write(setup)
        self.desk: Desk = make_desk(self.store, clock, "alice")
        self.desk.add_agent("alice", "Alice Able", "alice@desk.example")
        self.intake = Intake(
            self.desk,
            mailbox="support",
            attachments_dir=root / "att",
            own_addresses=["support@desk.example"],
            bulk=bulk,
        )

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.store.engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                # The bulk path leaves acknowledgements for the sender to build (outbox.raw);
                # every other column must match.
                columns = [c for c in table.columns if (table.name, c.name) != ("outbox", "raw")]
                query = sa.select(*columns).order_by(*table.primary_key.columns)
                out[table.name] = [tuple(r) for r in conn.execute(query).all()]
            # The full-text index, kept by triggers: its documents and every term's counts.
            for name, sql in (
                ("search_doc", "SELECT * FROM search_doc ORDER BY ticket_id"),
                ("search_vocab", "SELECT * FROM search_vocab ORDER BY term"),
            ):
                out[name] = [tuple(r) for r in conn.exec_driver_sql(sql).all()]
        return out


class _Nonce:
    """Our Message-IDs carry a random nonce; a counter both sides can rewind instead."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, nbytes: int = 4) -> str:
        self.n += 1
        return f"{self.n:0{2 * nbytes}x}"


NONCE = _Nonce()


@pytest.fixture
def sides(
    tmp_path: Path, config: Config, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_Side, _Side]]:
    monkeypatch.setattr("helpdesk_tui.mail.msgid.secrets.token_hex", NONCE)
    (tmp_path / "bulk").mkdir()
    (tmp_path / "orm").mkdir()
    bulk = _Side(tmp_path / "bulk", config, clock, bulk=True)
    orm = _Side(tmp_path / "orm", config, clock, bulk=False)
    yield bulk, orm
    bulk.store.dispose()
    orm.store.dispose()


def _both(
    sides: tuple[_Side, _Side], raws: list[bytes], first_uid: int, validity: int = 1
) -> list[IngestResult]:
    bulk, orm = sides
    mails = [IncomingMail(r, validity, first_uid + i) for i, r in enumerate(raws)]
    start = NONCE.n
    got = bulk.intake.ingest_batch(mails, uidvalidity=validity)
    NONCE.n = start
    want = orm.intake.ingest_batch(mails, uidvalidity=validity)
    assert got == want
    return got


def _assert_same(sides: tuple[_Side, _Side]) -> None:
    a, b = sides[0].dump(), sides[1].dump()
    for table in a:
        assert a[table] == b[table], f"table {table} differs"


def test_plain_new_mail_never_takes_the_per_mail_path(
    sides: tuple[_Side, _Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk, _ = sides

    def refuse(*args: object, **kwargs: object) -> IngestResult:
        raise AssertionError("per-mail path used")

    monkeypatch.setattr(bulk.intake, "_one", refuse)
    results = bulk.intake.ingest_batch([IncomingMail(_mail(i), 1, i + 1) for i in range(50)])
    assert all(r.new_ticket for r in results)
    assert sum(r.acknowledged for r in results) == 7  # one a sender a day


def test_bulk_and_per_mail_paths_write_the_same_rows(
    sides: tuple[_Side, _Side], clock: FixedClock
) -> None:
    first = [
        _mail(1),
        _mail(2, name=None, sender="noname@customer.example"),
        _mail(3, name="Now Named", sender="noname@customer.example"),
        _mail(4, extra={"Auto-Submitted": "auto-replied"}),
        _mail(5, sender="MAILER-DAEMON@mx.example", name=None),
        _mail(6, attachment=b"%PDF-1.4 one"),
        _mail(7, attachment=b"%PDF-1.4 one"),
        _mail(8, subject=""),
        _mail(9, in_reply_to="<m1@customer.example>"),  # a reply inside the batch
        _mail(1),  # the same bytes again in the batch
        _mail(10, in_reply_to="<hd.1.2.abcdabcd.0123456789abcdef0123@desk.example>"),  # forged
        b"From: \xff\xfe broken\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\x00",
        _mail(11, sender="not an address", name="Odd"),
        _mail(12, subject="Re: [#1] more"),
        _mail(13, subject="[#999] no such ticket"),
        _mail(14, sender="support@desk.example"),
        _mail(15),
    ]
    r1 = _both(sides, first, 1)
    assert any(r.duplicate for r in r1) and any(r.rule == "message-id" for r in r1)
    _assert_same(sides)

    bulk, _ = sides
    with bulk.store.read() as s:
        ours = s.exec(select(M.Outbox.rfc_message_id).order_by(col(M.Outbox.id))).first()
    assert ours
    clock.advance(hours=1)
    second = [
        _mail(20, in_reply_to=ours),  # a reply to our acknowledgement
        _mail(21, in_reply_to="<m6@customer.example>"),  # to a stored message
        _mail(6, attachment=b"%PDF-1.4 one"),  # same bytes, new key
        _mail(22, sender="new@customer.example"),
        _mail(23, sender="new@customer.example"),
    ]
    _both(sides, second, len(first) + 1)
    _both(sides, [_mail(30), _mail(31)], len(first) + 1)  # same keys, other bytes
    clock.advance(hours=25)
    _both(sides, [_mail(40 + i) for i in range(14)], 100)
    _both(sides, [_mail(1)], 1, validity=2)  # UIDVALIDITY changed: re-associated by bytes
    _assert_same(sides)


def test_corpus_is_filed_the_same_by_both_paths(sides: tuple[_Side, _Side]) -> None:
    if not CORPUS.exists():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".tsv", ".md"))
    raws = [p.read_bytes() for p in files]
    for i in range(0, len(raws), 50):
        _both(sides, raws[i : i + 50], i + 1)
    _assert_same(sides)

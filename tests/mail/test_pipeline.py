"""Fetch ahead: batches come in order, parsed; a fetch error comes after what was fetched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpdesk_tui.mail.imap import ImapError
from helpdesk_tui.mail.pipeline import FetchAhead


def _raw(uid: int) -> bytes:
    return f"Message-ID: <p{uid}@x.example>\r\nSubject: mail {uid}\r\n\r\nbody {uid}\r\n".encode()


class _Source:
    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.fetched = 0

    def fetch_batches(self, uids: Sequence[int]) -> Iterator[dict[int, bytes]]:
        for i in range(0, len(uids), 10):
            if self.fail_after is not None and self.fetched >= self.fail_after:
                raise ImapError("connection lost")
            chunk = uids[i : i + 10]
            self.fetched += len(chunk)
            yield {uid: _raw(uid) for uid in reversed(chunk)}


@pytest.mark.parametrize("pool", [False, True])
def test_batches_in_uid_order_with_their_parsed_mail(pool: bool) -> None:
    with ThreadPoolExecutor(2) as executor:
        ahead = FetchAhead(_Source(), list(range(1, 26)), executor if pool else None)
        try:
            got = [(batch, parsing()) for batch, parsing in ahead]
        finally:
            ahead.close()
    assert [uid for batch, _ in got for uid, _ in batch] == list(range(1, 26))
    for batch, parsed in got:
        assert [p.subject for p in parsed] == [f"mail {uid}" for uid, _ in batch]


def test_a_fetch_error_is_raised_after_the_batches_before_it() -> None:
    ahead = FetchAhead(_Source(fail_after=20), list(range(1, 41)), None)
    seen: list[int] = []
    with pytest.raises(ImapError, match="connection lost"):
        for batch, _ in ahead:
            seen += [uid for uid, _ in batch]
    ahead.close()
    assert seen == list(range(1, 21))


def test_close_stops_the_fetching_thread() -> None:
    source = _Source()
    ahead = FetchAhead(source, list(range(1, 1001)), None)
    assert next(iter(ahead))
    ahead.close()
    # The batch in hand, the queue's two and one waiting to go in: not all 100 batches.
    assert source.fetched <= 40


def test_nothing_to_fetch() -> None:
    ahead = FetchAhead(_Source(), [], None)
    assert list(ahead) == []
    ahead.close()

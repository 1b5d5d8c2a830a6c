"""Fetch ahead: a thread fetches the next batches and hands each to the parse pool at once.

The intake files batch k while batch k+1 is on the wire and in the pool. On a thread the fetch
overlaps the intake's SQLite work (which releases the GIL) instead of taking turns with it, and
the pool gets each batch as soon as it arrives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Protocol

from helpdesk_tui.mail.parse import ParsedMail, parse_message

Batch = list[tuple[int, bytes]]
Parsing = Callable[[], list[ParsedMail]]

DEPTH = 2  # batches fetched ahead of the one being filed: bounds the memory held


class BatchSource(Protocol):
    def fetch_batches(self, uids: Sequence[int]) -> Iterator[dict[int, bytes]]: ...


def start_parse(executor: Executor | None, batch: Batch) -> Parsing:
    """Hand a batch to the pool now; the callable waits for its parsed mails, in order."""
    raws = [raw for _, raw in batch]
    if executor is None or len(raws) < 8:
        return lambda: [parse_message(r) for r in raws]
    # map submits every chunk at once; collecting the results is what waits.
    parsing = executor.map(parse_message, raws, chunksize=16)
    return lambda: list(parsing)


class FetchAhead:
    """Iterate (batch, parsing) in UID order; an error of the fetch is raised after the batches
    fetched before it, so what is already here is filed first. Close it before the connection
    is used for anything but locked single commands (ImapMailbox serialises those)."""

    def __init__(self, source: BatchSource, uids: Sequence[int], executor: Executor | None) -> None:
        self._source = source
        self._uids = list(uids)
        self._executor = executor
        self._queue: queue.Queue[tuple[Batch, Parsing] | BaseException | None] = queue.Queue(DEPTH)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        item: BaseException | None = None
        try:
            for fetched in self._source.fetch_batches(self._uids):
                if self._stop.is_set():
                    return
                if fetched:
                    batch = sorted(fetched.items())
                    if not self._put((batch, start_parse(self._executor, batch))):
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            item = exc
        self._put(item)

    def _put(self, item: tuple[Batch, Parsing] | BaseException | None) -> bool:
        """Block while the queue is full, but give up once closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[Batch, Parsing]]:
        if not self._uids:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="imap-fetch", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop fetching and wait for a fetch under way to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

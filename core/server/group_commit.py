"""Group commit: concurrent Export calls share one durable transaction (one fsync for many batches)."""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Sequence

from agentlightning.core.store import SpanRecord, Store

logger = logging.getLogger("agentlightning.server")


class GroupCommitter:
    """A single writer thread that drains every pending batch into one store transaction."""

    def __init__(self, store: Store, max_group_spans: int = 50_000) -> None:
        self.store = store
        self.max_group_spans = max_group_spans
        self._pending: "queue.Queue[tuple[Sequence[SpanRecord], Future] | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="agentlightning-group-commit", daemon=True)
        self._thread.start()
        self.groups = 0

    def submit(self, records: Sequence[SpanRecord], timeout_s: float | None = None) -> list[bool]:
        """Block until ``records`` are durable; per record True if new, False if already stored."""
        if not records:
            return []
        future: Future = Future()
        self._pending.put((records, future))
        return future.result(timeout=timeout_s)

    def close(self) -> None:
        """Finish every batch already submitted, then stop."""
        self._pending.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._pending.get()
            if item is None:
                break
            group = [item]
            size = len(item[0])
            while size < self.max_group_spans:
                try:
                    nxt = self._pending.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt[0])
            self._commit(group)

    def _commit(self, group: list[tuple[Sequence[SpanRecord], Future]]) -> None:
        records = [r for batch, _ in group for r in batch]
        try:
            inserted = self.store.insert_spans(records)
        except BaseException as exc:  # every waiter learns the batch is not durable
            for _, future in group:
                future.set_exception(exc)
            return
        self.groups += 1
        pos = 0
        for batch, future in group:
            future.set_result(inserted[pos : pos + len(batch)])
            pos += len(batch)

"""A background worker that applies handed-over items in FIFO order, off the agent's thread.

Integrations note an event on the agent's thread and leave the expensive part (mapping a whole message
history, tools, token ids into a span) for later, so the time added per event on the agent's thread
stays small and constant.

What the later work costs is mostly thread wake-ups and cold caches, not the mapping (measured on a
2-core VM: a thread's timed wake-up ~20-80 µs of CPU; one item mapped alone between an agent's steps
costs 3-5x what it costs among others, back to back). So items are handled in batches:

* the integrations ``kick`` the thread when an agent's run ends: a short run's events are mapped then,
  in one pass, while the agent's code goes on (returning its answer, say): one wake-up per run, and the
  run's end costs the agent's thread nothing more (draining there cost ~50 µs per event of the run);
* for long runs, the thread also looks every ``interval_s`` and handles what has queued up: an agent
  spends most of its time waiting on its model, so that pass usually overlaps the wait.
  Every ``slice_s`` of work it yields the interpreter lock, so an agent whose model just answered waits
  for at most about that long, not the whole batch.

``submit`` only appends to a deque: the agent's thread never signals anyone per event (a wake-up costs
a futex call and, while the agent runs, a forced interpreter-lock hand-off; measured at load ~5: ~15 µs
more per model call when the Agents SDK processor woke the thread at each call's start). The thread
costs a wake-up per ``interval_s`` while it lives (~0.2 ms of CPU a second at 0.5 s).
Bounded: past ``max_backlog`` queued items ``submit`` refuses (the caller counts the drop).

Every live worker is drained by ``agentlightning.flush()`` (``drain_all``) before the exporter flushes,
so "flush" means what a user expects whichever integration produced the spans.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Optional

logger = logging.getLogger("agentlightning.deferred")

_workers: "weakref.WeakSet[DeferredWorker]" = weakref.WeakSet()


class DeferredWorker:
    def __init__(self, handle: Callable[[Any], None], name: str = "agentlightning-deferred",
                 max_backlog: int = 50_000, interval_s: float = 0.5, slice_s: float = 0.0002) -> None:
        self._handle = handle
        self.max_backlog = max_backlog
        self.interval_s = interval_s  # how often the thread looks for queued items
        self.slice_s = slice_s  # the thread yields the interpreter lock after this much work
        self._name = name
        self.errors = 0
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has the queue but no thread: start over
            ref = weakref.WeakMethod(self._reset)
            os.register_at_fork(after_in_child=lambda: (ref() or (lambda: None))())
        _workers.add(self)

    def _reset(self) -> None:
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()  # held while one item is handled: keeps FIFO order across threads
        self._started = False
        self._thread: Optional[threading.Thread] = None
        self._wake = threading.Event()

    def submit(self, item: Any) -> bool:
        """Queue one item; False when the backlog is full (nothing was queued)."""
        if len(self._items) >= self.max_backlog:
            return False
        self._items.append(item)
        if not self._started:
            self._start()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._started = True
            self._thread.start()

    def _work(self, deadline: Optional[float] = None, yield_between: bool = False) -> None:
        """Handle queued items in order until none is left (or the deadline passes)."""
        items, lock = self._items, self._lock
        next_yield = time.perf_counter() + self.slice_s
        while items:
            if deadline is not None:
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return
            else:
                lock.acquire()
            try:
                if not items:
                    return
                item = items.popleft()
                try:
                    self._handle(item)
                except Exception:
                    self.errors += 1
                    logger.debug("%s: an item was not applied", self._name, exc_info=True)
            finally:
                lock.release()
            if deadline is not None and time.monotonic() > deadline:
                return
            if yield_between and time.perf_counter() >= next_yield:
                time.sleep(0)  # let a thread waiting for the interpreter lock (the agent) run first
                next_yield = time.perf_counter() + self.slice_s

    def kick(self) -> None:
        """Have the thread handle what is queued now rather than at its next look (a run ended)."""
        if self._items:
            self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait(self.interval_s)
            wake.clear()
            if self._items:
                self._work(yield_between=True)

    @property
    def pending(self) -> int:
        return len(self._items)

    def drain(self, timeout_s: float) -> bool:
        """Finish everything queued, on the calling thread; True when nothing is left."""
        deadline = time.monotonic() + timeout_s
        self._work(deadline)
        # The thread may be in the middle of the last item: wait for it to let go of the lock.
        if self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._lock.release()
            return not self._items
        return False


def drain_all(timeout_s: float) -> bool:
    """Drain every live worker (called by ``agentlightning.flush()``). True when all are empty."""
    deadline = time.monotonic() + timeout_s
    ok = True
    for worker in list(_workers):
        ok = worker.drain(max(0.0, deadline - time.monotonic())) and ok
    return ok

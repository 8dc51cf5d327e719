"""A background worker that applies handed-over items in FIFO order, off the agent's thread.

Integrations note an event on the agent's thread and leave the expensive part (mapping a whole message
history, tools, token ids into a span) to this worker: an agent spends most of its life waiting on the
model, so the work overlaps the wait and the time added per event stays small and constant.

Handing over must itself be cheap: waking a thread per event (a futex wake plus a GIL hand-off) costs
tens of µs on a busy VM, more than the hook. So ``submit`` only appends to a deque; the thread polls every
``interval_s`` while there is work and is woken explicitly only when it had gone idle. ``drain`` finishes
what is left on the calling thread (under the same lock, so order is kept), cheaper than a hand-off.
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
                 max_backlog: int = 50_000, interval_s: float = 0.005, idle_after: int = 20) -> None:
        self._handle = handle
        self.max_backlog = max_backlog
        self.interval_s = interval_s
        self._idle_after = idle_after  # empty rounds before sleeping until woken
        self._name = name
        self.errors = 0
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has the queue but no thread: start over
            ref = weakref.WeakMethod(self._reset)
            os.register_at_fork(after_in_child=lambda: (ref() or (lambda: None))())
        _workers.add(self)

    def _reset(self) -> None:
        self._items: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # held while one item is handled: keeps FIFO order across threads
        self._idle = True
        self._started = False
        self._thread: Optional[threading.Thread] = None

    def submit(self, item: Any) -> bool:
        """Queue one item; False when the backlog is full (nothing was queued)."""
        if len(self._items) >= self.max_backlog:
            return False
        self._items.append(item)
        if self._idle:  # the thread sleeps until woken (or does not exist yet)
            self._idle = False
            if not self._started:
                self._start()
            self._wake.set()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._started = True
            self._thread.start()

    def _work(self, deadline: Optional[float] = None) -> None:
        """Handle queued items in order until none is left (or the deadline passes)."""
        items, lock = self._items, self._lock
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

    def _run(self) -> None:
        empty_rounds = 0
        while True:
            self._wake.wait(None if self._idle else self.interval_s)
            self._wake.clear()
            if self._items:
                empty_rounds = 0
                self._work()
                continue
            empty_rounds += 1
            if empty_rounds >= self._idle_after:
                self._idle = True
                if self._items:  # an item raced in before the flag was visible: keep going
                    self._idle = False

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

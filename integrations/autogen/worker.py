"""A background thread that applies noted events in order, so mapping costs the agent's thread nothing.

An agent spends most of its time waiting on the model; building a span from a whole message history
is done here meanwhile. Handing over must stay cheap: ``submit`` appends to a deque and wakes the
thread only when it went idle (a wake per event would cost more than the work it moves). Bounded:
past ``max_backlog`` items ``submit`` refuses and the caller counts a drop.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
from typing import Any, Callable, Optional

_debug = logging.getLogger("agentlightning.integrations.autogen")


class Worker:
    def __init__(self, handle: Callable[[Any], None], max_backlog: int = 50_000, interval_s: float = 0.005,
                 idle_rounds: int = 20) -> None:
        self._handle = handle
        self.max_backlog = max_backlog
        self._interval_s = interval_s
        self._idle_rounds = idle_rounds
        self.errors = 0
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)  # a child has the queue but not the thread

    def _reset(self) -> None:
        self._items: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._busy = False
        self._idle = True
        self._thread: Optional[threading.Thread] = None

    def submit(self, item: Any) -> bool:
        """Queue one item; False when the backlog is full (nothing queued)."""
        if len(self._items) >= self.max_backlog:
            return False
        self._items.append(item)
        if self._idle:
            self._idle = False
            if self._thread is None:
                with self._done:
                    if self._thread is None:
                        self._thread = threading.Thread(target=self._run, name="agentlightning-autogen",
                                                        daemon=True)
                        self._thread.start()
            self._wake.set()
        return True

    def _run(self) -> None:
        items, wake = self._items, self._wake
        empty = 0
        while True:
            wake.wait(None if self._idle else self._interval_s)
            wake.clear()
            if not items:
                empty += 1
                if empty >= self._idle_rounds:
                    self._idle = True
                    if items:  # raced in before the flag was visible
                        self._idle = False
                continue
            empty = 0
            self._busy = True
            try:
                while items:
                    try:
                        self._handle(items.popleft())
                    except Exception:
                        self.errors += 1
                        _debug.debug("autogen event not recorded", exc_info=True)
            finally:
                self._busy = False
                with self._done:
                    self._done.notify_all()

    @property
    def pending(self) -> int:
        return len(self._items) + (1 if self._busy else 0)

    def drain(self, timeout_s: float) -> bool:
        """Wait until everything queued so far is applied; False on timeout."""
        if not self._items and not self._busy:
            return True
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: not self._items and not self._busy, timeout_s)

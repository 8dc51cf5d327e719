"""Bookkeeping that ties CrewAI's tool events back to the model's tool calls, per scope.

CrewAI's tool events carry neither the model's call id nor its raw argument string, and a reported tool
failure may or may not have a tool run of its own. Both are decided here, from event ids, under one lock.
Framework-free.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Optional

Requested = tuple[str, str, str]  # (call id, tool name, raw arguments) as the model produced them


class ToolCallBook:
    """Thread-safe; everything is per scope (an agent executor's run) and dropped when the scope ends."""

    def __init__(self, max_ids: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._requested: dict[str, list[Requested]] = {}  # scope id -> calls the model asked for
        self._tool_ends: dict[str, None] = {}  # ids of tool end events seen (bounded, ordered)
        self._pending_failures: dict[str, Any] = {}  # previous event id -> undecided failure event
        self._failures_by_scope: dict[str, list[str]] = {}
        self._max_ids = max_ids

    # -- the model's tool calls ----------------------------------------------------------------------
    def add_requested(self, scope: Optional[str], calls: list[Requested]) -> None:
        if scope and calls:
            with self._lock:
                self._requested.setdefault(scope, []).extend(calls)

    def take_requested(self, scope: Optional[str], name: str, args: Any) -> Optional[Requested]:
        """The model's call a tool use answers: same scope and name, equal arguments preferred."""
        if not scope:
            return None
        with self._lock:
            calls = self._requested.get(scope)
            if not calls:
                return None
            candidates = [i for i, c in enumerate(calls) if c[1] == name]
            if not candidates:
                return None
            chosen = candidates[0]
            for i in (candidates if len(candidates) > 1 else ()):
                try:
                    if json.loads(calls[i][2]) == args:
                        chosen = i
                        break
                except ValueError:
                    continue
            return calls.pop(chosen)

    # -- failures reported without a tool run --------------------------------------------------------
    def tool_ended(self, end_event_id: str) -> Optional[Any]:
        """Record a tool end; returns the failure event that turned out to belong to it, if one waited."""
        with self._lock:
            self._tool_ends[end_event_id] = None
            if len(self._tool_ends) > self._max_ids:
                self._tool_ends.pop(next(iter(self._tool_ends)))
            return self._pending_failures.pop(end_event_id, None)

    def follows_tool_end(self, previous_event_id: str) -> bool:
        return previous_event_id in self._tool_ends

    def add_failure(self, event: Any) -> bool:
        """Hold an undecided failure event until its scope ends; False if its tool end was seen meanwhile."""
        previous = event.previous_event_id or ""
        with self._lock:
            if previous in self._tool_ends:
                return False
            self._pending_failures[previous] = event
            self._failures_by_scope.setdefault(event.parent_event_id or "", []).append(previous)
            return True

    # -- scope end -----------------------------------------------------------------------------------
    def close_scope(self, scope_id: str) -> list[Any]:
        """Forget the scope's unanswered calls; returns its failure events that had no tool run."""
        if scope_id not in self._requested and scope_id not in self._failures_by_scope:
            return []
        with self._lock:
            self._requested.pop(scope_id, None)
            events = [self._pending_failures.pop(p, None) for p in self._failures_by_scope.pop(scope_id, ())]
        return [e for e in events if e is not None]

    def close_all_failures(self) -> list[Any]:
        with self._lock:
            events = list(self._pending_failures.values())
            self._pending_failures.clear()
            self._failures_by_scope.clear()
        return events

    def empty(self) -> bool:
        return not (self._requested or self._pending_failures or self._failures_by_scope)

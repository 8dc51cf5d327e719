"""Builds one span tree from start/end events that arrive out of order, on several threads.

CrewAI runs sync handlers on a thread pool: a child's handler can run before its parent's, an end before
its start. So spans are keyed on the ids the events carry (``event_id``, ``parent_event_id``,
``started_event_id``), never on contextvars or arrival order: a node waits for its parent, an early end
waits for its start, and a late child still finds a finished parent in a bounded memory of finished nodes.
Framework-free (ids and callables only), so it can be tested with any interleaving.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from agentlightning.core import context as ctx
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.v1 import spans_pb2

logger = logging.getLogger("agentlightning.integrations.crewai")

# builder(parent) -> the new span, or None for a pass-through scope (children attach to its parent).
Builder = Callable[[ActiveSpan], Optional[ActiveSpan]]
# finisher(span) fills the end payload; the linker then ends the span at ``end_ns``.
Finisher = Callable[[ActiveSpan], None]


class _Node:
    __slots__ = ("event_id", "parent_id", "started", "builder", "anchor", "keys", "fallback", "leaf", "tag",
                 "span", "ref", "end", "early_ends", "waiting")

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.parent_id: Optional[str] = None
        self.started = False
        self.builder: Optional[Builder] = None
        self.anchor: Optional[tuple[object, Optional[ctx.RolloutContext]]] = None
        self.keys: tuple = ()
        self.fallback: tuple = ()
        self.leaf = False
        self.tag: Optional[str] = None
        self.span: Optional[ActiveSpan] = None
        self.ref: Optional[ActiveSpan] = None  # what children attach to; set once resolved
        self.end: Optional[tuple[Optional[Finisher], int, Any, Optional[str]]] = None
        self.early_ends: list = []  # closes that arrived before the start (checked against its tag then)
        self.waiting: list[_Node] = []


def stub_span(tracer: Tracer, rollout: ctx.RolloutContext, span_id: bytes, agent_name: str) -> ActiveSpan:
    """A never-ended stand-in that only lends its id, agent name and rollout to children."""
    return ActiveSpan(tracer, spans_pb2.Span(span_id=span_id, agent_name=agent_name), rollout)


def capture_context() -> tuple[object, Optional[ctx.RolloutContext]]:
    """The caller's current span and rollout (cheap: two contextvar reads)."""
    return ctx.current_span(), ctx.current_rollout()


def context_anchor(tracer: Tracer, captured: tuple[object, Optional[ctx.RolloutContext]]) -> ActiveSpan:
    """The parent a root scope hangs under: the current span, else the current (or a new) rollout's root."""
    current, rollout = captured
    if isinstance(current, ActiveSpan):
        return current
    rollout = rollout or ctx.new_rollout_context()
    return stub_span(tracer, rollout, rollout.root_parent_span_id, "")


class SpanLinker:
    """Thread-safe: ``start``/``end`` may be called in any order from any thread; never raises."""

    def __init__(self, tracer_getter: Callable[[], Tracer], max_live: int = 100_000,
                 max_finished: int = 20_000) -> None:
        self._tracer = tracer_getter
        self._lock = threading.Lock()
        self._live: dict[str, _Node] = {}
        # event_id -> ref (or (span_id, agent_name, rollout) until a late child asks), insertion-ordered LRU
        self._finished: dict[str, Any] = {}
        self._by_key: dict[Any, str] = {}  # e.g. ("agent", agent_id, task_id) -> event_id, for fallbacks
        self._max_live = max_live
        self._max_finished = max_finished
        self.on_scope_end: Optional[Callable[[str], None]] = None
        self.errors = 0

    # -- public ------------------------------------------------------------------------------------
    def start(self, event_id: str, parent_id: Optional[str], builder: Optional[Builder], *,
              keys: tuple = (), fallback: tuple = (), leaf: bool = False, tag: Optional[str] = None) -> None:
        """A scope opened. ``builder=None`` makes it pass-through; ``keys`` name it for other nodes'
        ``fallback`` (tried in order when their parent's start never arrives); a ``leaf`` has no children;
        ``tag`` (e.g. the start event's type) lets ``end`` refuse a close meant for another kind of scope.
        Captures the caller's context as the root anchor: call it in the context the event was emitted from."""
        try:
            captured = capture_context()
            anchor = context_anchor(self._tracer(), captured) if parent_id is None else None
            ready: list[Callable[[], None]] = []
            with self._lock:
                live = self._live
                node = live.get(event_id)
                if node is None:
                    if event_id in self._finished:
                        return  # duplicate delivery
                    node = live[event_id] = _Node(event_id)
                    if len(live) > self._max_live:
                        self._evict_locked()
                elif node.started:
                    return
                node.started = True
                node.parent_id = parent_id
                node.builder = builder
                node.anchor = captured
                node.keys = keys
                node.fallback = fallback
                node.leaf = leaf
                node.tag = tag
                if node.early_ends:  # closes that beat the start: keep the first meant for this scope
                    node.end = next((e for e in node.early_ends if e[3] is None or e[3] == tag), None)
                    node.early_ends = []
                parent_ref = anchor if parent_id is None else self._ref_locked(parent_id)
                if parent_ref is not None:
                    self._resolve_locked(node, parent_ref, ready)
                else:
                    parent = live.get(parent_id)  # type: ignore[arg-type]
                    if parent is None:
                        parent = live[parent_id] = _Node(parent_id)  # type: ignore[index]
                    parent.waiting.append(node)
            if ready:
                self._end_all(ready)
        except Exception:
            self.errors += 1
            logger.debug("crewai span start failed", exc_info=True)

    def end(self, started_id: Optional[str], finisher: Optional[Finisher], end_ns: int,
            error: Any = None, expect: Optional[str] = None) -> None:
        """A scope closed. Before its start arrived: remembered. Parent never seen: resolved by fallback.
        ``expect``: the tag the scope must carry (CrewAI's own scope stack can pair a close with the wrong
        start, e.g. a call reported failed twice); a mismatch is ignored."""
        if not started_id:
            return
        try:
            ready: list[Callable[[], None]] = []
            with self._lock:
                node = self._live.get(started_id)
                if node is None:
                    if started_id in self._finished:
                        return
                    node = self._live[started_id] = _Node(started_id)
                    if len(self._live) > self._max_live:
                        self._evict_locked()
                if node.end is not None:
                    return
                if not node.started:
                    node.early_ends.append((finisher, end_ns, error, expect))
                    return
                if expect is not None and node.tag != expect:
                    return
                node.end = (finisher, end_ns, error, expect)
                if node.ref is not None:
                    self._finish_locked(node, ready)
                else:
                    parent = self._live.get(node.parent_id or "")
                    if parent is None or not parent.started:
                        # The parent's start never came (a scope type not listened to, or lost): by hint.
                        fallback = self._fallback_locked(node)
                        if fallback is not None:
                            self._detach_locked(node)
                            self._resolve_locked(node, fallback, ready)
                    # else the parent itself waits for its own parent: the chain resolves together.
            if ready:
                self._end_all(ready)
        except Exception:
            self.errors += 1
            logger.debug("crewai span end failed", exc_info=True)

    def sweep(self) -> int:
        """Attach ended nodes still waiting for a parent that will not come (call when a root ends after
        the framework flushed its handlers). Returns how many were attached."""
        try:
            ready: list[Callable[[], None]] = []
            with self._lock:
                stuck = [n for n in self._live.values() if n.started and n.end is not None and n.ref is None]
                for node in stuck:
                    if node.ref is not None:  # attached meanwhile through an ancestor
                        continue
                    self._detach_locked(node)
                    parent = self._fallback_locked(node) or context_anchor(self._tracer(), node.anchor or (None, None))
                    self._resolve_locked(node, parent, ready)
            self._end_all(ready)
            return len(stuck)
        except Exception:
            self.errors += 1
            logger.debug("crewai sweep failed", exc_info=True)
            return 0

    def discard(self, event_id: str) -> None:
        """Forget a scope opened tentatively: its span is never ended, so it is never exported."""
        with self._lock:
            node = self._live.pop(event_id, None)
            if node is not None:
                self._detach_locked(node)

    def ref(self, event_id: str) -> Optional[ActiveSpan]:
        """The span children of ``event_id`` attach to, if resolved (live or recently finished)."""
        with self._lock:
            return self._ref_locked(event_id)

    def pending(self) -> int:
        with self._lock:
            return len(self._live)

    # -- internals (lock held) ---------------------------------------------------------------------
    def _ref_locked(self, event_id: str) -> Optional[ActiveSpan]:
        node = self._live.get(event_id)
        if node is not None:
            return node.ref
        ref = self._finished.get(event_id)
        if ref.__class__ is tuple:  # a finished span: lend a stand-in
            span_id, agent_name, rollout = ref  # type: ignore[misc]
            ref = self._finished[event_id] = stub_span(self._tracer(), rollout, span_id, agent_name)
        return ref  # type: ignore[return-value]

    def _fallback_locked(self, node: _Node) -> Optional[ActiveSpan]:
        for key in node.fallback:
            event_id = self._by_key.get(key)
            if event_id is not None:
                ref = self._ref_locked(event_id)
                if ref is not None:
                    return ref
        return None

    def _detach_locked(self, node: _Node) -> None:
        parent = self._live.get(node.parent_id or "")
        if parent is not None:
            try:
                parent.waiting.remove(node)
            except ValueError:
                pass

    def _resolve_locked(self, node: _Node, parent_ref: Optional[ActiveSpan],
                        ready: list[Callable[[], None]]) -> None:
        stack = [(node, parent_ref)]
        while stack:
            current, parent = stack.pop()
            span = None
            if current.builder is not None and parent is not None:
                try:
                    span = current.builder(parent)
                except Exception:
                    self.errors += 1
                    logger.debug("crewai span builder failed", exc_info=True)
            current.span = span
            current.ref = span if span is not None else parent
            if current.keys:
                by_key = self._by_key
                for key in current.keys:
                    by_key[key] = current.event_id
                if len(by_key) > self._max_finished:
                    by_key.pop(next(iter(by_key)))
            if current.end is not None:
                self._finish_locked(current, ready)
            if current.waiting:  # pushed reversed so they pop (and get their sequence numbers) in order
                waiting, current.waiting = current.waiting, []
                for child in reversed(waiting):
                    stack.append((child, current.ref))

    def _finish_locked(self, node: _Node, ready: list[Callable[[], None]]) -> None:
        self._live.pop(node.event_id, None)
        finisher, end_ns, error, _ = node.end  # type: ignore[misc]
        ref = node.ref
        span = node.span
        if span is not None:
            ready.append(lambda: self._end_span(span, finisher, end_ns, error))
        if not node.leaf:
            # Late children need only the id, agent name and rollout: keep those, not the whole payload.
            self._finished[node.event_id] = (
                (span.proto.span_id, span.proto.agent_name, span.rollout) if span is not None else ref)
            if len(self._finished) > self._max_finished:
                self._finished.pop(next(iter(self._finished)))
        if node.waiting:  # children whose end beat ours (possible with a pool): resolve them now
            waiting, node.waiting = node.waiting, []
            for child in waiting:
                self._resolve_locked(child, ref, ready)
        hook = self.on_scope_end
        if hook is not None:
            event_id = node.event_id
            ready.append(lambda: hook(event_id))

    def _evict_locked(self) -> None:
        """Drop the oldest nodes beyond the cap (their spans are lost, memory stays bounded)."""
        while len(self._live) > self._max_live:
            self._live.pop(next(iter(self._live)))

    @staticmethod
    def _end_span(span: ActiveSpan, finisher: Optional[Finisher], end_ns: int, error: Any) -> None:
        if finisher is not None:
            finisher(span)
        span.end(error=error, end_time_ns=end_ns)

    def _end_all(self, ready: list[Callable[[], None]]) -> None:
        """Fill and end finished spans (and run scope-end hooks) outside the lock."""
        for action in ready:
            try:
                action()
            except Exception:
                self.errors += 1
                logger.debug("crewai span finish failed", exc_info=True)

"""A ``TracingProcessor`` that turns the Agents SDK's traces into Agent Lightning spans.

The SDK calls processors synchronously on the agent's own task, so the rollout and the current
Agent Lightning span are read from contextvars right there. Parents come from the SDK's own span ids
(``parent_id``), never from global context; only a trace's root spans hang under whatever Agent
Lightning span or rollout is current. One SDK trace outside any rollout becomes one generated rollout,
so a handoff between two agents stays in one rollout.

The runner's ``task``/``turn`` spans (new in SDK 0.20) are plumbing: by default they are folded (not
recorded; their children attach to the nearest recorded ancestor and carry the turn number as an
attribute), which gives the same agent -> LLM -> tool tree on every SDK version.
``include_turn_spans=True`` records them as CHAIN spans.

Split of work: on the agent's thread a hook only notes the event (parent links, clock, contextvars,
a snapshot of lists the SDK may still append to) and queues it for the ``Recorder`` (``defer=True``, the
default), which creates and fills our spans in event order, in batches (``core.deferred``): a trace's
end wakes the worker's thread to map it in one pass while the agent's code goes on
(``agentlightning.flush()`` waits for it); during a long trace the thread maps what has queued every
half second.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

from agents.tracing import FunctionSpanData, Span, Trace, TracingProcessor

from agentlightning.core import api
from agentlightning.core import context as ctx
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.openai_agents import mapping
from agentlightning.core.deferred import DeferredWorker
from agentlightning.integrations.openai_agents.recorder import Node, Recorder

logger = logging.getLogger("agentlightning.integrations.openai_agents")

_FOLDED_TYPES = frozenset(("task", "turn"))
_START, _END, _ABANDON, _TRACE_END = 0, 1, 2, 3


class _TraceState:
    """Where one SDK trace's root spans go, captured when the trace starts, and its open spans."""

    __slots__ = ("tracer", "parent", "rollout", "open")

    def __init__(self, tracer: Tracer, parent: Optional[ActiveSpan], rollout: Optional[ctx.RolloutContext]) -> None:
        self.tracer = tracer
        self.parent = parent
        self.rollout = rollout
        self.open: dict[str, Node] = {}


class LightningTracingProcessor(TracingProcessor):
    """Maps agents, responses/generations, function tools, handoffs, guardrails and custom spans.

    ``tracer`` defaults to the process-wide tracer (``agentlightning.configure``), looked up per trace.
    ``defer=False`` does all the work on the agent's thread instead of the background one.
    Every hook swallows its own errors (logged at debug level) and never waits on the network.
    """

    def __init__(self, tracer: Optional[Tracer] = None, *, include_turn_spans: bool = False,
                 defer: bool = True, max_open_spans: int = 100_000, max_backlog: int = 50_000) -> None:
        self._tracer = tracer
        self._folded = frozenset() if include_turn_spans else _FOLDED_TYPES
        self.max_open_spans = max_open_spans
        self.enabled = True
        self.errors = 0
        self.dropped = 0  # SDK spans not recorded (too many open, or the backlog was full)
        self._traces: dict[str, _TraceState] = {}
        self._nodes: dict[str, tuple[Node, str]] = {}  # open SDK span id -> (node, trace id)
        self._recorder = Recorder()
        self._finisher = DeferredWorker(self._complete, name="agentlightning-openai-agents", max_backlog=max_backlog) if defer else None

    # -- traces ----------------------------------------------------------------------------------
    def _new_trace_state(self) -> _TraceState:
        tracer = self._tracer or api.get_tracer()
        current = ctx.current_span()
        if isinstance(current, ActiveSpan) and not current.ended:
            return _TraceState(tracer, current, None)
        return _TraceState(tracer, None, ctx.current_rollout() or ctx.new_rollout_context())

    def on_trace_start(self, trace: Trace) -> None:
        if not self.enabled:
            return
        try:
            self._traces[trace.trace_id] = self._new_trace_state()
        except Exception:
            self._swallow("on_trace_start")

    def on_trace_end(self, trace: Trace) -> None:
        try:
            state = self._traces.pop(trace.trace_id, None)
            if state is None:
                return
            now = time.time_ns()
            for span_id, node in list(state.open.items()):  # spans the SDK never finished
                self._nodes.pop(span_id, None)
                self._hand_over((_ABANDON, node, now))
            self._hand_over((_TRACE_END, trace.trace_id))
            if self._finisher is not None:
                self._finisher.kick()
        except Exception:
            self._swallow("on_trace_end")

    # -- spans -----------------------------------------------------------------------------------
    def on_span_start(self, span: Span[Any]) -> None:
        if not self.enabled:
            return
        try:
            start_ns = time.time_ns()
            trace_id = span.trace_id
            state = self._traces.get(trace_id)
            if state is None:  # the processor was added mid-trace
                state = self._traces[trace_id] = self._new_trace_state()
            parent_id = span.parent_id
            found = self._nodes.get(parent_id) if parent_id else None
            node = Node()
            if (found is not None and found[0].dropped) or len(self._nodes) >= self.max_open_spans:
                node.dropped = True
                self.dropped += 1
            elif found is not None:
                node.dropped = not self._hand_over((_START, span, node, found[0], None, None, state.tracer,
                                                    start_ns, span.span_data.type in self._folded))
            else:  # a root of its trace: under the current Agent Lightning span, else the trace's
                current = ctx.current_span()
                if isinstance(current, ActiveSpan) and not current.ended:
                    anchor, rollout = current, None
                else:
                    anchor, rollout = state.parent, state.rollout
                node.dropped = not self._hand_over((_START, span, node, None, anchor, rollout, state.tracer,
                                                    start_ns, span.span_data.type in self._folded))
            self._nodes[span.span_id] = (node, trace_id)
            state.open[span.span_id] = node
        except Exception:
            self._swallow("on_span_start")

    def on_span_end(self, span: Span[Any]) -> None:
        try:
            found = self._nodes.pop(span.span_id, None)
            if found is None:
                return
            node, trace_id = found
            state = self._traces.get(trace_id)
            if state is not None:
                state.open.pop(span.span_id, None)
            if node.dropped:
                return
            data = span.span_data
            # Snapshot what the SDK or the tool might still change after the span ends.
            snapshot = getattr(data, "input", None)
            if isinstance(data, FunctionSpanData):
                snapshot = (snapshot, mapping.to_text(data.output))
            elif isinstance(snapshot, list):
                snapshot = list(snapshot)
            if not self._hand_over((_END, span, node, time.time_ns(), snapshot)):
                self.dropped += 1
        except Exception:
            self._swallow("on_span_end")

    # -- hand-over -------------------------------------------------------------------------------
    def _hand_over(self, item: tuple) -> bool:
        if self._finisher is None:
            self._complete(item)
            return True
        return self._finisher.submit(item)

    def _complete(self, item: tuple) -> None:
        """Apply one event to the recorder (on the finisher thread, or inline)."""
        try:
            what = item[0]
            if what == _START:
                self._recorder.start(*item[1:])
            elif what == _END:
                self._recorder.end(*item[1:])
            elif what == _ABANDON:
                self._recorder.abandon(*item[1:])
            else:
                self._recorder.trace_end(item[1])
        except Exception:
            self._swallow("recording a span")

    # -- lifecycle -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self) -> None:
        """Finish handed-over spans, then wait (bounded) until they are acked or spooled.

        The SDK calls this from ``agents.flush_traces()`` and at interpreter exit."""
        try:
            if self._finisher is not None:
                self._finisher.drain(5.0)
            flush = getattr((self._tracer or api.get_tracer()).sink, "flush", None)
            if callable(flush):
                flush(5.0)
        except Exception:
            self._swallow("force_flush")

    def _swallow(self, where: str) -> None:
        self.errors += 1
        logger.debug("openai-agents %s failed; span mapping skipped", where, exc_info=True)

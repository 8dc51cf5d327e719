"""``LightningCallbackHandler``: LangChain/LangGraph callbacks -> Agent Lightning spans.

Parents come from LangChain's ``run_id``/``parent_run_id`` (so threads, async tasks and LangGraph's
executors do not matter); a run with no known parent hangs under the tracer's current span or rollout
(a generated live rollout outside any). LangGraph node names (``metadata["langgraph_node"]``) become
agent names, inherited by child spans. Plumbing chains (prompts, sequences, edges) are folded into
their parent so the tree reads graph -> node -> LLM/tool.

On the agent's thread a callback only opens a span (ids, parent, agent name) or notes what LangChain
handed it; mapping messages, tools and results and ending the span are queued on a ``core.deferred``
worker (``finish.py``). When a top-level run ends, the worker's thread is woken to map the run in one pass
while the agent's code goes on (``agentlightning.flush()`` or ``handler.flush()`` waits for it); in a long
run the thread maps what has queued every half second, usually while the agent waits on its model.
Every callback body is guarded: a bug is logged at debug level and never reaches the agent.
"""
from __future__ import annotations

import functools
import itertools
import logging
import time
from typing import Any, Callable, Optional, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from agentlightning.core import api
from agentlightning.core.deferred import DeferredWorker
from agentlightning.core.kinds import SpanKind
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.langchain.finish import Finisher, shared_worker

logger = logging.getLogger("agentlightning.integrations.langchain")

F = TypeVar("F", bound=Callable[..., Any])
# LangGraph signals control flow (interrupts, commands to a parent graph) with exceptions; not failures.
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp"})
# Runs a framework started and never ended (a cancelled generator) must not grow memory without bound.
_MAX_OPEN_RUNS = 50_000


def _guarded(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: "LightningCallbackHandler", *args: Any, **kwargs: Any) -> None:
        if not self.enabled:
            return None
        try:
            fn(self, *args, **kwargs)
        except Exception:  # never into the agent
            self.hook_errors += 1
            logger.debug("langchain callback %s not recorded", fn.__name__, exc_info=True)
        return None

    return wrapper  # type: ignore[return-value]


class _Run:
    """What we keep per LangChain run: its span (None when folded), the span its children hang under,
    and what the start callback handed us (mapped later, off the agent's thread)."""

    __slots__ = ("span", "anchor", "agent", "top", "start", "tokens", "first_token_ns")

    def __init__(self, span: Optional[ActiveSpan], anchor: Optional[ActiveSpan], agent: str, top: bool) -> None:
        self.span = span
        self.anchor = anchor
        self.agent = agent
        self.top = top
        self.start: Any = None
        self.tokens = 0
        self.first_token_ns = 0


class LightningCallbackHandler(BaseCallbackHandler):
    """Pass as ``callbacks=[LightningCallbackHandler()]`` (or use ``instrument()``) to record a run.

    ``tracer`` defaults to the process-wide one (``agentlightning.configure``). ``agent_name`` names spans
    outside any LangGraph node. ``chains="graph"`` keeps the top-level run and LangGraph nodes;
    ``"all"`` keeps every chain run (except ones LangChain marks hidden); ``"none"`` asks LangChain not
    to send chain events at all (cheapest: LLM/tool spans hang directly under the current rollout and
    still carry node names as agent names; use it inside ``agentlightning.rollout`` or a runner, since
    outside one each model/tool call would start its own live rollout). ``defer=False`` maps on the
    agent's thread instead of the background worker.
    """

    run_inline = True  # cheap and non-blocking: no executor hop per event in async code
    raise_error = False

    def __init__(self, tracer: Optional[Tracer] = None, *, agent_name: str = "", chains: str = "graph",
                 defer: bool = True) -> None:
        super().__init__()
        if chains not in ("graph", "all", "none"):
            raise ValueError("chains must be 'graph', 'all' or 'none'")
        self._tracer = tracer
        self.agent_name = agent_name
        self.chains = chains
        self.enabled = True
        self.hook_errors = 0
        self.unmapped = 0  # spans ended without their payload because the worker's backlog was full
        self._runs: dict[UUID, _Run] = {}
        if defer:  # shared by all handlers; its caches are only touched under the worker's lock
            self._finisher, worker = shared_worker()
            self._worker: Optional[DeferredWorker] = worker
        else:
            self._finisher, self._worker = Finisher(), None

    @property
    def ignore_chain(self) -> bool:  # LangChain skips chain callbacks for this handler when True
        return self.chains == "none"

    @property
    def tracer(self) -> Tracer:
        return self._tracer if self._tracer is not None else api.get_tracer()

    @property
    def errors(self) -> int:
        """Callbacks or mappings that failed (each logged at debug level, none raised into the agent);
        mapping failures are counted by the shared worker, so they include other handlers' too."""
        return self.hook_errors + self._finisher.errors + (self._worker.errors if self._worker is not None else 0)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Finish every handed-over span now (``agentlightning.flush()`` does this for all workers)."""
        return self._worker.drain(timeout_s) if self._worker is not None else True

    def open_runs(self) -> int:
        """Runs started and not yet ended (for leak checks)."""
        return len(self._runs)

    # -- run bookkeeping ------------------------------------------------------------------------
    def _agent(self, metadata: Optional[dict], parent: Optional[_Run]) -> str:
        if metadata:
            name = metadata.get("lc_agent_name")
            if name:
                return str(name)
            node = metadata.get("langgraph_node")
            if node:
                namespace = metadata.get("langgraph_checkpoint_ns") or ""
                if "|" in namespace:  # inside a subgraph: the top-level node is the agent
                    return namespace.split("|", 1)[0].split(":", 1)[0]
                return str(node)
        return parent.agent if parent is not None else self.agent_name

    def _open(self, run_id: UUID, parent_run_id: Optional[UUID], name: str, kind: int,
              metadata: Optional[dict]) -> _Run:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        agent = self._agent(metadata, parent)
        span = self.tracer.start_span(name, kind, agent_name=agent,
                                      parent=parent.anchor if parent is not None else None)
        runs = self._runs
        if len(runs) >= _MAX_OPEN_RUNS:
            for stale in list(itertools.islice(runs, _MAX_OPEN_RUNS // 2)):
                del runs[stale]
            logger.debug("dropped %d runs that never ended", _MAX_OPEN_RUNS // 2)
        run = runs[run_id] = _Run(span, span, agent, parent_run_id is None)
        return run

    def _hand_off(self, run: _Run, item: tuple) -> None:
        """Queue the rest of a span's work; a top-level run's end has the worker map what is queued."""
        worker = self._worker
        if worker is None:
            self._finisher.apply(item)
            return
        if not worker.submit(item):
            self.unmapped += 1  # backlog full: keep the span (ids, timing, error), drop its payload
            if run.span is not None:
                run.span.end(end_time_ns=item[-1] if isinstance(item[-1], int) else None)
            return
        if run.top:
            worker.kick()  # mapped in the background now; flush() drains it when a caller needs it

    def _end(self, run_id: UUID, error: Any = None) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None and run.span is not None:
            self._hand_off(run, (Finisher.end, run.span, error, time.time_ns()))

    # -- chains ---------------------------------------------------------------------------------
    @_guarded
    def on_chain_start(self, serialized: Optional[dict], inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                       metadata: Optional[dict] = None, **kwargs: Any) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        if parent is not None and not self._keep_chain(name, tags, metadata):
            self._runs[run_id] = _Run(None, parent.anchor, self._agent(metadata, parent), False)
            return
        span = self._open(run_id, parent_run_id, name, SpanKind.CHAIN, metadata).span
        if metadata and "langgraph_node" in metadata and span is not None:
            span.set_attribute("langgraph.node", metadata["langgraph_node"])
            span.set_attribute("langgraph.step", metadata.get("langgraph_step", 0))

    def _keep_chain(self, name: str, tags: Optional[list], metadata: Optional[dict]) -> bool:
        if tags and "langsmith:hidden" in tags:
            return False
        if self.chains == "all":
            return True
        node = metadata.get("langgraph_node") if metadata else None
        return node is not None and node == name and any(t.startswith("graph:step:") for t in tags or ())

    @_guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if type(error).__name__ in _CONTROL_FLOW:
            run = self._runs.get(run_id)
            if run is not None and run.span is not None:
                run.span.set_attribute("langgraph.control_flow", type(error).__name__)
            self._end(run_id)
        else:
            self._end(run_id, error)

    # -- models -----------------------------------------------------------------------------------
    def _start_llm(self, operation: str, messages: list, run_id: UUID, parent_run_id: Optional[UUID],
                   metadata: Optional[dict], kwargs: dict) -> None:
        params = kwargs.get("invocation_params") or {}
        model = params.get("model") or params.get("model_name") or (metadata or {}).get("ls_model_name") or ""
        run = self._open(run_id, parent_run_id, f"{operation} {model}".strip(), SpanKind.LLM, metadata)
        run.span.proto.llm.operation = operation  # type: ignore[union-attr]
        # A copy of the list (not the messages): a caller may append to its history list afterwards.
        run.start = (operation, list(messages), params, metadata)

    @_guarded
    def on_chat_model_start(self, serialized: Optional[dict], messages: list, *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                            metadata: Optional[dict] = None, **kwargs: Any) -> None:
        self._start_llm("chat", messages[0] if messages else [], run_id, parent_run_id, metadata, kwargs)

    @_guarded
    def on_llm_start(self, serialized: Optional[dict], prompts: list, *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                     metadata: Optional[dict] = None, **kwargs: Any) -> None:
        self._start_llm("text_completion", prompts or [], run_id, parent_run_id, metadata, kwargs)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        # Called per streamed chunk: inlined guard, no wrapper frame.
        if not self.enabled:
            return
        try:
            run = self._runs.get(run_id)
            if run is not None:
                if not run.tokens:
                    run.first_token_ns = time.time_ns()
                run.tokens += 1
        except Exception:  # never into the agent
            self.hook_errors += 1

    def _end_llm(self, run_id: UUID, response: Any, error: Optional[BaseException]) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.span is None or run.start is None:
            return
        self._hand_off(run, (Finisher.llm, run.span, run.start, response, error, run.tokens, run.first_token_ns,
                             time.time_ns()))

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_llm(run_id, response, None)

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_llm(run_id, None, error)

    # -- tools ------------------------------------------------------------------------------------
    @_guarded
    def on_tool_start(self, serialized: Optional[dict], input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                      metadata: Optional[dict] = None, inputs: Optional[dict] = None, **kwargs: Any) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        run = self._open(run_id, parent_run_id, name, SpanKind.TOOL, metadata)
        tool = run.span.proto.tool  # type: ignore[union-attr]
        tool.name = name
        call_id = kwargs.get("tool_call_id")
        if call_id:
            tool.call_id = str(call_id)
        run.start = (input_str, inputs, call_id)

    def _end_tool(self, run_id: UUID, output: Any, error: Optional[BaseException]) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.span is None or run.start is None:
            return
        control_flow = error is not None and type(error).__name__ in _CONTROL_FLOW
        self._hand_off(run, (Finisher.tool, run.span, run.start, output, error, control_flow, time.time_ns()))

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_tool(run_id, output, None)

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_tool(run_id, None, error)

    # -- retrievers -------------------------------------------------------------------------------
    @_guarded
    def on_retriever_start(self, serialized: Optional[dict], query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                           metadata: Optional[dict] = None, **kwargs: Any) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "retriever"
        run = self._open(run_id, parent_run_id, name, SpanKind.RETRIEVER, metadata)
        run.span.proto.retriever.query = str(query)[:262144]  # type: ignore[union-attr]

    def _end_retriever(self, run_id: UUID, documents: Any, error: Optional[BaseException]) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None and run.span is not None:
            self._hand_off(run, (Finisher.retriever, run.span, documents, error, time.time_ns()))

    @_guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_retriever(run_id, documents, None)

    @_guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_retriever(run_id, None, error)

"""``LightningCallbackHandler``: LangChain/LangGraph callbacks -> Agent Lightning spans.

Parents come from LangChain's ``run_id``/``parent_run_id`` (so threads, async tasks and LangGraph's
executors do not matter); a run with no known parent hangs under the tracer's current span or rollout
(a generated live rollout outside any). LangGraph node names (``metadata["langgraph_node"]``) become
agent names, inherited by child spans. Plumbing chains (prompts, sequences, edges) are folded into
their parent so the tree reads graph -> node -> LLM/tool. Every callback body is guarded: a mapping
bug is logged at debug level and never reaches the agent.
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
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.langchain import mapping

logger = logging.getLogger("agentlightning.integrations.langchain")

F = TypeVar("F", bound=Callable[..., Any])
# LangGraph signals control flow (interrupts, commands to a parent graph) with exceptions; not failures.
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp"})
_MAX_SCHEMAS = 512
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
            self.errors += 1
            logger.debug("langchain callback %s not recorded", fn.__name__, exc_info=True)
        return None

    return wrapper  # type: ignore[return-value]


class _Run:
    """What we keep per LangChain run: its span (None when folded) and the span its children hang under."""

    __slots__ = ("span", "anchor", "agent", "tokens", "first_token_ns")

    def __init__(self, span: Optional[ActiveSpan], anchor: Optional[ActiveSpan], agent: str) -> None:
        self.span = span
        self.anchor = anchor
        self.agent = agent
        self.tokens = 0
        self.first_token_ns = 0


class LightningCallbackHandler(BaseCallbackHandler):
    """Pass as ``callbacks=[LightningCallbackHandler()]`` (or use ``instrument()``) to record a run.

    ``tracer`` defaults to the process-wide one (``agentlightning.configure``). ``agent_name`` names spans
    outside any LangGraph node. ``chains="graph"`` keeps the top-level run and LangGraph nodes;
    ``"all"`` keeps every chain run (except ones LangChain marks hidden); ``"none"`` asks LangChain not
    to send chain events at all (cheapest: LLM/tool spans hang directly under the current rollout and
    still carry node names as agent names; use it inside ``agentlightning.rollout`` or a runner, since
    outside one each model/tool call would start its own live rollout).
    """

    run_inline = True  # cheap and non-blocking: no executor hop per event in async code
    raise_error = False

    def __init__(self, tracer: Optional[Tracer] = None, *, agent_name: str = "", chains: str = "graph") -> None:
        super().__init__()
        if chains not in ("graph", "all", "none"):
            raise ValueError("chains must be 'graph', 'all' or 'none'")
        self._tracer = tracer
        self.agent_name = agent_name
        self.chains = chains
        self.enabled = True
        self.errors = 0
        self._runs: dict[UUID, _Run] = {}
        self._tool_schemas: dict[str, str] = {}
        self._messages = mapping.MessageCache()
        self._call_args: dict[str, str] = {}  # tool call id -> arguments string, as the model requested it

    @property
    def ignore_chain(self) -> bool:  # LangChain skips chain callbacks for this handler when True
        return self.chains == "none"

    @property
    def tracer(self) -> Tracer:
        return self._tracer if self._tracer is not None else api.get_tracer()

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
              metadata: Optional[dict]) -> ActiveSpan:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        agent = self._agent(metadata, parent)
        span = self.tracer.start_span(name, kind, agent_name=agent,
                                      parent=parent.anchor if parent is not None else None)
        runs = self._runs
        if len(runs) >= _MAX_OPEN_RUNS:
            for stale in list(itertools.islice(runs, _MAX_OPEN_RUNS // 2)):
                del runs[stale]
            logger.debug("dropped %d runs that never ended", _MAX_OPEN_RUNS // 2)
        runs[run_id] = _Run(span, span, agent)
        return span

    def _close(self, run_id: UUID, error: Any = None) -> Optional[_Run]:
        run = self._runs.pop(run_id, None)
        if run is not None and run.span is not None:
            run.span.end(error=error)
        return run

    # -- chains ---------------------------------------------------------------------------------
    @_guarded
    def on_chain_start(self, serialized: Optional[dict], inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                       metadata: Optional[dict] = None, **kwargs: Any) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        if parent is not None and not self._keep_chain(name, tags, metadata):
            self._runs[run_id] = _Run(None, parent.anchor, self._agent(metadata, parent))
            return
        span = self._open(run_id, parent_run_id, name, SpanKind.CHAIN, metadata)
        if metadata and "langgraph_node" in metadata:
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
        self._close(run_id)

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if type(error).__name__ in _CONTROL_FLOW:
            run = self._runs.get(run_id)
            if run is not None and run.span is not None:
                run.span.set_attribute("langgraph.control_flow", type(error).__name__)
            self._close(run_id)
        else:
            self._close(run_id, error)

    # -- models -----------------------------------------------------------------------------------
    def _start_llm(self, operation: str, run_id: UUID, parent_run_id: Optional[UUID],
                   metadata: Optional[dict], kwargs: dict) -> ActiveSpan:
        params = kwargs.get("invocation_params") or {}
        model = params.get("model") or params.get("model_name") or (metadata or {}).get("ls_model_name") or ""
        span = self._open(run_id, parent_run_id, f"{operation} {model}".strip(), SpanKind.LLM, metadata)
        span.proto.llm.operation = operation
        return span

    def _fill_params(self, span: ActiveSpan, metadata: Optional[dict], kwargs: dict) -> None:
        """Request params after the messages, so a surprise in one part does not lose the other."""
        params = kwargs.get("invocation_params") or {}
        llm = span.proto.llm
        if params.get("stream") or params.get("streaming"):
            llm.streamed = True
        mapping.fill_request(llm, params, metadata, self._tool_schemas)
        if len(self._tool_schemas) > _MAX_SCHEMAS:
            self._tool_schemas.clear()

    @_guarded
    def on_chat_model_start(self, serialized: Optional[dict], messages: list, *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                            metadata: Optional[dict] = None, **kwargs: Any) -> None:
        span = self._start_llm("chat", run_id, parent_run_id, metadata, kwargs)
        request = span.proto.llm.request_messages
        fill = self._messages.fill
        for message in messages[0] if messages else ():
            fill(request.add(), message)
        self._fill_params(span, metadata, kwargs)

    @_guarded
    def on_llm_start(self, serialized: Optional[dict], prompts: list, *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                     metadata: Optional[dict] = None, **kwargs: Any) -> None:
        span = self._start_llm("text_completion", run_id, parent_run_id, metadata, kwargs)
        if prompts:
            span.proto.llm.request_messages.add(role="user", content=mapping.text_of(prompts[0]))
        self._fill_params(span, metadata, kwargs)

    @_guarded
    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            if not run.tokens:
                run.first_token_ns = time.time_ns()
            run.tokens += 1

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.span is None:
            return
        span = run.span
        llm = span.proto.llm
        mapping.fill_response(llm, response, self._messages)
        call_args = self._call_args
        if len(call_args) > _MAX_SCHEMAS:
            call_args.clear()
        for message in llm.response_messages:
            for call in message.tool_calls:
                call_args[call.id] = call.arguments
        if run.tokens:
            llm.streamed = True
            span.set_attribute("gen_ai.response.chunks", run.tokens)
            span.set_attribute("gen_ai.response.time_to_first_chunk_ns",
                               run.first_token_ns - span.proto.start_time_unix_nano)
        span.end()

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is not None and run.span is not None and run.tokens:
            run.span.proto.llm.streamed = True
        self._close(run_id, error)

    # -- tools ------------------------------------------------------------------------------------
    @_guarded
    def on_tool_start(self, serialized: Optional[dict], input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                      metadata: Optional[dict] = None, inputs: Optional[dict] = None, **kwargs: Any) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        span = self._open(run_id, parent_run_id, name, SpanKind.TOOL, metadata)
        tool = span.proto.tool
        tool.name = name
        call_id = kwargs.get("tool_call_id")
        requested = self._call_args.pop(call_id, None) if call_id else None
        if call_id:
            tool.call_id = str(call_id)
        # The string already recorded on the model's tool call (same text, no second serialisation).
        tool.arguments = requested if requested is not None else mapping.arguments_of(input_str, inputs)
        # Structured inputs were parsed already; only raw strings need a check.
        tool.arguments_valid = isinstance(inputs, dict) or mapping.arguments_valid(tool.arguments)
        schema = self._tool_schemas.get(name)
        if schema:
            tool.parameters_json_schema = schema

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.span is None:
            return
        tool = run.span.proto.tool
        text, failed, invalid = mapping.tool_result(output)
        tool.result = text
        if failed:  # the tool's error came back as a message (handle_tool_error / status="error")
            tool.outcome = ToolOutcome.INVALID_ARGUMENTS if invalid else ToolOutcome.ERROR
            if invalid:
                tool.arguments_valid = False
            tool.error_message = text
            run.span.end(error=text)
        else:
            tool.outcome = ToolOutcome.OK
            run.span.end()

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is None or run.span is None:
            self._runs.pop(run_id, None)
            return
        if type(error).__name__ in _CONTROL_FLOW:
            run.span.set_attribute("langgraph.control_flow", type(error).__name__)
            self._close(run_id)
            return
        tool = run.span.proto.tool
        tool.outcome = mapping.error_outcome(error)
        if tool.outcome == ToolOutcome.INVALID_ARGUMENTS:
            tool.arguments_valid = False
        tool.error_message = str(error)[: mapping.MAX_TEXT]
        self._close(run_id, error)

    # -- retrievers -------------------------------------------------------------------------------
    @_guarded
    def on_retriever_start(self, serialized: Optional[dict], query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, tags: Optional[list] = None,
                           metadata: Optional[dict] = None, **kwargs: Any) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "retriever"
        span = self._open(run_id, parent_run_id, name, SpanKind.RETRIEVER, metadata)
        span.proto.retriever.query = mapping.text_of(query)

    @_guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is not None and run.span is not None:
            mapping.fill_documents(run.span.proto.retriever, documents)
        self._close(run_id)

    @_guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # -- lifecycle --------------------------------------------------------------------------------
    def open_runs(self) -> int:
        """Runs started and not yet ended (for leak checks)."""
        return len(self._runs)

"""The expensive half of each span, applied later in one batch (``core.deferred`` worker: its thread, woken when
a run ends, or a ``flush``).

The handler only opens spans (ids, parents, agent names) and notes what LangChain handed it; this module
maps messages, tools, responses and tool results into the span and ends it. Its caches are touched only
by the worker (or by ``drain`` under the worker's lock), so they need no locking of their own.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from agentlightning.core.deferred import DeferredWorker
from agentlightning.core.kinds import ToolOutcome
from agentlightning.core.tracer import ActiveSpan
from agentlightning.integrations.langchain import mapping

_MAX_ENTRIES = 512
logger = logging.getLogger("agentlightning.integrations.langchain")


class Finisher:
    """Worker-side state: message/tool caches and the arguments each requested tool call carried."""

    def __init__(self) -> None:
        self.errors = 0  # mapping failures (the span is still ended); logged at debug level
        self.messages = mapping.MessageCache()
        self.tool_schemas: dict[str, str] = {}
        self.call_args: dict[str, str] = {}  # tool call id -> arguments string, as the model requested it

    def apply(self, item: tuple) -> None:
        """One handed-over item: ``(method, *args)``."""
        item[0](self, *item[1:])

    # -- LLM ----------------------------------------------------------------------------------------
    def llm(self, span: ActiveSpan, request: tuple, response: Any, error: Optional[BaseException],
            tokens: int, first_token_ns: int, end_ns: int) -> None:
        operation, messages, params, metadata = request
        llm = span.proto.llm
        try:
            for part in (self._request, self._response):  # a surprise in one part keeps the other
                try:
                    part(span, llm, operation, messages, params, metadata, response, tokens, first_token_ns)
                except Exception:
                    self.errors += 1
                    logger.debug("langchain LLM span partly mapped", exc_info=True)
        finally:  # whatever the mapping managed, the span is ended
            span.end(error=error, end_time_ns=end_ns)

    def _request(self, span: ActiveSpan, llm: Any, operation: str, messages: list, params: dict,
                 metadata: Optional[dict], response: Any, tokens: int, first_token_ns: int) -> None:
        if operation == "chat":
            fill = self.messages.fill
            target = llm.request_messages
            for message in messages:
                fill(target.add(), message)
        else:
            for prompt in messages[:1]:
                llm.request_messages.add(role="user", content=mapping.text_of(prompt))
        if params.get("stream") or params.get("streaming") or tokens:
            llm.streamed = True
        mapping.fill_request(llm, params, metadata, self.tool_schemas)
        if len(self.tool_schemas) > _MAX_ENTRIES:
            self.tool_schemas.clear()

    def _response(self, span: ActiveSpan, llm: Any, operation: str, messages: list, params: dict,
                  metadata: Optional[dict], response: Any, tokens: int, first_token_ns: int) -> None:
        if tokens:
            span.set_attribute("gen_ai.response.chunks", tokens)
            span.set_attribute("gen_ai.response.time_to_first_chunk_ns",
                               first_token_ns - span.proto.start_time_unix_nano)
        if response is None:
            return
        mapping.fill_response(llm, response, self.messages)
        call_args = self.call_args
        if len(call_args) > _MAX_ENTRIES:
            call_args.clear()
        for message in llm.response_messages:
            for call in message.tool_calls:
                call_args[call.id] = call.arguments

    # -- tools --------------------------------------------------------------------------------------
    def tool(self, span: ActiveSpan, start: tuple, output: Any, error: Optional[BaseException],
             control_flow: bool, end_ns: int) -> None:
        input_str, inputs, call_id = start
        tool = span.proto.tool
        try:
            requested = self.call_args.pop(call_id, None) if call_id else None
            # The string already recorded on the model's tool call (same text, no second serialisation).
            tool.arguments = requested if requested is not None else mapping.arguments_of(input_str, inputs)
            # Structured inputs were parsed already; only raw strings need a check.
            tool.arguments_valid = isinstance(inputs, dict) or mapping.arguments_valid(tool.arguments)
            schema = self.tool_schemas.get(tool.name)
            if schema:
                tool.parameters_json_schema = schema
            if control_flow:
                span.set_attribute("langgraph.control_flow", type(error).__name__)
                error = None
            elif error is not None:
                tool.outcome = mapping.error_outcome(error)
                if tool.outcome == ToolOutcome.INVALID_ARGUMENTS:
                    tool.arguments_valid = False
                tool.error_message = str(error)[: mapping.MAX_TEXT]
            else:
                text, failed, invalid = mapping.tool_result(output)
                tool.result = text
                if failed:  # the tool's error came back as a message (handle_tool_error / status="error")
                    tool.outcome = ToolOutcome.INVALID_ARGUMENTS if invalid else ToolOutcome.ERROR
                    if invalid:
                        tool.arguments_valid = False
                    tool.error_message = text
                    error = text  # type: ignore[assignment]
                else:
                    tool.outcome = ToolOutcome.OK
        finally:
            span.end(error=error, end_time_ns=end_ns)

    # -- retrievers and plain ends ------------------------------------------------------------------
    def retriever(self, span: ActiveSpan, documents: Any, error: Optional[BaseException], end_ns: int) -> None:
        try:
            if documents is not None:
                mapping.fill_documents(span.proto.retriever, documents)
        finally:
            span.end(error=error, end_time_ns=end_ns)

    def end(self, span: ActiveSpan, error: Any, end_ns: int) -> None:
        span.end(error=error, end_time_ns=end_ns)


_lock = threading.Lock()
_shared: Optional[tuple[Finisher, DeferredWorker]] = None


def shared_worker() -> tuple[Finisher, DeferredWorker]:
    """One worker (and one set of caches) for every handler in the process: handlers are often made per
    request, and a thread each would pile up."""
    global _shared
    if _shared is None:
        with _lock:
            if _shared is None:
                finisher = Finisher()
                _shared = (finisher, DeferredWorker(finisher.apply, name="agentlightning-langchain"))
    return _shared

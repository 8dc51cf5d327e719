"""Build span trees by hand: for unit tests of reward setups, examples and benchmarks.

Spans come out exactly as a tracer would store them (ids, parents, per-producer sequence numbers,
increasing times), without a tracer, exporter or server.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any, Iterable, Mapping, Optional, Sequence

from agentlightning.v1 import spans_pb2


class TraceBuilder:
    def __init__(self, rollout_id: str, attempt_id: Optional[str] = None, producer_id: str = "builder",
                 start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000_000) -> None:
        self.rollout_id = rollout_id
        self.attempt_id = attempt_id if attempt_id is not None else f"{rollout_id}:1"
        self.producer_id = producer_id
        digest = hashlib.blake2b(f"{rollout_id}|{self.attempt_id}".encode(), digest_size=21).digest()
        self.trace_id = b"\x01" + digest[:15]
        self.spans: list[spans_pb2.Span] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._clock = start_ns
        self._step = step_ns
        self._salt = int.from_bytes(digest[15:20], "big")

    def _next_id(self) -> bytes:
        return ((self._salt << 20) + next(self._ids)).to_bytes(8, "big")

    def span(self, name: str, kind: int, *, parent: Optional[spans_pb2.Span] = None, agent: str = "",
             parent_id: Optional[bytes] = None, error: Optional[str] = None,
             attributes: Optional[Mapping[str, str]] = None) -> spans_pb2.Span:
        self._clock += self._step
        s = spans_pb2.Span(
            schema_version=spans_pb2.SCHEMA_VERSION_1, trace_id=self.trace_id, span_id=self._next_id(),
            parent_span_id=parent.span_id if parent is not None else (parent_id or b""),
            rollout_id=self.rollout_id, attempt_id=self.attempt_id, producer_id=self.producer_id,
            sequence=next(self._seq), name=name, kind=kind, agent_name=agent,
            start_time_unix_nano=self._clock, end_time_unix_nano=self._clock + self._step // 2,
        )
        s.status.code = spans_pb2.STATUS_CODE_OK
        if error is not None:
            s.status.code = spans_pb2.STATUS_CODE_ERROR
            s.status.error_type = "Error"
            s.status.message = error
        for key, value in (attributes or {}).items():
            s.attributes[key].string_value = value
        self.spans.append(s)
        return s

    def agent(self, agent: str, parent: Optional[spans_pb2.Span] = None, name: str = "agent",
              **kwargs: Any) -> spans_pb2.Span:
        return self.span(name, spans_pb2.SPAN_KIND_AGENT, parent=parent, agent=agent, **kwargs)

    def llm(self, prompt_ids: Sequence[int] = (), response_ids: Sequence[int] = (), *,
            parent: Optional[spans_pb2.Span] = None, agent: str = "", logprobs: Optional[Sequence[float]] = None,
            content: str = "", messages: Iterable[tuple[str, str]] = (),
            tool_calls: Iterable[tuple[str, str, str]] = (), tools: Optional[Mapping[str, Any]] = None,
            response_format: str = "", policy_version: str = "", retokenized: bool = False,
            error: Optional[str] = None, **kwargs: Any) -> spans_pb2.Span:
        """An LLM call; ``tool_calls`` are (call id, tool name, raw arguments); ``tools`` maps a
        tool name to its JSON schema (a dict or a string)."""
        s = self.span("chat", spans_pb2.SPAN_KIND_LLM, parent=parent, agent=agent, error=error, **kwargs)
        llm = s.llm
        llm.operation = "chat"
        llm.request_model = "policy"
        for role, text in messages:
            llm.request_messages.add(role=role, content=text)
        calls = list(tool_calls)
        if content or calls or response_ids:
            message = llm.response_messages.add(role="assistant", content=content)
            for call_id, tool_name, arguments in calls:
                message.tool_calls.add(id=call_id, name=tool_name, arguments=arguments)
        for tool_name, schema in (tools or {}).items():
            text = schema if isinstance(schema, str) else json.dumps(schema)
            llm.tools.add(name=tool_name, parameters_json_schema=text)
        llm.prompt_token_ids.extend(prompt_ids)
        llm.completion_token_ids.extend(response_ids)
        if logprobs is not None:
            llm.completion_logprobs.extend(logprobs)
        if prompt_ids or response_ids:
            llm.token_provenance = (spans_pb2.TOKEN_PROVENANCE_RETOKENIZED if retokenized
                                    else spans_pb2.TOKEN_PROVENANCE_EXACT)
        llm.response_format = response_format
        llm.policy_version = policy_version
        llm.usage.input_tokens = len(prompt_ids)
        llm.usage.output_tokens = len(response_ids)
        return s

    def tool(self, name: str, *, call_id: str = "", arguments: str = "{}",
             outcome: int = spans_pb2.TOOL_OUTCOME_OK, schema: Any = None, result: str = "",
             parent: Optional[spans_pb2.Span] = None, agent: str = "", **kwargs: Any) -> spans_pb2.Span:
        failed = outcome not in (spans_pb2.TOOL_OUTCOME_OK, spans_pb2.TOOL_OUTCOME_UNSPECIFIED)
        error = kwargs.pop("error", None)
        s = self.span(name, spans_pb2.SPAN_KIND_TOOL, parent=parent, agent=agent,
                      error=(error or spans_pb2.ToolOutcome.Name(outcome)) if failed else error, **kwargs)
        tool = s.tool
        tool.name = name
        tool.call_id = call_id
        tool.arguments = arguments
        tool.outcome = outcome
        tool.result = result
        tool.arguments_valid = outcome != spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS
        if failed:
            tool.error_message = error or spans_pb2.ToolOutcome.Name(outcome)
        if schema is not None:
            tool.parameters_json_schema = schema if isinstance(schema, str) else json.dumps(schema)
        return s

    def reward(self, value: float, name: str = "reward", *, primary: bool = True,
               source: int = spans_pb2.REWARD_SOURCE_ENVIRONMENT, parent: Optional[spans_pb2.Span] = None,
               agent: str = "", **kwargs: Any) -> spans_pb2.Span:
        s = self.span(name, spans_pb2.SPAN_KIND_REWARD, parent=parent, agent=agent, **kwargs)
        s.reward.name = name
        s.reward.value = value
        s.reward.primary = primary
        s.reward.source = source
        return s

"""A lower bound for ``benchmarks/lightningrl.py``: what any CPython implementation over stored protobuf
spans must pay before doing any of LightningRL's logic.

Three costs are timed on the same stored bytes: (1) parsing them (one upb call per 512 spans, as the
pipeline does); (2) reading the fields a transition with AIR cannot do without (ids, parent, rollout,
producer and sequence of every span; an LLM span's token ids, logprobs, policy version, agent,
requested tool calls and the called tool's schema; a tool span's call id, name and outcome; a reward
span's value: a subset of what the pipeline reads); (3) building the output objects (a ``Transition``,
its ``RewardBreakdown`` and one ``AirSignal`` per tool call outcome and one per arguments grade). No tree ordering, grouping, JSON
parsing of arguments, schema checks, credit or normalisation is done, so the real pipeline can only be
slower than (1) + (2) + (3).
"""
from __future__ import annotations

import time
from typing import Callable

from agentlightning.core.lightningrl.air import AirSignal
from agentlightning.core.lightningrl.loading import PARSE_CHUNK, parse_spans
from agentlightning.core.lightningrl.transitions import paused_gc
from agentlightning.core.lightningrl.types import RewardBreakdown, Transition
from agentlightning.v1 import spans_pb2

LLM, TOOL, REWARD = spans_pb2.SPAN_KIND_LLM, spans_pb2.SPAN_KIND_TOOL, spans_pb2.SPAN_KIND_REWARD


def _parse_only(blobs: list[bytes]) -> int:
    n = 0
    for start in range(0, len(blobs), PARSE_CHUNK):
        n += len(parse_spans(blobs[start:start + PARSE_CHUNK]))
    return n


def _read(blobs: list[bytes], build: bool) -> int:
    out: list[Transition] = []
    for start in range(0, len(blobs), PARSE_CHUNK):
        for s in parse_spans(blobs[start:start + PARSE_CHUNK]):
            kind, span_id, rollout_id = s.kind, s.span_id, s.rollout_id
            s.parent_span_id, s.producer_id, s.sequence  # noqa: B018 (tree order)
            if kind == LLM:
                llm = s.llm
                prompt, response, logprobs = llm.prompt_token_ids, llm.completion_token_ids, llm.completion_logprobs
                calls = [(c.id, c.name, c.arguments) for m in llm.response_messages for c in m.tool_calls]
                offered = [_schema(llm.tools, name) for _, name, _ in calls]
                version, agent = llm.policy_version, s.agent_name
                if build:
                    signals = [AirSignal(name, 0.1, f"{name} {call_id}")
                               for call_id, name, _ in calls for _ in range(2)]
                    breakdown = RewardBreakdown(1.0, "rollout", 0.1, {"tool_ok": 0.1}, signals, {}, 0.1, {})
                    out.append(Transition(rollout_id, "", "", "", agent, 0, 0, span_id.hex(), prompt, response,
                                          logprobs, version, False, breakdown))
                del offered
            elif kind == TOOL:
                tool = s.tool
                tool.call_id, tool.name, tool.outcome  # noqa: B018
            elif kind == REWARD:
                s.reward.value  # noqa: B018
    return len(out)


def _schema(tools, name: str) -> str:
    for d in tools:  # as AIR does: names until the called one, then its schema
        if d.name == name:
            return d.parameters_json_schema
    return ""


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with paused_gc():
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
    return best


def floor(blobs: list[bytes], repeat: int = 5) -> dict[str, float]:
    """CPU seconds (best of ``repeat``) of parse; parse + reads; parse + reads + output objects."""
    return {
        "parse": _best(lambda: _parse_only(blobs), repeat),
        "parse + field reads": _best(lambda: _read(blobs, build=False), repeat),
        "parse + field reads + output objects": _best(lambda: _read(blobs, build=True), repeat),
    }

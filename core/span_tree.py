"""The span tree of a rollout: parents from ids, tolerant of orphans, ordered by start time and
the producer's sequence number (which breaks ties and survives clock skew within a producer)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from agentlightning.v1 import spans_pb2


@dataclass
class SpanNode:
    span: spans_pb2.Span
    children: list["SpanNode"] = field(default_factory=list)
    orphan: bool = False  # its parent id names a span that was not stored


def _order_key(node: SpanNode) -> tuple:
    s = node.span
    return (s.start_time_unix_nano, s.producer_id, s.sequence)


def build_tree(spans: Iterable[spans_pb2.Span]) -> list[SpanNode]:
    """Roots (spans with no stored parent) with children attached; each level sorted.

    Within one producer the sequence number wins over clocks: siblings from the same producer
    are ordered by it, so a clock step backwards cannot reorder an agent's own calls."""
    nodes: dict[bytes, SpanNode] = {}
    for s in spans:
        nodes.setdefault(s.span_id, SpanNode(s))
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent_id = node.span.parent_span_id
        parent = nodes.get(parent_id) if parent_id else None
        if parent is None or parent is node:
            node.orphan = bool(parent_id)
            roots.append(node)
        else:
            parent.children.append(node)
    _sort(roots)
    return roots


def _sort(level: list[SpanNode]) -> None:
    level.sort(key=_order_key)
    by_producer: dict[str, list[int]] = {}
    for i, node in enumerate(level):
        by_producer.setdefault(node.span.producer_id, []).append(i)
    for positions in by_producer.values():
        ordered = sorted((level[i] for i in positions), key=lambda n: n.span.sequence)
        for i, node in zip(positions, ordered):
            level[i] = node
    for node in level:
        _sort(node.children)


def walk(roots: list[SpanNode]) -> Iterable[SpanNode]:
    """Depth-first, in order."""
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _describe(s: spans_pb2.Span) -> str:
    kind = spans_pb2.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_")
    parts = [f"{kind} {s.name}"]
    if s.agent_name:
        parts.append(f"agent={s.agent_name}")
    payload = s.WhichOneof("payload")
    if payload == "llm":
        llm = s.llm
        parts.append(f"model={llm.response_model or llm.request_model or '?'}")
        if llm.usage.input_tokens or llm.usage.output_tokens:
            parts.append(f"tokens={llm.usage.input_tokens}+{llm.usage.output_tokens}")
        calls = [c.name for m in llm.response_messages for c in m.tool_calls]
        if calls:
            parts.append(f"calls={','.join(calls)}")
        if llm.policy_version:
            parts.append(f"version={llm.policy_version}")
    elif payload == "tool":
        outcome = spans_pb2.ToolOutcome.Name(s.tool.outcome).removeprefix("TOOL_OUTCOME_")
        parts.append(f"tool={s.tool.name} outcome={outcome}")
        if not s.tool.arguments_valid and s.tool.arguments:
            parts.append("args=INVALID")
    elif payload == "reward":
        parts.append(f"{s.reward.name}={s.reward.value:g}")
    duration_ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
    parts.append(f"{duration_ms:.1f}ms")
    if s.status.code == spans_pb2.STATUS_CODE_ERROR:
        parts.append(f"ERROR {s.status.error_type}: {s.status.message[:80]}")
    return "  ".join(parts)


def format_tree(roots: list[SpanNode]) -> str:
    lines: list[str] = []

    def visit(node: SpanNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        orphan = " (orphan: parent not stored)" if node.orphan else ""
        lines.append(f"{prefix}{branch}{_describe(node.span)}{orphan}")
        child_prefix = prefix if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(node.children):
            visit(child, child_prefix, i == len(node.children) - 1, False)

    for root in roots:
        visit(root, "", True, True)
    return "\n".join(lines)

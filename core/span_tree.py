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
    _break_cycles(nodes, roots)
    _sort(roots)
    return roots


def _break_cycles(nodes: dict[bytes, SpanNode], roots: list[SpanNode]) -> None:
    """Spans whose parent chain loops (corrupt ids) are reachable from no root: surface them as
    orphan roots instead of losing them."""
    reached = {id(n) for n in walk(roots)}
    if len(reached) == len(nodes):
        return
    for node in nodes.values():
        if id(node) not in reached:
            parent = nodes.get(node.span.parent_span_id)
            if parent is not None and node in parent.children:
                parent.children.remove(node)
            node.orphan = True
            roots.append(node)
            reached.update(id(n) for n in walk([node]))


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


def _order_spans(level: list[spans_pb2.Span]) -> None:
    """Sort one level of siblings exactly as ``_sort`` orders nodes (without building nodes)."""
    if len(level) < 2:
        return
    producer = level[0].producer_id
    if all(s.producer_id == producer for s in level):
        # One producer: its sequence numbers alone decide (the clock cannot reorder them).
        level.sort(key=lambda s: s.sequence)
        return
    level.sort(key=lambda s: (s.start_time_unix_nano, s.producer_id, s.sequence))
    by_producer: dict[str, list[int]] = {}
    for i, s in enumerate(level):
        by_producer.setdefault(s.producer_id, []).append(i)
    for positions in by_producer.values():
        if len(positions) > 1:
            ordered_group = sorted((level[i] for i in positions), key=lambda s: s.sequence)
            for i, s in zip(positions, ordered_group):
                level[i] = s


def ordered(spans: Iterable[spans_pb2.Span]) -> tuple[list[spans_pb2.Span], dict[bytes, spans_pb2.Span], int]:
    """The spans in the order ``walk(build_tree(spans))`` visits them, for hot paths that need the
    order but not the nodes. Returns (ordered spans, spans by id, number of orphans); duplicates by
    span id keep the first copy, like ``build_tree``."""
    by_id: dict[bytes, spans_pb2.Span] = {}
    for s in spans:
        if s.span_id not in by_id:
            by_id[s.span_id] = s
    children: dict[bytes, list[spans_pb2.Span]] = {}
    roots: list[spans_pb2.Span] = []
    orphans = 0
    for sid, s in by_id.items():
        parent_id = s.parent_span_id
        if parent_id and parent_id != sid and parent_id in by_id:
            level = children.get(parent_id)
            if level is None:
                children[parent_id] = [s]
            else:
                level.append(s)
        else:
            if parent_id:
                orphans += 1
            roots.append(s)
    out = _dfs(roots, children)
    if len(out) < len(by_id):  # a parent cycle: surface the unreachable spans as orphan roots
        reached = {s.span_id for s in out}
        for sid, s in by_id.items():
            if sid not in reached:
                level = children.get(s.parent_span_id)
                if level is not None and s in level:
                    level.remove(s)
                extra = _dfs([s], children)
                reached.update(x.span_id for x in extra)
                roots.append(s)
                orphans += 1
        out = _dfs(roots, children)
    return out, by_id, orphans


def _dfs(roots: list[spans_pb2.Span], children: dict[bytes, list[spans_pb2.Span]]) -> list[spans_pb2.Span]:
    _order_spans(roots)
    out: list[spans_pb2.Span] = []
    stack = roots[::-1]
    pop, push, append = stack.pop, stack.extend, out.append
    while stack:
        s = pop()
        append(s)
        level = children.get(s.span_id)
        if level:
            _order_spans(level)
            push(level[::-1])
    return out


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

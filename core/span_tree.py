"""The span tree of a rollout: parents from ids, tolerant of orphans, ordered by start time and
the producer's sequence number (which breaks ties and survives clock skew within a producer)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

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


def _seq(row: tuple) -> int:
    return row[0].sequence


def _time_key(row: tuple) -> tuple:
    s = row[0]
    return (s.start_time_unix_nano, s.producer_id, s.sequence)


def _order_rows(level: list[tuple], single_producer: bool) -> None:
    """Sort one level of siblings exactly as ``_sort`` orders nodes (without building nodes).
    Rows are (span, span_id, parent_id)."""
    if len(level) < 2:
        return
    if single_producer:
        # One producer: its sequence numbers alone decide (the clock cannot reorder them).
        level.sort(key=_seq)
        return
    level.sort(key=_time_key)
    by_producer: dict[str, list[int]] = {}
    for i, row in enumerate(level):
        by_producer.setdefault(row[0].producer_id, []).append(i)
    for positions in by_producer.values():
        if len(positions) > 1:
            ordered_group = sorted((level[i] for i in positions), key=_seq)
            for i, row in zip(positions, ordered_group):
                level[i] = row


def ordered(spans: Iterable[spans_pb2.Span]) -> tuple[list[spans_pb2.Span], dict[bytes, spans_pb2.Span], int]:
    """The spans in the order ``walk(build_tree(spans))`` visits them, for hot paths that need the
    order but not the nodes. Returns (ordered spans, spans by id, number of orphans); duplicates by
    span id keep the first copy, like ``build_tree``."""
    spans = spans if isinstance(spans, (list, tuple)) else list(spans)
    fast = _already_ordered(spans)
    if fast is not None:
        return fast
    by_id: dict[bytes, spans_pb2.Span] = {}
    rows: list[tuple] = []
    producers: set[str] = set()
    for s in spans:
        sid = s.span_id
        if sid not in by_id:
            by_id[sid] = s
            rows.append((s, sid, s.parent_span_id))
            producers.add(s.producer_id)
    single = len(producers) <= 1
    children: dict[bytes, list[tuple]] = {}
    roots: list[tuple] = []
    orphans = 0
    for row in rows:
        parent_id = row[2]
        if parent_id and parent_id != row[1] and parent_id in by_id:
            level = children.get(parent_id)
            if level is None:
                children[parent_id] = [row]
            else:
                level.append(row)
        else:
            if parent_id:
                orphans += 1
            roots.append(row)
    out = _dfs(roots, children, single)
    if len(out) < len(by_id):  # a parent cycle: surface the unreachable spans as orphan roots
        reached = {s.span_id for s in out}
        for row in rows:
            if row[1] not in reached:
                level = children.get(row[2])
                if level is not None and row in level:
                    level.remove(row)
                reached.update(x.span_id for x in _dfs([row], children, single))
                roots.append(row)
                orphans += 1
        out = _dfs(roots, children, single)
    return out, by_id, orphans


def _already_ordered(spans: Sequence[spans_pb2.Span]
                     ) -> Optional[tuple[list[spans_pb2.Span], dict[bytes, spans_pb2.Span], int]]:
    """``ordered``'s answer when the input is already in tree order, else None: the usual case
    (one producer, spans stored as emitted, each after its parent and its parent's earlier
    subtrees) costs one pass instead of building levels and sorting them.

    The input qualifies when it has one producer, no duplicate ids, sequence numbers that never
    decrease, and is a depth-first listing (each span's parent is on the current ancestor path, or
    is not stored at all). Then every level is already sorted by sequence (a stable sort keeps
    ties in input order) and the depth-first walk visits the spans in input order."""
    by_id: dict[bytes, spans_pb2.Span] = {}
    path: list[bytes] = []  # ids of the current span's ancestors, root first
    missing: list[bytes] = []  # parent ids not seen (yet): orphans unless stored later
    self_parents = 0
    producer = None
    last_seq = -1
    for s in spans:
        sid = s.span_id
        seq = s.sequence
        if sid in by_id or seq < last_seq:
            return None
        last_seq = seq
        if producer != s.producer_id:
            if producer is not None:
                return None
            producer = s.producer_id
        by_id[sid] = s
        parent_id = s.parent_span_id
        if parent_id and parent_id in by_id and parent_id != sid:
            while path and path[-1] != parent_id:
                path.pop()
            if not path:
                return None  # its parent's subtree was already closed: not a depth-first listing
        else:
            path.clear()
            if parent_id == sid:
                self_parents += 1
            elif parent_id:
                missing.append(parent_id)
        path.append(sid)
    for parent_id in missing:
        if parent_id in by_id:
            return None  # the parent comes later: a child listed before its parent
    return list(spans), by_id, len(missing) + self_parents


def _dfs(roots: list[tuple], children: dict[bytes, list[tuple]], single: bool) -> list[spans_pb2.Span]:
    _order_rows(roots, single)
    out: list[spans_pb2.Span] = []
    stack = roots[::-1]
    pop, push, append, get = stack.pop, stack.extend, out.append, children.get
    while stack:
        row = pop()
        append(row[0])
        level = get(row[1])
        if level:
            _order_rows(level, single)
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

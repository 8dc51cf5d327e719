"""The shortcuts on LightningRL's hot path give exactly what the plain code gives: chunked span
parsing, the JSON fast path, one-attempt detection, and the GC pause that promotes the batch."""
from __future__ import annotations

import gc
import json

import pytest

from agentlightning.core.lightningrl import LightningRLConfig, build_transitions, loading, traces_from_span_bytes
from agentlightning.core.lightningrl.air import _loads
from agentlightning.core.lightningrl.attempts import split_attempts
from agentlightning.core.lightningrl.trace_builder import TraceBuilder
from agentlightning.core.lightningrl.transitions import paused_gc
from agentlightning.core.lightningrl.types import RolloutTrace
from agentlightning.v1 import spans_pb2


def _blobs(n_rollouts: int = 3) -> list[bytes]:
    out = []
    for r in range(n_rollouts):
        b = TraceBuilder(f"ro-{r}")
        root = b.agent("writer")
        b.llm(list(range(300)), [7] * 200, parent=root, messages=[("user", "x" * 5000)])  # multi-byte lengths
        b.tool("search", call_id="c1", arguments='{"q": 1}', parent=root)
        b.reward(1.0, parent=root)
        out.extend(s.SerializeToString() for s in b.spans)
    out.append(spans_pb2.Span().SerializeToString())  # an empty span: a zero-length blob
    return out


@pytest.mark.parametrize("as_iterator", [False, True])
def test_chunked_parse_equals_one_parse_per_blob(monkeypatch, as_iterator):
    blobs = _blobs()
    monkeypatch.setattr(loading, "PARSE_CHUNK", 4)  # several chunks, the last one partial
    traces = traces_from_span_bytes(iter(blobs) if as_iterator else blobs)
    parsed = [s for t in traces for s in t.spans]
    assert parsed == [spans_pb2.Span.FromString(b) for b in blobs]
    assert [t.rollout_id for t in traces] == ["ro-0", "ro-1", "ro-2", ""]
    assert traces_from_span_bytes([]) == []


@pytest.mark.parametrize("text", [
    '{"a": 1}', '[1, 2]', '"s"', "3", "null", ' {"a": 1}', '{"a": 1} ', '{"a": 1}\n', "\ufeff{}", "",
    '{"a": 1} x', '{"a": 1', '{"a": }', "{'a': 1}", "NaN", '{"a": 1}{"b": 2}', "  ",
])
def test_json_fast_path_matches_json_loads(text):
    try:
        expected = ("ok", json.loads(text))
    except ValueError as exc:
        expected = ("error", type(exc), str(exc))
    try:
        got = ("ok", _loads(text))
    except ValueError as exc:
        got = ("error", type(exc), str(exc))
    assert got == expected


def test_one_attempt_and_mixed_attempts():
    b = TraceBuilder("ro")
    root = b.agent("writer")
    b.llm([1], [2], parent=root)
    split, n = split_attempts(RolloutTrace("ro", b.spans), LightningRLConfig())
    assert n == 1 and split[0][0] == "ro:1" and list(split[0][1]) == b.spans
    retry = TraceBuilder("ro", attempt_id="ro:2")
    retry.llm([3], [4], agent="writer")
    loose = spans_pb2.Span(span_id=b"late", rollout_id="ro", kind=spans_pb2.SPAN_KIND_REWARD)
    split, n = split_attempts(RolloutTrace("ro", b.spans + retry.spans + [loose]), LightningRLConfig())
    assert n == 2 and [a for a, _ in split] == ["ro:2"] and list(split[0][1]) == retry.spans + [loose]


def test_paused_gc_promotes_what_it_built_and_resumes():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
    assert not any(id(x) in young for x in built)


def test_paused_gc_leaves_an_applications_frozen_objects_frozen():
    # The freeze count alone is no witness: other threads may free frozen objects meanwhile. The
    # application's own object is: frozen objects are outside every generation gc.get_objects() lists.
    applications_object = [[]]
    gc.freeze()
    try:
        with paused_gc():
            [[i] for i in range(100)]
        assert gc.isenabled()
        assert not any(o is applications_object for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_batch_is_the_same_from_blobs_and_from_spans():
    blobs = _blobs()
    spans = [spans_pb2.Span.FromString(b) for b in blobs]
    by_rollout: dict[str, list] = {}
    for s in spans:
        by_rollout.setdefault(s.rollout_id, []).append(s)
    a = build_transitions(traces_from_span_bytes(blobs))
    b = build_transitions([RolloutTrace(r, ss) for r, ss in by_rollout.items()])
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]

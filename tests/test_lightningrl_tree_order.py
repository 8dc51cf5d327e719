"""span_tree.ordered (with its already-in-order fast path) against the reference build_tree walk,
on random span forests: depth-first listings, shuffled ones, several producers, skewed clocks,
orphans, duplicate ids and parent cycles."""
from __future__ import annotations

import random

import pytest

from agentlightning.core import span_tree
from agentlightning.v1 import spans_pb2


def _forest(rng: random.Random, n: int, producers: int) -> list[spans_pb2.Span]:
    """A depth-first listing of a random forest, with sequence numbers in listing order."""
    spans: list[spans_pb2.Span] = []
    path: list[bytes] = []
    for i in range(n):
        sid = (i + 1).to_bytes(8, "big")
        r = rng.random()
        if path and r < 0.75:
            del path[rng.randrange(1, len(path) + 1):]  # close some subtrees, stay under an ancestor
            parent = path[-1] if path else b""
        elif r < 0.85:
            parent = b"\xff" + rng.randrange(1 << 20).to_bytes(7, "big")  # never stored: an orphan
            path = []
        else:
            parent = b""
            path = []
        producer = f"p{rng.randrange(producers)}"
        spans.append(spans_pb2.Span(span_id=sid, parent_span_id=parent, producer_id=producer, sequence=i + 1,
                                    start_time_unix_nano=1000 + 10 * i + rng.choice([0, 0, 0, -25])))
        path.append(sid)
    return spans


def _reference(spans: list[spans_pb2.Span]) -> tuple[list[bytes], int]:
    roots = span_tree.build_tree(spans)
    nodes = list(span_tree.walk(roots))
    return [n.span.span_id for n in nodes], sum(n.orphan for n in nodes)


def _check(spans: list[spans_pb2.Span]) -> None:
    order, by_id, orphans = span_tree.ordered(spans)
    ids, ref_orphans = _reference(spans)
    assert [s.span_id for s in order] == ids
    assert orphans == ref_orphans
    assert len(by_id) == len(ids) and all(by_id[s.span_id] is s for s in order)


@pytest.mark.parametrize("seed", range(40))
def test_depth_first_listings_keep_their_order(seed):
    rng = random.Random(seed)
    spans = _forest(rng, rng.randint(1, 40), producers=1)
    order, _, _ = span_tree.ordered(spans)
    assert order == spans
    _check(spans)


@pytest.mark.parametrize("seed", range(60))
def test_any_listing_matches_the_reference(seed):
    rng = random.Random(1000 + seed)
    spans = _forest(rng, rng.randint(1, 30), producers=rng.choice([1, 1, 2, 3]))
    variant = seed % 6
    if variant == 1:
        rng.shuffle(spans)
    elif variant == 2 and len(spans) > 2:  # a child listed before its parent
        i = rng.randrange(1, len(spans))
        spans.insert(0, spans.pop(i))
    elif variant == 3:  # a duplicate copy (the first one wins)
        dup = spans_pb2.Span()
        dup.CopyFrom(rng.choice(spans))
        dup.name = "copy"
        spans.insert(rng.randrange(len(spans) + 1), dup)
    elif variant == 4 and len(spans) > 1:  # a parent cycle
        a, b = rng.sample(spans, 2)
        a.parent_span_id, b.parent_span_id = b.span_id, a.span_id
    elif variant == 5:  # sequence numbers that go back, or a span that names itself as parent
        s = rng.choice(spans)
        if rng.random() < 0.5:
            s.sequence = 0
        else:
            s.parent_span_id = s.span_id
    _check(spans)


def test_the_fast_path_reports_orphans_and_self_parents():
    a = spans_pb2.Span(span_id=b"a", parent_span_id=b"zz", producer_id="p", sequence=1)
    b = spans_pb2.Span(span_id=b"b", parent_span_id=b"a", producer_id="p", sequence=2)
    c = spans_pb2.Span(span_id=b"c", parent_span_id=b"c", producer_id="p", sequence=3)
    order, _, orphans = span_tree.ordered([a, b, c])
    assert order == [a, b, c] and orphans == 2
    _check([a, b, c])

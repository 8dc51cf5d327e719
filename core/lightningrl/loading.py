"""Gather RolloutTraces from where spans live: a store, a server (through the client), raw bytes.

Kept apart from the pure functions so ``build_transitions`` never does I/O.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence

from agentlightning.core.lightningrl.types import RolloutTrace
from agentlightning.v1 import rollouts_pb2, spans_pb2, traces_pb2

if TYPE_CHECKING:
    from agentlightning.core.client import LightningClient
    from agentlightning.core.store.base import Store


def traces_from_span_bytes(blobs: Iterable[bytes],
                           rollouts: Optional[Iterable[rollouts_pb2.Rollout]] = None) -> list[RolloutTrace]:
    """Parse serialized spans and group them by rollout; join the queue's rollouts where known.

    Rollouts that exist only as spans (live traffic) come out with only their spans."""
    from agentlightning.core.lightningrl.transitions import paused_gc

    by_rollout: dict[str, list[spans_pb2.Span]] = {}
    with paused_gc():
        for chunk in _chunks(blobs, PARSE_CHUNK):
            for span in parse_spans(chunk):
                rollout_id = span.rollout_id
                bucket = by_rollout.get(rollout_id)
                if bucket is None:
                    by_rollout[rollout_id] = [span]
                else:
                    bucket.append(span)
        return join(by_rollout, rollouts)


# Spans parsed per container message: large enough to amortise the per-message cost, small enough
# that the arena a span keeps alive stays small (~0.5 MB) and the joined buffer stays in cache.
PARSE_CHUNK = 512
_SPANS_FIELD_TAG = 0x0A  # ExportRequest.spans: field 1, length-delimited
_prefixes: dict[int, bytes] = {}


def _prefix(size: int) -> bytes:
    """The tag and length varint that put one serialized span into ``ExportRequest.spans``."""
    out = bytearray((_SPANS_FIELD_TAG,))
    while size >= 0x80:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out)


def parse_spans(blobs: list[bytes]) -> Sequence[spans_pb2.Span]:
    """Parse many serialized spans at once, as the ``spans`` of one ``ExportRequest``.

    Same messages as ``Span.FromString`` on each blob, at about half the cost: upb pays a fixed
    price (arena, message object) per parse call, which one call for the whole chunk pays once."""
    parts: list[bytes] = [b""] * (2 * len(blobs))
    get = _prefixes.get
    sizes = [len(b) for b in blobs]
    prefixes = [get(n) or _prefixes.setdefault(n, _prefix(n)) for n in sizes]
    parts[0::2] = prefixes
    parts[1::2] = blobs
    return traces_pb2.ExportRequest.FromString(b"".join(parts)).spans


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    if isinstance(items, list):
        for start in range(0, len(items), size):
            yield items[start:start + size]
        return
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def join(spans_by_rollout: dict[str, list[spans_pb2.Span]],
         rollouts: Optional[Iterable[rollouts_pb2.Rollout]] = None) -> list[RolloutTrace]:
    known = {r.rollout_id: r for r in rollouts or ()}
    out = []
    for rollout_id, spans in spans_by_rollout.items():
        rollout = known.get(rollout_id)
        out.append(RolloutTrace.from_rollout(rollout, spans) if rollout is not None
                   else RolloutTrace(rollout_id, spans))
    return out


def _all_rollouts(lister, group_id: str = "", page: int = 1000) -> list[rollouts_pb2.Rollout]:
    out: list[rollouts_pb2.Rollout] = []
    while True:
        chunk = lister(group_id=group_id, limit=page, offset=len(out))
        out.extend(chunk)
        if len(chunk) < page:
            return out


def load_from_store(store: "Store", rollout_ids: Optional[Sequence[str]] = None,
                    group_id: str = "") -> list[RolloutTrace]:
    """Traces from a store. Without ids: every rollout with spans (queued ones and live ones);
    with ``group_id``: the rollouts of that group."""
    if rollout_ids is not None or group_id:
        rollouts = _all_rollouts(store.list_rollouts, group_id) if group_id else []
        known = {r.rollout_id: r for r in rollouts}
        ids = list(rollout_ids) if rollout_ids is not None else list(known)
        out = []
        for rollout_id in ids:
            rollout = known.get(rollout_id) or _get_rollout(store.get_rollout, rollout_id)
            spans = store.get_spans(rollout_id)
            out.append(RolloutTrace.from_rollout(rollout, spans) if rollout is not None
                       else RolloutTrace(rollout_id, spans))
        return out
    iter_bytes = getattr(store, "iter_span_bytes", None)
    if iter_bytes is None:
        raise TypeError("this store cannot list all spans; pass rollout_ids")
    return traces_from_span_bytes(iter_bytes(), _all_rollouts(store.list_rollouts))


def _get_rollout(getter, rollout_id: str) -> Optional[rollouts_pb2.Rollout]:
    """The queue's record of a rollout, or None for a live rollout the queue never saw."""
    from agentlightning.core.store.base import NotFound

    try:
        return getter(rollout_id)
    except NotFound:
        return None
    except Exception as exc:  # over gRPC: NOT_FOUND means a live rollout
        import grpc

        if isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def load_from_client(client: "LightningClient", rollout_ids: Optional[Sequence[str]] = None,
                     group_id: str = "", status: int = 0) -> list[RolloutTrace]:
    """Traces through a server. Without ids: the queue's rollouts (optionally one group/status);
    live rollouts are found by id only (the server lists queued rollouts, not span-only ones)."""
    if rollout_ids is not None:
        out = []
        for rollout_id in rollout_ids:
            rollout = _get_rollout(client.get_rollout, rollout_id)
            spans = client.query_spans(rollout_id)
            out.append(RolloutTrace.from_rollout(rollout, spans) if rollout is not None
                       else RolloutTrace(rollout_id, spans))
        return out
    rollouts = _all_rollouts(lambda **kw: client.list_rollouts(status=status, **kw), group_id)
    return [RolloutTrace.from_rollout(r, client.query_spans(r.rollout_id)) for r in rollouts]

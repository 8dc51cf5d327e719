"""Which spans of a trace form each episode (attempts of a retried rollout) and which group of
rollouts an episode is normalised with."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

from agentlightning.core.lightningrl.types import RolloutTrace
from agentlightning.v1 import spans_pb2

if TYPE_CHECKING:
    from agentlightning.core.lightningrl.config import LightningRLConfig

GROUP_ATTRIBUTE = "agentlightning.group_id"
TASK_ATTRIBUTE = "agentlightning.task_id"
_ATTEMPT_NUMBER = re.compile(r":(\d+)$")


def attempt_rank(attempt_id: str, spans: list[spans_pb2.Span]) -> tuple[int, int]:
    m = _ATTEMPT_NUMBER.search(attempt_id)
    return (int(m.group(1)) if m else 0, max(s.start_time_unix_nano for s in spans))


def split_attempts(trace: RolloutTrace, config: "LightningRLConfig"
                   ) -> tuple[list[tuple[str, Sequence[spans_pb2.Span]]], int]:
    """[(attempt_id, spans)] to turn into episodes (final attempt last), and how many attempts exist.

    A trace of one attempt (the usual case) is recognised with one read per span and no regrouping."""
    spans = trace.spans
    ids = [s.attempt_id for s in spans]
    if not ids:
        return [], 0
    if ids.count(ids[0]) == len(ids):
        return [(ids[0], spans)], 1
    by_attempt: dict[str, list[spans_pb2.Span]] = {}
    for attempt_id, s in zip(ids, spans):
        bucket = by_attempt.get(attempt_id)
        if bucket is None:
            by_attempt[attempt_id] = [s]
        else:
            bucket.append(s)
    loose = by_attempt.pop("", [])  # spans with no attempt (e.g. feedback attached later)
    if trace.final_attempt_id in by_attempt:
        final_id = trace.final_attempt_id
    else:
        final_id = max(by_attempt, key=lambda a: attempt_rank(a, by_attempt[a]))
    final = (final_id, by_attempt.pop(final_id) + loose)
    if config.attempts == "last":
        return [final], len(by_attempt) + 1
    earlier = sorted(by_attempt.items(), key=lambda item: attempt_rank(*item))
    return earlier + [final], len(earlier) + 1


def group_key(trace: RolloutTrace, config: "LightningRLConfig", attempt_id: str) -> tuple[str, str, str]:
    """(group id, task id, normalisation key): the queue's ids, else the ones recorded on the spans."""
    group_id, task_id = trace.group_id, trace.task_id
    if not group_id and not task_id:
        for s in trace.spans:
            attrs = s.attributes
            if attrs and (GROUP_ATTRIBUTE in attrs or TASK_ATTRIBUTE in attrs):
                if GROUP_ATTRIBUTE in attrs:
                    group_id = attrs[GROUP_ATTRIBUTE].string_value
                if TASK_ATTRIBUTE in attrs:
                    task_id = attrs[TASK_ATTRIBUTE].string_value
                break
    if group_id:
        key = "g:" + group_id
    elif task_id:
        key = "t:" + task_id
    else:
        key = "" if config.ungrouped == "batch" else f"r:{trace.rollout_id}:{attempt_id}"
    return group_id, task_id, key

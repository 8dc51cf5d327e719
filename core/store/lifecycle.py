"""What the SQL stores share about rollouts and attempts: the column lists, the row converters and the
decisions of the attempt life cycle. Each store keeps only its SQL (placeholders, locking); the rules
live here once, so SQLite and PostgreSQL cannot drift apart."""
from __future__ import annotations

import json
from typing import Any, Callable, Optional, Sequence

from agentlightning.core import rollout_states as states
from agentlightning.core.store.base import AttemptNotActive
from agentlightning.v1 import rollouts_pb2

ROLLOUT_COLUMNS = ("rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts,"
                   " heartbeat_timeout_s, attempt_count, current_attempt_id, has_final_reward, final_reward,"
                   " error, created_ns, updated_ns")
ATTEMPT_COLUMNS = "attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, last_heartbeat_ns, error"
A_COLUMNS = ", ".join("a." + c.strip() for c in ATTEMPT_COLUMNS.split(","))  # attempts joined as ``a``


def rollout_from_row(row: Sequence[Any]) -> rollouts_pb2.Rollout:
    (rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts, timeout_s,
     attempt_count, current_attempt_id, has_final_reward, final_reward, error, created_ns, updated_ns) = row
    return rollouts_pb2.Rollout(
        rollout_id=rollout_id, task_id=task_id, group_id=group_id, input_json=input_json,
        metadata=json.loads(metadata_json), mode=mode, status=status, max_attempts=max_attempts,
        heartbeat_timeout_s=timeout_s, attempt_count=attempt_count, current_attempt_id=current_attempt_id,
        has_final_reward=bool(has_final_reward), final_reward=final_reward, error=error,
        created_unix_nano=created_ns, updated_unix_nano=updated_ns)


def attempt_from_row(row: Sequence[Any]) -> rollouts_pb2.Attempt:
    attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, hb_ns, error = row
    return rollouts_pb2.Attempt(
        attempt_id=attempt_id, rollout_id=rollout_id, number=number, worker_id=worker_id, status=status,
        start_time_unix_nano=start_ns, end_time_unix_nano=end_ns, last_heartbeat_unix_nano=hb_ns, error=error)


def new_rollout_row(spec: rollouts_pb2.RolloutSpec, rollout_id: str, default_max_attempts: int,
                    default_heartbeat_timeout_s: float, now_ns: int, text: Callable[[str], str] = str) -> tuple:
    """The values of a queued rollout's first 9 columns and its two timestamps, in ``ROLLOUT_COLUMNS``
    order (the 5 in between are the stores' literals for a fresh rollout). ``text`` cleans the
    free-form mode string for a database that cannot store every character."""
    return (rollout_id, spec.task_id, spec.group_id, spec.input_json or "null", json.dumps(dict(spec.metadata)),
            text(spec.mode or "train"), states.QUEUED, spec.max_attempts or default_max_attempts,
            spec.heartbeat_timeout_s or default_heartbeat_timeout_s, now_ns, now_ns)


def is_active(attempt: rollouts_pb2.Attempt, rollout: rollouts_pb2.Rollout, worker_id: str) -> bool:
    """The attempt is the rollout's current one, still running, and held by this worker."""
    return (attempt.status == states.RUNNING and attempt.worker_id == worker_id
            and rollout.current_attempt_id == attempt.attempt_id)


def ensure_active(attempt: rollouts_pb2.Attempt, rollout: rollouts_pb2.Rollout, worker_id: str) -> None:
    if not is_active(attempt, rollout, worker_id):
        raise AttemptNotActive(
            f"attempt {attempt.attempt_id!r} is not running for worker {worker_id!r} "
            f"(attempt {states.name(attempt.status)}, rollout {states.name(rollout.status)})")


def attempt_end(attempt: rollouts_pb2.Attempt, rollout: rollouts_pb2.Rollout, status: int, error: str,
                timed_out: bool) -> tuple[int, str]:
    """(the rollout's new status, the rollout's error text) when ``attempt`` ends with ``status``: queued
    again while attempts remain; a final failure names the attempt. Raises on a forbidden transition."""
    if status == states.SUCCEEDED:
        new_status = states.SUCCEEDED
    else:
        new_status = states.after_failed_attempt(attempt.number, rollout.max_attempts, timed_out)
    states.check_transition(rollout.status, new_status)
    if new_status in (states.FAILED, states.TIMED_OUT):
        error = f"attempt {attempt.number}/{rollout.max_attempts}: {error}"
    return new_status, error


def completion(success: bool, error: str) -> tuple[int, str]:
    """(the attempt's status, its error text) for a worker's ``complete`` call."""
    return (states.SUCCEEDED, "") if success else (states.FAILED, error or "failed")


def expiry_error(timeout_s: float) -> str:
    return f"timed out: no heartbeat for {timeout_s:g}s"


def reward_columns(final_reward: Optional[float]) -> tuple[bool, float]:
    """(whether a final reward was given, its value or 0.0) for the rollout's two reward columns."""
    return (final_reward is not None, final_reward if final_reward is not None else 0.0)

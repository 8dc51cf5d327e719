"""The rollout state machine, explicit so every store enforces the same rules."""
from __future__ import annotations

from agentlightning.v1 import rollouts_pb2 as pb

QUEUED = pb.ROLLOUT_STATUS_QUEUED
RUNNING = pb.ROLLOUT_STATUS_RUNNING
SUCCEEDED = pb.ROLLOUT_STATUS_SUCCEEDED
FAILED = pb.ROLLOUT_STATUS_FAILED
TIMED_OUT = pb.ROLLOUT_STATUS_TIMED_OUT
CANCELLED = pb.ROLLOUT_STATUS_CANCELLED

TERMINAL = frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELLED})

TRANSITIONS: dict[int, frozenset[int]] = {
    QUEUED: frozenset({RUNNING, CANCELLED}),
    # RUNNING -> QUEUED: an attempt failed or timed out and attempts remain.
    RUNNING: frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, QUEUED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    TIMED_OUT: frozenset(),
    CANCELLED: frozenset(),
}


class InvalidTransition(ValueError):
    pass


def check_transition(current: int, new: int) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"rollout cannot go from {name(current)} to {name(new)}")


def name(status: int) -> str:
    return pb.RolloutStatus.Name(status).removeprefix("ROLLOUT_STATUS_").lower()


def after_failed_attempt(attempt_number: int, max_attempts: int, timed_out: bool) -> int:
    """What the rollout becomes when an attempt fails: queued again while attempts remain."""
    if attempt_number < max_attempts:
        return QUEUED
    return TIMED_OUT if timed_out else FAILED

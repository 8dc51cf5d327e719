"""RolloutService: the task queue workers pull from, with long-poll dequeue and heartbeat expiry."""
from __future__ import annotations

import json
import logging
import math
import threading
import time

import grpc

from agentlightning.core import rollout_states as states
from agentlightning.core.auth import current_principal
from agentlightning.core.validation import check_id as _check_id
from agentlightning.core.store import AttemptNotActive, NotFound, Store, StoreError, StoreUnavailable
from agentlightning.v1 import rollouts_pb2, rollouts_pb2_grpc

logger = logging.getLogger("agentlightning.server")

MAX_WAIT_S = 60.0
MAX_LIST = 10_000


def _abort_for(context: grpc.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, NotFound):
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, AttemptNotActive):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    if isinstance(exc, StoreUnavailable):
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    if isinstance(exc, states.InvalidTransition):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    context.abort(grpc.StatusCode.INTERNAL, f"store error: {exc}")


class RolloutService(rollouts_pb2_grpc.RolloutServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store
        self._work = threading.Condition()

    def notify_work(self) -> None:
        with self._work:
            self._work.notify_all()

    def Enqueue(self, request, context):
        for i, spec in enumerate(request.rollouts):
            if not math.isfinite(spec.heartbeat_timeout_s) or spec.heartbeat_timeout_s < 0:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"rollouts[{i}].heartbeat_timeout_s must be a finite number >= 0")
            problem = _check_id(spec.rollout_id, f"rollouts[{i}].rollout_id", required=False) or _check_id(
                spec.group_id, f"rollouts[{i}].group_id", required=False) or _check_id(
                spec.task_id, f"rollouts[{i}].task_id", required=False)
            if problem:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            if spec.input_json:
                try:
                    json.loads(spec.input_json)
                except ValueError as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"rollouts[{i}].input_json is not valid JSON: {exc}")
        try:
            rollouts = self.store.enqueue(list(request.rollouts))
        except StoreError as exc:
            _abort_for(context, exc)
        self.notify_work()
        return rollouts_pb2.EnqueueResponse(rollouts=rollouts)

    def Dequeue(self, request, context):
        if not request.worker_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "worker_id is required")
        wait_s = request.wait_s if math.isfinite(request.wait_s) else 0.0
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            try:
                taken = self.store.dequeue(request.worker_id, request.mode, current_principal().name)
            except StoreError as exc:
                _abort_for(context, exc)
            if taken is not None:
                rollout, attempt = taken
                return rollouts_pb2.DequeueResponse(found=True, rollout=rollout, attempt=attempt)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not context.is_active():
                return rollouts_pb2.DequeueResponse(found=False)
            with self._work:
                # Short waits also catch work enqueued by another server process on the same store.
                self._work.wait(min(remaining, 0.25))

    def Heartbeat(self, request, context):
        try:
            return self.store.heartbeat(request.attempt_id, request.worker_id)
        except StoreError as exc:
            _abort_for(context, exc)

    def Complete(self, request, context):
        reward = request.final_reward if request.HasField("final_reward") else None
        if reward is not None and not math.isfinite(reward):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"final_reward must be finite (got {reward})")
        try:
            rollout = self.store.complete(request.attempt_id, request.worker_id, request.success, reward, request.error)
        except StoreError as exc:
            _abort_for(context, exc)
        if rollout.status == states.QUEUED:
            self.notify_work()
        return rollout

    def Cancel(self, request, context):
        try:
            return self.store.cancel(request.rollout_id)
        except StoreError as exc:
            _abort_for(context, exc)

    def GetRollout(self, request, context):
        try:
            return self.store.get_rollout(request.rollout_id)
        except StoreError as exc:
            _abort_for(context, exc)

    def ListRollouts(self, request, context):
        limit = min(request.limit or 100, MAX_LIST)
        return rollouts_pb2.ListRolloutsResponse(
            rollouts=self.store.list_rollouts(request.status, request.group_id, limit, request.offset))

    def ListAttempts(self, request, context):
        return rollouts_pb2.ListAttemptsResponse(attempts=self.store.list_attempts(request.rollout_id))

    def expire(self) -> None:
        """Called periodically: time out silent attempts and wake waiting workers for re-queued work."""
        try:
            affected = self.store.expire_attempts(time.time_ns())
        except StoreError as exc:
            logger.warning("attempt expiry skipped: %s", exc)
            return
        if affected:
            logger.info("timed out attempts of %d rollout(s)", len(affected))
            self.notify_work()

"""A rollout runner: pull a task, run the user's agent function inside its rollout, report the result.

The agent function is plain user code: it takes the task input (decoded JSON) and returns the final
reward (a number) or None. Everything it does inside is traced under the rollout's ids; a background
heartbeat keeps the attempt alive, and an exception fails the attempt (the server retries it).
"""
from __future__ import annotations

import inspect
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, Union

import grpc

from agentlightning.core import api
from agentlightning.core.client import LightningClient
from agentlightning.core.context import RolloutContext, use_rollout
from agentlightning.core.kinds import SpanKind
from agentlightning.core.tracer import Tracer
from agentlightning.v1 import rollouts_pb2

logger = logging.getLogger("agentlightning.runner")

AgentFunction = Callable[[Any], Union[Optional[float], Awaitable[Optional[float]]]]


@dataclass
class RunResult:
    rollout_id: str
    attempt_id: str
    success: bool
    final_reward: Optional[float]
    error: str = ""


class Runner:
    """Runs rollouts from the server's queue with ``agent`` until there is no more work (or stopped)."""

    def __init__(self, client: LightningClient, agent: AgentFunction, worker_id: str,
                 tracer: Optional[Tracer] = None, heartbeat_interval_s: float = 5.0, mode: str = "") -> None:
        self.client = client
        self.agent = agent
        self.worker_id = worker_id
        self.tracer = tracer
        self.heartbeat_interval_s = heartbeat_interval_s
        self.mode = mode
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run_one(self, wait_s: float = 0.0) -> Optional[RunResult]:
        taken = self.client.dequeue(self.worker_id, wait_s=wait_s, mode=self.mode)
        if taken is None:
            return None
        rollout, attempt = taken
        return self._execute(rollout, attempt)

    def run(self, max_rollouts: Optional[int] = None, idle_wait_s: float = 1.0,
            stop_when_idle: bool = True) -> list[RunResult]:
        """Run rollouts until the queue is empty (or forever with ``stop_when_idle=False``).

        A server that cannot be reached is waited for (with backoff), not fatal: a long-running
        runner outlives restarts and replica failovers."""
        results: list[RunResult] = []
        backoff = 0.5
        while not self._stop.is_set() and (max_rollouts is None or len(results) < max_rollouts):
            try:
                result = self.run_one(wait_s=idle_wait_s)
            except grpc.RpcError as exc:
                logger.warning("cannot reach the Lightning server (%s); retrying in %.1fs",
                               exc.code().name if hasattr(exc, "code") else exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            if result is None:
                if stop_when_idle:
                    break
                continue
            results.append(result)
        return results

    def _execute(self, rollout: rollouts_pb2.Rollout, attempt: rollouts_pb2.Attempt) -> RunResult:
        from agentlightning.core.context import new_rollout_context

        context: RolloutContext = new_rollout_context(rollout.rollout_id, attempt.attempt_id, rollout.group_id,
                                                      metadata=dict(rollout.metadata))
        stop_heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(attempt.attempt_id, stop_heartbeat),
                                name="agentlightning-heartbeat", daemon=True)
        beat.start()
        reward: Optional[float] = None
        error = ""
        tracer = self.tracer or api.get_tracer()
        try:
            task_input = json.loads(rollout.input_json) if rollout.input_json else None
            with use_rollout(context):
                with tracer.span("rollout", SpanKind.AGENT, attributes={"task_id": rollout.task_id}):
                    value = self.agent(task_input)
                    if inspect.isawaitable(value):
                        import asyncio

                        value = asyncio.run(value)  # type: ignore[arg-type]
                    if value is not None:
                        reward = float(value)
                        if not math.isfinite(reward):
                            raise ValueError(f"agent returned a non-finite reward: {value!r}")
                        tracer.emit_reward(reward, name="final")
        except Exception as exc:  # the agent's failure fails the attempt, never the runner
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("rollout %s attempt %s failed: %s", rollout.rollout_id, attempt.attempt_id, error)
        finally:
            stop_heartbeat.set()
            beat.join()
        # Deliver the rollout's spans before saying it is done: whoever reads the finished rollout
        # (the trainer) must find its whole trace.
        try:
            from agentlightning.core.deferred import drain_all

            drain_all(30.0)
            flush = getattr(tracer.sink, "flush", None)
            if flush is not None:
                flush(30.0)
        except Exception:
            logger.debug("flush before completion failed", exc_info=True)
        success = not error
        try:
            self.client.complete(attempt.attempt_id, self.worker_id, success=success,
                                 final_reward=reward, error=error)
        except grpc.RpcError as exc:
            logger.warning("could not complete attempt %s: %s", attempt.attempt_id, exc.details())
        return RunResult(rollout.rollout_id, attempt.attempt_id, success, reward, error)

    def _heartbeat(self, attempt_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval_s):
            try:
                if not self.client.heartbeat(attempt_id, self.worker_id).active:
                    logger.warning("attempt %s is no longer ours (timed out or cancelled)", attempt_id)
                    return
            except grpc.RpcError as exc:
                logger.debug("heartbeat failed: %s", exc)
            time.sleep(0)

"""A typed client for the server's rollout, resource and query services (runners, trainer, CLI)."""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Optional

import grpc

from agentlightning.core import ids
from agentlightning.core.channel import open_channel
from agentlightning.core.exporter import DEFAULT_ENDPOINT
from agentlightning.v1 import (
    resources_pb2,
    resources_pb2_grpc,
    rollouts_pb2,
    rollouts_pb2_grpc,
    spans_pb2,
    traces_pb2,
    traces_pb2_grpc,
)


class LightningClient:
    """``endpoint``: host:port, or several replicas comma-separated (see core/channel.py)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, token: Optional[str] = None,
                 timeout_s: float = 30.0, tls_ca_file: Optional[str] = None) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._channel = open_channel(endpoint, tls_ca_file, options=[
            ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.rollouts = rollouts_pb2_grpc.RolloutServiceStub(self._channel)
        self.resources = resources_pb2_grpc.ResourceServiceStub(self._channel)
        self.traces = traces_pb2_grpc.TraceServiceStub(self._channel)

    @classmethod
    def from_env(cls, endpoint: Optional[str] = None, **kwargs) -> "LightningClient":
        """Endpoint, token and CA from AGENTLIGHTNING_ENDPOINT / _TOKEN / _TLS_CA unless given."""
        import os

        return cls(endpoint or os.environ.get("AGENTLIGHTNING_ENDPOINT", DEFAULT_ENDPOINT),
                   token=kwargs.pop("token", None) or os.environ.get("AGENTLIGHTNING_TOKEN") or None,
                   tls_ca_file=kwargs.pop("tls_ca_file", None) or os.environ.get("AGENTLIGHTNING_TLS_CA") or None,
                   **kwargs)

    def _call(self, method, request, timeout_s: Optional[float] = None):
        return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout_s)

    # -- rollouts ------------------------------------------------------------------------
    def enqueue(self, inputs: Iterable[Any], *, group_id: str = "", task_id: str = "", mode: str = "train",
                max_attempts: int = 0, heartbeat_timeout_s: float = 0.0,
                metadata: Optional[Mapping[str, str]] = None) -> list[rollouts_pb2.Rollout]:
        """Enqueue one rollout per input (any JSON-serializable value)."""
        specs = [
            rollouts_pb2.RolloutSpec(
                task_id=task_id, group_id=group_id, input_json=json.dumps(value), mode=mode,
                max_attempts=max_attempts, heartbeat_timeout_s=heartbeat_timeout_s, metadata=metadata or {})
            for value in inputs
        ]
        return list(self.enqueue_specs(specs))

    def enqueue_specs(self, specs: Iterable[rollouts_pb2.RolloutSpec]) -> list[rollouts_pb2.Rollout]:
        """Rollout ids are chosen here when missing, so a retried call (another replica) is idempotent."""
        request = rollouts_pb2.EnqueueRequest(rollouts=list(specs))
        for spec in request.rollouts:
            spec.rollout_id = spec.rollout_id or ids.new_rollout_id()
        return list(self._call(self.rollouts.Enqueue, request).rollouts)

    def dequeue(self, worker_id: str, wait_s: float = 0.0, mode: str = ""
                ) -> Optional[tuple[rollouts_pb2.Rollout, rollouts_pb2.Attempt]]:
        response = self._call(self.rollouts.Dequeue,
                              rollouts_pb2.DequeueRequest(worker_id=worker_id, wait_s=wait_s, mode=mode),
                              timeout_s=wait_s + self.timeout_s)
        return (response.rollout, response.attempt) if response.found else None

    def heartbeat(self, attempt_id: str, worker_id: str) -> rollouts_pb2.HeartbeatResponse:
        return self._call(self.rollouts.Heartbeat,
                          rollouts_pb2.HeartbeatRequest(attempt_id=attempt_id, worker_id=worker_id))

    def complete(self, attempt_id: str, worker_id: str, success: bool = True,
                 final_reward: Optional[float] = None, error: str = "") -> rollouts_pb2.Rollout:
        request = rollouts_pb2.CompleteRequest(attempt_id=attempt_id, worker_id=worker_id, success=success,
                                               error=error)
        if final_reward is not None:
            request.final_reward = final_reward
        return self._call(self.rollouts.Complete, request)

    def cancel(self, rollout_id: str) -> rollouts_pb2.Rollout:
        return self._call(self.rollouts.Cancel, rollouts_pb2.CancelRequest(rollout_id=rollout_id))

    def get_rollout(self, rollout_id: str) -> rollouts_pb2.Rollout:
        return self._call(self.rollouts.GetRollout, rollouts_pb2.GetRolloutRequest(rollout_id=rollout_id))

    def list_rollouts(self, status: int = 0, group_id: str = "", limit: int = 100,
                      offset: int = 0) -> list[rollouts_pb2.Rollout]:
        request = rollouts_pb2.ListRolloutsRequest(status=status, group_id=group_id, limit=limit, offset=offset)
        return list(self._call(self.rollouts.ListRollouts, request).rollouts)

    def list_attempts(self, rollout_id: str) -> list[rollouts_pb2.Attempt]:
        return list(self._call(self.rollouts.ListAttempts,
                               rollouts_pb2.ListAttemptsRequest(rollout_id=rollout_id)).attempts)

    # -- spans ---------------------------------------------------------------------------
    def query_spans(self, rollout_id: str, attempt_id: str = "") -> list[spans_pb2.Span]:
        request = traces_pb2.QuerySpansRequest(rollout_id=rollout_id, attempt_id=attempt_id)
        return list(self._call(self.traces.QuerySpans, request).spans)

    # -- resources -----------------------------------------------------------------------
    def publish_model(self, endpoint: str, model: str, version: str, name: str = "policy",
                      metadata: Optional[Mapping[str, str]] = None) -> resources_pb2.ModelResource:
        resource = resources_pb2.ModelResource(name=name, endpoint=endpoint, model=model, version=version,
                                               metadata=metadata or {})
        return self._call(self.resources.Publish, resource)

    def get_model(self, name: str = "policy") -> resources_pb2.ModelResource:
        return self._call(self.resources.Get, resources_pb2.GetResourceRequest(name=name))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "LightningClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""How a user's agent finds the model it should call during training: ``get_model()``.

The training loop serves the policy behind one OpenAI-compatible endpoint whose address never
changes; new versions are hot-loaded behind it, and every response says which version produced
it (so the LLM spans carry ``policy_version`` by themselves). An agent therefore needs only the
base URL and the model name, which reach it two ways:

1. environment variables the loop sets for every runner process:
   ``AGENTLIGHTNING_MODEL_ENDPOINT`` (e.g. ``http://127.0.0.1:8000/v1``),
   ``AGENTLIGHTNING_MODEL_NAME`` and ``AGENTLIGHTNING_MODEL_VERSION`` (the version when the
   process started);
2. the Lightning server's ResourceService, where the trainer publishes each new version (resource
   ``policy``): ``get_model()`` asks it first (answers are cached for ``ttl_s``), so the version it
   reports is current, and falls back to the environment when the server cannot be reached.

    from agentlightning.trainer.endpoint import get_model
    m = get_model()
    OpenAI(base_url=m.base_url, api_key=m.api_key).chat.completions.create(model=m.model, ...)

A rollout may pin its model: when the rollout being run carries ``model_endpoint`` in its metadata
(with ``model_name``, ``model_version``), ``get_model()`` answers that inside it. The loop's warm-up uses
this to run the same agents against a teacher while other rollouts keep using the policy.

An agent function may also take the endpoint as a second argument, ``def agent(task, model)``:
the runner passes ``get_model()``. Imports nothing beyond the core client (no torch).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Optional

ENDPOINT_ENV = "AGENTLIGHTNING_MODEL_ENDPOINT"
NAME_ENV = "AGENTLIGHTNING_MODEL_NAME"
VERSION_ENV = "AGENTLIGHTNING_MODEL_VERSION"
API_KEY_ENV = "AGENTLIGHTNING_MODEL_API_KEY"
RESOURCE = "policy"
PIN_ENDPOINT, PIN_NAME, PIN_VERSION = "model_endpoint", "model_name", "model_version"  # rollout metadata


@dataclass(frozen=True)
class ModelEndpoint:
    """Where to send chat completions: ``base_url`` ends in ``/v1``; ``model`` goes in the request."""

    base_url: str
    model: str
    version: str = ""
    api_key: str = "agentlightning"  # OpenAI clients insist on some key; the local server ignores it


_lock = threading.Lock()
_cache: dict[str, tuple[float, ModelEndpoint]] = {}
_client = None


def from_env() -> Optional[ModelEndpoint]:
    base_url = os.environ.get(ENDPOINT_ENV)
    if not base_url:
        return None
    return ModelEndpoint(base_url=base_url, model=os.environ.get(NAME_ENV, "policy"),
                         version=os.environ.get(VERSION_ENV, ""),
                         api_key=os.environ.get(API_KEY_ENV, "agentlightning"))


def get_model(name: str = RESOURCE, ttl_s: float = 2.0, use_server: bool = True) -> ModelEndpoint:
    """The current model: the one the current rollout pins, else the ResourceService's when reachable,
    else the environment's."""
    pinned = from_rollout()
    if pinned is not None:
        return pinned
    now = time.monotonic()
    with _lock:
        hit = _cache.get(name)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
    found = _from_server(name) if use_server else None
    if found is None:
        found = from_env()
    if found is None:
        raise LookupError(f"no model endpoint: set {ENDPOINT_ENV} or publish resource {name!r} on the "
                          "Lightning server (the training loop does both)")
    with _lock:
        _cache[name] = (now, found)
    return found


def pinning_metadata(endpoint: ModelEndpoint) -> dict[str, str]:
    """Rollout metadata that makes ``get_model()`` answer ``endpoint`` while that rollout runs."""
    return {PIN_ENDPOINT: endpoint.base_url, PIN_NAME: endpoint.model, PIN_VERSION: endpoint.version}


def from_rollout() -> Optional[ModelEndpoint]:
    """The endpoint pinned by the metadata of the rollout running in this context, if any."""
    from agentlightning.core.context import current_rollout

    rollout = current_rollout()
    metadata = rollout.metadata if rollout is not None else None
    if not metadata or not metadata.get(PIN_ENDPOINT):
        return None
    return ModelEndpoint(base_url=metadata[PIN_ENDPOINT], model=metadata.get(PIN_NAME) or "policy",
                         version=metadata.get(PIN_VERSION, ""),
                         api_key=os.environ.get(API_KEY_ENV, "agentlightning"))


def _from_server(name: str) -> Optional[ModelEndpoint]:
    global _client
    if not os.environ.get("AGENTLIGHTNING_ENDPOINT"):
        return None
    try:
        import grpc

        from agentlightning.core.client import LightningClient

        with _lock:
            if _client is None:
                _client = LightningClient(os.environ["AGENTLIGHTNING_ENDPOINT"],
                                          token=os.environ.get("AGENTLIGHTNING_TOKEN") or None, timeout_s=5.0)
            client = _client
        resource = client.get_model(name)
    except (grpc.RpcError, OSError, ValueError):
        return None
    return ModelEndpoint(base_url=resource.endpoint, model=resource.model or name, version=resource.version,
                         api_key=os.environ.get(API_KEY_ENV, "agentlightning"))


def model_env(endpoint: ModelEndpoint) -> dict[str, str]:
    """The environment variables that make ``get_model()`` answer ``endpoint`` in a child process."""
    return {ENDPOINT_ENV: endpoint.base_url, NAME_ENV: endpoint.model, VERSION_ENV: endpoint.version,
            API_KEY_ENV: endpoint.api_key}

"""Where the loop's policy is served, and how a new version gets there.

``LocalPolicyServer`` runs the CPU model server (:mod:`agentlightning.trainer.serving.server`) in the
loop's process and hot-loads each checkpoint from disk (so a served version never shares tensors
with the model being trained). ``RemotePolicyServer`` talks to a server started elsewhere (e.g. the
vLLM launcher) through its ``POST /v1/load_version`` route with the same checkpoint directory.
Either way the new version is then published on the Lightning server's ResourceService.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Optional

logger = logging.getLogger("agentlightning.trainer.publish")


class LocalPolicyServer:
    def __init__(self, model: str, served_model_name: str, port: int = 0, version: str = "v0",
                 max_batch: int = 16, device: str = "cpu") -> None:
        from agentlightning.trainer.serving.server import ModelServer

        self.server = ModelServer(model, port=port, version=version, served_model_name=served_model_name,
                                  max_batch=max_batch, device=device)
        self.served_model_name = served_model_name

    def start(self) -> "LocalPolicyServer":
        self.server.start()
        return self

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def version(self) -> str:
        return self.server.version

    def load(self, checkpoint_dir: str, version: str) -> str:
        return self.server.load_version(checkpoint_dir, version=version)

    def stop(self) -> None:
        self.server.stop()


class RemotePolicyServer:
    def __init__(self, base_url: str, served_model_name: str, timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.served_model_name = served_model_name
        self.timeout_s = timeout_s
        self._version: Optional[str] = None

    def start(self) -> "RemotePolicyServer":
        return self

    @property
    def version(self) -> str:
        if self._version is None:
            models = self._request("GET", "/models")
            data = models.get("data") or [{}]
            self._version = str(data[0].get("version") or "")
        return self._version

    def load(self, checkpoint_dir: str, version: str) -> str:
        answer = self._request("POST", "/load_version", {"path": checkpoint_dir, "version": version})
        self._version = str(answer.get("version") or version)
        return self._version

    def stop(self) -> None:
        pass

    def _request(self, method: str, route: str, body: Optional[dict] = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + route, data=data, method=method,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - our own server
            return json.loads(response.read() or b"{}")

"""The GPU backend: start ``vllm serve`` from its own environment and talk to it (adapters, exact tokens).

vLLM cannot live in the agent's environment (its openai/protobuf/transformers pins clash with the agent
frameworks'), so it runs as a separate process from a separate venv, given by path. This module builds the
command line and environment, starts the process, waits for ``/health``, and wraps the two vLLM endpoints
the trainer relies on:

* ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}`` (and ``/v1/unload_lora_adapter``), which vLLM
  only exposes when ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` is in its environment;
* ``POST /v1/chat/completions`` with ``"return_token_ids": true`` (vLLM >= 0.10.2: top-level
  ``prompt_token_ids`` and per-choice ``token_ids`` — the same names our CPU server and the scripted test
  server use) and ``"logprobs": true``; ``"model": <lora_name>`` picks the adapter.

Agents should not have to add vLLM-specific fields or learn adapter names: :mod:`.vllm_gateway` puts the
same contract as the CPU server (``model_version`` in every answer, ``/v1/load_version``) in front of it.

What is verified where: the command line, environment, process handling and the HTTP contract are tested
here against a stand-in HTTP server on 127.0.0.1 implementing those endpoints (tests/test_vllm_backend.py);
vLLM itself does not run on these CPU machines, so its side of the contract comes from its documentation.

    config = VLLMConfig(model="smollm2-135m-instruct", venv="/opt/vllm-venv", port=8001)
    with VLLMLauncher(config) as server:               # starts, waits for /health, stops on exit
        client = VLLMClient(server.url)
        client.load_adapter("step-1", "/ckpt/step-1")
        client.chat([{"role": "user", "content": "hi"}], model="step-1")["choices"][0]["token_ids"]
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

logger = logging.getLogger("agentlightning.trainer.vllm_backend")

RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
# The agent environment's interpreter settings must not leak into vLLM's own venv.
_ISOLATED_VARS = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CONDA_PREFIX")


class VLLMError(RuntimeError):
    """vLLM refused a request or did not come up; the message carries its status and answer."""


@dataclass
class VLLMConfig:
    """How to run ``vllm serve``. ``venv`` is vLLM's virtual environment (its ``bin/vllm`` runs);
    ``executable`` names the ``vllm`` script directly, or that venv's python (the ``vllm`` beside it runs:
    module paths inside vLLM move between versions, its console script does not)."""

    model: str
    venv: Optional[str] = None
    executable: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8001
    served_model_name: Optional[str] = None
    max_lora_rank: int = 16
    max_loras: int = 4
    dtype: str = "auto"
    max_model_len: Optional[int] = None
    gpu_memory_utilization: Optional[float] = None
    tool_call_parser: Optional[str] = "hermes"  # our <tool_call> JSON format; None: no tool parsing
    extra_args: Sequence[str] = ()
    env: dict = field(default_factory=dict)
    resolve: bool = True  # map registry names (smollm2-135m-instruct) to their local directory

    def vllm_executable(self) -> str:
        if self.executable:
            path = Path(self.executable)
            if path.name.startswith("python"):
                return str(path.with_name("vllm"))
            return str(path)
        if self.venv:
            return str(Path(self.venv) / "bin" / "vllm")
        return "vllm"

    @property
    def name(self) -> str:
        return self.served_model_name or self.model


def build_command(config: VLLMConfig, model_path: Optional[str] = None) -> list[str]:
    """The exact argv of ``vllm serve`` for this config (LoRA on, runtime updates on via the env)."""
    cmd = [config.vllm_executable(), "serve", model_path or config.model,
           "--host", config.host, "--port", str(config.port),
           "--served-model-name", config.name,
           "--dtype", config.dtype,
           "--enable-lora", "--max-lora-rank", str(config.max_lora_rank), "--max-loras", str(config.max_loras)]
    if config.max_model_len:
        cmd += ["--max-model-len", str(config.max_model_len)]
    if config.gpu_memory_utilization:
        cmd += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    if config.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", config.tool_call_parser]
    return cmd + list(config.extra_args)


def build_env(config: VLLMConfig, base: Optional[dict] = None) -> dict:
    """vLLM's environment: ours minus the agent venv's interpreter settings, runtime LoRA updates on."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _ISOLATED_VARS}
    if config.venv:
        env["PATH"] = str(Path(config.venv) / "bin") + os.pathsep + env.get("PATH", "")
    env[RUNTIME_LORA_ENV] = "True"
    env.update({str(k): str(v) for k, v in config.env.items()})
    return env


class VLLMLauncher:
    """Starts ``vllm serve`` as a child process, waits until it answers ``/health``, stops it on exit.

    Output goes to ``log_path`` (default: a file in the working directory), never to a pipe nobody reads.
    """

    def __init__(self, config: VLLMConfig, *, log_path: Optional[str] = None, startup_timeout_s: float = 900.0) -> None:
        self.config = config
        self.log_path = Path(log_path or f"vllm-{config.port}.log")
        self.startup_timeout_s = startup_timeout_s
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def command(self) -> list[str]:
        model_path = None
        if self.config.resolve:
            from agentlightning.trainer.models import SMOLLM2, TINY, resolve_model

            if self.config.model.lower() in (SMOLLM2, TINY):
                model_path = str(resolve_model(self.config.model))
        return build_command(self.config, model_path)

    def start(self) -> "VLLMLauncher":
        if self.process is not None:
            return self
        cmd, env = self.command(), build_env(self.config)
        logger.info("starting %s", " ".join(cmd))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.wait_healthy()
        except Exception:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        client = VLLMClient(self.url, timeout_s=5.0)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise VLLMError(f"vllm exited with {self.process.returncode} before it was healthy; "
                                f"last output:\n{self._log_tail()}")
            if client.healthy():
                return
            time.sleep(0.5)
        raise VLLMError(f"vllm not healthy after {self.startup_timeout_s:.0f}s; last output:\n{self._log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def __enter__(self) -> "VLLMLauncher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class VLLMClient:
    """The few vLLM HTTP calls the trainer needs (stdlib only, so it runs in any environment)."""

    def __init__(self, url: str, *, api_key: Optional[str] = None, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[:-3]
        self.api_key = api_key
        self.timeout_s = timeout_s

    def healthy(self) -> bool:
        try:
            status, _ = self._request("GET", "/health", timeout=5.0)
        except (OSError, VLLMError):
            return False
        return status == 200

    def models(self) -> list[dict]:
        return list(self._json("GET", "/v1/models").get("data", []))

    def load_adapter(self, name: str, path: str, *, load_inplace: bool = False) -> None:
        """Register a LoRA adapter under ``name``; requests with ``model=name`` then use it."""
        body: dict[str, Any] = {"lora_name": name, "lora_path": str(path)}
        if load_inplace:
            body["load_inplace"] = True
        self._request("POST", "/v1/load_lora_adapter", body)

    def unload_adapter(self, name: str) -> None:
        self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})

    def chat(self, messages: list, *, model: str, **params: Any) -> dict:
        """A chat completion with token ids and logprobs returned (vLLM's ``return_token_ids``)."""
        body = dict(params, model=model, messages=messages, stream=False)
        body.setdefault("return_token_ids", True)
        body.setdefault("logprobs", True)
        return self._json("POST", "/v1/chat/completions", body)

    # -- plumbing ---------------------------------------------------------------------------------
    def _json(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        _, data = self._request(method, path, body)
        try:
            return json.loads(data or b"{}")
        except ValueError as exc:
            raise VLLMError(f"{method} {path}: answer is not JSON: {data[:200]!r}") from exc

    def _request(self, method: str, path: str, body: Optional[dict] = None,
                 timeout: Optional[float] = None) -> tuple[int, bytes]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise VLLMError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc

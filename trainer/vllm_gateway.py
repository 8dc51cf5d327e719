"""A thin gateway that gives vLLM the CPU server's contract, so agents and the trainer see one API.

Agents keep one ``base_url`` and one model name while the policy changes underneath, and their framework
clients know nothing about vLLM's extra fields. The gateway therefore, for every chat completion:

* routes it to the current version (a LoRA adapter registered in vLLM under the version's name; the base
  model before the first publish), whatever ``model`` the agent sent;
* asks vLLM for ``return_token_ids`` and ``logprobs``, so answers carry ``prompt_token_ids``, per-choice
  ``token_ids`` and per-token logprobs;
* adds ``model_version`` (and the ``x-agentlightning-model-version`` header) to the answer and to every
  streamed chunk.

Publishing is the CPU server's call: ``POST /v1/load_version {"path": ADAPTER_DIR, "version": "step-3"}`` (or
:meth:`VersionGateway.load_version`) registers the adapter with vLLM and switches new requests to it.
Requests already running keep their adapter; the ``keep_versions`` newest adapters stay loaded and older
ones are unloaded. ``/v1/models`` and ``/health`` report the current version. Stdlib only.
"""
from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from agentlightning.core.openai_format import mirror_exact_tokens_into_messages
from agentlightning.trainer.vllm_backend import VLLMClient, VLLMError

logger = logging.getLogger("agentlightning.trainer.vllm_gateway")
MODEL_VERSION_HEADER = "x-agentlightning-model-version"


class VersionGateway:
    """OpenAI-compatible front for a vLLM server with runtime LoRA updates; see the module docstring."""

    def __init__(self, upstream_url: str, *, base_model: str, initial_version: str = "v0",
                 host: str = "127.0.0.1", port: int = 0, keep_versions: int = 3, timeout_s: float = 600.0) -> None:
        self.client = VLLMClient(upstream_url, timeout_s=timeout_s)
        parsed = urllib.parse.urlsplit(self.client.url)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.base_model = base_model
        self.keep_versions = max(1, keep_versions)
        self.timeout_s = timeout_s
        self._version, self._target = initial_version, base_model
        self._loaded: deque[str] = deque()
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._published = 0
        self._host, self._port = host, port
        self._httpd: Optional[ThreadingHTTPServer] = None

    # -- versions ---------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    def route(self) -> tuple[str, str]:
        """(vLLM model name to request, version to report) for a new request."""
        with self._lock:
            return self._target, self._version

    def load_version(self, path: str, version: Optional[str] = None) -> str:
        with self._publish_lock:  # one publish at a time; requests keep routing while vLLM loads
            self._published += 1
            name = version or f"v{self._published}"
            if name == self._version or name in self._loaded:
                raise ValueError(f"version {name!r} is already loaded")
            self.client.load_adapter(name, str(path))
            with self._lock:
                self._version, self._target = name, name
                self._loaded.append(name)
                retired = [self._loaded.popleft() for _ in range(max(0, len(self._loaded) - self.keep_versions))]
        for old in retired:
            try:
                self.client.unload_adapter(old)
            except (VLLMError, OSError) as exc:
                logger.warning("could not unload adapter %s: %s", old, exc)
        return name

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "VersionGateway":
        if self._httpd is None:
            handler = type("_BoundGatewayHandler", (_Handler,), {"owner": self})
            self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
            self._httpd.daemon_threads = True
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="agentlightning-vllm-gateway", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "VersionGateway":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("gateway not started")
        return f"http://{self._host}:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _upstream_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(*self._upstream, timeout=self.timeout_s)


class _Handler(BaseHTTPRequestHandler):
    owner: VersionGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        owner, path = self.owner, self.path.split("?", 1)[0].rstrip("/")
        if path in ("/health", "/v1/health"):
            healthy = owner.client.healthy()
            self._json(200 if healthy else 503, {"status": "ok" if healthy else "upstream down",
                                                 "version": owner.version})
        elif path in ("/v1/models", "/models"):
            try:
                upstream = owner.client.models()
            except (VLLMError, OSError) as exc:
                self._json(502, {"error": {"message": str(exc), "type": "upstream_error"}})
                return
            data = [dict(m, version=owner.version) if m.get("id") == owner.base_model else m for m in upstream]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        owner, path = self.owner, self.path.split("?", 1)[0].rstrip("/")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "body must be JSON", "type": "invalid_request_error"}})
            return
        if path in ("/v1/load_version", "/v1/load_lora_adapter"):
            source = body.get("path") or body.get("lora_path")
            if not source:
                self._json(400, {"error": {"message": "'path' is required", "type": "invalid_request_error"}})
                return
            previous = owner.version
            try:
                version = owner.load_version(source, body.get("version") or body.get("lora_name"))
            except (VLLMError, ValueError) as exc:
                self._json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                return
            self._json(200, {"version": version, "previous": previous})
        elif path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(body)
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def _chat(self, body: dict) -> None:
        owner = self.owner
        target, version = owner.route()
        body = dict(body, model=target)
        body.setdefault("return_token_ids", True)
        if not body.get("logprobs"):
            body["logprobs"] = True
        connection = owner._upstream_connection()
        try:
            connection.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                               headers={"content-type": "application/json"})
            response = connection.getresponse()
            if response.status != 200 or not body.get("stream"):
                data = response.read()
                if response.status == 200:
                    answer = json.loads(data)
                    answer["model_version"] = version
                    self._json(200, mirror_exact_tokens_into_messages(answer), {MODEL_VERSION_HEADER: version})
                else:
                    self._raw(response.status, data, response.getheader("content-type") or "application/json")
                return
            self._relay_stream(response, version)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._json(502, {"error": {"message": f"vLLM: {exc}", "type": "upstream_error"}})
        finally:
            connection.close()

    def _relay_stream(self, response: http.client.HTTPResponse, version: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header(MODEL_VERSION_HEADER, version)
        self.end_headers()
        self.close_connection = True
        collected: dict[int, tuple[list, list]] = {}
        try:
            while True:
                line = response.readline()
                if not line:
                    break
                if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                    try:
                        chunk = json.loads(line[6:])
                    except ValueError:
                        chunk = None
                    if isinstance(chunk, dict):
                        _regroup(chunk, collected)
                        chunk["model_version"] = version
                        line = b"data: " + json.dumps(chunk).encode() + b"\n"
                self.wfile.write(line)
                if line in (b"\n", b"\r\n"):
                    self.wfile.flush()
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away mid-stream")

    def _json(self, status: int, body: dict, headers: Optional[dict] = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(self, status: int, data: bytes, content_type: str, headers: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _regroup(chunk: dict, collected: dict[int, tuple[list, list]]) -> None:
    """vLLM streams ``token_ids``/``logprobs`` per chunk; our contract sends each choice's complete lists once,
    on its chunk with ``finish_reason`` (as the CPU server does), so a reader never has to stitch them."""
    for choice in chunk.get("choices") or []:
        ids, logprobs = collected.setdefault(int(choice.get("index", 0)), ([], []))
        ids.extend(choice.pop("token_ids", None) or [])
        logprobs.extend((choice.get("logprobs") or {}).get("content") or [])
        choice["logprobs"] = None
        if choice.get("finish_reason"):
            choice["token_ids"] = list(ids)
            choice["logprobs"] = {"content": list(logprobs), "refusal": None}

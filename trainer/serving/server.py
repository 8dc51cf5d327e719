"""The CPU model server: an OpenAI-compatible HTTP endpoint over the batching engine, with hot reload.

Routes (stdlib ``ThreadingHTTPServer``; one thread per connection, all generation in the engine thread):

* ``POST /v1/chat/completions`` — see :mod:`.openai_api` for the request fields and the exact-token
  extension every answer carries; the ``x-agentlightning-model-version`` header repeats the version.
  ``model`` is echoed back, not checked: one server serves one policy, its current version.
* ``GET /v1/models`` — the served model, with ``version`` (the one new requests get).
* ``GET /health`` — ``{"status": "ok", "version": ..., "stats": {...}}``; ``stats`` counts batches
  (``batches`` new batches, ``joins`` groups merged into a running one, ``prefills``, ``decode_steps``,
  ``max_rows``/``mean_rows`` rows per decode step, ``sequences``, ``tokens``, ``errors``, ``pending``).
* ``POST /v1/load_version`` ``{"path": DIR, "version": "v3"}`` — load a LoRA adapter or full weights and
  make it the version new requests use; requests already generating finish on their version. Answers
  ``{"version": ..., "previous": ..., "load_s": ...}``. ``POST /v1/load_lora_adapter``
  ``{"lora_name": ..., "lora_path": ...}`` is vLLM's spelling of the same (so one publisher serves both
  backends); here the adapter replaces the current version for every request, whatever ``model`` says.

Python API (what a trainer in the same process uses)::

    with ModelServer("tiny-random", port=0) as server:      # or ModelServer.from_model(model, tokenizer)
        OpenAI(base_url=server.base_url, api_key="x")
        server.load_version("/ckpt/step-3", version="step-3")  # dir, nn.Module or state dict
"""
from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from agentlightning.trainer.serving.engine import Engine, GenerationError
from agentlightning.trainer.serving.openai_api import BadRequest, completion_body, completion_chunks, parse_chat
from agentlightning.trainer.serving.weights import Source, build_version_model, describe_source

logger = logging.getLogger("agentlightning.trainer.serving.server")
MODEL_VERSION_HEADER = "x-agentlightning-model-version"
REQUEST_TIMEOUT_S = 600.0


class ModelServer:
    """Serves one model over HTTP; ``load_version`` swaps what new requests run on."""

    def __init__(self, model: str = "tiny-random", *, host: str = "127.0.0.1", port: int = 0,
                 max_batch: int = 16, batch_wait_s: float = 0.02, version: str = "v0",
                 served_model_name: Optional[str] = None, device: str = "cpu", dtype: Any = None,
                 default_max_tokens: int = 512) -> None:
        from agentlightning.trainer.models import ensure_tool_template, load_model, load_tokenizer, resolve_model

        path = resolve_model(model)
        tokenizer = load_tokenizer(path)
        ensure_tool_template(tokenizer)
        self._init(load_model(path, device=device, dtype=dtype), tokenizer, host=host, port=port,
                   max_batch=max_batch, batch_wait_s=batch_wait_s, version=version,
                   served_model_name=served_model_name or str(model), default_max_tokens=default_max_tokens)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, served_model_name: str = "model", **kwargs: Any) -> "ModelServer":
        """Serve an already loaded model (it becomes the base that LoRA versions apply to)."""
        server = cls.__new__(cls)
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in ("host", "port", "max_batch", "batch_wait_s",
                                                                    "version", "default_max_tokens")}
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        server._init(model.eval(), tokenizer, served_model_name=served_model_name, **options)
        return server

    def _init(self, model: Any, tokenizer: Any, *, host: str = "127.0.0.1", port: int = 0, max_batch: int = 16,
              batch_wait_s: float = 0.02, version: str = "v0", served_model_name: str = "model",
              default_max_tokens: int = 512) -> None:
        self.base_model = model
        self.tokenizer = tokenizer
        self.served_model_name = served_model_name
        self.default_max_tokens = default_max_tokens
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        self.engine = Engine(model, tokenizer, version=version, max_batch=max_batch, batch_wait_s=batch_wait_s)
        self._host, self._port = host, port
        self._load_lock = threading.Lock()
        self._counter = itertools.count(1)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "ModelServer":
        if self._httpd is None:
            handler = type("_BoundHandler", (_Handler,), {"owner": self})
            self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="agentlightning-model-http", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.engine.close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return self.url + "/v1"

    # -- versions ---------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.engine.version

    def load_version(self, source: Source, version: Optional[str] = None) -> str:
        """Make ``source`` (adapter dir, full-weights dir, module or state dict) the version new requests use."""
        with self._load_lock:
            started = time.monotonic()
            model = build_version_model(self.base_model, source)
            name = version or f"v{next(self._counter)}"
            previous = self.engine.version
            self.engine.set_policy(model, name)
            logger.info("loaded %s as %s (was %s) in %.2fs", describe_source(source), name, previous,
                        time.monotonic() - started)
            return name

    def stats(self) -> dict:
        return self.engine.stats()


class _Handler(BaseHTTPRequestHandler):
    owner: ModelServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.owner
        if path in ("/health", "/v1/health"):
            self._json(200, {"status": "ok", "version": owner.version, "stats": owner.stats()})
        elif path in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{
                "id": owner.served_model_name, "object": "model", "created": 0, "owned_by": "agentlightning",
                "version": owner.version, "max_model_len": owner.max_positions}]})
        else:
            self._error(404, f"no route {path}", "not_found")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._error(400, "body must be a JSON object")
            return
        try:
            if path in ("/v1/chat/completions", "/chat/completions"):
                self._chat(body)
            elif path in ("/v1/load_version", "/v1/load_lora_adapter"):
                self._load(body)
            else:
                self._error(404, f"no route {path}", "not_found")
        except BadRequest as exc:
            self._error(400, str(exc))
        except (GenerationError, TimeoutError) as exc:
            self._error(500, str(exc), "server_error")
        except Exception as exc:  # keep the server up; say what broke
            logger.exception("request failed")
            self._error(500, f"{type(exc).__name__}: {exc}", "server_error")

    def _load(self, body: dict) -> None:
        path = body.get("path") or body.get("lora_path")
        if not path:
            raise BadRequest("'path' (or 'lora_path') is required")
        owner = self.owner
        previous, started = owner.version, time.monotonic()
        try:
            version = owner.load_version(path, body.get("version") or body.get("lora_name"))
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            raise BadRequest(f"cannot load {path}: {exc}") from exc
        self._json(200, {"version": version, "previous": previous, "load_s": round(time.monotonic() - started, 3)})

    def _chat(self, body: dict) -> None:
        owner = self.owner
        job = parse_chat(body, owner.tokenizer, default_max_tokens=owner.default_max_tokens,
                         max_positions=owner.max_positions)
        gens = owner.engine.submit_many([job.prompt_ids] * len(job.params), job.params)
        rid, created, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), job.model or owner.served_model_name
        try:
            if job.stream:
                chunks = completion_chunks(job, gens, owner.tokenizer, rid=rid, created=created, model=model)
                first = next(chunks)
                self._stream(first, chunks, gens[0].version or "")
            else:
                for gen in gens:
                    gen.wait(REQUEST_TIMEOUT_S)
                body_out = completion_body(job, gens, owner.tokenizer, rid=rid, created=created, model=model)
                self._json(200, body_out, {MODEL_VERSION_HEADER: body_out["model_version"] or ""})
        finally:
            for gen in gens:
                gen.cancel()  # no-op for finished ones; stops work nobody will read (client went away)

    def _stream(self, first: dict, chunks: Any, version: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header(MODEL_VERSION_HEADER, version)
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in itertools.chain([first], chunks):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away mid-stream")
        except GenerationError as exc:  # headers are out: tell the client in-band, then close
            error = {"error": {"message": str(exc), "type": "server_error"}}
            self.wfile.write(b"data: " + json.dumps(error).encode() + b"\n\n")

    def _json(self, status: int, body: dict, headers: Optional[dict] = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

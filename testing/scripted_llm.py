"""A scripted OpenAI-compatible server on 127.0.0.1: the only stand-in in end-to-end tests and benchmarks.

Frameworks talk to it through their real OpenAI clients (chat completions, streaming, tool calls, the
Responses API), so what is tested is the real framework path; only the model's choices are scripted.
Stdlib only, so it runs wherever the tests run.

    with ScriptedLLMServer(tool_then_answer("add", '{"a": 1, "b": 2}', "3")) as llm:
        ChatOpenAI(base_url=llm.base_url, api_key="dummy", model="scripted")
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Sequence, Union

from agentlightning.testing import openai_wire as wire
from agentlightning.testing.openai_wire import Reply, ToolCall
from agentlightning.testing.scripts import (
    RequestView, route, route_by_last_message, route_by_system, sequence, tool_then_answer,
)

__all__ = [
    "Call", "Reply", "RequestView", "ScriptError", "ScriptedLLMServer", "ToolCall", "MODEL_VERSION_HEADER",
    "route", "route_by_last_message", "route_by_system", "sequence", "tool_then_answer",
]

logger = logging.getLogger("agentlightning.testing.scripted_llm")
MODEL_VERSION_HEADER = "x-agentlightning-model-version"
Script = Union[Callable[[dict, str], Reply], Sequence[Reply]]


class ScriptError(RuntimeError):
    """The script could not answer (exhausted list, or the callable raised); the client gets HTTP 500."""


@dataclass
class Call:
    """One request the server answered: the api ("chat" | "responses"), body, headers and reply."""

    api: str
    request: dict
    headers: dict
    reply: Optional[Reply] = None
    error: Optional[str] = None
    started: float = field(default_factory=time.time)


class ScriptedLLMServer:
    """Serves ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/models`` from a script.

    ``script`` is ``callable(request_json, api) -> Reply`` (api is "chat" or "responses"), or a list of
    replies consumed in order; ``cycle=True`` repeats the list, otherwise running out answers HTTP 500
    with a message saying so (and the test sees it in ``server.errors``).
    """

    def __init__(self, script: Script, *, cycle: bool = False, model: str = "scripted",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self._script = script
        self._cycle = cycle
        self._position = 0
        self.model = model
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "ScriptedLLMServer":
        if self._httpd is not None:
            return self
        handler = type("_Handler", (_Handler,), {"server_ref": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what happened ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[dict]:
        """Bodies of the requests received, in order (errors included)."""
        with self._lock:
            return [c.request for c in self.calls]

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return [c.error for c in self.calls if c.error]

    def reset(self, script: Optional[Script] = None) -> None:
        """Forget recorded calls and restart the script (optionally a new one)."""
        with self._lock:
            self.calls.clear()
            self._position = 0
            if script is not None:
                self._script = script

    # -- answering --------------------------------------------------------------------------------
    def _next_reply(self, request: dict, api: str) -> Reply:
        script = self._script
        if callable(script):
            try:
                reply = script(request, api)
            except Exception as exc:
                raise ScriptError(f"scripted LLM: script raised {type(exc).__name__}: {exc}") from exc
        else:
            with self._lock:
                replies = list(script)
                if self._position >= len(replies):
                    if not self._cycle or not replies:
                        raise ScriptError(
                            f"scripted LLM: script exhausted after {len(replies)} replies "
                            f"(request {self._position + 1} had nothing left to answer)")
                    self._position = 0
                reply = replies[self._position]
                self._position += 1
        if not isinstance(reply, Reply):
            raise ScriptError(f"scripted LLM: script returned {type(reply).__name__}, not Reply")
        return reply


class _Handler(BaseHTTPRequestHandler):
    server_ref: ScriptedLLMServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms a call.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: nothing printed per call
        logger.debug(format, *args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = self.server_ref.model
            self._json(200, {"object": "list", "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": "agentlightning-testing"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        api = {"/v1/chat/completions": "chat", "/chat/completions": "chat",
               "/v1/responses": "responses", "/responses": "responses"}.get(path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if api is None:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        owner = self.server_ref
        call = Call(api=api, request=request, headers={k.lower(): v for k, v in self.headers.items()})
        with owner._lock:
            owner.calls.append(call)
            seq = len(owner.calls)
        try:
            reply = owner._next_reply(request, api)
        except ScriptError as exc:
            call.error = str(exc)
            self._json(500, {"error": {"message": str(exc), "type": "server_error"}})
            return
        call.reply = reply
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.http_status != 200:
            call.error = f"HTTP {reply.http_status}: {reply.error_message}"
            self._json(reply.http_status, {"error": {"message": reply.error_message, "type": "server_error"}})
            return
        headers = {MODEL_VERSION_HEADER: reply.model_version} if reply.model_version else {}
        if request.get("stream"):
            if api == "chat":
                events = ((chunk, None) for chunk in wire.chat_chunks(reply, request, seq))
            else:
                events = ((e, e["type"]) for e in wire.response_events(reply, request, seq))
            self._stream(events, done=(api == "chat"), headers=headers)
        elif api == "chat":
            self._json(200, wire.chat_completion(reply, request, seq), headers)
        else:
            self._json(200, wire.response_object(reply, request, seq), headers)

    def _json(self, status: int, body: dict, headers: Optional[dict] = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Any, done: bool, headers: dict) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        try:
            for data, event in events:
                self.wfile.write(wire.sse(data, event))
            if done:
                self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away mid-stream")

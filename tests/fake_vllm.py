"""A stand-in for ``vllm serve`` on 127.0.0.1: the endpoints our launcher, client and gateway rely on.

vLLM cannot run on these CPU machines, so this implements its documented side of the contract:
``GET /health``; ``GET /v1/models`` (base model + adapters); ``POST /v1/load_lora_adapter`` and
``/v1/unload_lora_adapter`` (present only when ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; a duplicate name
is a 400); ``POST /v1/chat/completions`` where ``model`` must be the served name or a loaded adapter (else
404), ``return_token_ids`` adds top-level ``prompt_token_ids`` and per-choice ``token_ids``, ``logprobs``
adds ``logprobs.content``; streaming sends per-chunk ``token_ids``.

Run as a script it takes ``vllm``'s command line (``serve MODEL --host H --port P ...``) and writes what it
was started with (argv, environment) to ``$FAKE_VLLM_RECORD`` — the launcher test starts it exactly as it
would start vLLM. In-process use: ``with FakeVLLM(port=0) as fake: fake.url``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeVLLM:
    def __init__(self, *, served_model_name: str = "base", host: str = "127.0.0.1", port: int = 0,
                 runtime_lora: bool = True) -> None:
        self.served_model_name = served_model_name
        self.runtime_lora = runtime_lora
        self.adapters: dict[str, str] = {}
        self.requests: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        handler = type("_H", (_Handler,), {"owner": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FakeVLLM":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat_requests(self) -> list[dict]:
        with self._lock:
            return [body for path, body in self.requests if path.endswith("/chat/completions")]


class _Handler(BaseHTTPRequestHandler):
    owner: FakeVLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.owner
        if self.path == "/health":
            self._send(200, b"", "text/plain")
        elif self.path == "/v1/models":
            data = [{"id": owner.served_model_name, "object": "model", "root": owner.served_model_name, "parent": None}]
            data += [{"id": name, "object": "model", "root": path, "parent": owner.served_model_name}
                     for name, path in owner.adapters.items()]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        owner = self.owner
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        with owner._lock:
            owner.requests.append((self.path, body))
        if self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and not owner.runtime_lora:
            self._json(404, {"detail": "Not Found"})
        elif self.path == "/v1/load_lora_adapter":
            name, path = body.get("lora_name"), body.get("lora_path")
            if not name or not path:
                self._error(400, "Both 'lora_name' and 'lora_path' must be provided.")
            elif name in owner.adapters:
                self._error(400, f"The lora adapter '{name}' has already been loaded.")
            else:
                owner.adapters[name] = path
                self._send(200, f"Success: LoRA adapter '{name}' added successfully.".encode(), "text/plain")
        elif self.path == "/v1/unload_lora_adapter":
            if owner.adapters.pop(body.get("lora_name"), None) is None:
                self._error(404, f"The lora adapter '{body.get('lora_name')}' cannot be found.")
            else:
                self._send(200, b"Success: LoRA adapter unloaded successfully.", "text/plain")
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        else:
            self._json(404, {"detail": "Not Found"})

    def _chat(self, body: dict) -> None:
        owner, model = self.owner, body.get("model")
        if model != owner.served_model_name and model not in owner.adapters:
            self._error(404, f"The model `{model}` does not exist.")
            return
        content = f"answer from {model}"
        prompt_ids = [len(m.get("content") or "") for m in body.get("messages", [])]
        token_ids = [ord(c) for c in content]
        if body.get("stream"):
            self._stream(body, model, content, prompt_ids, token_ids)
            return
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop", "logprobs": None}
        out: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                               "choices": [choice], "usage": {"prompt_tokens": len(prompt_ids),
                                                              "completion_tokens": len(token_ids),
                                                              "total_tokens": len(prompt_ids) + len(token_ids)}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": c, "logprob": -0.5, "bytes": [ord(c)], "top_logprobs": []}
                                              for c in content]}
        if body.get("return_token_ids"):
            out["prompt_token_ids"] = prompt_ids
            choice["token_ids"] = token_ids
        self._json(200, out)

    def _stream(self, body: dict, model: str, content: str, prompt_ids: list, token_ids: list) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
        first = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        if body.get("return_token_ids"):
            first["prompt_token_ids"] = prompt_ids
        events = [first]
        for i, ch in enumerate(content):
            choice: dict[str, Any] = {"index": 0, "delta": {"content": ch}, "finish_reason": None}
            if body.get("return_token_ids"):
                choice["token_ids"] = [token_ids[i]]
            events.append(dict(base, choices=[choice]))
        events.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        for event in events:
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"object": "error", "message": message, "type": "BadRequestError", "code": status})

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vllm")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--served-model-name", default=None)
    args, _unknown = parser.parse_known_args(argv)
    record = os.environ.get("FAKE_VLLM_RECORD")
    if record:
        with open(record, "w") as fh:
            json.dump({"argv": argv, "env": {k: os.environ.get(k) for k in (
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "VIRTUAL_ENV", "PYTHONPATH", "PATH", "EXTRA_FLAG")}}, fh)
    fake = FakeVLLM(served_model_name=args.served_model_name or args.model, host=args.host, port=args.port,
                    runtime_lora=os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower() in ("1", "true"))
    fake.httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

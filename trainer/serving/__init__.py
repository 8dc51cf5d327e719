"""Serving the policy: an OpenAI-compatible CPU model server with batching, exact tokens and hot reload.

Public API:

* :class:`ModelServer` — ``ModelServer("smollm2-135m-instruct", port=8000).serve_forever()``, or use it as a
  context manager in tests; ``server.base_url`` for OpenAI clients; ``server.load_version(src, version)``
  publishes a new policy (LoRA adapter dir, full-weights dir, ``nn.Module`` or state dict).
* :class:`Engine`, :class:`SamplingParams` — the batching generator underneath, usable without HTTP.
* :func:`parse_tool_calls` — the lenient ``<tool_call>`` parser the server applies to replies.

The wire format (OpenAI + ``prompt_token_ids``/``token_ids``/``logprobs``/``model_version``) is described in
:mod:`agentlightning.trainer.serving.openai_api`; the HTTP routes in :mod:`.server`. The same command line
is ``agentlightning serve-model --model NAME_OR_PATH``. Names load lazily; all but the tool-call
parser import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Engine": "engine", "Generation": "engine", "GenerationError": "engine", "Policy": "engine",
    "SamplingParams": "sampling", "MODEL_VERSION_HEADER": "server", "ModelServer": "server",
    "parse_tool_calls": "toolcalls",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: the tool-call parser must not drag torch in
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

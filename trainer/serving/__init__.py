"""Serving the policy: an OpenAI-compatible CPU model server with batching, exact tokens and hot reload.

Public API:

* :class:`ModelServer` — ``ModelServer("smollm2-135m-instruct", port=8000).serve_forever()``, or use it as a
  context manager in tests; ``server.base_url`` for OpenAI clients; ``server.load_version(src, version)``
  publishes a new policy (LoRA adapter dir, full-weights dir, ``nn.Module`` or state dict).
* :class:`Engine`, :class:`SamplingParams` — the batching generator underneath, usable without HTTP.
* :func:`parse_tool_calls` — the lenient ``<tool_call>`` parser the server applies to replies.

The wire format (OpenAI + ``prompt_token_ids``/``token_ids``/``logprobs``/``model_version``) is described in
:mod:`agentlightning.trainer.serving.openai_api`; the HTTP routes in :mod:`.server`. The same command line
is ``agentlightning serve-model --model NAME_OR_PATH``. Importing this package imports torch.
"""
from agentlightning.trainer.serving.engine import Engine, Generation, GenerationError, Policy
from agentlightning.trainer.serving.sampling import SamplingParams
from agentlightning.trainer.serving.server import MODEL_VERSION_HEADER, ModelServer
from agentlightning.trainer.serving.toolcalls import parse_tool_calls

__all__ = ["Engine", "Generation", "GenerationError", "MODEL_VERSION_HEADER", "ModelServer", "Policy",
           "SamplingParams", "parse_tool_calls"]

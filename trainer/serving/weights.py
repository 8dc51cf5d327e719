"""Build the model for a new policy version from what a trainer publishes, without touching the served one.

Sources (:func:`build_version_model`):

* a directory with ``adapter_config.json`` — a PEFT/LoRA adapter trained on the *base* model: applied to a
  fresh copy of the base and merged (``merge_and_unload``), so generation pays nothing for LoRA;
* a directory with ``config.json`` — full weights (``save_pretrained`` output);
* an ``nn.Module`` — copied (the trainer keeps training its own object; a served version must not change
  under running requests), PEFT wrappers merged;
* a state dict — loaded into a copy of the base (``strict``: every key must match).

The base model object itself is never modified, so every adapter is applied to the same weights.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Union

import torch

Source = Union[str, os.PathLike, torch.nn.Module, Mapping[str, torch.Tensor]]


def build_version_model(base: torch.nn.Module, source: Source, *, device: Union[str, torch.device, None] = None,
                        dtype: Any = None) -> torch.nn.Module:
    device = device or _device_of(base)
    dtype = dtype or _dtype_of(base)
    if isinstance(source, torch.nn.Module):
        model = _merge_peft(copy.deepcopy(source))
    elif isinstance(source, Mapping):
        model = copy.deepcopy(base)
        model.load_state_dict(dict(source), strict=True)
    else:
        model = _from_directory(base, Path(source), dtype)
    return model.to(device=device, dtype=dtype).eval()


def describe_source(source: Source) -> str:
    if isinstance(source, torch.nn.Module):
        return f"module {type(source).__name__}"
    if isinstance(source, Mapping):
        return f"state dict ({len(source)} tensors)"
    return str(source)


def _from_directory(base: torch.nn.Module, path: Path, dtype: Any) -> torch.nn.Module:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory")
    if (path / "adapter_config.json").exists():
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ModuleNotFoundError("loading a LoRA adapter needs peft (pip install peft)") from exc
        wrapped = PeftModel.from_pretrained(copy.deepcopy(base), str(path), is_trainable=False)
        return wrapped.merge_and_unload()
    if (path / "config.json").exists():
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    raise FileNotFoundError(f"{path} has neither adapter_config.json (LoRA) nor config.json (full weights)")


def _merge_peft(model: torch.nn.Module) -> torch.nn.Module:
    merge = getattr(model, "merge_and_unload", None)
    return merge() if callable(merge) else model


def _device_of(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    try:
        return next(model.parameters()).dtype
    except StopIteration:
        return torch.float32

"""KV-cache operations the batcher needs beyond what transformers offers: merge two batches, trim padding.

Rows are left-padded and every row's position ids are passed explicitly, so rotary positions are baked
into the cached keys and zero-filled padding columns (masked out by the attention mask) are harmless.
That makes a running batch and a freshly prefilled group mergeable by left-padding the shorter cache.
Merging and trimming touch the per-layer ``keys``/``values`` tensors of ``DynamicCache``; when a cache
does not look like that (other cache classes, sliding-window layers), :func:`supports_surgery` says no and
the batcher simply lets new requests wait for the running batch to finish.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any

import torch


@functools.lru_cache(maxsize=None)
def _cache_kwarg_of(model_type: type) -> str:
    params = inspect.signature(model_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwarg(model: Any) -> str:
    """transformers 5 calls the forward argument ``cache``; earlier versions ``past_key_values``."""
    return _cache_kwarg_of(type(model))


def output_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def new_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers: no config argument
        return DynamicCache()


def supports_surgery(cache: Any) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" and hasattr(layer, "keys")
                                for layer in layers)


def select_rows(cache: Any, rows: torch.Tensor) -> None:
    """Keep only ``rows`` (batch indices) of the cache, in place."""
    cache.batch_select_indices(rows)


def trim_left(cache: Any, columns: int) -> None:
    """Drop the first ``columns`` sequence positions (all padding) from every layer, in place."""
    if columns <= 0:
        return
    for layer in cache.layers:
        if layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys[:, :, columns:, :]
            layer.values = layer.values[:, :, columns:, :]


def merge(first: Any, second: Any) -> Any:
    """``first`` with ``second``'s rows appended; the shorter one is left-padded with zeros. Mutates ``first``."""
    length_a, length_b = first.get_seq_length(), second.get_seq_length()
    for layer_a, layer_b in zip(first.layers, second.layers):
        keys_a, values_a = _left_pad(layer_a.keys, length_b), _left_pad(layer_a.values, length_b)
        keys_b, values_b = _left_pad(layer_b.keys, length_a), _left_pad(layer_b.values, length_a)
        layer_a.keys = torch.cat([keys_a, keys_b], dim=0)
        layer_a.values = torch.cat([values_a, values_b], dim=0)
    return first


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[2]
    if missing <= 0:
        return tensor
    pad = tensor.new_zeros((tensor.shape[0], tensor.shape[1], missing, tensor.shape[3]))
    return torch.cat([pad, tensor], dim=2)


def left_pad_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - mask.shape[1]
    if missing <= 0:
        return mask
    return torch.cat([mask.new_zeros((mask.shape[0], missing)), mask], dim=1)

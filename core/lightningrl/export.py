"""Write transitions for use outside the project: JSON Lines, Parquet, or a Hugging Face dataset.

pyarrow and datasets are imported only inside the functions that need them, so core keeps its
small dependency set; a missing one gives a clear message with what to install.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Union

from agentlightning.core.lightningrl.types import Transition

FORMATS = ("jsonl", "parquet", "hf")
PathLike = Union[str, Path]


def records(transitions: Iterable[Transition], include_messages: bool = False) -> list[dict[str, Any]]:
    """Plain dicts; the breakdown and messages as JSON strings so every format has a flat schema."""
    out = []
    for t in transitions:
        d = t.to_dict(include_messages=False)
        d["breakdown"] = json.dumps(d["breakdown"], sort_keys=True)
        if include_messages:
            d["prompt_messages"] = json.dumps(t.prompt_messages) if t.prompt_messages is not None else None
            d["response_messages"] = json.dumps(t.response_messages) if t.response_messages is not None else None
        out.append(d)
    return out


def write_jsonl(transitions: Iterable[Transition], path: PathLike, include_messages: bool = False) -> int:
    """One JSON object per line, breakdown and messages nested as objects. Returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for t in transitions:
            f.write(json.dumps(t.to_dict(include_messages=include_messages)))
            f.write("\n")
            n += 1
    return n


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"exporting this format needs {module!r}: pip install {extra}") from exc


def to_arrow(transitions: Iterable[Transition], include_messages: bool = False):
    pa = _require("pyarrow", "pyarrow")
    rows = records(transitions, include_messages)
    schema = pa.schema([
        ("rollout_id", pa.string()), ("attempt_id", pa.string()), ("group_id", pa.string()),
        ("task_id", pa.string()), ("agent_name", pa.string()), ("step_index", pa.int64()),
        ("step_count", pa.int64()), ("span_id", pa.string()),
        ("prompt_token_ids", pa.list_(pa.int32())), ("response_token_ids", pa.list_(pa.int32())),
        ("response_logprobs", pa.list_(pa.float32())), ("policy_version", pa.string()),
        ("retokenized", pa.bool_()), ("reward", pa.float64()), ("advantage", pa.float64()),
        ("breakdown", pa.string()),
    ] + ([("prompt_messages", pa.string()), ("response_messages", pa.string())] if include_messages else []))
    return pa.Table.from_pylist(rows, schema=schema)


def write_parquet(transitions: Iterable[Transition], path: PathLike, include_messages: bool = False) -> int:
    table = to_arrow(transitions, include_messages)
    pq = _require("pyarrow.parquet", "pyarrow")
    pq.write_table(table, str(path))
    return table.num_rows


def to_hf_dataset(transitions: Iterable[Transition], include_messages: bool = False):
    """A ``datasets.Dataset`` (one row per transition)."""
    datasets = _require("datasets", "datasets")
    return datasets.Dataset(to_arrow(transitions, include_messages))


def write_hf(transitions: Iterable[Transition], path: PathLike, include_messages: bool = False) -> int:
    """``Dataset.save_to_disk(path)``; load back with ``datasets.load_from_disk(path)``."""
    dataset = to_hf_dataset(transitions, include_messages)
    dataset.save_to_disk(str(path))
    return len(dataset)


def write(transitions: Iterable[Transition], path: PathLike, fmt: str, include_messages: bool = False) -> int:
    writers = {"jsonl": write_jsonl, "parquet": write_parquet, "hf": write_hf}
    if fmt not in writers:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    return writers[fmt](transitions, path, include_messages)

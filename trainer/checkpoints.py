"""Policy checkpoints on disk, one directory per version, in the formats a model server loads.

    <root>/<version>/
        agentlightning_checkpoint.json   what this is: version, kind ("lora" | "full"), base model, step
        adapter_config.json + adapter_model.safetensors     (kind "lora": a PEFT adapter)
        config.json + model.safetensors + tokenizer files   (kind "full": a standalone model)
        optimizer.pt, scheduler.pt                          (optional: to resume training exactly)

A checkpoint is written to a temporary sibling and renamed into place, so a reader (the model
server hot-loading it, or a restarted trainer) never sees half a checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

META_FILE = "agentlightning_checkpoint.json"


@dataclass
class CheckpointInfo:
    version: str
    kind: str                 # "lora" | "full"
    base_model: str           # path of the model the adapter applies to (lora) / started from (full)
    step: int = 0             # training steps done when this was saved
    path: str = ""            # the checkpoint directory (filled when read)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=1, sort_keys=True)


def write_checkpoint(directory: Union[str, Path], info: CheckpointInfo,
                     write_files: Callable[[Path], None]) -> CheckpointInfo:
    """Call ``write_files(tmp_dir)``, add the metadata file, then atomically move it to ``directory``."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write_files(tmp)
        (tmp / META_FILE).write_text(info.to_json())
        _fsync_dir(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info.path = str(target)
    return info


def read_checkpoint(directory: Union[str, Path]) -> Optional[CheckpointInfo]:
    """The checkpoint's metadata, or None when ``directory`` is not a complete checkpoint."""
    meta = Path(directory) / META_FILE
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    known = {k: data[k] for k in ("version", "kind", "base_model", "step", "extra") if k in data}
    return CheckpointInfo(path=str(directory), **known)


def list_checkpoints(root: Union[str, Path]) -> list[CheckpointInfo]:
    """Complete checkpoints under ``root``, oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [read_checkpoint(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((c for c in found if c is not None), key=lambda c: c.step)


def prune(root: Union[str, Path], keep: int, protect: tuple[str, ...] = ()) -> list[str]:
    """Delete all but the newest ``keep`` checkpoints (never those in ``protect``); returns removed paths."""
    if keep <= 0:
        return []
    removed = []
    checkpoints = list_checkpoints(root)
    for info in checkpoints[:-keep]:
        if info.path in protect or info.version in protect:
            continue
        shutil.rmtree(info.path, ignore_errors=True)
        removed.append(info.path)
    return removed


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

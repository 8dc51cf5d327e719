"""agentlightning.trainer: serving, the TRL policy update, the training loop, the model registry.

    from agentlightning.trainer import TrainConfig, TrainingLoop
    TrainingLoop(TrainConfig(agent="my_agent:solve", data="tasks.jsonl", steps=10)).run()

Names are imported lazily, so ``import agentlightning.trainer`` (e.g. for ``get_model`` inside an
agent) does not import torch or TRL.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "agentlightning.trainer.loop_config",
    "TrainingLoop": "agentlightning.trainer.loop",
    "UpdateConfig": "agentlightning.trainer.update_config",
    "PolicyUpdater": "agentlightning.trainer.update",
    "UpdateResult": "agentlightning.trainer.update",
    "ModelEndpoint": "agentlightning.trainer.endpoint",
    "get_model": "agentlightning.trainer.endpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentlightning.trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

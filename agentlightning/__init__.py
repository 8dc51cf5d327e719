"""Agent Lightning: add reinforcement learning to the agents you already run.

The top-level names are the client API most agents need (tracer, rollout, rewards); they load
lazily so ``import agentlightning`` stays cheap and needs no optional extra.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_CORE_NAMES = {
    "configure", "emit_reward", "emit_rewards", "exporter_stats", "flush", "get_tracer", "reward", "rollout", "shutdown",
    "span", "current_rollout", "current_span", "SpanKind", "ToolOutcome", "TokenProvenance", "RewardSource", "Tracer",
    "MemorySink", "ActiveSpan", "SpanExporter", "ExporterConfig", "RolloutContext",
}


def __getattr__(name: str) -> Any:
    if name in _CORE_NAMES:
        from agentlightning import core

        return getattr(core, name)
    if name == "LightningClient":
        from agentlightning.core.client import LightningClient

        return LightningClient
    raise AttributeError(f"module 'agentlightning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_CORE_NAMES) + ["LightningClient"])

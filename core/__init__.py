"""agentlightning.core: schema access, tracer, exporter, server, store. No framework, no torch."""
from agentlightning.core.api import (
    configure,
    emit_reward,
    emit_rewards,
    exporter_stats,
    flush,
    get_tracer,
    reward,
    rollout,
    shutdown,
    span,
)
from agentlightning.core.context import RolloutContext, current_rollout, current_span
from agentlightning.core.exporter import ExporterConfig, ExporterStats, SpanExporter
from agentlightning.core.kinds import RewardSource, SpanKind, TokenProvenance, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, MemorySink, Tracer

__all__ = [
    "ActiveSpan", "ExporterConfig", "ExporterStats", "MemorySink", "RewardSource", "RolloutContext",
    "SpanExporter", "SpanKind", "TokenProvenance", "ToolOutcome", "Tracer", "configure", "current_rollout", "current_span",
    "emit_reward", "emit_rewards", "exporter_stats", "flush", "get_tracer", "reward", "rollout", "shutdown", "span",
]

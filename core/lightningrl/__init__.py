"""LightningRL: stored spans -> RL transitions, credit assignment, Automatic Intermediate Rewards.

    from agentlightning.core.lightningrl import LightningRLConfig, build_transitions, load_from_store
    batch = build_transitions(load_from_store(store), LightningRLConfig(agents="writer|rewriter"))
    for t in batch: t.prompt_token_ids, t.response_token_ids, t.reward, t.advantage, t.breakdown
"""
from agentlightning.core.lightningrl.air import AirSignal
from agentlightning.core.lightningrl.config import AirConfig, AirWeights, LightningRLConfig
from agentlightning.core.lightningrl.diagnostics import explain, summary
from agentlightning.core.lightningrl.loading import load_from_client, load_from_store, traces_from_span_bytes
from agentlightning.core.lightningrl.transitions import build_transitions
from agentlightning.core.lightningrl.types import (
    RewardBreakdown,
    RolloutReport,
    RolloutTrace,
    Transition,
    TransitionBatch,
)

__all__ = [
    "AirConfig", "AirSignal", "AirWeights", "LightningRLConfig", "RewardBreakdown", "RolloutReport",
    "RolloutTrace", "Transition", "TransitionBatch", "build_transitions", "explain", "load_from_client",
    "load_from_store", "summary", "traces_from_span_bytes",
]

"""REWARD spans of an episode -> its final reward, the step rewards of ``per_step`` credit, and
the reward dimensions a breakdown shows. Each REWARD span's fields are read once."""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

from agentlightning.core.lightningrl.types import RolloutTrace, Transition
from agentlightning.v1 import spans_pb2

if TYPE_CHECKING:
    from agentlightning.core.lightningrl.config import LightningRLConfig


class RewardSpan(NamedTuple):
    before: int  # index of the LLM call before it in tree order (-1: none)
    span: spans_pb2.Span
    name: str
    value: float
    primary: bool


def reward_span(before: int, span: spans_pb2.Span) -> RewardSpan:
    payload = span.reward
    return RewardSpan(before, span, payload.name, payload.value, payload.primary)


def final_and_steps(trace: RolloutTrace, rewards: list[RewardSpan], is_final: bool, config: "LightningRLConfig"
                    ) -> tuple[Optional[float], str, list[tuple[int, str, float]]]:
    """(final reward, where it came from, step rewards as (call before it, name, value))."""
    if config.reward_name is not None:
        eligible = [r for r in rewards if r.name == config.reward_name]
    else:
        eligible = [r for r in rewards if r.primary]
    final: Optional[float] = None
    source = ""
    chosen = None
    if is_final and trace.final_reward is not None:
        final, source = trace.final_reward, "rollout"
    else:
        named = [r for r in eligible if r.name == config.final_reward_name]
        if named:
            chosen = named[-1]
        elif eligible and config.credit != "per_step":
            chosen = eligible[-1]
        if chosen is not None:
            final, source = chosen.value, f"span:{chosen.name}"
    steps: list[tuple[int, str, float]] = []
    if config.credit == "per_step":
        for r in eligible:
            if r is not chosen and r.name != config.final_reward_name:
                steps.append((r.before, r.name, r.value))
    return final, source, steps


def attach_steps(transitions: list[Transition], call_index: list[int],
                 step_of: list[tuple[int, str, float]]) -> list[float]:
    """Each step reward goes to the last trained call at or before the call preceding it
    (rewards before any trained call go to the first one). Also records it in the breakdown."""
    steps = [0.0] * len(transitions)
    if not transitions or not step_of:
        return steps
    for before, name, value in step_of:
        target = 0
        for j, i in enumerate(call_index):
            if i <= before:
                target = j
            else:
                break
        steps[target] += value
        breakdown = transitions[target].breakdown
        breakdown.step_rewards[name] = breakdown.step_rewards.get(name, 0.0) + value
        breakdown.step_reward += value
    return steps

"""The data LightningRL reads (RolloutTrace) and writes (Transition, TransitionBatch, RolloutReport)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from agentlightning.core.lightningrl.air import AirSignal
from agentlightning.v1 import rollouts_pb2, spans_pb2


@dataclass
class RolloutTrace:
    """One rollout's spans plus what the queue knows about it.

    Training rollouts come with their ``Rollout`` message (group, task, final reward, status);
    live rollouts exist only as spans, so every field but the spans is optional. A live rollout's
    group/task may also be given by the ``agentlightning.group_id`` / ``agentlightning.task_id``
    attributes on its spans (``api.rollout(group_id=...)`` records them).
    """

    rollout_id: str
    spans: Sequence[spans_pb2.Span]
    group_id: str = ""
    task_id: str = ""
    final_reward: Optional[float] = None
    status: int = 0  # rollouts_pb2.RolloutStatus; 0 = unknown (live traffic)
    error: str = ""
    final_attempt_id: str = ""  # the rollout's last attempt, when the queue knows it

    @classmethod
    def from_rollout(cls, rollout: rollouts_pb2.Rollout, spans: Sequence[spans_pb2.Span]) -> "RolloutTrace":
        return cls(
            rollout_id=rollout.rollout_id, spans=spans, group_id=rollout.group_id, task_id=rollout.task_id,
            final_reward=rollout.final_reward if rollout.has_final_reward else None,
            status=rollout.status, error=rollout.error, final_attempt_id=rollout.current_attempt_id,
        )


@dataclass(slots=True)
class RewardBreakdown:
    """Why a transition got its reward."""

    final_reward: Optional[float]  # the episode's final reward (None: per_step run with none)
    final_source: str              # "rollout" (set on completion) or "span:<name>" or ""
    air_total: float               # what AIR added to this call (after clipping)
    air: dict[str, float]          # AIR by signal name, summed over the call's tool calls
    air_signals: list[AirSignal]   # each signal that fired, with its detail
    step_rewards: dict[str, float]  # rewards emitted during the run attached to this call (per_step)
    step_reward: float             # what the call earned itself: AIR + attached step rewards
    dimensions: dict[str, float]   # every reward dimension recorded in the rollout (last value by name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "final_reward": self.final_reward, "final_source": self.final_source, "air_total": self.air_total,
            "air": dict(self.air), "air_signals": [{"name": s.name, "value": s.value, "detail": s.detail}
                                                   for s in self.air_signals],
            "step_rewards": dict(self.step_rewards), "step_reward": self.step_reward,
            "dimensions": dict(self.dimensions),
        }


@dataclass(slots=True)
class Transition:
    """One LLM call of a trained agent as a single-turn RL sample.

    Token id sequences are views on the stored span when the span carried exact ids (no copy is
    made on the hot path): treat them as read-only and ``list(...)`` them before changing anything. ``reward`` is the
    credit-assigned scalar, ``advantage`` its group-normalised version.
    """

    rollout_id: str
    attempt_id: str
    group_id: str
    task_id: str
    agent_name: str
    step_index: int  # position among this episode's transitions, from 0
    step_count: int  # transitions in this episode
    span_id: str     # hex id of the LLM span, to find it in the trace
    prompt_token_ids: Sequence[int]
    response_token_ids: Sequence[int]
    response_logprobs: Optional[Sequence[float]]
    policy_version: str
    retokenized: bool  # some ids were re-derived with a tokenizer (the prompt, or prompt and response)
    breakdown: RewardBreakdown
    reward: float = 0.0
    advantage: float = 0.0
    prompt_messages: Optional[list[dict]] = None
    response_messages: Optional[list[dict]] = None

    def to_dict(self, include_messages: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rollout_id": self.rollout_id, "attempt_id": self.attempt_id, "group_id": self.group_id,
            "task_id": self.task_id, "agent_name": self.agent_name, "step_index": self.step_index,
            "step_count": self.step_count, "span_id": self.span_id,
            "prompt_token_ids": list(self.prompt_token_ids),
            "response_token_ids": list(self.response_token_ids),
            "response_logprobs": list(self.response_logprobs) if self.response_logprobs is not None else None,
            "policy_version": self.policy_version, "retokenized": self.retokenized,
            "reward": self.reward, "advantage": self.advantage, "breakdown": self.breakdown.to_dict(),
        }
        if include_messages:
            out["prompt_messages"] = self.prompt_messages
            out["response_messages"] = self.response_messages
        return out


@dataclass
class RolloutReport:
    """What happened to one rollout (one attempt) on its way to transitions."""

    rollout_id: str
    attempt_id: str = ""
    status: str = ""            # the queue's status name, "" for live rollouts
    spans: int = 0
    llm_spans: int = 0          # LLM spans in the chosen attempt(s)
    selected: int = 0           # of those, how many matched the agent pattern
    transitions: int = 0
    orphans: int = 0            # spans whose parent was not stored
    attempts: int = 0           # attempts seen in the trace
    agents_seen: list[str] = field(default_factory=list)
    final_reward: Optional[float] = None
    final_source: str = ""
    skipped: list[str] = field(default_factory=list)  # calls dropped, and why
    reasons: list[str] = field(default_factory=list)  # why there are no transitions at all


@dataclass
class TransitionBatch:
    transitions: list[Transition]
    reports: list[RolloutReport]

    def __len__(self) -> int:
        return len(self.transitions)

    def __iter__(self) -> Iterator[Transition]:
        return iter(self.transitions)

    def empty_reports(self) -> list[RolloutReport]:
        """Reports of rollouts (attempts) that yielded no transitions."""
        return [r for r in self.reports if not r.transitions]

    def for_rollout(self, rollout_id: str) -> list[Transition]:
        return [t for t in self.transitions if t.rollout_id == rollout_id]

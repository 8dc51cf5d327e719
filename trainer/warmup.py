"""Warm-up before RL: behaviour cloning on demonstrations recorded through the real agent.

Why: RL only reinforces what the policy already does now and then. SmolLM2-135M never emits a tool call
(0 of 42 sampled replies, docs/demo-calc), so a calculator agent's reward, and AIR's tool signals, have
nothing to work with. The warm-up runs the *same agent* (same runners, same one-line tracing) against a
teacher endpoint — a stronger model, or a scripted replay of the dataset's worked solutions — keeps the
rollouts whose reward clears ``min_reward``, and fine-tunes the policy on the teacher's LLM calls:
prompts exactly as the agent sent them, tokenized with the policy's own chat template.

The update is the RL update's TRL machinery with advantage 1 on every sample and no recorded logprobs,
so the ratio is 1 and the gradient is the token-level negative log-likelihood gradient (SFT); one call
per epoch keeps each pass on-policy for the clip.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional, Sequence

from agentlightning.core.lightningrl.config import AirConfig, LightningRLConfig
from agentlightning.core.lightningrl.types import RolloutTrace, Transition
from agentlightning.trainer.endpoint import ModelEndpoint, pinning_metadata
from agentlightning.trainer.tasks import Task
from agentlightning.v1 import rollouts_pb2

WARMUP_PHASE = "warmup"  # also the version name of the warmed-up policy
SUMMARY_FILE = "warmup.json"


@dataclass
class WarmupConfig:
    """Behaviour cloning before the first RL step.

    teacher_url:    base URL (``.../v1``) of the OpenAI-compatible endpoint that plays the teacher.
    teacher_model:  the ``model`` the agents send to it.
    tasks:          demonstration tasks, the first ones of a seeded shuffle of the training data
                    (None: all of them).
    samples:        rollouts per task (more than 1 only helps a sampling teacher).
    epochs:         passes over the kept demonstrations (one policy update each).
    batch_size:     demonstrations per optimizer step within a pass.
    min_reward:     a demonstration is kept when its rollout's final reward is above this.

    The optimizer is the RL update's (same learning rate and state): scale the warm-up with ``epochs``.
    """

    teacher_url: str
    teacher_model: str = "teacher"
    tasks: Optional[int] = 16
    samples: int = 1
    epochs: int = 2
    batch_size: int = 8
    min_reward: float = 0.5

    def __post_init__(self) -> None:
        if not self.teacher_url:
            raise ValueError("warm-up needs teacher_url, the teacher's OpenAI-compatible base URL")
        if min(self.epochs, self.samples, self.batch_size, self.tasks or 1) < 1:
            raise ValueError("warm-up epochs, samples, batch_size and tasks must be at least 1")

    @property
    def teacher(self) -> ModelEndpoint:
        return ModelEndpoint(self.teacher_url, self.teacher_model, "teacher")


@dataclass
class WarmupResult:
    """What the warm-up did (``warmup.json`` in the run directory, and the demo's report)."""

    rollouts: int = 0
    kept_rollouts: int = 0          # rollouts whose reward cleared min_reward
    demonstrations: int = 0         # LLM calls trained on
    reward_mean: float = 0.0        # the teacher's mean final reward
    losses: Sequence[float] = ()    # each epoch's NLL per token on the demonstrations
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts, "kept_rollouts": self.kept_rollouts,
                "demonstrations": self.demonstrations, "reward_mean": round(self.reward_mean, 4),
                "losses": [round(x, 4) for x in self.losses], "seconds": round(self.seconds, 1)}


def demonstration_specs(config: WarmupConfig, tasks: Sequence[Task], run_id: str, to_json: Any,
                        max_attempts: int, heartbeat_timeout_s: float) -> list[rollouts_pb2.RolloutSpec]:
    """One group per task, rollouts pinned to the teacher (ids are deterministic, so a resumed loop
    finds the ones already done)."""
    specs = []
    for j, task in enumerate(tasks):
        for g in range(config.samples):
            specs.append(rollouts_pb2.RolloutSpec(
                rollout_id=f"{run_id}-warmup-t{j:04d}-g{g:02d}", group_id=f"{run_id}-warmup-t{j:04d}",
                task_id=task.task_id, input_json=to_json(task.input), mode="train", max_attempts=max_attempts,
                heartbeat_timeout_s=heartbeat_timeout_s,
                metadata={"run_id": run_id, "phase": WARMUP_PHASE, **pinning_metadata(config.teacher)}))
    return specs


def demonstration_config(rl: LightningRLConfig) -> LightningRLConfig:
    """The run's agent selection and tokenizer, with plain rewards: no AIR, no group normalisation."""
    return replace(rl, credit="episode", normalizer="none", air=AirConfig(enabled=False))


def keep_demonstrations(traces: Iterable[RolloutTrace], transitions: Iterable[Transition],
                        min_reward: float) -> tuple[list[Transition], list[float]]:
    """(transitions of the rollouts whose final reward is above ``min_reward``, each advantage 1;
    every rollout's final reward)."""
    rewards = {t.rollout_id: t.final_reward for t in traces}
    kept = []
    for t in transitions:
        reward = rewards.get(t.rollout_id)
        if reward is not None and reward > min_reward:
            t.advantage = 1.0
            t.response_logprobs = None  # the teacher's logprobs are not the policy's: ratio 1
            kept.append(t)
    return kept, [r for r in rewards.values() if r is not None]


def clone(updater: Any, demonstrations: list[Transition], epochs: int, batch_size: int) -> list[float]:
    """Fine-tune on the demonstrations, one update per epoch (``batch_size`` samples per optimizer step);
    returns each epoch's negative log-likelihood per token (each mini-batch scored just before its step)."""
    rl_config = updater.config
    updater.config = rl_config.with_(mini_batch_size=batch_size, epochs=1)
    try:
        losses = []
        for _ in range(epochs):
            result = updater.update(demonstrations)
            losses.append(result.nll if result.nll is not None else float("nan"))
        return losses
    finally:
        updater.config = rl_config

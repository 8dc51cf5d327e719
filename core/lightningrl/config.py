"""Settings for turning traces into transitions: which calls, how credit flows, what AIR adds.

Everything has a default that reproduces the paper (episode credit, GRPO group normalisation) with
Automatic Intermediate Rewards on; every knob is a plain field so a trainer config can embed it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Optional

CreditMode = Literal["episode", "discounted", "per_step"]
Normalizer = Literal["grpo", "mean", "loo", "none"]

CREDIT_MODES: tuple[str, ...] = ("episode", "discounted", "per_step")
NORMALIZERS: tuple[str, ...] = ("grpo", "mean", "loo", "none")


@dataclass(frozen=True)
class AirWeights:
    """What each automatic signal adds to the reward of the LLM call it belongs to.

    Defaults (documented, chosen so that one clear mistake outweighs one success):

    ======================  ======  ===================================================
    signal                  weight  fires when
    ======================  ======  ===================================================
    tool_ok                 +0.10   a tool the call requested ran and returned OK
    tool_error              -0.10   the tool ran and failed
    tool_invalid_arguments  -0.20   the tool rejected its arguments (and our own check
                                    below did not already penalise them)
    tool_timeout            -0.05   the tool timed out (often not the model's fault)
    tool_not_found          -0.20   the model called a tool that does not exist
    args_valid              +0.05   the arguments parse as JSON and match the schema
    args_invalid_json       -0.20   the arguments are not a JSON object
    args_schema_mismatch    -0.10   JSON, but not what the tool's schema asks for
    json_output_valid       +0.05   the call asked for JSON output and got valid JSON
    json_output_invalid     -0.20   the call asked for JSON output and got something else
    ======================  ======  ===================================================
    """

    tool_ok: float = 0.10
    tool_error: float = -0.10
    tool_invalid_arguments: float = -0.20
    tool_timeout: float = -0.05
    tool_not_found: float = -0.20
    args_valid: float = 0.05
    args_invalid_json: float = -0.20
    args_schema_mismatch: float = -0.10
    json_output_valid: float = 0.05
    json_output_invalid: float = -0.20

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class AirConfig:
    """Automatic Intermediate Rewards. ``enabled=False`` removes every AIR contribution."""

    enabled: bool = True
    weights: AirWeights = field(default_factory=AirWeights)
    # Bound the total AIR of one LLM call to [-clip, +clip] (None: no bound), so a call that fans out
    # into many parallel tool calls cannot dominate the task reward.
    clip: Optional[float] = None


@dataclass(frozen=True)
class LightningRLConfig:
    """How stored spans become transitions.

    agents:            regex matched (``re.fullmatch``) against each LLM span's agent name; ``None``
                       trains every agent. Example: ``"writer|rewriter"`` trains those two, not
                       ``checker``. LLM spans with no agent name inherit their nearest ancestor's.
    credit:            ``episode`` (the paper: the final reward to every call, plus the call's own
                       AIR), ``discounted`` (return from each call to the end, final reward at the
                       last call), ``per_step`` (rewards emitted during the run attach to the call
                       before them, the final reward to the last call, then discounted returns).
    gamma:             discount for ``discounted`` and ``per_step``.
    normalizer:        advantages within a group of rollouts of the same task: ``grpo``
                       ((r - mean) / std), ``mean`` (r - mean, no std division), ``loo``
                       (r - mean of the *other* rollouts; 0 for a rollout alone in its group),
                       ``none`` (advantage = reward). Std is the population std.
                       Statistics are over rollouts (each rollout's mean outcome return),
                       never over transitions, so many-call rollouts do not weigh more. AIR is
                       a process reward kept apart: centred on the group's calls whose AIR fired,
                       never divided by the outcome's std (see ``credit.py``).
    std_eps:           a group whose std is at most this is only mean-centred, not divided.
    ungrouped:         rollouts with neither group id nor task id: ``batch`` normalises them
                       together as one group, ``self`` makes each its own group.
    attempts:          ``last``: only the final attempt of a retried rollout counts; ``all``: each
                       attempt is its own episode (earlier attempts need their own reward spans).
    include_failed:    keep rollouts whose status is failed / timed out / cancelled.
    reward_name:       train on this reward dimension (by name) instead of the primary one.
    final_reward_name: REWARD spans with this name are the episode's final reward.
    tokenizer:         used when a span has no token ids: anything with ``apply_chat_template``
                       (a Hugging Face tokenizer) or a callable, see ``transitions.Retokenizer``.
    include_messages:  keep each call's request/response messages on the transition.
    """

    agents: Optional[str] = None
    credit: CreditMode = "episode"
    gamma: float = 1.0
    normalizer: Normalizer = "grpo"
    std_eps: float = 1e-6
    ungrouped: Literal["batch", "self"] = "batch"
    attempts: Literal["last", "all"] = "last"
    include_failed: bool = False
    reward_name: Optional[str] = None
    final_reward_name: str = "final"
    air: AirConfig = field(default_factory=AirConfig)
    tokenizer: Any = None
    include_messages: bool = False

    def __post_init__(self) -> None:
        if self.credit not in CREDIT_MODES:
            raise ValueError(f"credit must be one of {CREDIT_MODES}, not {self.credit!r}")
        if self.normalizer not in NORMALIZERS:
            raise ValueError(f"normalizer must be one of {NORMALIZERS}, not {self.normalizer!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], not {self.gamma!r}")
        if self.attempts not in ("last", "all"):
            raise ValueError(f"attempts must be 'last' or 'all', not {self.attempts!r}")
        if self.ungrouped not in ("batch", "self"):
            raise ValueError(f"ungrouped must be 'batch' or 'self', not {self.ungrouped!r}")
        if self.agents is not None:
            try:
                re.compile(self.agents)
            except re.error as exc:
                raise ValueError(f"agents is not a valid regular expression: {exc}") from exc

    def with_(self, **changes: Any) -> "LightningRLConfig":
        """A copy with some fields changed (``config.with_(credit="discounted")``)."""
        return replace(self, **changes)

    def agent_matcher(self):
        """A function agent_name -> bool for the ``agents`` pattern."""
        if self.agents is None:
            return lambda name: True
        pattern = re.compile(self.agents)
        cache: dict[str, bool] = {}

        def match(name: str) -> bool:
            hit = cache.get(name)
            if hit is None:
                hit = cache[name] = pattern.fullmatch(name) is not None
            return hit

        return match

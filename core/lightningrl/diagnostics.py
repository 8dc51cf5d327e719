"""Say in words why a rollout yielded no (or fewer) transitions.

The usual causes, each with its fix: the agent pattern matched no LLM call; calls carry no token
ids and no tokenizer was given; the rollout has no reward; the rollout failed or is still running.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from agentlightning.core.lightningrl.config import LightningRLConfig
from agentlightning.core.lightningrl.types import RolloutReport, TransitionBatch

if TYPE_CHECKING:
    from agentlightning.v1 import spans_pb2


def no_reward_reason(rewards: Sequence[tuple[int, "spans_pb2.Span"]], config: LightningRLConfig,
                     is_final: bool) -> str:
    if not rewards:
        what = "no REWARD span and no final reward on completion"
        return f"no reward: {what}" if is_final else f"no reward for this earlier attempt: {what}"
    names = sorted({s.reward.name for _, s in rewards})
    if config.reward_name is not None:
        return f"no reward: no REWARD span named {config.reward_name!r} (found: {', '.join(names)})"
    return (f"no reward: REWARD spans found ({', '.join(names)}) but none is primary; "
            f"emit one with primary=True or set reward_name")


def no_transition_reasons(report: RolloutReport, config: LightningRLConfig, no_tokens: int, failed: int,
                          retok_failed: int) -> list[str]:
    if report.llm_spans == 0:
        return [f"no LLM spans in the trace ({report.spans} spans of other kinds)"]
    if report.selected == 0:
        seen = ", ".join(repr(a) for a in report.agents_seen)
        return [f"no LLM span matched the agent pattern {config.agents!r} (agents seen: {seen})"]
    reasons = []
    if no_tokens:
        reasons.append(f"{no_tokens} LLM call(s) have no token ids and no tokenizer was given "
                       f"(record token ids from the model server, or pass a tokenizer)")
    if failed:
        reasons.append(f"{failed} LLM call(s) failed before producing a response")
    if retok_failed:
        reasons.append(f"{retok_failed} LLM call(s) could not be retokenized")
    return reasons


def explain(report: RolloutReport) -> str:
    """One paragraph about one rollout (attempt)."""
    head = f"rollout {report.rollout_id}"
    if report.attempt_id:
        head += f" attempt {report.attempt_id}"
    if report.status:
        head += f" ({report.status})"
    facts = [f"{report.spans} spans", f"{report.llm_spans} LLM calls", f"{report.selected} of the trained agents"]
    if report.attempts > 1:
        facts.append(f"{report.attempts} attempts")
    if report.orphans:
        facts.append(f"{report.orphans} orphan span(s) whose parent was not stored")
    if report.final_reward is not None:
        facts.append(f"final reward {report.final_reward:g} from {report.final_source}")
    lines = [f"{head}: {', '.join(facts)} -> {report.transitions} transition(s)"]
    for reason in report.reasons:
        lines.append(f"  no transitions: {reason}")
    for note in report.skipped:
        lines.append(f"  skipped: {note}")
    return "\n".join(lines)


def summary(batch: TransitionBatch) -> str:
    """A line for the whole batch plus one paragraph per rollout that yielded nothing."""
    empty = batch.empty_reports()
    lines = [f"{len(batch)} transitions from {len(batch.reports) - len(empty)} of {len(batch.reports)} "
             f"rollout attempts"]
    lines.extend(explain(r) for r in empty)
    return "\n".join(lines)

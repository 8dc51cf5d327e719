"""Evaluation and reporting for ``agentlightning demo``: held-out rollouts, the before/after table, the PNG.

Evaluation runs through the same machinery as training — rollouts enqueued on the Lightning server,
run by the loop's runner processes against the served policy, traced by the framework integration —
so "before" and "after" measure exactly the agent that was trained. Tool errors are read from the
stored TOOL spans (outcome other than OK), not from the agent.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from agentlightning.core import rollout_states as states
from agentlightning.v1 import rollouts_pb2, spans_pb2

_TOOL = spans_pb2.SPAN_KIND_TOOL
_LLM = spans_pb2.SPAN_KIND_LLM
_NOT_ERRORS = (spans_pb2.TOOL_OUTCOME_UNSPECIFIED, spans_pb2.TOOL_OUTCOME_OK)


@dataclass
class EvalResult:
    label: str
    policy_version: str
    tasks: int
    reward_mean: float          # failed rollouts count as 0
    success_rate: float         # final reward above the example's threshold
    tool_use_rate: float        # rollouts that ran at least one tool
    tool_error_rate: Optional[float]  # tool runs whose outcome was not OK (None: no tool ran)
    tool_calls: int
    llm_calls: int
    failed_rollouts: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(loop: Any, tasks: Sequence[dict[str, Any]], label: str, threshold: float,
             extra_input: Optional[dict[str, Any]] = None, poll_s: float = 0.5,
             progress: bool = True) -> EvalResult:
    """Run every task once with the loop's current policy and summarise the stored rollouts."""
    from agentlightning.core.lightningrl import load_from_client

    client, state = loop.client, loop.state
    started = time.monotonic()
    specs = []
    for j, task in enumerate(tasks):
        rid = f"{state.run_id}-eval-{label}-{j:05d}"
        specs.append(rollouts_pb2.RolloutSpec(
            rollout_id=rid, group_id=rid, task_id=str(task.get("task_id", j)),
            input_json=json.dumps({**task, **(extra_input or {})}), mode="train",
            max_attempts=loop.config.max_attempts, heartbeat_timeout_s=loop.config.rollout_timeout_s,
            metadata={"run_id": state.run_id, "eval": label, "policy_version": state.version}))
    ids = [s.rollout_id for s in specs]
    for start in range(0, len(specs), 500):
        client.enqueue_specs(specs[start:start + 500])
    pending, last_print = set(ids), 0.0
    while pending:
        for rid in list(pending):
            if client.get_rollout(rid).status in states.TERMINAL:
                pending.discard(rid)
        now = time.monotonic()
        if progress and (now - last_print > 10 or not pending):
            print(f"  eval {label}: {len(ids) - len(pending)}/{len(ids)} rollouts ({now - started:.0f}s)",
                  flush=True)
            last_print = now
        if pending:
            loop.workers.ensure()
            time.sleep(poll_s)
    traces = load_from_client(client, rollout_ids=ids)
    return summarise(traces, label, state.version, threshold, time.monotonic() - started)


def summarise(traces: Sequence[Any], label: str, version: str, threshold: float, seconds: float) -> EvalResult:
    n = len(traces)
    rewards = [t.final_reward if t.final_reward is not None else 0.0 for t in traces]
    tool_spans = [s for t in traces for s in t.spans if s.kind == _TOOL]
    tool_errors = sum(1 for s in tool_spans if s.tool.outcome not in _NOT_ERRORS)
    used = sum(1 for t in traces if any(s.kind == _TOOL for s in t.spans))
    return EvalResult(
        label=label, policy_version=version, tasks=n, reward_mean=sum(rewards) / n if n else 0.0,
        success_rate=sum(1 for r in rewards if r > threshold) / n if n else 0.0,
        tool_use_rate=used / n if n else 0.0,
        tool_error_rate=tool_errors / len(tool_spans) if tool_spans else None, tool_calls=len(tool_spans),
        llm_calls=sum(1 for t in traces for s in t.spans if s.kind == _LLM),
        failed_rollouts=sum(1 for t in traces if t.status != states.SUCCEEDED), seconds=round(seconds, 1))


def table(before: EvalResult, after: Optional[EvalResult], warmed: Optional[EvalResult] = None) -> str:
    """A plain-text table: before, after the warm-up (when there was one), after RL, and what RL changed
    (after minus its starting point: the warmed-up policy when there is one)."""
    rows = [("reward (mean)", "reward_mean"), ("success rate", "success_rate"),
            ("tool-use rate", "tool_use_rate"), ("tool-error rate", "tool_error_rate")]
    columns = [("before", before)] + ([("warmed-up", warmed)] if warmed is not None else [])
    columns += [("after", after)] if after is not None else []
    start = warmed if warmed is not None else before
    header = f"{'held-out tasks: ' + str(before.tasks):<24}"
    header += "".join(f"{name + ' (' + r.policy_version + ')':>20}" for name, r in columns)
    if after is not None:
        header += f"{'RL change':>11}"
    lines = [header, "-" * len(header)]
    for title, key in rows:
        line = f"{title:<24}" + "".join(f"{_fmt(getattr(r, key)):>20}" for _, r in columns)
        if after is not None:
            a, b = getattr(after, key), getattr(start, key)
            line += f"{_fmt(None if a is None or b is None else a - b, sign=True):>11}"
        lines.append(line)
    return "\n".join(lines)


def _fmt(value: Optional[float], sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def plot(rows: Sequence[dict[str, Any]], before: Optional[EvalResult], after: Optional[EvalResult],
         path: Path, title: str, warmed: Optional[EvalResult] = None) -> Optional[Path]:
    """Training reward/success per step, with the held-out evaluations as points at both ends."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps = [r["step"] + 1 for r in rows]
    ax.plot(steps, [_num(r.get("reward_mean")) for r in rows], marker="o", label="train reward (mean)")
    ax.plot(steps, [_num(r.get("success_rate")) for r in rows], marker=".", label="train success rate")
    last = (steps[-1] if steps else 0)
    for result, x, marker in ((before, 0, "s"), (warmed, 0, "^"), (after, last, "D")):
        if result is not None:
            ax.scatter([x], [result.reward_mean], marker=marker, color="black", zorder=3,
                       label=f"held-out reward ({result.label})")
            ax.scatter([x], [result.success_rate], marker=marker, color="tab:red", zorder=3,
                       label=f"held-out success ({result.label})")
    ax.set_xlabel("training step (policy version)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def compare_plot(runs: dict[str, Sequence[dict[str, Any]]], path: Path, title: str) -> Optional[Path]:
    """Training reward curves of several runs (e.g. AIR on vs off) on one chart."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, rows in runs.items():
        ax.plot([r["step"] + 1 for r in rows], [_num(r.get("reward_mean")) for r in rows], marker="o",
                label=f"{name}: reward")
        ax.plot([r["step"] + 1 for r in rows], [_num(r.get("success_rate")) for r in rows], linestyle="--",
                label=f"{name}: success")
    ax.set_xlabel("training step")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)

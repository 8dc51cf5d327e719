"""Per-step training metrics: computed from the step's rollouts and transitions, written three ways.

* ``metrics.jsonl`` in the run directory: one JSON object per step (rewritten, not appended, so a
  step redone after a crash never appears twice);
* the Lightning store: resource ``<run_id>/metrics/step-NNNNN`` (and ``<run_id>/metrics/latest``)
  whose metadata holds the same numbers as strings — readable with ``LightningClient.get_model``
  by anyone watching the run through the server;
* ``reward_curve.png``: reward mean and success rate per step (matplotlib, Agg backend).
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from agentlightning.core import rollout_states as states
from agentlightning.v1 import spans_pb2

logger = logging.getLogger("agentlightning.trainer.metrics")
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "reward_curve.png"
_LLM = spans_pb2.SPAN_KIND_LLM


def rollout_metrics(traces: Sequence[Any], success_threshold: float) -> dict[str, Any]:
    """Reward mean, success rate and generated tokens over a step's rollouts (``RolloutTrace``s)."""
    rewards = [t.final_reward for t in traces if t.final_reward is not None]
    succeeded = sum(1 for t in traces if t.status == states.SUCCEEDED)
    successes = sum(1 for t in traces if t.final_reward is not None and t.final_reward > success_threshold)
    completion_tokens = prompt_tokens = llm_calls = 0
    versions: dict[str, int] = defaultdict(int)
    for t in traces:
        for span in t.spans:
            if span.kind != _LLM:
                continue
            llm_calls += 1
            llm = span.llm
            completion_tokens += len(llm.completion_token_ids) or llm.usage.output_tokens
            prompt_tokens += len(llm.prompt_token_ids) or llm.usage.input_tokens
            versions[llm.policy_version or "?"] += 1
    n = len(traces)
    return {
        "rollouts": n, "rollouts_succeeded": succeeded, "rollouts_failed": n - succeeded,
        "reward_mean": sum(rewards) / len(rewards) if rewards else None,
        "reward_std": _std(rewards), "success_rate": successes / n if n else None,
        "llm_calls": llm_calls, "completion_tokens": completion_tokens, "prompt_tokens": prompt_tokens,
        "rollout_policy_versions": dict(versions),
    }


def air_breakdown(transitions: Iterable[Any]) -> dict[str, Any]:
    """AIR per signal: mean contribution per transition and how often the signal fired."""
    total: dict[str, float] = defaultdict(float)
    fired: dict[str, int] = defaultdict(int)
    n = 0
    air_total = 0.0
    for t in transitions:
        n += 1
        air_total += t.breakdown.air_total
        for name, value in t.breakdown.air.items():
            total[name] += value
        for signal in t.breakdown.air_signals:
            fired[signal.name] += 1
    return {
        "transitions": n, "air_mean": air_total / n if n else 0.0,
        "air": {name: total[name] / n for name in sorted(total)} if n else {},
        "air_fired": dict(sorted(fired.items())),
    }


def _std(values: Sequence[float]) -> Optional[float]:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


class MetricsLog:
    """The run's metrics file (one line per step) and reward curve."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / METRICS_FILE
        self.curve = run_dir / CURVE_FILE
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    try:
                        self.rows.append(json.loads(line))
                    except ValueError:
                        logger.warning("skipping a corrupt line in %s", self.path)

    def record(self, row: dict[str, Any]) -> None:
        """Add (or replace) the row of ``row['step']`` and rewrite the file atomically."""
        self.rows = [r for r in self.rows if r.get("step") != row["step"]] + [row]
        self.rows.sort(key=lambda r: r.get("step", 0))
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            for r in self.rows:
                f.write(json.dumps(r, sort_keys=True, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def plot(self) -> Optional[Path]:
        """Write the reward curve PNG; None when matplotlib is not installed."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        steps = [r["step"] for r in self.rows]
        reward = [r.get("reward_mean") for r in self.rows]
        success = [r.get("success_rate") for r in self.rows]
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.plot(steps, [math.nan if v is None else v for v in reward], marker="o", label="reward mean")
        ax.plot(steps, [math.nan if v is None else v for v in success], marker=".", label="success rate")
        ax.set_xlabel("step")
        ax.set_title("Agent Lightning training")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        tmp = self.curve.with_name(f".{self.curve.stem}.tmp-{os.getpid()}.png")
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, self.curve)
        return self.curve


def publish_metrics(client: Any, run_id: str, row: dict[str, Any], endpoint: str, model: str) -> None:
    """Store the step's metrics on the server as resources (metadata values are strings)."""
    metadata = {key: json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
                for key, value in _flatten(row).items()}
    version = str(row.get("policy_version") or "?")
    for name in (f"{run_id}/metrics/step-{int(row['step']):05d}", f"{run_id}/metrics/latest"):
        client.publish_model(endpoint=endpoint, model=model, version=version, name=name, metadata=metadata)


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key in ("update", "air"):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out

"""The loop's progress display: a tqdm bar over steps when tqdm is installed, plain lines otherwise."""
from __future__ import annotations

import sys
from typing import Any, Optional, Union


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary(row: dict[str, Any]) -> str:
    return (f"step {row['step']} [{row['policy_version']}->{row['new_version']}] "
            f"reward {_fmt(row.get('reward_mean'))} success {_fmt(row.get('success_rate'), 2)} "
            f"air {_fmt(row.get('air_mean'))} tok/s {_fmt(row.get('tokens_per_s'), 1)} "
            f"rollouts {row.get('rollouts')} ({row.get('rollouts_failed')} failed) "
            f"update {_fmt(row.get('update_seconds'), 1)}s")


class Progress:
    def __init__(self, total_steps: int, start: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Optional[Any] = None
        self._last = ""
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total_steps, initial=start, desc="training", unit="step", dynamic_ncols=True,
                         file=sys.stderr)

    def rollouts(self, step: Union[int, str], done: int, total: int, version: str) -> None:
        label = f"step {step}" if isinstance(step, int) else step
        text = f"{label} ({version}) rollouts {done}/{total}"
        if self._bar is not None and text != self._last:
            self._last = text
            self._bar.set_description(text, refresh=True)

    def step_done(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            print(summary(row), file=sys.stderr, flush=True)
            return
        self._bar.set_description("training")
        self._bar.set_postfix(reward=_fmt(row.get("reward_mean")), success=_fmt(row.get("success_rate"), 2),
                              version=row["new_version"], refresh=False)
        self._bar.update(1)
        self._bar.write(summary(row), file=sys.stderr)

    def note(self, text: str) -> None:
        """One line of its own (under the bar when there is one)."""
        if not self.enabled:
            return
        if self._bar is None:
            print(text, file=sys.stderr, flush=True)
        else:
            self._bar.write(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

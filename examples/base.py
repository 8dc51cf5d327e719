"""What every example agent provides, so ``agentlightning demo NAME`` can drive any of them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence


@dataclass(frozen=True)
class Example:
    """One of the paper's agents, packaged for the demo and for ``agentlightning train``.

    name:          ``calc`` | ``sql`` | ``rag``.
    agent:         ``"module:function"``: ``agent(task) -> reward`` or ``agent(task, model) -> reward``;
                   runs the real framework agent (instrumented in one line) and scores its answer.
    train_agents:  regex of agent names whose LLM calls are trained (e.g. ``"writer|rewriter"``).
    generate:      ``generate(out_dir, n_train, n_test, seed) -> dict[str, Path]``: writes a small dataset in
                   the official format under ``out_dir`` and returns the files (at least "train", "test").
    load:          ``load(path) -> list[dict]``: reads the official format (a file or directory, as the format
                   is laid out) into task inputs, one JSON-serialisable dict per task.
    reward:        ``reward(prediction, task) -> float`` in [0, 1]: the final reward the agent returns.
    success_threshold: a rollout counts as a success when its final reward is above this.
    defaults:      demo defaults that finish in ~15 minutes on 2 CPU cores (steps, group_size, tasks_per_step,
                   n_train, n_test, max_new_tokens, learning rate, warmup, warmup_tasks, warmup_epochs, ...),
                   overridable by flags.
    teacher:       ``teacher(train_tasks) -> script`` for ``agentlightning.testing.scripted_llm.ScriptedLLMServer``:
                   a scripted teacher that plays the tasks' worked solutions through the agent, for the
                   warm-up before RL (:mod:`agentlightning.trainer.warmup`); None: the example has none.
    """

    name: str
    agent: str
    train_agents: str
    generate: Callable[[Path, int, int, int], dict[str, Path]]
    load: Callable[[Path], list[dict[str, Any]]]
    reward: Callable[[Any, dict[str, Any]], float]
    description: str = ""
    success_threshold: float = 0.5
    defaults: dict[str, Any] = field(default_factory=dict)
    teacher: Optional[Callable[[Sequence[dict[str, Any]]], Callable[[dict, str], Any]]] = None

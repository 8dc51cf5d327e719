"""Text-to-SQL with LangGraph over SQLite (Spider): writer -> execute -> checker -> rewriter, bounded.

    from agentlightning.examples.sql import EXAMPLE
    files = EXAMPLE.generate(Path("data/sql"), 64, 20, 0)      # Spider layout, offline
    tasks = EXAMPLE.load(files["train"])                       # or a real Spider dev.json / directory
    agentlightning train --agent agentlightning.examples.sql.agent:solve ...

Only the writer and the rewriter are trained (``train_agents="writer|rewriter"``); the checker's calls
are recorded but never become transitions. Reward: execution match with the gold query
(:mod:`agentlightning.examples.sql.execution` documents the comparison).
Optional task keys: ``max_turns`` (rewrites, default 1) and ``temperature`` (default 1.0).
The demo warms up first on :mod:`.teacher`, which plays each training task's gold query through the graph.
"""
from __future__ import annotations

from typing import Any

from agentlightning.examples.base import Example
from agentlightning.examples.sql.execution import execution_match
from agentlightning.examples.sql.generate import generate
from agentlightning.examples.sql.spider import load_spider
from agentlightning.examples.sql.teacher import teacher_script


def reward(prediction: Any, task: dict[str, Any]) -> float:
    """Execution match of the predicted SQL against the task's gold ``query`` on its database."""
    return execution_match(prediction if isinstance(prediction, str) else "", task["query"], task["db_path"])


EXAMPLE = Example(
    name="sql",
    agent="agentlightning.examples.sql.agent:solve",
    train_agents="writer|rewriter",
    generate=generate,
    load=load_spider,
    reward=reward,
    description="Text-to-SQL (Spider layout) with a LangGraph writer/checker/rewriter loop over SQLite",
    success_threshold=0.5,
    # SmolLM2-135M on 2 CPU cores: one rewrite at most (<= 3 model calls a rollout, prompts ~250
    # tokens with the schema and few-shot turns), SQL cut at ';' (<= 48 new tokens; the generated
    # gold queries are shorter), 16 rollouts a step.
    defaults={"steps": 8, "group_size": 4, "tasks_per_step": 4, "n_train": 64, "n_test": 16, "workers": 4,
              "max_turns": 1, "max_new_tokens": 48, "temperature": 1.0, "learning_rate": 2e-5,
              "warmup": True, "warmup_tasks": 32, "warmup_epochs": 2},
    teacher=teacher_script,
)

__all__ = ["EXAMPLE", "execution_match", "generate", "load_spider", "reward"]

"""Task inputs for training: read a JSONL file and choose each step's tasks deterministically.

Determinism matters for resuming: the restarted loop must pick exactly the tasks the crashed one
picked for the same step, so the rollout ids (and the finished rollouts behind them) line up.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union


@dataclass(frozen=True)
class Task:
    index: int      # position in the data
    task_id: str
    input: Any      # what the agent function receives


def load_tasks(data: Union[str, Path, Sequence[Any]]) -> list[Task]:
    """Tasks from a JSONL path (one JSON value per line, blank lines skipped) or a list of inputs."""
    if isinstance(data, (str, Path)):
        values = []
        with open(data, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    values.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{data}:{number}: not JSON: {exc}") from exc
    else:
        values = list(data)
    if not values:
        raise ValueError("no tasks in the training data")
    tasks = []
    for i, value in enumerate(values):
        task_id = value.get("task_id") if isinstance(value, dict) else None
        tasks.append(Task(i, str(task_id) if task_id is not None else f"task-{i}", value))
    return tasks


def tasks_for_step(tasks: Sequence[Task], step: int, per_step: Optional[int], seed: int) -> list[Task]:
    """The tasks of ``step``: consecutive slices of a seeded permutation, a new one per pass."""
    n = len(tasks)
    per_step = n if per_step is None else per_step
    out: list[Task] = []
    position = step * per_step
    while len(out) < per_step:
        epoch, offset = divmod(position, n)
        order = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        take = min(per_step - len(out), n - offset)
        out.extend(tasks[i] for i in order[offset:offset + take])
        position += take
    return out

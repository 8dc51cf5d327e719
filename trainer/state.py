"""The loop's durable progress: which step it is on, which version is live, where its checkpoint is.

Written atomically (temp file, fsync, rename) after every phase change, so a loop killed at any
moment restarts from the last finished step with the same run id — and therefore the same
deterministic rollout ids, which the server's idempotent enqueue maps onto the rollouts already
there: finished ones are reused, never redone.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

STATE_FILE = "state.json"


@dataclass
class RunState:
    run_id: str
    step: int = 0                 # the step being worked on (= steps finished so far)
    phase: str = "rollouts"       # "rollouts" -> "update" -> next step's "rollouts"; "done" at the end
    version: str = "v0"           # the policy version the model server serves
    checkpoint: str = ""          # that version's checkpoint directory ("" = the base model)
    incarnations: int = 0         # how many times the loop has (re)started on this run
    warmed_up: bool = False       # the warm-up (behaviour cloning before step 0) is done
    settings: dict[str, Any] = field(default_factory=dict)  # what must not change on resume

    @classmethod
    def new(cls, run_id: Optional[str] = None, settings: Optional[dict[str, Any]] = None) -> "RunState":
        return cls(run_id=run_id or f"run-{secrets.token_hex(4)}", settings=dict(settings or {}))

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / STATE_FILE
        tmp = path.with_name(f".{STATE_FILE}.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, run_dir: Path) -> Optional["RunState"]:
        try:
            data = json.loads((run_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def rollout_id(run_id: str, step: int, task_index: int, sample: int) -> str:
    return f"{run_id}-s{step:05d}-t{task_index:04d}-g{sample:02d}"


def group_id(run_id: str, step: int, task_index: int) -> str:
    return f"{run_id}-s{step:05d}-t{task_index:04d}"

"""Settings of a training run (``agentlightning train`` and ``TrainingLoop``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from agentlightning.core.lightningrl.config import LightningRLConfig
from agentlightning.trainer.update_config import UpdateConfig
from agentlightning.trainer.warmup import WarmupConfig


@dataclass
class TrainConfig:
    """One training run.

    agent:            the user's agent function, ``"module:function"`` (or the function itself, if it
                      is importable by that name): ``agent(task) -> reward`` or
                      ``agent(task, model) -> reward`` (see :mod:`agentlightning.trainer.endpoint`).
    data:             a JSONL file with one task input per line, or the inputs as a list. A line that
                      is an object with ``"task_id"`` names its task; otherwise the line number does.
    model:            registry name (``smollm2-135m-instruct``, ``tiny-random``), local path or HF id.
    steps:            training steps (each: rollouts, transitions, one policy update, a new version).
    group_size:       rollouts per task per step (one GRPO group).
    tasks_per_step:   tasks per step (None: all of them); tasks are taken in a seeded order,
                      reshuffled on every pass over the data.
    workers:          runner processes running the agent concurrently.
    run_dir:          checkpoints, state, metrics, reward curve, worker logs and (embedded) database.
    server:           address of a running Lightning server; None starts one in this process over
                      ``run_dir/lightning.db`` (port ``server_port``, 0 = any free port).
    model_server:     base URL of a running OpenAI-compatible model server that accepts
                      ``POST /v1/load_version``; None serves the policy in this process (CPU server).
    served_model_name: the ``model`` the agents send.
    max_attempts:     attempts per rollout before it counts as failed.
    rollout_timeout_s: heartbeat timeout of an attempt (a dead runner's rollout is retried after it).
    success_threshold: a rollout succeeds when its final reward is above this.
    keep_checkpoints: checkpoints kept on disk (older ones are deleted; the live one never).
    warmup:           behaviour cloning on a teacher's demonstrations before the first step
                      (:class:`agentlightning.trainer.warmup.WarmupConfig`); None = start RL at once.
    """

    agent: Union[str, Callable[..., Any]]
    data: Union[str, Path, Sequence[Any]]
    model: str = "smollm2-135m-instruct"
    steps: int = 1
    group_size: int = 4
    tasks_per_step: Optional[int] = None
    workers: int = 2
    run_dir: Union[str, Path] = "agentlightning-run"
    run_id: Optional[str] = None
    server: Optional[str] = None
    server_port: int = 0
    token: Optional[str] = None
    model_server: Optional[str] = None
    model_port: int = 0
    served_model_name: str = "policy"
    max_batch: int = 16
    max_attempts: int = 3
    rollout_timeout_s: float = 60.0
    success_threshold: float = 0.0
    keep_checkpoints: int = 3
    seed: int = 0
    progress: bool = True
    update: UpdateConfig = field(default_factory=UpdateConfig)
    lightningrl: LightningRLConfig = field(default_factory=LightningRLConfig)
    warmup: Optional[WarmupConfig] = None

    def __post_init__(self) -> None:
        if self.steps < 0 or self.group_size < 1 or self.workers < 1:
            raise ValueError("steps must be >= 0, group_size and workers >= 1")
        if self.tasks_per_step is not None and self.tasks_per_step < 1:
            raise ValueError("tasks_per_step must be at least 1")
        self.run_dir = Path(self.run_dir)

    @property
    def agent_spec(self) -> str:
        if isinstance(self.agent, str):
            return self.agent
        module = getattr(self.agent, "__module__", None)
        name = getattr(self.agent, "__qualname__", None)
        if not module or not name or "<" in name or module == "__main__":
            raise ValueError("runners import the agent by name: pass 'module:function', or a function "
                             "defined at the top level of an importable module")
        return f"{module}:{name}"

    def resume_settings(self) -> dict[str, Any]:
        """What must match between a run and its resumption (else rollouts would not line up)."""
        settings = {"agent": self.agent_spec, "model": self.model, "group_size": self.group_size,
                    "tasks_per_step": self.tasks_per_step, "seed": self.seed, "lora": self.update.lora}
        if self.warmup is not None:  # only then: runs saved before warm-ups existed still resume
            settings["warmup"] = True
        return settings

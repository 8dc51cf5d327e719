"""The closed training loop: rollouts -> spans -> transitions -> TRL update -> new served version.

    from agentlightning.trainer import TrainConfig, TrainingLoop
    rows = TrainingLoop(TrainConfig(agent="my_agent:solve", data="tasks.jsonl", model="smollm2-135m-instruct",
                                    steps=20, group_size=4, workers=4)).run()

Each step: the step's tasks are enqueued (``group_size`` rollouts per task, one group id per task,
deterministic rollout ids); W runner processes run the user's agent against the served policy and
its spans reach the Lightning server; once every rollout is finished, LightningRL turns the traces
into transitions, :class:`PolicyUpdater` makes one TRL update, the new checkpoint is hot-loaded by
the model server and published on the ResourceService, and the step's metrics are recorded.

Resuming: ``run_dir/state.json`` says which step is in progress and which checkpoint is live.
A restarted loop loads that checkpoint, serves it again under the same version, re-enqueues the
step's rollouts (enqueue with known ids is idempotent: finished rollouts stay finished and are
used as they are), hands rollouts held by runners of the dead loop back to the queue, and goes on.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Union

from agentlightning.core import rollout_states as states
from agentlightning.core.client import LightningClient
from agentlightning.core.lightningrl import build_transitions, load_from_client
from agentlightning.trainer import metrics as metrics_mod
from agentlightning.trainer.checkpoints import prune
from agentlightning.trainer.endpoint import ModelEndpoint, model_env
from agentlightning.trainer.loop_config import TrainConfig
from agentlightning.trainer.progress import Progress
from agentlightning.trainer.state import RunState, group_id, rollout_id
from agentlightning.trainer.tasks import load_tasks, tasks_for_step
from agentlightning.trainer.workers import WorkerPool
from agentlightning.v1 import rollouts_pb2

logger = logging.getLogger("agentlightning.trainer.loop")
RESTART_ERROR = "runner lost: the training loop restarted"


class TrainingLoop:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.tasks = load_tasks(config.data)
        self.state: Optional[RunState] = None
        self.metrics = metrics_mod.MetricsLog(self.run_dir) if self.run_dir.exists() else None
        self.server = None          # embedded LightningServer, when we started it
        self.address = config.server or ""
        self.client: Optional[LightningClient] = None
        self.policy = None          # LocalPolicyServer | RemotePolicyServer
        self.updater = None         # PolicyUpdater, built while the first rollouts run
        self.workers: Optional[WorkerPool] = None
        self.progress: Optional[Progress] = None

    # -- lifecycle ----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Run (or resume) the configured steps; returns every step's metrics row."""
        try:
            self.open()
            assert self.state is not None
            self.warm_up()
            while self.state.step < self.config.steps:
                self.run_step(self.state.step)
            self.state.phase = "done"
            self.state.save(self.run_dir)
            return list(self.metrics.rows)
        finally:
            self.close()

    def open(self) -> None:
        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _quiet_libraries()
        self.metrics = metrics_mod.MetricsLog(self.run_dir)
        state = RunState.load(self.run_dir)
        settings = cfg.resume_settings()
        if state is None:
            state = RunState.new(cfg.run_id, settings)
        elif state.settings and state.settings != settings:
            changed = sorted(k for k in settings if state.settings.get(k) != settings[k])
            raise ValueError(f"{self.run_dir} holds run {state.run_id} with different settings ({changed}); "
                             "use another --run-dir to start a new run")
        state.incarnations += 1
        if state.phase == "done":
            state.phase = "rollouts"  # more steps were asked for than the finished run had
        state.save(self.run_dir)
        self.state = state
        self._start_lightning_server()
        self._start_policy_server()
        self.progress = Progress(cfg.steps, start=state.step, enabled=cfg.progress)
        self.workers = WorkerPool(
            cfg.workers, self.address, cfg.agent_spec, worker_prefix=self._worker_prefix,
            env={**model_env(self._endpoint()),
                 "AGENTLIGHTNING_SPOOL_DIR": os.environ.get("AGENTLIGHTNING_SPOOL_DIR") or str(self.run_dir / "spool")},
            log_dir=self.run_dir / "logs",
            heartbeat_interval_s=max(0.5, min(2.0, cfg.rollout_timeout_s / 4)))
        if state.step < cfg.steps:
            self.workers.start()

    def close(self) -> None:
        for closer in (self._stop_workers, self._stop_policy, self._stop_client, self._stop_server):
            try:
                closer()
            except Exception:  # close everything, whatever failed first
                logger.exception("error while shutting down")
        if self.progress is not None:
            self.progress.close()

    @property
    def _worker_prefix(self) -> str:
        assert self.state is not None
        return f"{self.state.run_id}-i{self.state.incarnations}"

    def _endpoint(self) -> ModelEndpoint:
        assert self.state is not None and self.policy is not None
        return ModelEndpoint(self.policy.base_url, self.config.served_model_name, self.state.version)

    def _start_lightning_server(self) -> None:
        if not self.address:
            from agentlightning.core.server import LightningServer, ServerConfig
            from agentlightning.core.store.sqlite import SqliteStore

            store = SqliteStore(self.run_dir / "lightning.db", default_max_attempts=self.config.max_attempts,
                                default_heartbeat_timeout_s=self.config.rollout_timeout_s)
            self.server = LightningServer(store, ServerConfig(port=self.config.server_port))
            self.server.start()
            self.address = self.server.address
        self.client = LightningClient(self.address, token=self.config.token)
        self.client.wait_ready(30.0)

    def _start_policy_server(self) -> None:
        from agentlightning.trainer.publish import LocalPolicyServer, RemotePolicyServer

        cfg, state = self.config, self.state
        assert state is not None and self.client is not None
        if cfg.model_server:
            self.policy = RemotePolicyServer(cfg.model_server, cfg.served_model_name)
        else:
            self.policy = LocalPolicyServer(cfg.model, cfg.served_model_name, port=cfg.model_port,
                                            version="v0", max_batch=cfg.max_batch,
                                            device=cfg.update.resolve_device()).start()
        if state.checkpoint:
            self.policy.load(state.checkpoint, state.version)
        self._publish(state.version, state.checkpoint)

    def _publish(self, version: str, checkpoint: str) -> None:
        assert self.client is not None and self.state is not None and self.policy is not None
        self.client.publish_model(endpoint=self.policy.base_url, model=self.config.served_model_name,
                                  version=version, metadata={"run_id": self.state.run_id, "checkpoint": checkpoint,
                                                             "step": str(self.state.step)})

    def _ensure_updater(self):
        if self.updater is None:
            from agentlightning.trainer.update import PolicyUpdater, resolve_model_path

            assert self.state is not None
            self.updater = PolicyUpdater(resolve_model_path(self.config.model), self.config.update,
                                         output_dir=self.run_dir / "trainer")
            if self.state.checkpoint:
                self.updater.load(self.state.checkpoint)
        return self.updater

    # -- warm-up ------------------------------------------------------------------------------
    def warm_up(self) -> Optional[dict[str, Any]]:
        """Behaviour cloning on the teacher's demonstrations (``config.warmup``), once, before step 0.

        The runners run the agent with each demonstration rollout pinned to the teacher; the kept
        calls train the policy (see :mod:`agentlightning.trainer.warmup`), which is then served and
        published as version ``warmup``. Returns the warm-up's summary (also written to ``warmup.json``)."""
        cfg, state = self.config, self.state
        assert state is not None and self.client is not None and self.policy is not None
        if cfg.warmup is None or state.warmed_up or state.step > 0:
            return None
        from agentlightning.trainer import warmup

        started = time.monotonic()
        wcfg = cfg.warmup
        count = min(wcfg.tasks or len(self.tasks), len(self.tasks))
        tasks = tasks_for_step(self.tasks, 0, count, cfg.seed + 7919)
        specs = warmup.demonstration_specs(wcfg, tasks, state.run_id, _json, cfg.max_attempts,
                                           cfg.rollout_timeout_s)
        for start in range(0, len(specs), 500):
            self.client.enqueue_specs(specs[start:start + 500])
        ids = [s.rollout_id for s in specs]
        updater = self._ensure_updater()
        self.wait_for_rollouts("warm-up", ids)
        traces = load_from_client(self.client, rollout_ids=ids)
        tokenizer = cfg.lightningrl.tokenizer or updater.tokenizer
        rl = warmup.demonstration_config(cfg.lightningrl.with_(tokenizer=tokenizer))
        kept, rewards = warmup.keep_demonstrations(traces, build_transitions(traces, rl).transitions,
                                                   wcfg.min_reward)
        if not kept:
            raise RuntimeError(f"warm-up: none of {len(ids)} teacher rollouts scored above {wcfg.min_reward} "
                               f"(rewards {sorted(rewards)[:8]}...); check the teacher at {wcfg.teacher_url}")
        losses = warmup.clone(updater, kept, wcfg.epochs, wcfg.batch_size)
        info = updater.save(self.run_dir / "checkpoints" / warmup.WARMUP_PHASE, warmup.WARMUP_PHASE, step=0,
                            extra={"run_id": state.run_id})
        self.policy.load(info.path, warmup.WARMUP_PHASE)
        state.version, state.checkpoint, state.warmed_up = warmup.WARMUP_PHASE, info.path, True
        self._publish(state.version, info.path)
        state.save(self.run_dir)
        result = warmup.WarmupResult(rollouts=len(ids), kept_rollouts=len({t.rollout_id for t in kept}),
                                     demonstrations=len(kept), losses=losses,
                                     reward_mean=sum(rewards) / len(rewards) if rewards else 0.0,
                                     seconds=time.monotonic() - started)
        row = {"version": warmup.WARMUP_PHASE, "checkpoint": info.path, "time": time.time(), **result.to_dict()}
        (self.run_dir / warmup.SUMMARY_FILE).write_text(_json(row) + "\n")
        self.progress.note(f"warm-up: {result.demonstrations} demonstrations from {result.kept_rollouts}/"
                           f"{result.rollouts} teacher rollouts, loss {' -> '.join(f'{x:.3f}' for x in losses)}, "
                           f"{result.seconds:.0f}s")
        return row

    # -- one step -----------------------------------------------------------------------------
    def run_step(self, step: int) -> dict[str, Any]:
        cfg, state = self.config, self.state
        assert state is not None and self.client is not None and self.policy is not None
        started = time.monotonic()
        ids = self.enqueue_step(step)
        self._ensure_updater()
        self.wait_for_rollouts(step, ids)
        rollout_s = time.monotonic() - started
        if state.phase != "update":
            state.phase = "update"
            state.save(self.run_dir)

        traces = load_from_client(self.client, rollout_ids=ids)
        rl = cfg.lightningrl
        if rl.tokenizer is None:
            # Spans from frameworks that drop the server's token ids (langchain-openai does) are
            # retokenized with the policy's own tokenizer and chat template, and flagged so.
            rl = rl.with_(tokenizer=self.updater.tokenizer)
        batch = build_transitions(traces, rl)
        result = self.updater.update(batch.transitions)
        new_version = f"v{step + 1}"
        info = self.updater.save(self.run_dir / "checkpoints" / new_version, new_version, step=step + 1,
                                 extra={"run_id": state.run_id})
        self.policy.load(info.path, new_version)
        used_version = state.version
        state.step, state.phase, state.version, state.checkpoint = step + 1, "rollouts", new_version, info.path
        self._publish(new_version, info.path)

        row = {"step": step, "policy_version": used_version, "new_version": new_version, "time": time.time(),
               "rollout_seconds": round(rollout_s, 3), "update_seconds": round(result.seconds, 3),
               **metrics_mod.rollout_metrics(traces, cfg.success_threshold),
               **metrics_mod.air_breakdown(batch.transitions), "update": result.to_dict()}
        row["tokens_per_s"] = row["completion_tokens"] / rollout_s if rollout_s > 0 else None
        self.metrics.record(row)
        self.metrics.plot()
        try:
            metrics_mod.publish_metrics(self.client, state.run_id, row, self.policy.base_url,
                                        cfg.served_model_name)
        except Exception as exc:  # metrics in the store are a convenience; the file has them
            logger.warning("could not store step %d metrics on the server: %s", step, exc)
        state.save(self.run_dir)
        prune(self.run_dir / "checkpoints", cfg.keep_checkpoints, protect=(info.path,))
        self.progress.step_done(row)
        return row

    def enqueue_step(self, step: int) -> list[str]:
        """Enqueue the step's rollouts (idempotently) and return their ids in order."""
        cfg, state = self.config, self.state
        assert state is not None and self.client is not None
        specs = []
        for j, task in enumerate(tasks_for_step(self.tasks, step, cfg.tasks_per_step, cfg.seed)):
            for g in range(cfg.group_size):
                specs.append(rollouts_pb2.RolloutSpec(
                    rollout_id=rollout_id(state.run_id, step, j, g), group_id=group_id(state.run_id, step, j),
                    task_id=task.task_id, input_json=_json(task.input), mode="train",
                    max_attempts=cfg.max_attempts, heartbeat_timeout_s=cfg.rollout_timeout_s,
                    metadata={"run_id": state.run_id, "step": str(step), "policy_version": state.version}))
        ids = [s.rollout_id for s in specs]
        if state.phase == "update":
            return ids  # every rollout of this step finished before the restart
        for start in range(0, len(specs), 500):
            self.client.enqueue_specs(specs[start:start + 500])
        self._reclaim_stale_attempts(ids)
        return ids

    def _reclaim_stale_attempts(self, ids: list[str]) -> None:
        """Rollouts held by runners of an earlier incarnation go back to the queue now, not after
        their heartbeat timeout."""
        assert self.client is not None
        for rid in ids:
            rollout = self.client.get_rollout(rid)
            if rollout.status != states.RUNNING:
                continue
            for attempt in self.client.list_attempts(rid):
                if attempt.attempt_id == rollout.current_attempt_id and \
                        not attempt.worker_id.startswith(self._worker_prefix + "-"):
                    try:
                        self.client.complete(attempt.attempt_id, attempt.worker_id, success=False,
                                             error=RESTART_ERROR)
                    except Exception as exc:  # it may have finished or timed out meanwhile
                        logger.debug("could not release attempt %s: %s", attempt.attempt_id, exc)

    def wait_for_rollouts(self, step: Union[int, str], ids: list[str], poll_s: float = 0.25) -> None:
        assert self.client is not None and self.workers is not None
        pending = set(ids)
        while pending:
            for rid in list(pending):
                if self.client.get_rollout(rid).status in states.TERMINAL:
                    pending.discard(rid)
            self.progress.rollouts(step, len(ids) - len(pending), len(ids), self.state.version)
            if pending:
                self.workers.ensure()
                time.sleep(poll_s)

    # -- shutdown helpers ---------------------------------------------------------------------
    def _stop_workers(self) -> None:
        if self.workers is not None:
            self.workers.stop()

    def _stop_policy(self) -> None:
        if self.policy is not None:
            self.policy.stop()

    def _stop_client(self) -> None:
        if self.client is not None:
            self.client.close()

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.stop(grace_s=2.0)


def _quiet_libraries() -> None:
    """No per-checkpoint "Loading weights" bars from transformers between the loop's own lines."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _json(value: Any) -> str:
    import json

    return json.dumps(value)

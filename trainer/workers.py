"""The loop's runner processes: start W of them, replace any that die, stop them cleanly.

Separate processes (not threads) because agents are arbitrary user code: one that hangs, leaks or
crashes takes down only its own runner, and the rollout goes back to the queue (heartbeat timeout
or failed attempt) for another runner. Worker ids carry the loop's incarnation, so after a crash
the restarted loop can tell stale attempts of dead runners from its own.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

logger = logging.getLogger("agentlightning.trainer.workers")


class WorkerPool:
    def __init__(self, count: int, server: str, agent: str, worker_prefix: str,
                 env: Optional[Mapping[str, str]] = None, log_dir: Optional[Path] = None,
                 heartbeat_interval_s: float = 2.0) -> None:
        if count < 1:
            raise ValueError("at least one worker is needed")
        self.count = count
        self.server = server
        self.agent = agent
        self.worker_prefix = worker_prefix
        self.env = dict(env or {})
        self.log_dir = log_dir
        self.heartbeat_interval_s = heartbeat_interval_s
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts = 0

    def worker_ids(self) -> list[str]:
        return [f"{self.worker_prefix}-w{i}" for i in range(self.count)]

    def start(self) -> None:
        for worker_id in self.worker_ids():
            self._spawn(worker_id)

    def ensure(self) -> list[str]:
        """Restart runners that exited; returns the ids restarted."""
        restarted = []
        for worker_id, proc in list(self.procs.items()):
            if proc.poll() is not None:
                logger.warning("runner %s exited with %s; restarting it", worker_id, proc.returncode)
                self.restarts += 1
                self._spawn(worker_id)
                restarted.append(worker_id)
        return restarted

    def _spawn(self, worker_id: str) -> None:
        env = dict(os.environ)
        env.update(self.env)
        env["AGENTLIGHTNING_ENDPOINT"] = self.server
        cmd = [sys.executable, "-m", "agentlightning.trainer.worker", "--server", self.server,
               "--agent", self.agent, "--worker-id", worker_id, "--parent-pid", str(os.getpid()),
               "--heartbeat-interval", str(self.heartbeat_interval_s)]
        out = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{worker_id}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self.procs[worker_id] = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                     stdin=subprocess.DEVNULL, cwd=os.getcwd())
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    def stop(self, timeout_s: float = 15.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for worker_id, proc in self.procs.items():
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("runner %s did not stop in %.0fs; killing it", worker_id, timeout_s)
                proc.kill()
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> "WorkerPool":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

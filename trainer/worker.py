"""A runner process of the training loop: ``python -m agentlightning.trainer.worker``.

It imports the user's agent function (``module:function``), pulls rollouts of mode ``train``
from the Lightning server with :class:`agentlightning.core.runner.Runner` and runs them until it
is told to stop (SIGTERM) or its parent (the loop) dies. Spans go to ``$AGENTLIGHTNING_ENDPOINT``
through the process-wide tracer (the Runner delivers a rollout's spans before it reports the rollout
complete, so when the loop sees a finished rollout its trace is complete).
Imports no torch: a runner needs only the agent's own dependencies.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, Optional

from agentlightning.core import api
from agentlightning.core.client import LightningClient
from agentlightning.core.runner import Runner
from agentlightning.trainer.endpoint import get_model

logger = logging.getLogger("agentlightning.trainer.worker")


def load_agent(spec: str) -> Callable[..., Any]:
    """``package.module:function`` (``function`` may be ``Class.method``-style dotted) -> the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"agent must look like module:function, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to where the user runs it
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target


def with_model_argument(agent: Callable[..., Any]) -> Callable[[Any], Any]:
    """``agent(task)`` as is; ``agent(task, model)`` gets the current :class:`ModelEndpoint`."""
    try:
        params = [p for p in inspect.signature(agent).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return agent
    if len(params) < 2:
        return agent

    def call(task: Any) -> Any:
        return agent(task, get_model())

    return call


def _die_with_parent(parent_pid: int, stop: Callable[[], None]) -> None:
    """Stop when the loop process goes away, even after a SIGKILL that gave it no chance to clean up."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                stop()
                os._exit(0)
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="agentlightning-parent-watch", daemon=True).start()


def run(server: str, agent_spec: str, worker_id: str, parent_pid: Optional[int] = None,
        heartbeat_interval_s: float = 2.0, token: Optional[str] = None) -> int:
    agent = with_model_argument(load_agent(agent_spec))
    client = LightningClient.from_env(server, token=token)  # token, TLS CA from the environment too
    runner = Runner(client, agent, worker_id, heartbeat_interval_s=heartbeat_interval_s, mode="train")
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    if parent_pid:
        _die_with_parent(parent_pid, runner.stop)
    try:
        runner.run(idle_wait_s=1.0, stop_when_idle=False)
    finally:
        api.shutdown(timeout_s=10.0)
        client.close()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentlightning.trainer.worker")
    parser.add_argument("--server", required=True, help="Lightning server host:port")
    parser.add_argument("--agent", required=True, help="module:function")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--heartbeat-interval", type=float, default=2.0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.WARNING),
                        format=f"%(asctime)s %(levelname)s {args.worker_id} %(name)s: %(message)s")
    os.environ.setdefault("AGENTLIGHTNING_ENDPOINT", args.server)
    return run(args.server, args.agent, args.worker_id, args.parent_pid or None, args.heartbeat_interval)


if __name__ == "__main__":
    sys.exit(main())

"""CPU time of every thread in the agent's process, split three ways, so no cost of ours is hidden.

* ``agent``: the thread that runs the agent (the benchmark's own thread);
* ``ours``: Agent Lightning's background threads (Python threads named ``agentlightning*``: the
  exporter's senders, the integrations' deferred workers) and gRPC's native threads (the exporter is
  the only gRPC user in these agents). All of their CPU is caused by the integration, whenever it runs;
* ``framework``: every other thread, including threads that have exited (the process clock keeps
  their time): e.g. CrewAI's event-bus pool, where our CrewAI handlers run, or executors for tools.

Read from ``/proc/self/task/<tid>/schedstat`` (ns of CPU per thread) and the process CPU clock.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TASKS = "/proc/self/task"
_NATIVE_OURS = ("grpc", "event_engine", "lifeguard")  # gRPC core's thread names (comm, 15 chars)


@dataclass
class CpuSample:
    """CPU ns so far: the agent's thread, our threads (sum, dead ones at their last reading), the process."""

    agent: int
    ours: int
    process: int

    def minus(self, earlier: "CpuSample") -> "CpuSplit":
        agent, ours = self.agent - earlier.agent, self.ours - earlier.ours
        return CpuSplit(agent, ours, self.process - earlier.process - agent - ours)


@dataclass
class CpuSplit:
    """CPU ns spent in one interval by the agent's thread, our threads and the framework's threads."""

    agent: int
    ours: int
    framework: int


class ThreadCpu:
    """Call ``sample()`` at the edges of what you measure (outside wall-clock brackets: ~20 µs a call)."""

    def __init__(self, agent_thread_id: int | None = None) -> None:
        self.agent_tid = agent_thread_id or threading.get_native_id()
        self._ours: dict[int, int] = {}  # our thread id -> CPU ns at its latest reading
        self._born: dict[int, int] = {}  # our thread id -> CPU ns when first seen (0 if born after start)
        self._names: dict[int, str] = {}  # our thread id -> its name
        self._started = False
        self.available = os.path.exists(f"{_TASKS}/{self.agent_tid}/schedstat")

    def _is_ours(self, tid: int, python_names: dict[int, str]) -> bool:
        name = python_names.get(tid)
        if name is None:
            try:
                with open(f"{_TASKS}/{tid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                return False
            if not name.startswith(_NATIVE_OURS):
                return False
            name = "gRPC " + name
        elif not name.startswith("agentlightning"):
            return False
        self._names[tid] = name
        return True

    def ours_by_name(self) -> dict[str, int]:
        """CPU ns of our threads since the first sample, summed by thread name (gRPC's grouped)."""
        out: dict[str, int] = {}
        for tid, ns in self._ours.items():
            name = self._names.get(tid, "?")
            key = "gRPC core threads" if name.startswith("gRPC ") else name
            out[key] = out.get(key, 0) + ns - self._born[tid]
        return out

    def sample(self) -> CpuSample:
        process = time.process_time_ns()
        agent = time.thread_time_ns() if threading.get_native_id() == self.agent_tid else 0
        if not self.available:
            return CpuSample(agent, 0, process)
        python_names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        for entry in os.listdir(_TASKS):
            tid = int(entry)
            if tid == self.agent_tid:
                if not agent:
                    agent = _read_ns(tid)
                continue
            if tid not in self._ours and not self._is_ours(tid, python_names):
                continue
            ns = _read_ns(tid)
            if ns is None:
                continue
            if tid not in self._born:
                self._born[tid] = ns if not self._started else 0
            self._ours[tid] = ns
        self._started = True
        ours = sum(ns - self._born[tid] for tid, ns in self._ours.items())
        return CpuSample(agent or 0, ours, process)


def _read_ns(tid: int) -> int | None:
    try:
        with open(f"{_TASKS}/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None

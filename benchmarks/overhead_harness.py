"""Measuring tools shared by the sections of ``overhead.py``: hook timers, paired runs, the Lightning server.

A section builds its agent, wraps the integration's entry points with ``HookTimer.timed`` and times
runs with and without the integration through ``interleaved``, which also accounts the CPU of every
thread of the process per run (``overhead_cpu``). It returns a ``Measurement``; ``overhead_report``
turns that into the printed figures.
"""
from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from overhead_cpu import CpuSplit, ThreadCpu


@dataclass
class Setup:
    """How the model behaves: its latency per reply, and whether it is served from the agent's process."""

    latency_ms: float = 0.0
    llm_in_process: bool = False

    def model(self, script: str) -> Any:
        """Context manager serving ``overhead_scripts.SCRIPTS[script]``; yields the base URL."""
        from overhead_llm import scripted_llm

        return scripted_llm(script, self.latency_ms, self.llm_in_process)


@dataclass
class Arms:
    """Per-run samples of each arm ("with", "without", extra arms), paired by index, and our threads' CPU."""

    wall_s: dict[str, list[float]] = field(default_factory=dict)  # arm -> seconds per run
    cpu: dict[str, list[CpuSplit]] = field(default_factory=dict)  # arm -> CPU per run, split by thread group
    ours_cpu_ns: int = 0  # our threads over all measured rounds, plus what the final settle cost
    ours_by_thread_ns: dict[str, int] = field(default_factory=dict)  # the same by thread name (settle excluded)
    ours_idle_ns_per_s: float = 0.0  # our threads' CPU per second afterwards, with no agent running
    calibration: list[float] = field(default_factory=list)  # ms per million loop turns, once a round


@dataclass
class Measurement:
    """Raw samples from one framework section; ``overhead_report.summarize`` turns them into figures."""

    framework: str
    runs: int
    hook_ns: dict[str, list[int]] = field(default_factory=dict)  # event kind -> wall ns inside our hooks, per event
    hook_cpu_ns: dict[str, list[int]] = field(default_factory=dict)  # same, this thread's CPU time (optional)
    arms: Arms = field(default_factory=Arms)
    events_per_run: dict[str, int] = field(default_factory=dict)  # e.g. {"llm_call": 3, "tool_call": 2}
    notes: dict[str, Any] = field(default_factory=dict)  # exporter stats, agent shape, model latency...


class HookTimer:
    """Sums the time of an integration's hook calls per event (e.g. per LangChain run id).

    ``timed(fn, kind, key)`` wraps one hook; an event's total is recorded when a hook marked ``final``
    (its end/error hook) returns. Only recorded while ``recording`` is true (skip warm-up runs).
    Two clocks: wall time (what the agent waits) in ``samples`` and this thread's CPU time in
    ``cpu_samples`` (the work itself; on a shared machine wall time also counts other processes
    preempting us mid-hook, CPU time does not).
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = defaultdict(list)
        self.cpu_samples: dict[str, list[int]] = defaultdict(list)
        self._pending: dict[Any, tuple[int, int]] = {}
        self.recording = False

    def timed(self, fn: Callable[..., Any], kind: str, key: Callable[..., Any], final: bool = False
              ) -> Callable[..., Any]:
        pending, wall, cpu = self._pending, time.perf_counter_ns, time.thread_time_ns

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The CPU clock is a system call (µs on some VMs): read it outside the wall-clock bracket.
            start_cpu = cpu()
            start = wall()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = wall() - start
                elapsed_cpu = cpu() - start_cpu
                k = key(*args, **kwargs)
                before, before_cpu = pending.pop(k, (0, 0))
                if not final:
                    pending[k] = (before + elapsed, before_cpu + elapsed_cpu)
                elif self.recording:
                    self.samples[kind].append(before + elapsed)
                    self.cpu_samples[kind].append(before_cpu + elapsed_cpu)

        return wrapper


def calibrate(iterations: int = 200_000) -> float:
    """Milliseconds per million empty Python loop turns: how fast this machine is right now.

    Printed beside the figures (an idle modern core does about 12) so a reader can tell a slow or
    crowded machine from a slow integration."""
    started = time.perf_counter()
    for _ in range(iterations):
        pass
    return (time.perf_counter() - started) * 1e9 / iterations


def interleaved(run_with: Callable[[], Any], run_without: Callable[[], Any], runs: int, warmup: int,
                timer: Any = None, extra: Optional[dict[str, Callable[[], Any]]] = None,
                settle: Optional[Callable[[], Any]] = None, prepare: Optional[Callable[[str], Any]] = None,
                idle_s: float = 1.0) -> Arms:
    """Alternate instrumented and plain runs (order rotated each round) so drift hits every arm equally.

    ``extra`` arms, e.g. ``{"noop": run_with_a_do_nothing_handler}``, separate the framework's own cost of
    dispatching to any handler from ours. Each run's wall time and per-thread CPU are recorded; our
    threads' CPU is summed over all measured rounds (whichever arm it lands in, it is ours) plus
    ``settle`` (e.g. drain the workers and flush the exporter) run once at the end.
    ``timer``: anything with a ``recording`` flag (a ``HookTimer``), switched on for measured "with"
    runs; or ``{arm: timer}`` for several arms. ``prepare(arm)`` runs before each run, untimed.
    Finally our threads' CPU is sampled over ``idle_s`` with nothing running: the fixed cost of being
    there (periodic wake-ups), which a slow agent pays per event in larger measure."""
    arms = [("with", run_with), ("without", run_without), *(extra or {}).items()]
    timers = timer if isinstance(timer, dict) else {"with": timer} if timer is not None else {}
    result = Arms(wall_s={name: [] for name, _ in arms}, cpu={name: [] for name, _ in arms})
    cpu = ThreadCpu()
    first = None
    first_by_thread: dict[str, int] = {}
    for i in range(warmup + runs):
        measured = i >= warmup
        if measured and first is None:
            first = cpu.sample()
            first_by_thread = cpu.ours_by_name()
        shift = i % len(arms)
        for mode, fn in arms[shift:] + arms[:shift]:
            for arm, arm_timer in timers.items():
                arm_timer.recording = measured and mode == arm
            if prepare is not None:
                prepare(mode)
            before = cpu.sample()
            started = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - started
            after = cpu.sample()
            if measured:
                result.wall_s[mode].append(elapsed)
                result.cpu[mode].append(after.minus(before))
        if measured:
            result.calibration.append(calibrate())
    for arm_timer in timers.values():
        arm_timer.recording = False
    before_settle = cpu.sample()
    by_thread = cpu.ours_by_name()
    if settle is not None:
        settle()
    end = cpu.sample()
    if first is not None:
        leftover = end.minus(before_settle)
        result.ours_cpu_ns = end.ours - first.ours + leftover.agent + leftover.framework
        result.ours_by_thread_ns = {name: ns - first_by_thread.get(name, 0)
                                    for name, ns in by_thread.items()}
    if idle_s > 0:
        time.sleep(idle_s)
        result.ours_idle_ns_per_s = (cpu.sample().ours - end.ours) / idle_s
    return result


@contextlib.contextmanager
def lightning_exporter(workdir: Optional[str] = None, in_process: bool = False) -> Iterator[Any]:
    """A real Lightning server (SQLite) on 127.0.0.1 and an exporter to it; yields the exporter.

    The server runs in its own process by default, as in a deployment: in-process, its gRPC threads
    would compete with the agent for this process's GIL and be billed to the integration."""
    from agentlightning.core.exporter import ExporterConfig, SpanExporter

    tmp = Path(workdir or tempfile.mkdtemp(prefix="al-overhead-"))
    with contextlib.ExitStack() as stack:
        if workdir is None:  # registered first, so it runs last: after the server and exporter are gone
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        if in_process:
            from agentlightning.core.server import LightningServer, ServerConfig
            from agentlightning.core.store.sqlite import SqliteStore

            server = LightningServer(SqliteStore(tmp / "bench.db"), ServerConfig(port=0))
            server.start()
            stack.callback(server.stop, grace_s=1.0)
            address = server.address
        else:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agentlightning.core.cli", "serve", "--db", str(tmp / "bench.db"),
                 "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            stack.callback(proc.wait, 10)
            stack.callback(proc.terminate)
            line = proc.stdout.readline() if proc.stdout else ""
            if " listening on " not in line:
                raise RuntimeError(f"Lightning server did not start: {line!r}")
            address = line.split(" listening on ", 1)[1].split()[0]
        exporter = SpanExporter(ExporterConfig(endpoint=address, spool_dir=str(tmp / "spool")))
        try:
            yield exporter
        finally:
            exporter.flush(30.0)
            exporter.close(5.0)


def settle_all(exporter: Any) -> Callable[[], None]:
    """What ``agentlightning.flush()`` does: finish deferred span work, then wait for the exporter."""
    from agentlightning.core.deferred import drain_all

    def settle() -> None:
        drain_all(30.0)
        exporter.flush(30.0)

    return settle

"""Time an integration adds on the agent's thread, per LLM call and per tool call, for every framework.

Two numbers per framework, both against the scripted OpenAI-compatible server on 127.0.0.1 and a real
Lightning server (spans really serialised, queued and exported over gRPC in the background):

* hook time: wall time spent *inside our hooks* per event (a span's start + end + any per-token hooks),
  timed directly around the integration's entry points. This is the overhead we own.
* end-to-end delta: the same agent run with and without the integration, interleaved; the paired
  difference per run divided by the LLM+tool events in a run. It also includes the framework's own
  dispatch cost for having a handler at all, and machine noise (2 shared cores: read it as a cross-check).

Target: median under 50 µs added per event.

    python benchmarks/overhead.py                       # every registered framework, each in its own process
    python benchmarks/overhead.py langchain --runs 100  # one framework

Adding a framework: write ``benchmarks/overhead_<fw>.py`` with ``measure(runs, warmup, workdir) ->
Measurement`` (build the agent, wrap your hooks with ``HookTimer.timed``, time runs with
``interleaved``; see ``overhead_langchain.py``), then add one line to ``FRAMEWORKS`` below.
A section may also return an already summarised dict (``{"events": {name: {n, median_us, ...}}}``).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

# name -> "module:function" (module under benchmarks/). Imported lazily, one process per framework, so
# frameworks never see each other (global hooks, import side effects).
FRAMEWORKS: dict[str, str] = {
    "langchain": "overhead_langchain:measure",
    "langchain_streaming": "overhead_langchain:measure_streaming",
    "langchain_no_chains": "overhead_langchain:measure_no_chains",
    "openai_agents": "overhead_openai_agents:measure",
    "autogen": "overhead_autogen:measure",
    "autogen_streaming": "overhead_autogen:measure_streaming",
    "crewai": "overhead_crewai:measure",
    "crewai_streaming": "overhead_crewai:measure_streaming",
}
TARGET_US = 50.0
HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # sections do ``from overhead import ...``: let them get this very module
    sys.modules.setdefault("overhead", sys.modules[__name__])


@dataclass
class Measurement:
    """Raw samples from one framework section; ``summarize`` turns them into the printed figures."""

    framework: str
    runs: int
    hook_ns: dict[str, list[int]] = field(default_factory=dict)  # event kind -> wall ns inside our hooks, per event
    hook_cpu_ns: dict[str, list[int]] = field(default_factory=dict)  # same, this thread's CPU time (optional)
    wall_s: dict[str, list[float]] = field(default_factory=dict)  # "with"/"without" -> seconds per run (paired)
    events_per_run: dict[str, int] = field(default_factory=dict)  # e.g. {"llm_call": 3, "tool_call": 2}
    notes: dict[str, Any] = field(default_factory=dict)  # exporter stats, agent shape...


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

    Printed beside the figures (as ms per million turns; an idle modern core does about 12) so a
    reader can tell a slow or crowded machine from a slow integration."""
    started = time.perf_counter()
    for _ in range(iterations):
        pass
    return (time.perf_counter() - started) * 1e9 / iterations  # ms per million turns


def interleaved(run_with: Callable[[], Any], run_without: Callable[[], Any], runs: int, warmup: int,
                timer: Optional[HookTimer] = None, extra: Optional[dict[str, Callable[[], Any]]] = None
                ) -> dict[str, list[float]]:
    """Alternate instrumented and plain runs (order rotated each round) so drift hits every arm equally.

    ``extra`` arms, e.g. ``{"noop": run_with_a_do_nothing_handler}``, separate the framework's own cost of
    dispatching to any handler from ours. ``walls["calibration"]`` tracks machine speed each round."""
    arms = [("with", run_with), ("without", run_without), *(extra or {}).items()]
    walls: dict[str, list[float]] = {name: [] for name, _ in arms}
    walls["calibration"] = []
    for i in range(warmup + runs):
        if timer is not None:
            timer.recording = i >= warmup
        shift = i % len(arms)
        for mode, fn in arms[shift:] + arms[:shift]:
            if timer is not None:
                timer.recording = i >= warmup and mode == "with"
            started = time.perf_counter()
            fn()
            if i >= warmup:
                walls[mode].append(time.perf_counter() - started)
        if i >= warmup:
            walls["calibration"].append(calibrate())
    if timer is not None:
        timer.recording = False
    return walls


@contextlib.contextmanager
def lightning_exporter(workdir: Optional[str] = None, in_process: bool = False) -> Iterator[Any]:
    """A real Lightning server (SQLite) on 127.0.0.1 and an exporter to it; yields the exporter.

    The server runs in its own process by default, as in a deployment: in-process, its gRPC threads
    would compete with the agent for this process's GIL and be billed to the integration."""
    from agentlightning.core.exporter import ExporterConfig, SpanExporter

    tmp = Path(workdir or tempfile.mkdtemp(prefix="al-overhead-"))
    with contextlib.ExitStack() as stack:
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summarize(m: Measurement) -> dict[str, Any]:
    report: dict[str, Any] = {"framework": m.framework, "runs": m.runs, "events": {}, **m.notes}
    for kind, ns in sorted(m.hook_ns.items()):
        us = [n / 1000 for n in ns]
        row = report["events"][kind] = {"n": len(us), "median_us": round(statistics.median(us), 1),
                                        "p99_us": round(percentile(us, 0.99), 1)}
        cpu = [n / 1000 for n in m.hook_cpu_ns.get(kind, [])]
        if cpu:
            row["cpu_median_us"] = round(statistics.median(cpu), 1)
            row["cpu_p99_us"] = round(percentile(cpu, 0.99), 1)
    counted = sum(n for k, n in m.events_per_run.items() if k in ("llm_call", "tool_call"))
    walls = m.wall_s
    with_s, without_s = walls.get("with", []), walls.get("without", [])
    if with_s and without_s and counted:
        def added(a: list[float], b: list[float]) -> dict[str, float]:
            per_event = [(x - y) * 1e6 / counted for x, y in zip(a, b)]
            return {"median": round(statistics.median(per_event), 1), "p99": round(percentile(per_event, 0.99), 1)}

        report["e2e"] = {
            "events_per_run": dict(m.events_per_run),
            "median_run_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in walls.items()
                              if v and k != "calibration"},
            "added_per_event_us": added(with_s, without_s),
        }
        if walls.get("noop"):
            report["e2e"]["framework_dispatch_per_event_us"] = added(walls["noop"], without_s)
            report["e2e"]["ours_beyond_dispatch_per_event_us"] = added(with_s, walls["noop"])
    if walls.get("calibration"):
        report["machine_ms_per_million_loop_turns"] = round(statistics.median(walls["calibration"]), 1)
    report["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return report


def run_section(name: str, runs: int, warmup: int) -> dict[str, Any]:
    module_name, func_name = FRAMEWORKS[name].split(":")
    sys.path.insert(0, str(HERE))
    result: Union[Measurement, dict] = getattr(importlib.import_module(module_name), func_name)(
        runs=runs, warmup=warmup)
    report = summarize(result) if isinstance(result, Measurement) else dict(result)
    report.setdefault("framework", name)
    return report


def print_report(report: dict[str, Any]) -> None:
    print(f"\n== {report.get('framework')}  ({report.get('runs')} runs)")
    if "error" in report:
        print(f"   failed: {report['error']}")
        return
    nan = float("nan")
    print(f"   {'hook time per event':<30}{'n':>6}{'median µs':>11}{'p99 µs':>9}{'cpu median':>12}{'cpu p99':>9}")
    for kind, row in report.get("events", {}).items():
        tail = row.get("p99_us", row.get("p90_us", nan))
        mark = "" if kind not in ("llm_call", "tool_call") else (
            "  ok" if row["median_us"] < TARGET_US else f"  over the {TARGET_US:.0f} µs target")
        print(f"   {kind:<30}{row['n']:>6}{row['median_us']:>11.1f}{tail:>9.1f}"
              f"{row.get('cpu_median_us', nan):>12.1f}{row.get('cpu_p99_us', nan):>9.1f}{mark}")
    e2e = report.get("e2e")
    if e2e:
        runs_ms = ", ".join(f"{k} {v} ms" for k, v in e2e["median_run_ms"].items())
        print(f"   end-to-end median run: {runs_ms}  [{e2e['events_per_run']}]")
        for label, key in (("added per LLM/tool event", "added_per_event_us"),
                           ("  of which framework dispatch to any handler", "framework_dispatch_per_event_us"),
                           ("  of which ours beyond that", "ours_beyond_dispatch_per_event_us")):
            if key in e2e:
                print(f"   {label:<46} median {e2e[key]['median']:>8.1f} µs   p99 {e2e[key]['p99']:>9.1f} µs")
    if report.get("replayed_hot_median_us"):
        print(f"   same callbacks replayed back to back (warm caches), median µs per event: "
              f"{report['replayed_hot_median_us']}")
    if "machine_ms_per_million_loop_turns" in report:
        print(f"   machine: {report['machine_ms_per_million_loop_turns']} ms per million empty loop turns "
              f"(an idle modern core: ~12), load average {report.get('loadavg')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frameworks", nargs="*", help=f"subset of {sorted(FRAMEWORKS)} (default: all)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON report per line")
    parser.add_argument("--in-process", action="store_true", help="do not fork one process per framework")
    args = parser.parse_args()
    names = args.frameworks or list(FRAMEWORKS)
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown framework(s) {unknown}; registered: {sorted(FRAMEWORKS)}")
    status = 0
    for name in names:
        if args.in_process or len(names) == 1:
            try:
                report = run_section(name, args.runs, args.warmup)
            except ImportError as exc:  # framework not installed here
                report = {"framework": name, "error": f"not available: {exc}"}
        else:
            cmd = [sys.executable, __file__, name, "--json", "--runs", str(args.runs), "--warmup", str(args.warmup)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            report = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
                "framework": name, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        if "error" in report:
            status = 1
        print(json.dumps(report)) if args.json else print_report(report)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Turns a section's raw samples into the figures ``overhead.py`` prints (and its ``--json`` lines).

Per LLM/tool event, against the same agent without the integration (paired runs):
* ``wall``: time added to the agent's run — what the issue's target is about;
* ``agent_cpu``: CPU added on the agent's thread (wall minus this is waiting: e.g. for the GIL);
* ``framework_cpu``: CPU added in the framework's other threads (handlers on its pool, log records);
* ``ours_cpu``: CPU of Agent Lightning's background threads (mapping, exporter, gRPC), all of it;
* ``total_cpu``: the three CPU figures summed (means): what the integration costs the process.
Medians and p99 of the paired differences; CPU sums use means (costs add up; a background thread's
work lands in whichever run it happens to overlap).
"""
from __future__ import annotations

import os
import random
import statistics
from typing import Any

TARGET_US = 50.0
COUNTED = ("llm_call", "tool_call")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _stats(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1), "p99": round(percentile(values, 0.99), 1),
            "mean": round(statistics.fmean(values), 1), "median_ci95": median_ci95(values)}


def median_ci95(values: list[float], resamples: int = 1000) -> list[float]:
    """Bootstrap 95% interval of the median: when it spans zero, the difference is within the noise."""
    if len(values) < 2:
        return [float("nan"), float("nan")]
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return [round(medians[int(0.025 * resamples)], 1), round(medians[int(0.975 * resamples) - 1], 1)]


def _added(m: Any, counted: int, arm: str, base: str) -> dict[str, Any]:
    arms = m.arms
    walls_a, walls_b = arms.wall_s.get(arm, []), arms.wall_s.get(base, [])
    cpu_a, cpu_b = arms.cpu.get(arm, []), arms.cpu.get(base, [])
    per = 1e3 * counted  # ns per run -> µs per event
    out: dict[str, Any] = {"wall": _stats([(x - y) * 1e6 / counted for x, y in zip(walls_a, walls_b)])}
    if cpu_a and cpu_b:
        out["agent_cpu"] = _stats([(x.agent - y.agent) / per for x, y in zip(cpu_a, cpu_b)])
        out["framework_cpu"] = _stats([(x.framework - y.framework) / per for x, y in zip(cpu_a, cpu_b)])
    return out


def summarize(m: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"framework": m.framework, "runs": m.runs, "events": {}, **m.notes}
    for kind, ns in sorted(m.hook_ns.items()):
        us = [n / 1000 for n in ns]
        row = report["events"][kind] = {"n": len(us), "median_us": round(statistics.median(us), 1),
                                        "p99_us": round(percentile(us, 0.99), 1)}
        cpu = [n / 1000 for n in m.hook_cpu_ns.get(kind, [])]
        if cpu:
            row["cpu_median_us"] = round(statistics.median(cpu), 1)
            row["cpu_p99_us"] = round(percentile(cpu, 0.99), 1)
    counted = sum(n for k, n in m.events_per_run.items() if k in COUNTED)
    arms = m.arms
    if arms.wall_s.get("with") and arms.wall_s.get("without") and counted:
        added = _added(m, counted, "with", "without")
        measured_events = len(arms.wall_s["with"]) * counted
        if "agent_cpu" in added:
            ours = arms.ours_cpu_ns / 1e3 / measured_events
            added["ours_cpu"] = {"mean": round(ours, 1)}
            report["ours_idle_cpu_us_per_s"] = round(arms.ours_idle_ns_per_s / 1e3, 1)
            report["ours_cpu_by_thread_us_per_event"] = {
                name: round(ns / 1e3 / measured_events, 1) for name, ns in sorted(arms.ours_by_thread_ns.items())}
            added["total_cpu"] = {"mean": round(added["agent_cpu"]["mean"] + added["framework_cpu"]["mean"]
                                                + ours, 1)}
        report["e2e"] = {
            "events_per_run": dict(m.events_per_run),
            "median_run_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in arms.wall_s.items() if v},
            "added_per_event_us": added,
        }
        for arm in arms.wall_s:
            if arm not in ("with", "without") and arms.wall_s[arm]:
                report["e2e"][f"{arm}_vs_without_per_event_us"] = _added(m, counted, arm, "without")
    if arms.calibration:
        report["machine_ms_per_million_loop_turns"] = round(statistics.median(arms.calibration), 1)
    report["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return report


def print_report(report: dict[str, Any]) -> None:
    setup = report.get("setup", {})
    where = "in the agent's process" if setup.get("llm_in_process") else "own process"
    print(f"\n== {report.get('framework')}  ({report.get('runs')} runs; scripted model: {where}, "
          f"{setup.get('latency_ms', 0):g} ms latency)")
    if "error" in report:
        print(f"   failed: {report['error']}")
        return
    nan = float("nan")
    print(f"   {'hook time per event':<38}{'n':>6}{'median µs':>11}{'p99 µs':>9}{'cpu median':>12}{'cpu p99':>9}")
    for kind, row in report.get("events", {}).items():
        tail = row.get("p99_us", row.get("p90_us", nan))
        mark = "" if kind not in COUNTED else (
            "  ok" if row["median_us"] < TARGET_US else f"  over the {TARGET_US:.0f} µs target")
        print(f"   {kind:<38}{row['n']:>6}{row['median_us']:>11.1f}{tail:>9.1f}"
              f"{row.get('cpu_median_us', nan):>12.1f}{row.get('cpu_p99_us', nan):>9.1f}{mark}")
    e2e = report.get("e2e")
    if e2e:
        runs_ms = ", ".join(f"{k} {v} ms" for k, v in e2e["median_run_ms"].items())
        print(f"   median run: {runs_ms}  [{e2e['events_per_run']}]")
        print("   added per LLM/tool event vs the same agent without it:")
        _print_added(e2e["added_per_event_us"], mark_target=True)
        for key, value in e2e.items():
            if key.endswith("_vs_without_per_event_us"):
                print(f"   {key.split('_vs_')[0]} arm vs without:")
                _print_added(value, mark_target=False)
    if report.get("ours_cpu_by_thread_us_per_event"):
        print(f"   our background threads, µs CPU per event: {report['ours_cpu_by_thread_us_per_event']}; "
              f"idle afterwards: {report.get('ours_idle_cpu_us_per_s')} µs CPU per second")
    if report.get("replayed_hot_median_us"):
        print(f"   same callbacks replayed back to back (warm caches), median µs per event: "
              f"{report['replayed_hot_median_us']}")
    if "machine_ms_per_million_loop_turns" in report:
        print(f"   machine: {report['machine_ms_per_million_loop_turns']} ms per million empty loop turns "
              f"(an idle modern core: ~12), load average {report.get('loadavg')}")


_LABELS = {"wall": "wall time on the agent's run", "agent_cpu": "CPU, agent's thread",
           "framework_cpu": "CPU, framework's other threads", "ours_cpu": "CPU, our background threads",
           "total_cpu": "CPU, all threads"}


def _print_added(added: dict[str, dict[str, float]], mark_target: bool) -> None:
    for key, label in _LABELS.items():
        row = added.get(key)
        if row is None:
            continue
        parts = [f"{name} {row[name]:>8.1f} µs" for name in ("median", "p99", "mean") if name in row]
        if "median_ci95" in row:
            parts.append(f"median 95% CI [{row['median_ci95'][0]:.0f}, {row['median_ci95'][1]:.0f}]")
        mark = ""
        if mark_target and key in ("wall", "total_cpu"):
            figure = row.get("median", row.get("mean", float("nan")))
            mark = "  ok" if figure < TARGET_US else "  over target"
        print(f"     {label:<34}" + "   ".join(parts) + mark)


def print_summary(reports: list[dict[str, Any]]) -> None:
    """One line per section: the figures the README quotes (µs per LLM/tool event; medians unless noted)."""
    print(f"\n{'section':<22}{'lat ms':>7}{'hook llm':>9}{'hook tool':>10}{'e2e wall':>9}{'95% CI':>15}{'p99':>8}"
          f"{'cpu agent':>10}{'cpu fw':>8}{'cpu ours':>9}{'cpu all':>8}  load")
    for r in reports:
        if "error" in r:
            print(f"{r.get('framework', '?'):<22}failed: {r['error']}")
            continue
        events, added = r.get("events", {}), r.get("e2e", {}).get("added_per_event_us", {})
        cell = lambda row, key: row.get(key, float("nan")) if row else float("nan")  # noqa: E731
        print(f"{r['framework']:<22}{r.get('setup', {}).get('latency_ms', 0):>7g}"
              f"{cell(events.get('llm_call'), 'median_us'):>9.1f}{cell(events.get('tool_call'), 'median_us'):>10.1f}"
              f"{cell(added.get('wall'), 'median'):>9.1f}{_ci(added.get('wall')):>15}{cell(added.get('wall'), 'p99'):>8.0f}"
              f"{cell(added.get('agent_cpu'), 'mean'):>10.1f}{cell(added.get('framework_cpu'), 'mean'):>8.1f}"
              f"{cell(added.get('ours_cpu'), 'mean'):>9.1f}{cell(added.get('total_cpu'), 'mean'):>8.1f}"
              f"  {r.get('loadavg', [float('nan')])[0]:.1f}")
    print("(hook: median inside our entry points; e2e wall: median/p99 time added to the agent's run; cpu: mean"
          " CPU added on the agent's thread, the framework's other threads, our threads, all of them)")


def print_spread(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Per section, the e2e wall median (and its CI) of each fresh-process invocation, and their range: a
    range wider than the CIs means the machine, not the sampling, limits what the figures can settle."""
    print(f"{'section':<22}{'invocations: e2e wall median µs per event [95% CI]':<70}{'range':>8}")
    for name, reports in runs.items():
        cells, medians = [], []
        for r in reports:
            wall = r.get("e2e", {}).get("added_per_event_us", {}).get("wall") if "error" not in r else None
            if wall is None:
                cells.append("failed")
                continue
            medians.append(wall["median"])
            cells.append(f"{wall['median']:.0f} {_ci(wall)}")
        spread = f"{max(medians) - min(medians):.0f}" if len(medians) > 1 else ""
        print(f"{name:<22}{'; '.join(cells):<70}{spread:>8}")


def _ci(row: Any) -> str:
    ci = (row or {}).get("median_ci95")
    return f"[{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""

"""The overhead benchmark runs every section and measures what it claims (a few runs: not figures)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import overhead  # noqa: E402
import overhead_cpu  # noqa: E402
import overhead_report  # noqa: E402
from overhead_harness import Setup  # noqa: E402

COUNTED = ("llm_call", "tool_call")


def test_thread_cpu_bills_our_threads_apart_from_the_agent_and_the_framework() -> None:
    cpu = overhead_cpu.ThreadCpu()
    if not cpu.available:
        pytest.skip("no per-thread CPU clock in /proc")
    stop = threading.Event()

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass
        stop.wait()

    before = cpu.sample()
    ours = threading.Thread(target=spin, args=(0.05,), name="agentlightning-test", daemon=True)
    theirs = threading.Thread(target=spin, args=(0.03,), name="framework-pool", daemon=True)
    ours.start(), theirs.start()
    spin_until = time.thread_time() + 0.02
    while time.thread_time() < spin_until:
        pass
    time.sleep(0.3)  # both threads have spun by now (on 2 shared cores, allow for a slow scheduler)
    split = cpu.sample().minus(before)
    stop.set()
    ours.join(), theirs.join()
    assert 0.045 <= split.ours / 1e9 < 0.09, split
    assert 0.02 <= split.agent / 1e9 < 0.06, split
    assert 0.025 <= split.framework / 1e9 < 0.07, split
    assert cpu.ours_by_name()["agentlightning-test"] >= 0.045e9


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="per-thread CPU needs /proc")
def test_every_section_runs_and_reports_hook_end_to_end_and_cpu_figures() -> None:
    """All registered sections, each in its own process as ``overhead.py`` runs them (frameworks not
    installed here are reported as such, which fails the benchmark's exit status and this test)."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "overhead.py"), "--runs", "2", "--warmup", "1", "--json"],
                          capture_output=True, text=True, timeout=600)
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["framework"] for r in reports] == [
        name.replace("no_chains", "chains_none") for name in overhead.FRAMEWORKS], proc.stderr[-2000:]
    for report in reports:
        assert "error" not in report, report
        assert report["setup"] == {"latency_ms": 0.0, "llm_in_process": False}
        for kind in COUNTED:  # at least one sample per measured run (some sections sum a run's events)
            assert report["events"][kind]["n"] >= 2, (report["framework"], kind)
        added = report["e2e"]["added_per_event_us"]
        assert set(added) == {"wall", "agent_cpu", "framework_cpu", "ours_cpu", "total_cpu"}, report["framework"]
        assert added["ours_cpu"]["mean"] > 0, report["framework"]  # at least the exporter's threads ran
        assert report["ours_cpu_by_thread_us_per_event"], report["framework"]
        exporter = report.get("exporter", {})
        assert not exporter.get("dropped"), report
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_langchain_section_times_every_llm_and_tool_event(tmp_path: Path) -> None:
    pytest.importorskip("langgraph")
    pytest.importorskip("langchain_openai")
    import overhead_langchain

    m = overhead_langchain.measure(runs=3, warmup=1, workdir=str(tmp_path), setup=Setup(), replay_rounds=5)
    assert len(m.hook_ns["llm_call"]) == 3 * 3 and len(m.hook_ns["tool_call"]) == 3 * 2
    assert all(ns > 0 for ns in m.hook_ns["llm_call"] + m.hook_ns["tool_call"])
    assert {k: len(v) for k, v in m.arms.wall_s.items()} == {"with": 3, "without": 3, "noop": 3}
    assert {k: len(v) for k, v in m.arms.cpu.items()} == {"with": 3, "without": 3, "noop": 3}
    assert len(m.arms.calibration) == 3
    # 3 LLM + 2 tool + 6 chain spans a run (graph, 3 agent nodes, 2 tool nodes): 4 timed runs (warm-up
    # included) and 5 replays of the recorded callbacks.
    assert m.notes["exporter"]["submitted"] == m.notes["exporter"]["acked"] == (4 + 5) * 11
    assert set(m.notes["replayed_hot_median_us"]) >= {"llm_call", "tool_call"}
    assert m.notes["handler_errors"] == 0
    assert m.arms.ours_cpu_ns > 0 and "agentlightning-langchain" in m.arms.ours_by_thread_ns
    report = overhead_report.summarize(m)
    assert set(report["events"]) >= {"llm_call", "tool_call"} and report["e2e"]["events_per_run"]["llm_call"] == 3


def test_invocations_report_how_far_the_median_moves_between_fresh_processes() -> None:
    pytest.importorskip("agents")
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "overhead.py"), "openai_agents", "--runs", "2",
                           "--warmup", "1", "--invocations", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("openai_agents ")]
    medians = [float(cell.split()[0]) for cell in row[22:92].split(";")]
    assert len(medians) == 2
    assert float(row[92:]) == pytest.approx(max(medians) - min(medians), abs=1.0)

"""The overhead benchmark's LangChain section runs and measures what it claims (a few runs, not figures)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import overhead  # noqa: E402
import overhead_langchain  # noqa: E402


def test_langchain_section_times_every_llm_and_tool_event(tmp_path: Path) -> None:
    m = overhead_langchain.measure(runs=3, warmup=1, workdir=str(tmp_path), replay_rounds=5)
    assert len(m.hook_ns["llm_call"]) == 3 * 3 and len(m.hook_ns["tool_call"]) == 3 * 2
    assert all(ns > 0 for ns in m.hook_ns["llm_call"] + m.hook_ns["tool_call"])
    assert {k: len(v) for k, v in m.wall_s.items()} == {"with": 3, "without": 3, "noop": 3, "calibration": 3}
    # 3 LLM + 2 tool + 6 chain spans a run (graph, 3 agent nodes, 2 tool nodes): 4 timed runs (warm-up
    # included) and 5 replays of the recorded callbacks.
    assert m.notes["exporter"]["submitted"] == m.notes["exporter"]["acked"] == (4 + 5) * 11
    assert set(m.notes["replayed_hot_median_us"]) >= {"llm_call", "tool_call"}
    assert m.notes["handler_errors"] == 0
    report = overhead.summarize(m)
    assert set(report["events"]) >= {"llm_call", "tool_call"} and report["e2e"]["events_per_run"]["llm_call"] == 3

"""Export round trips: jsonl, parquet and a Hugging Face dataset hold the same transitions."""
from __future__ import annotations

import json

import pytest

from agentlightning.core.lightningrl import LightningRLConfig, RolloutTrace, build_transitions
from agentlightning.core.lightningrl import export
from agentlightning.core.lightningrl.trace_builder import TraceBuilder
from agentlightning.v1 import spans_pb2


@pytest.fixture
def batch():
    traces = []
    for i, final in enumerate((1.0, 0.0)):
        b = TraceBuilder(f"r{i}")
        root = b.agent("writer")
        b.llm([1, 2, 3], [4, 5], parent=root, logprobs=[-0.5, -0.25], policy_version="v1",
              messages=[("user", "hi")], content="", tool_calls=[("c1", "calc", "{bad")])
        b.tool("calc", call_id="c1", arguments="{bad", outcome=spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS, parent=root)
        b.llm([1, 2, 3, 4, 5, 6], [7], parent=root, messages=[("user", "hi")], content="done")
        traces.append(RolloutTrace(f"r{i}", b.spans, group_id="g", final_reward=final))
    return build_transitions(traces, LightningRLConfig(include_messages=True))


def expected(batch, include_messages: bool):
    return [t.to_dict(include_messages=include_messages) for t in batch]


def test_jsonl_round_trip(batch, tmp_path):
    path = tmp_path / "t.jsonl"
    assert export.write(batch.transitions, path, "jsonl", include_messages=True) == 4
    rows = export.read_jsonl(path)
    assert rows == expected(batch, True)
    assert rows[0]["breakdown"]["air"] == {"args_invalid_json": -0.2}
    assert rows[0]["prompt_messages"] == [{"role": "user", "content": "hi"}]
    assert rows[1]["response_logprobs"] is None


def decode(rows):
    for row in rows:
        row["breakdown"] = json.loads(row["breakdown"])
        for key in ("prompt_messages", "response_messages"):
            if key in row and row[key] is not None:
                row[key] = json.loads(row[key])
        if row["response_logprobs"] is not None:  # float32 on disk
            row["response_logprobs"] = [round(x, 6) for x in row["response_logprobs"]]
    return rows


def test_parquet_round_trip(batch, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    assert export.write(batch.transitions, path, "parquet", include_messages=True) == 4
    rows = decode(pq.read_table(str(path)).to_pylist())
    assert rows == decode(export.records(batch.transitions, True))
    assert rows[0]["prompt_token_ids"] == [1, 2, 3] and rows[0]["response_logprobs"] == [-0.5, -0.25]
    assert rows[0]["breakdown"] == batch.transitions[0].breakdown.to_dict()


def test_hf_dataset_round_trip(batch, tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "hf"
    assert export.write(batch.transitions, path, "hf") == 4
    loaded = datasets.load_from_disk(str(path))
    assert len(loaded) == 4 and "prompt_messages" not in loaded.column_names
    rows = decode([dict(r) for r in loaded])
    assert rows == decode(export.records(batch.transitions, False))
    assert [r["advantage"] for r in rows] == [t.advantage for t in batch]


def test_unknown_format_and_missing_dependency_are_clear(batch, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export.write(batch.transitions, tmp_path / "x", "csv")
    with pytest.raises(RuntimeError, match="pip install some-extra"):
        export._require("agentlightning_no_such_module", "some-extra")

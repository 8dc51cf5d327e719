"""Real traces through the real server: the Tracer exports to a gRPC server over SQLite, LightningRL
reads them back through the client (or the SQLite file) and turns them into transitions."""
from __future__ import annotations

import json

import pytest

from agentlightning.core import api
from agentlightning.core.cli import main
from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.lightningrl import (
    LightningRLConfig,
    build_transitions,
    load_from_client,
    load_from_store,
)
from agentlightning.core.lightningrl import transitions as transitions_module
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.core.tracer import SpanKind, ToolOutcome, TokenProvenance

CALC_SCHEMA = json.dumps({"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]})


def run_agent(tracer, question_ids: list[int], answer_ids: list[int], *, fail_tool: bool,
              reward: float | None) -> None:
    """One agent turn as an integration records it: LLM call asking for a tool, the tool, a final LLM call."""
    with tracer.span("agent", SpanKind.AGENT, agent_name="writer"):
        llm = tracer.start_span("chat", SpanKind.LLM)
        p = llm.proto.llm
        p.request_model = "policy"
        p.request_messages.add(role="user", content="what is 1/0?")
        msg = p.response_messages.add(role="assistant")
        msg.tool_calls.add(id="call_1", name="calc", arguments='{"expr": "1/0"}')
        p.tools.add(name="calc", parameters_json_schema=CALC_SCHEMA)
        p.prompt_token_ids.extend(question_ids)
        p.completion_token_ids.extend([7, 8, 9])
        p.completion_logprobs.extend([-0.5, -0.25, -0.125])
        p.token_provenance = TokenProvenance.EXACT
        p.policy_version = "v3"
        llm.end()
        tool = tracer.start_span("calc", SpanKind.TOOL)
        tool.proto.tool.name = "calc"
        tool.proto.tool.call_id = "call_1"
        tool.proto.tool.arguments = '{"expr": "1/0"}'
        if fail_tool:
            tool.proto.tool.outcome = ToolOutcome.ERROR
            tool.end(error=ZeroDivisionError("division by zero"))
        else:
            tool.proto.tool.outcome = ToolOutcome.OK
            tool.end()
        llm2 = tracer.start_span("chat", SpanKind.LLM)
        llm2.proto.llm.prompt_token_ids.extend(question_ids + [7, 8, 9, 10])
        llm2.proto.llm.completion_token_ids.extend(answer_ids)
        llm2.proto.llm.policy_version = "v3"
        llm2.end()
        if reward is not None:
            tracer.emit_reward(reward, name="correct")


def test_live_trace_through_the_server(tracer, client):
    context = new_rollout_context()
    with use_rollout(context):
        run_agent(tracer, [1, 2, 3], [11, 12], fail_tool=True, reward=1.0)
    assert tracer.sink.flush(10.0)
    traces = load_from_client(client, [context.rollout_id])
    assert traces[0].final_reward is None and len(traces[0].spans) == 5  # live: only spans
    batch = build_transitions(traces, LightningRLConfig(normalizer="none"))
    first, second = batch.transitions
    assert (first.rollout_id, first.attempt_id, first.agent_name) == (context.rollout_id, context.attempt_id, "writer")
    assert list(first.prompt_token_ids) == [1, 2, 3] and list(first.response_token_ids) == [7, 8, 9]
    assert list(first.response_logprobs) == [-0.5, -0.25, -0.125]
    assert first.policy_version == "v3" and not first.retokenized
    assert first.breakdown.air == {"tool_error": -0.10, "args_valid": 0.05}
    assert [s.detail for s in first.breakdown.air_signals][0] == "calc call_1: division by zero"
    assert first.reward == pytest.approx(0.95) and first.breakdown.final_source == "span:correct"
    assert list(second.response_token_ids) == [11, 12] and second.reward == 1.0
    assert second.response_logprobs is None


def test_queued_group_through_the_server_and_cli(tracer, client, lightning_server, db_path, tmp_path, capsys):
    client.enqueue([{"q": 1}, {"q": 1}], group_id="grp", task_id="t1")
    rewards = {}
    for i, value in enumerate((1.0, 0.0)):
        rollout, attempt = client.dequeue("worker-1")
        with use_rollout(new_rollout_context(rollout.rollout_id, attempt.attempt_id)):
            run_agent(tracer, [1, 2, 3], [20 + i], fail_tool=False, reward=None)
        assert tracer.sink.flush(10.0)
        client.complete(attempt.attempt_id, "worker-1", success=True, final_reward=value)
        rewards[rollout.rollout_id] = value
    traces = load_from_client(client, group_id="grp")
    assert {t.rollout_id: t.final_reward for t in traces} == rewards
    batch = build_transitions(traces)  # defaults: episode credit, GRPO, AIR on
    assert len(batch) == 4
    for t in batch:
        assert t.group_id == "grp" and t.task_id == "t1"
        air = 0.15 if t.step_index == 0 else 0.0  # tool_ok + args_valid on the call that used the tool
        assert t.reward == pytest.approx(rewards[t.rollout_id] + air)
        # outcomes 1 and 0: mean 0.5, std 0.5; AIR, the same on both tool calls, centres to 0
        assert t.advantage == pytest.approx((rewards[t.rollout_id] - 0.5) / 0.5)

    winner = next(r for r, v in rewards.items() if v == 1.0)
    assert main(["transitions", winner, "--endpoint", lightning_server.address, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["advantage"] for t in out["transitions"]] == pytest.approx([1.0, 1.0])
    assert out["transitions"][0]["breakdown"]["air"] == {"tool_ok": 0.1, "args_valid": 0.05}

    assert main(["transitions", winner, "--endpoint", lightning_server.address, "--no-air"]) == 0
    text = capsys.readouterr().out
    assert "advantage +1.0000" in text and "final reward   +1.0000  (rollout)" in text
    assert "AIR" not in text

    out_path = tmp_path / "t.jsonl"
    assert main(["export", "--db", str(db_path), "--format", "jsonl", "--out", str(out_path)]) == 0
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert len(rows) == 4 and {r["rollout_id"] for r in rows} == set(rewards)

    assert main(["transitions", "nope", "--endpoint", lightning_server.address]) == 1
    assert "no spans stored for this rollout" in capsys.readouterr().out


def test_reward_api_dimensions_groups_and_decorator(global_tracer, db_path):
    @api.reward(primary="correct")
    def judge(answer: str) -> dict:
        return {"format": 0.5, "correct": 1.0 if answer == "4" else 0.0}

    @api.reward(name="length", primary=False)
    def brevity(answer: str) -> float:
        return -0.01 * len(answer)

    ids = []
    for answer in ("4", "5"):
        with api.rollout(group_id="live-g", task_id="q-2+2", agent_name="writer") as context:
            with global_tracer.span("chat", SpanKind.LLM) as llm:
                llm.proto.llm.prompt_token_ids.extend([1, 2])
                llm.proto.llm.completion_token_ids.extend([3])
            assert judge(answer) == {"format": 0.5, "correct": 1.0 if answer == "4" else 0.0}
            brevity(answer)
            ids.append(context.rollout_id)
    with api.rollout(final_reward=0.25, agent_name="writer") as context:
        with global_tracer.span("chat", SpanKind.LLM) as llm:
            llm.proto.llm.prompt_token_ids.extend([1])
            llm.proto.llm.completion_token_ids.extend([2])
        api.emit_rewards({"correct": 0.0, "polite": 1.0}, primary="polite")
    ids.append(context.rollout_id)
    assert global_tracer.sink.flush(10.0)

    store = SqliteStore(db_path)
    try:
        traces = {t.rollout_id: t for t in load_from_store(store)}
    finally:
        store.close()
    assert set(ids) <= set(traces)
    batch = build_transitions([traces[i] for i in ids], LightningRLConfig(normalizer="mean"))
    by_id = {t.rollout_id: t for t in batch}
    right, wrong, final = (by_id[i] for i in ids)
    assert (right.group_id, right.task_id) == ("live-g", "q-2+2")   # from the root span's attributes
    assert right.reward == 1.0 and wrong.reward == 0.0              # "correct" is the primary dimension
    assert right.breakdown.dimensions == {"format": 0.5, "correct": 1.0, "length": -0.01}
    assert right.advantage == 0.5 and wrong.advantage == -0.5      # normalised within the live group
    # The rollout's final reward (named "final") wins over the other primary dimension.
    assert final.reward == 0.25 and final.breakdown.final_source == "span:final"
    assert final.group_id == "" and final.advantage == 0.0         # alone in the ungrouped batch
    with pytest.raises(ValueError):
        api.emit_rewards({"a": 1.0}, primary="b")


def test_attribute_names_match_the_api():
    assert transitions_module.GROUP_ATTRIBUTE == api.GROUP_ID_ATTRIBUTE
    assert transitions_module.TASK_ATTRIBUTE == api.TASK_ID_ATTRIBUTE

"""The training loop's small parts, without torch: task selection, the agent's endpoint lookup,
run state, metrics log, agent loading."""
from __future__ import annotations

import json

import pytest

from agentlightning.trainer import endpoint
from agentlightning.trainer.metrics import MetricsLog, air_breakdown, rollout_metrics
from agentlightning.trainer.state import RunState, rollout_id
from agentlightning.trainer.tasks import load_tasks, tasks_for_step
from agentlightning.trainer.worker import load_agent, with_model_argument


def test_tasks_cover_the_data_each_pass_and_are_deterministic(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({"task_id": f"q{i}", "x": i}) + "\n" for i in range(5)) + "\n")
    tasks = load_tasks(path)
    assert [t.task_id for t in tasks] == [f"q{i}" for i in range(5)]
    first_pass = tasks_for_step(tasks, 0, 2, seed=7) + tasks_for_step(tasks, 1, 2, seed=7)
    wrap = tasks_for_step(tasks, 2, 2, seed=7)  # last task of pass 0 + first of pass 1
    assert sorted(t.index for t in first_pass + wrap[:1]) == [0, 1, 2, 3, 4]
    assert tasks_for_step(tasks, 2, 2, seed=7) == wrap  # same step, same tasks (resume relies on it)
    assert len(tasks_for_step(tasks, 3, 12, seed=1)) == 12
    assert load_tasks(["a", {"task_id": 3}])[1].task_id == "3"
    with pytest.raises(ValueError):
        load_tasks([])


def test_get_model_prefers_the_resource_service_then_env(lightning_server, client, monkeypatch):
    monkeypatch.setattr(endpoint, "_cache", {})
    monkeypatch.setattr(endpoint, "_client", None)
    monkeypatch.delenv("AGENTLIGHTNING_ENDPOINT", raising=False)
    monkeypatch.delenv(endpoint.ENDPOINT_ENV, raising=False)
    with pytest.raises(LookupError):
        endpoint.get_model()
    env = endpoint.model_env(endpoint.ModelEndpoint("http://127.0.0.1:1/v1", "policy", "v0"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert endpoint.get_model(ttl_s=0) == endpoint.ModelEndpoint("http://127.0.0.1:1/v1", "policy", "v0")
    monkeypatch.setenv("AGENTLIGHTNING_ENDPOINT", lightning_server.address)
    client.publish_model(endpoint="http://127.0.0.1:2/v1", model="policy", version="v7")
    found = endpoint.get_model(ttl_s=0)
    assert (found.base_url, found.version) == ("http://127.0.0.1:2/v1", "v7")
    client.publish_model(endpoint="http://127.0.0.1:2/v1", model="policy", version="v8")
    assert endpoint.get_model(ttl_s=60).version == "v7"  # cached
    assert endpoint.get_model(ttl_s=0).version == "v8"



def test_a_rollout_can_pin_its_model(monkeypatch):
    """Inside a rollout whose metadata pins an endpoint (the loop's warm-up teacher), get_model() answers
    it, whatever the environment or the ResourceService say; outside, the usual lookup applies."""
    from agentlightning.core.context import new_rollout_context, use_rollout

    monkeypatch.setattr(endpoint, "_cache", {})
    monkeypatch.delenv("AGENTLIGHTNING_ENDPOINT", raising=False)
    for key, value in endpoint.model_env(endpoint.ModelEndpoint("http://127.0.0.1:1/v1", "policy", "v3")).items():
        monkeypatch.setenv(key, value)
    teacher = endpoint.ModelEndpoint("http://127.0.0.1:9/v1", "teacher", "t1")
    with use_rollout(new_rollout_context("r1", metadata={"step": "0", **endpoint.pinning_metadata(teacher)})):
        assert endpoint.get_model(ttl_s=60) == teacher
    with use_rollout(new_rollout_context("r2", metadata={"step": "0"})):
        assert endpoint.get_model(ttl_s=0).base_url == "http://127.0.0.1:1/v1"
    assert endpoint.get_model(ttl_s=0).version == "v3"

def test_agent_loading_and_model_argument(monkeypatch):
    agent = load_agent("json:dumps")
    assert agent is json.dumps
    with pytest.raises(ValueError):
        load_agent("json.dumps")
    monkeypatch.setattr(endpoint, "get_model", lambda: "MODEL")
    import agentlightning.trainer.worker as worker

    monkeypatch.setattr(worker, "get_model", lambda: "MODEL")
    assert with_model_argument(lambda task: task)(1) == 1
    assert with_model_argument(lambda task, model: (task, model))(1) == (1, "MODEL")


def test_run_state_round_trip(tmp_path):
    state = RunState.new("r1", {"a": 1})
    state.step, state.phase, state.version = 3, "update", "v3"
    state.save(tmp_path)
    again = RunState.load(tmp_path)
    assert again == state
    assert RunState.load(tmp_path / "missing") is None
    assert rollout_id("r1", 3, 2, 1) == "r1-s00003-t0002-g01"


def test_metrics_log_replaces_a_redone_step_and_plots(tmp_path):
    log = MetricsLog(tmp_path)
    log.record({"step": 0, "reward_mean": 0.1, "success_rate": 0.0})
    log.record({"step": 1, "reward_mean": 0.3, "success_rate": 0.5})
    log.record({"step": 1, "reward_mean": 0.4, "success_rate": 0.5})  # redone after a crash
    again = MetricsLog(tmp_path)
    assert [(r["step"], r["reward_mean"]) for r in again.rows] == [(0, 0.1), (1, 0.4)]
    curve = again.plot()
    assert curve is not None and curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rollout_metrics_and_air_breakdown():
    from types import SimpleNamespace as NS

    from agentlightning.core import rollout_states as states
    from agentlightning.core.lightningrl.air import AirSignal
    from agentlightning.v1 import spans_pb2

    span = spans_pb2.Span(kind=spans_pb2.SPAN_KIND_LLM)
    span.llm.completion_token_ids.extend([1, 2, 3])
    span.llm.policy_version = "v2"
    traces = [NS(final_reward=1.0, status=states.SUCCEEDED, spans=[span]),
              NS(final_reward=0.0, status=states.SUCCEEDED, spans=[]),
              NS(final_reward=None, status=states.FAILED, spans=[])]
    m = rollout_metrics(traces, success_threshold=0.5)
    assert m["reward_mean"] == 0.5 and m["success_rate"] == pytest.approx(1 / 3)
    assert m["rollouts_failed"] == 1 and m["completion_tokens"] == 3 and m["rollout_policy_versions"] == {"v2": 1}
    t1 = NS(breakdown=NS(air_total=0.15, air={"tool_ok": 0.1, "args_valid": 0.05},
                         air_signals=[AirSignal("tool_ok", 0.1, ""), AirSignal("args_valid", 0.05, "")]))
    t2 = NS(breakdown=NS(air_total=-0.2, air={"tool_not_found": -0.2},
                         air_signals=[AirSignal("tool_not_found", -0.2, "")]))
    air = air_breakdown([t1, t2])
    assert air["transitions"] == 2 and air["air_mean"] == pytest.approx(-0.025)
    assert air["air"]["tool_ok"] == pytest.approx(0.05) and air["air_fired"] == {
        "args_valid": 1, "tool_not_found": 1, "tool_ok": 1}

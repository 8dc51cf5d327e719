"""The Calc-X example end to end: the real AutoGen AssistantAgent with the calculator tool, the real AutoGen
integration (its one ``instrument()`` line), the real Runner and Lightning server, LightningRL — against the
scripted OpenAI-compatible server (exact transitions and rewards) and against the CPU model server with the
tiny random model (the pipeline runs); plus the Calc-X loader/generator, the calculator and the reward, and
``agentlightning demo calc`` with the tiny model."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from agentlightning.core import api  # noqa: E402
from agentlightning.core.lightningrl import build_transitions, load_from_client  # noqa: E402
from agentlightning.core.lightningrl.config import AirConfig, LightningRLConfig  # noqa: E402
from agentlightning.core.runner import Runner  # noqa: E402
from agentlightning.examples.calc import EXAMPLE  # noqa: E402
from agentlightning.examples.calc.calculator import CalculatorError, calculator, evaluate  # noqa: E402
from agentlightning.examples.calc.data import generate, generate_records, load  # noqa: E402
from agentlightning.examples.calc.reward import extract_answer, reward  # noqa: E402
from agentlightning.integrations.autogen import instrument, uninstrument  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall  # noqa: E402
from agentlightning.trainer.endpoint import ModelEndpoint  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402

CALC_X_RECORDS = [  # the Calc-X fields, as in MU-NLPC/Calc-gsm8k
    {"id": "gsm8k__a1", "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as "
     "many clips in May. How many clips did Natalia sell altogether in April and May?",
     "chain": '<gadget id="calculator">48 / 2</gadget>\n<output>24</output>\n\n'
              '<gadget id="calculator">48 + 24</gadget>\n<output>72</output>\n\n<result>72</result>',
     "result": "72", "result_float": 72.0},
    {"id": "ape210k__b2", "question": "What is three quarters of one?",
     "chain": '<gadget id="calculator">3 / 4</gadget>\n<output>3/4 = around 0.75</output>\n\n<result>3/4</result>',
     "result": "3/4", "result_float": 0.75},
]


@pytest.fixture(autouse=True)
def instrumented():
    instrument()  # the agent module does this at import; other tests may have uninstrumented since
    yield
    uninstrument()


# -- calculator, reward, data ---------------------------------------------------------------------------
def test_calculator_does_arithmetic_and_refuses_everything_else():
    assert calculator("12 + 7") == "19" and calculator("(3 * 4) / 2") == "6" and calculator("10 / 4") == "2.5"
    assert calculator("2 ^ 3") == "8" and calculator("1,200 - 200") == "1000" and calculator("sqrt(16)") == "4"
    for bad in ("__import__('os').system('true')", "x + 1", "open('f')", "2 ** 100000", "1 / 0", "", "3 +"):
        with pytest.raises(CalculatorError):
            evaluate(bad)


def test_reward_numeric_match_with_tolerant_parsing():
    task = {"result": "19", "result_float": 19.0}
    assert reward("12 + 7 = 19\nAnswer: 19", task) == 1.0
    assert reward("**Answer:** $19.", task) == 1.0
    assert reward("The answer is 19.00", task) == 1.0
    assert reward("12 + 7 = 19", task) == 0.5           # right number, no answer line
    assert reward("Answer: 19 apples, not 20", task) == 1.0
    assert reward("Answer: 20", task) == 0.0
    assert reward("Answer: 18\nso 19", task) == 0.0      # the answer line decides
    assert reward("", task) == 0.0 and reward(None, task) == 0.0
    assert reward("Answer: 0.75", {"result": "3/4"}) == 1.0
    assert reward("Answer: 3/4", {"result": "0.75"}) == 1.0
    assert reward("Answer: 1,234", {"result": "1234"}) == 1.0
    assert reward("Answer: -5", {"result": "-5"}) == 1.0 and reward("Answer: 5", {"result": "-5"}) == 0.0
    assert extract_answer("20 - 7 = 13") == (13.0, False)


def test_loader_reads_calc_x_jsonl_and_parquet(tmp_path):
    path = tmp_path / "calc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CALC_X_RECORDS))
    tasks = load(path)
    assert [t["task_id"] for t in tasks] == ["gsm8k__a1", "ape210k__b2"]
    assert tasks[0]["result_float"] == 72.0 and tasks[1]["result"] == "3/4"
    assert reward("Answer: 72", tasks[0]) == 1.0 and reward("Answer: 0.75", tasks[1]) == 1.0
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(CALC_X_RECORDS), tmp_path / "test-00000-of-00001.parquet")
    (tmp_path / "calc.jsonl").unlink()
    assert load(tmp_path) == tasks
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "no result"}) + "\n")
    with pytest.raises(ValueError, match="result"):
        load(bad)


def test_generator_writes_calc_x_the_loader_accepts(tmp_path):
    files = generate(tmp_path, 30, 10, seed=3)
    train, test = load(files["train"]), load(files["test"])
    assert len(train) == 30 and len(test) == 10
    assert not {t["question"] for t in train} & {t["question"] for t in test}
    for record in map(json.loads, files["train"].read_text().splitlines()):
        assert set(record) == {"id", "question", "chain", "result", "result_float"}
        expr = record["chain"].split('<gadget id="calculator">')[1].split("</gadget>")[0]
        assert calculator(expr) == record["result"] and record["chain"].endswith(f"<result>{record['result']}</result>")
        assert any(op in expr for op in ("+", "-")) and float(record["result"]) >= 0  # level 1: add/subtract
    assert generate_records(5, 1) == generate_records(5, 1)  # seeded
    two_step = generate_records(5, 1, level=3)
    assert all(r["chain"].count("<gadget") == 2 for r in two_step)
    assert EXAMPLE.name == "calc" and EXAMPLE.train_agents == "solver"


# -- the AutoGen agent against the scripted server ----------------------------------------------------
def scripted_calc(expression: str, final: str):
    def script(request: dict, api_name: str) -> Reply:
        if RequestView(request, api_name).last_is_tool_result:
            return Reply(final, prompt_token_ids=[1, 2, 3, 4], token_ids=[7, 8, 9], logprobs=[-0.1] * 3)
        return Reply(tool_calls=[ToolCall("calculator", json.dumps({"expression": expression}))],
                     prompt_token_ids=[1, 2, 3], token_ids=[5, 6], logprobs=[-0.2, -0.3])
    return script


def run_rollouts(client, tracer, tasks, model):
    from agentlightning.examples.calc.agent import solve

    ids = [r.rollout_id for r in client.enqueue(tasks, group_id="calc-group", max_attempts=1)]
    results = Runner(client, lambda task: solve(task, model), worker_id="w", tracer=tracer,
                     heartbeat_interval_s=0.2).run()
    api.flush(timeout_s=10.0)
    assert tracer.sink.flush(10.0)
    return ids, results


def test_agent_calls_calculator_then_answers_and_gets_the_reward(global_tracer, client):
    task = {"question": "Ana has 12 apples and gets 7 more. How many apples does she have?", "result": "19"}
    with ScriptedLLMServer(scripted_calc("12 + 7", "12 + 7 = 19\nAnswer: 19")) as llm:
        ids, results = run_rollouts(client, global_tracer, [task], ModelEndpoint(llm.base_url, "scripted"))
        sent = llm.requests
    assert [(r.success, r.final_reward) for r in results] == [(True, 1.0)]
    assert sent[0]["tools"][0]["function"]["name"] == "calculator"
    assert "Answer: N" in sent[0]["messages"][0]["content"]
    assert any(m.get("role") == "tool" and m.get("content") == "19" for m in sent[1]["messages"])

    traces = load_from_client(client, ids)
    tools = [s for s in traces[0].spans if s.kind == spans_pb2.SPAN_KIND_TOOL]
    assert [(s.tool.name, s.tool.result, s.tool.outcome) for s in tools] == [("calculator", "19", 1)]
    batch = build_transitions(traces, LightningRLConfig(agents=EXAMPLE.train_agents, normalizer="none"))
    assert [t.agent_name for t in batch] == ["solver", "solver"]
    assert [list(t.response_token_ids) for t in batch] == [[5, 6], [7, 8, 9]]
    assert [t.breakdown.air for t in batch] == [{"tool_ok": 0.10, "args_valid": 0.05}, {}]
    assert [round(t.reward, 10) for t in batch] == [1.15, 1.0]


def test_failing_calculator_call_shows_as_negative_air(global_tracer, client):
    task = {"question": "Ben has 9 marbles and loses 4. How many are left?", "result": "5"}
    with ScriptedLLMServer(scripted_calc("nine minus four", "I could not compute it.")) as llm:
        ids, results = run_rollouts(client, global_tracer, [task], ModelEndpoint(llm.base_url, "scripted"))
    assert [(r.success, r.final_reward) for r in results] == [(True, 0.0)]
    traces = load_from_client(client, ids)
    tools = [s for s in traces[0].spans if s.kind == spans_pb2.SPAN_KIND_TOOL]
    assert len(tools) == 1 and tools[0].tool.outcome == spans_pb2.TOOL_OUTCOME_ERROR
    with_air = build_transitions(traces, LightningRLConfig(agents="solver", normalizer="none"))
    assert with_air.transitions[0].breakdown.air == {"tool_error": -0.10, "args_valid": 0.05}
    assert [round(t.reward, 10) for t in with_air] == [-0.05, 0.0]
    without = build_transitions(traces, LightningRLConfig(agents="solver", normalizer="none",
                                                           air=AirConfig(enabled=False)))
    assert [t.reward for t in without] == [0.0, 0.0]


# -- the tiny random model through the CPU model server ---------------------------------------------
def test_agent_runs_on_the_cpu_model_server_with_the_tiny_model(global_tracer, client, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("AGENTLIGHTNING_MODEL_CACHE", str(tmp_path / "models"))
    from agentlightning.trainer.serving import ModelServer

    tasks = [{"question": r["question"], "result": r["result"], "max_tokens": 24} for r in generate_records(3, 5)]
    with ModelServer("tiny-random", served_model_name="policy", batch_wait_s=0.05) as server:
        ids, results = run_rollouts(client, global_tracer, tasks, ModelEndpoint(server.base_url, "policy"))
    assert len(results) == 3 and all(r.success for r in results)
    assert all(r.final_reward in (0.0, 0.5, 1.0) for r in results)
    batch = build_transitions(load_from_client(client, ids), LightningRLConfig(agents="solver"))
    assert len(batch) >= 3 and {t.agent_name for t in batch} == {"solver"}
    for t in batch:
        assert t.prompt_token_ids and t.response_token_ids and not t.retokenized
        assert len(t.response_logprobs) == len(t.response_token_ids) <= 24 + 1
        assert t.policy_version == "v0" and t.group_id == "calc-group"


# -- agentlightning demo calc ---------------------------------------------------------------------------
def test_demo_calc_command_with_the_tiny_model(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    env = {**os.environ, "AGENTLIGHTNING_MODEL_CACHE": str(tmp_path / "models"),
           "AGENTLIGHTNING_SPOOL_DIR": str(tmp_path / "spool")}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "agentlightning.core.cli", "demo", "calc", "--model", "tiny-random", "--steps", "1",
         "--n-train", "6", "--n-test", "3", "--group-size", "2", "--tasks-per-step", "2", "--workers", "2",
         "--max-new-tokens", "12", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reward (mean)" in proc.stdout and "tool-error rate" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["before"]["policy_version"] == "v0" and summary["after"]["policy_version"] == "v1"
    assert summary["settings"]["steps"] == 1 and summary["settings"]["learning_rate"] == 4e-5  # resolved values
    # calc warms up on its teacher by default: every training task replayed once, two calls each
    assert summary["warmup"]["rollouts"] == summary["warmup"]["kept_rollouts"] == 6
    assert summary["warmup"]["demonstrations"] == 12 and summary["warmed"]["policy_version"] == "warmup"
    assert "warmed-up (warmup)" in proc.stdout and "RL change" in proc.stdout
    assert summary["before"]["tasks"] == summary["after"]["tasks"] == 3
    assert summary["before"]["llm_calls"] >= 3 and len(summary["train"]) == 1
    assert (out / "reward_curve.png").stat().st_size > 1000
    assert len((out / "data" / "train.jsonl").read_text().splitlines()) == 6


def test_demo_says_which_example_is_missing():
    from agentlightning.examples.demo import DemoError, get_example

    with pytest.raises(DemoError, match="unknown example 'nope'"):
        get_example("nope")
    assert get_example("calc") is EXAMPLE

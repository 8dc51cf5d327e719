"""The warm-up before RL: the calc teacher replays Calc-X chains through the real AutoGen agent, and the
training loop clones those demonstrations into the tiny policy through the real runners, Lightning server,
LightningRL (retokenized with the policy's template) and the TRL update; then RL goes on from there."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from agentlightning.core.lightningrl import LightningRLConfig, build_transitions  # noqa: E402
from agentlightning.core.lightningrl.trace_builder import TraceBuilder  # noqa: E402
from agentlightning.core.lightningrl.types import RolloutTrace  # noqa: E402
from agentlightning.examples.calc.calculator import evaluate  # noqa: E402
from agentlightning.examples.calc.data import generate_records, load  # noqa: E402
from agentlightning.examples.calc.teacher import chain_steps, one_expression, teacher_script  # noqa: E402
from agentlightning.testing.scripted_llm import ScriptedLLMServer  # noqa: E402
from agentlightning.trainer.endpoint import ModelEndpoint  # noqa: E402
from agentlightning.trainer.warmup import WarmupConfig, keep_demonstrations  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402

TWO_STEP = ('<gadget id="calculator">12 + 30</gadget>\n<output>42</output>\n\n'
            '<gadget id="calculator">42 - 2</gadget>\n<output>40</output>\n\n<result>40</result>')


def test_chains_fold_into_one_expression():
    assert chain_steps(TWO_STEP) == [("12 + 30", "42"), ("42 - 2", "40")]
    assert one_expression(chain_steps(TWO_STEP)) == "(12 + 30) - 2"
    assert one_expression([("3 * 4", "12"), ("12 * 12", "144")]) == "(3 * 4) * 12"  # only the first use
    assert one_expression([("5 + 5", "10"), ("100 / 4", "25")]) == "100 / 4"  # 10 is not inside 100
    assert one_expression([]) is None


def test_teacher_plays_the_chain_through_the_real_agent():
    import asyncio

    from agentlightning.examples.calc.agent import answer
    from agentlightning.examples.calc.reward import reward

    tasks = [{"question": "Ana has 12 apples, buys 30 more and then gives 2 away. How many are left?",
              "result": "40", "chain": TWO_STEP}]
    with ScriptedLLMServer(teacher_script(tasks)) as teacher:
        reply = asyncio.run(answer(tasks[0]["question"], ModelEndpoint(teacher.base_url, "teacher"),
                                   temperature=0.0, max_tokens=48))
        sent = teacher.requests
        with pytest.raises(Exception):  # a question it has no worked solution for: HTTP 500, said so
            asyncio.run(answer("What is the meaning of life?", ModelEndpoint(teacher.base_url, "teacher")))
        assert any("no worked solution" in (c.error or "") for c in teacher.calls)
    assert reply == "Answer: 40" and reward(reply, tasks[0]) == 1.0
    assert sent[0]["tools"][0]["function"]["name"] == "calculator"
    assert json.loads(teacher.calls[0].reply.tool_calls[0].arguments) == {"expression": "(12 + 30) - 2"}


def test_generated_and_loaded_tasks_carry_their_chain(tmp_path):
    records = generate_records(3, seed=1, level=3)
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    tasks = load(path)
    assert [t["chain"] for t in tasks] == [r["chain"] for r in records]
    for task in tasks:  # every generated chain folds into an expression with the task's answer
        assert evaluate(one_expression(chain_steps(task["chain"]))) == task["result_float"]


def test_only_rollouts_above_min_reward_become_demonstrations():
    traces = []
    for rid, reward in (("good", 1.0), ("half", 0.5), ("bad", 0.0)):
        b = TraceBuilder(rid)
        root = b.agent("solver")
        b.llm([1, 2, 3], [4, 5], parent=root, logprobs=[-0.1, -0.2])
        traces.append(RolloutTrace(rid, b.spans, final_reward=reward, status=3))
    batch = build_transitions(traces, LightningRLConfig(normalizer="none"))
    kept, rewards = keep_demonstrations(traces, batch.transitions, min_reward=0.5)
    assert [t.rollout_id for t in kept] == ["good"]
    assert kept[0].advantage == 1.0 and kept[0].response_logprobs is None  # the teacher's logps are not ours
    assert sorted(rewards) == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="teacher_url"):
        WarmupConfig(teacher_url="")
    with pytest.raises(ValueError, match="at least 1"):
        WarmupConfig(teacher_url="http://127.0.0.1:1/v1", epochs=0)


# -- the loop's warm-up with the tiny model ------------------------------------------------------------------
def test_loop_warm_up_clones_the_teacher_then_rl_uses_the_policy(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    from agentlightning.trainer.loop import TrainingLoop
    from agentlightning.trainer.loop_config import TrainConfig
    from agentlightning.trainer.update_config import UpdateConfig

    monkeypatch.setenv("AGENTLIGHTNING_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("AGENTLIGHTNING_SPOOL_DIR", str(tmp_path / "spool"))
    tasks = [{**r, "task_id": r["id"], "max_tokens": 8} for r in generate_records(4, seed=3, level=1)]
    with ScriptedLLMServer(teacher_script(tasks)) as teacher:
        config = TrainConfig(agent="agentlightning.examples.calc.agent:solve", data=tasks, model="tiny-random",
                             steps=1, group_size=2, tasks_per_step=1, workers=2, run_dir=tmp_path / "run",
                             progress=False, update=UpdateConfig(learning_rate=5e-3, micro_batch_size=4),
                             lightningrl=LightningRLConfig(agents="solver"),
                             warmup=WarmupConfig(teacher_url=teacher.base_url, tasks=3, epochs=3, batch_size=2))
        loop = TrainingLoop(config)
        try:
            loop.open()
            row = loop.warm_up()
            assert row is not None and loop.warm_up() is None  # once per run
            assert (row["rollouts"], row["kept_rollouts"], row["demonstrations"]) == (3, 3, 6)
            assert row["reward_mean"] == 1.0
            assert row["losses"][-1] < row["losses"][0]  # the policy learned the teacher's replies
            assert json.loads((tmp_path / "run" / "warmup.json").read_text())["demonstrations"] == 6
            # Only the teacher answered the demonstrations: two calls per rollout, a tool call then the answer.
            assert len(teacher.calls) == 6 and teacher.calls[0].reply.tool_calls
            # The warmed-up policy is served and published; the state says so (a resumed loop skips it).
            assert loop.policy.version == "warmup" and loop.client.get_model().version == "warmup"
            assert loop.state.warmed_up and os.path.isdir(loop.state.checkpoint)
            loop.run_step(0)
        finally:
            loop.close()
        assert len(teacher.calls) == 6  # RL rollouts went to the policy, not the teacher
    from agentlightning.core.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "run" / "lightning.db")
    try:
        spans = [s for r in store.list_rollouts(limit=100) if "-s00000-" in r.rollout_id
                 for s in store.get_spans(r.rollout_id) if s.kind == spans_pb2.SPAN_KIND_LLM]
    finally:
        store.close()
    assert spans and {s.llm.policy_version for s in spans} == {"warmup"}


def test_train_command_takes_a_warmup_teacher():
    import argparse

    from agentlightning.trainer.train_cli import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["train", "--agent", "pkg.mod:solve", "--data", "tasks.jsonl"]
    assert config_from_args(parser.parse_args(base)).warmup is None
    config = config_from_args(parser.parse_args(base + ["--warmup-teacher", "http://127.0.0.1:9/v1",
                                                        "--warmup-tasks", "4", "--warmup-epochs", "2"]))
    assert (config.warmup.teacher_url, config.warmup.tasks, config.warmup.epochs) == ("http://127.0.0.1:9/v1", 4, 2)
    assert config.resume_settings()["warmup"] is True

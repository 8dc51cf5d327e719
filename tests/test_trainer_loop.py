"""The closed training loop on CPU with the tiny random model, end to end through real parts: the
embedded Lightning server over SQLite, runner processes running a real ``openai``-client agent
against the in-process model server, LightningRL, the TRL update, hot reload and the
ResourceService. Plus: resume after the loop process is SIGKILLed in the middle of a step."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("openai")

from agentlightning.core import rollout_states as states  # noqa: E402
from agentlightning.core.lightningrl.config import LightningRLConfig  # noqa: E402
from agentlightning.trainer.loop import RESTART_ERROR, TrainingLoop  # noqa: E402
from agentlightning.trainer.loop_config import TrainConfig  # noqa: E402
from agentlightning.trainer.update import weights_fingerprint  # noqa: E402
from agentlightning.trainer.update_config import UpdateConfig  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402

TESTS = Path(__file__).parent
QUESTIONS = [{"question": q} for q in ("What is 2 + 3?", "Hello, world!", "How many apples are left?",
                                       "What is 7 - 3?")]


@pytest.fixture
def loop_env(tmp_path, monkeypatch):
    """Runner processes import tests/trainer_agent.py; models are built into a private cache."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("AGENTLIGHTNING_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("AGENTLIGHTNING_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.syspath_prepend(str(TESTS))
    return tmp_path


def llm_spans(client, rollout_ids):
    out = []
    for rid in rollout_ids:
        out.extend(s for s in client.query_spans(rid) if s.kind == spans_pb2.SPAN_KIND_LLM)
    return out


def test_one_loop_iteration_updates_serves_and_publishes(loop_env):
    run_dir = loop_env / "run"
    config = TrainConfig(agent="trainer_agent:solve", data=QUESTIONS, model="tiny-random", steps=2,
                         group_size=3, tasks_per_step=2, workers=2, run_dir=run_dir, progress=False,
                         update=UpdateConfig(learning_rate=1e-2, micro_batch_size=4),
                         lightningrl=LightningRLConfig(agents="solver"))
    loop = TrainingLoop(config)
    try:
        loop.open()
        assert loop.policy.version == "v0" and loop.client.get_model().version == "v0"
        base = loop._ensure_updater()
        before = weights_fingerprint(base.unwrapped)

        row = loop.run_step(0)
        ids0 = [f"{loop.state.run_id}-s00000-t{j:04d}-g{g:02d}" for j in range(2) for g in range(3)]
        rollouts = [loop.client.get_rollout(rid) for rid in ids0]
        assert all(r.status == states.SUCCEEDED and r.has_final_reward for r in rollouts)
        assert len({r.group_id for r in rollouts}) == 2  # one GRPO group per task
        spans0 = llm_spans(loop.client, ids0)
        assert len(spans0) == 6 and {s.llm.policy_version for s in spans0} == {"v0"}
        assert all(s.llm.completion_token_ids and len(s.llm.completion_logprobs) == len(s.llm.completion_token_ids)
                   for s in spans0)

        # The update trained on the recorded tokens and changed the weights.
        assert row["update"]["samples"] > 0 and row["update"]["old_logps_recorded"] == row["update"]["samples"]
        assert row["update"]["logprob_drift"] < 1e-3  # trainer and server agree on the policy's logprobs
        assert weights_fingerprint(loop.updater.unwrapped) != before
        # The model server serves the new version, and the ResourceService publishes it.
        with urllib.request.urlopen(loop.policy.base_url + "/models") as response:
            assert json.load(response)["data"][0]["version"] == "v1"
        published = loop.client.get_model()
        assert published.version == "v1" and published.endpoint == loop.policy.base_url
        served = loop.policy.server.engine.policy.model
        reloaded = sum(float(p.detach().pow(2).sum()) for p in served.parameters()) ** 0.5
        assert reloaded == pytest.approx(weights_fingerprint(loop.updater.unwrapped), rel=1e-5)

        # The next step's rollouts run on v1: their LLM spans say so.
        row1 = loop.run_step(1)
        ids1 = [f"{loop.state.run_id}-s00001-t{j:04d}-g{g:02d}" for j in range(2) for g in range(3)]
        spans1 = llm_spans(loop.client, ids1)
        assert len(spans1) == 6 and {s.llm.policy_version for s in spans1} == {"v1"}
        assert row1["policy_version"] == "v1" and row1["rollout_policy_versions"] == {"v1": 6}

        # Metrics: file, store, curve.
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [0, 1]
        for r in rows:
            assert r["rollouts"] == 6 and r["success_rate"] is not None and r["tokens_per_s"] > 0
            assert 0.0 <= r["reward_mean"] <= 1.0 and "air" in r and "air_mean" in r
        stored = loop.client.get_model(f"{loop.state.run_id}/metrics/step-00001")
        assert stored.version == "v1" and float(stored.metadata["reward_mean"]) == pytest.approx(rows[1]["reward_mean"])
        assert (run_dir / "reward_curve.png").stat().st_size > 1000
        assert (run_dir / "checkpoints" / "v2" / "model.safetensors").exists()
    finally:
        loop.close()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["step"] == 2 and state["version"] == "v2"


def _rollouts(db: Path) -> dict[str, tuple[int, int, int]]:
    """rollout_id -> (status, attempt_count, updated_ns), read straight from the SQLite file."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return {}
    try:
        rows = conn.execute("SELECT rollout_id, status, attempt_count, updated_ns FROM rollouts").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _train_cmd(run_dir: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "agentlightning.core.cli", "train", "--agent", "trainer_agent:solve",
            "--data", str(data), "--model", "tiny-random", "--steps", "2", "--group-size", "2",
            "--tasks-per-step", "3", "--workers", "2", "--run-dir", str(run_dir), "--run-id", "resume",
            "--lr", "1e-2", "--rollout-timeout", "60", "--no-progress"]


def test_resume_after_sigkill_mid_step_redoes_no_finished_rollout(loop_env):
    run_dir, data, log = loop_env / "run", loop_env / "tasks.jsonl", loop_env / "agent.log"
    data.write_text("".join(json.dumps(dict(q, sleep=1.5)) + "\n" for q in QUESTIONS[:3]))
    env = dict(os.environ, TRAINER_TEST_LOG=str(log))
    db = run_dir / "lightning.db"
    step1 = [f"resume-s00001-t{j:04d}-g{g:02d}" for j in range(3) for g in range(2)]

    proc = subprocess.Popen(_train_cmd(run_dir, data), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:  # kill once step 1 (after one update) has some finished and some unfinished rollouts
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "step 1 never got half done"
            seen = _rollouts(db)
            done = [rid for rid in step1 if rid in seen and seen[rid][0] in states.TERMINAL]
            running = [rid for rid in step1 if rid in seen and seen[rid][0] == states.RUNNING]
            if done and running:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _rollouts(db)
    finished_before = {rid: v for rid, v in before.items() if v[0] in states.TERMINAL}
    assert any(rid.startswith("resume-s00000") for rid in finished_before)
    assert json.loads((run_dir / "state.json").read_text())["step"] == 1
    time.sleep(1.0)  # orphaned runners notice their parent is gone

    second = subprocess.run(_train_cmd(run_dir, data), env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["version"] == "v2"

    after = _rollouts(db)
    for rid, (status, attempts, updated) in finished_before.items():
        assert after[rid] == (status, attempts, updated), f"{rid} was redone"
    assert all(after[rid][0] == states.SUCCEEDED for rid in step1)
    # The agent's own log: every rollout finished before the kill started exactly once.
    starts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        rid, _, what = line.split()
        if what == "start":
            starts[rid] = starts.get(rid, 0) + 1
    assert all(starts[rid] == 1 for rid in finished_before)
    # Rollouts that were mid-flight when the loop died were handed back at once (not after the 60 s
    # heartbeat timeout) and finished by the new runners on their second attempt.
    running_at_kill = [rid for rid in step1 if before[rid][0] == states.RUNNING]
    assert running_at_kill
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for rid in running_at_kill:
            attempts = conn.execute("SELECT number, error FROM attempts WHERE rollout_id=? ORDER BY number",
                                    (rid,)).fetchall()
            assert attempts[0] == (1, RESTART_ERROR) and len(attempts) == 2 and after[rid][1] == 2
            assert starts[rid] in (1, 2)  # the dead runner may have died before the agent started
    finally:
        conn.close()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["step"] == 2 and state["phase"] == "done" and state["incarnations"] == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1] and rows[1]["policy_version"] == "v1"

"""The runner: tasks from the real server, the agent traced under each rollout, results reported."""
from agentlightning.core import rollout_states as states
from agentlightning.core.kinds import SpanKind
from agentlightning.core.runner import Runner


def test_runner_runs_rollouts_and_reports_rewards_and_failures(client, tracer):
    client.enqueue([{"x": 1}, {"x": 2}, {"x": -1}], group_id="g", max_attempts=1)

    def agent(task):
        with tracer.span("step", SpanKind.LLM, agent_name="solver"):
            pass
        if task["x"] < 0:
            raise ValueError("negative input")
        return task["x"] / 2

    results = Runner(client, agent, worker_id="w", tracer=tracer, heartbeat_interval_s=0.05).run()
    assert tracer.sink.flush(10)
    by_reward = sorted((r.final_reward, r.success, r.error) for r in results if r.success)
    assert by_reward == [(0.5, True, ""), (1.0, True, "")]
    failed = [r for r in results if not r.success]
    assert len(failed) == 1 and failed[0].error == "ValueError: negative input"
    stored = client.get_rollout(failed[0].rollout_id)
    assert stored.status == states.FAILED and "negative input" in stored.error
    for result in results:
        spans = client.query_spans(result.rollout_id)
        assert {s.attempt_id for s in spans} == {result.attempt_id}
        names = sorted(s.name for s in spans)
        assert names == (["final", "rollout", "step"] if result.success else ["rollout", "step"])
        assert client.get_rollout(result.rollout_id).has_final_reward == result.success


def test_async_agent_functions_are_awaited(client, tracer):
    client.enqueue([{"x": 3}])

    async def agent(task):
        return float(task["x"])

    (result,) = Runner(client, agent, worker_id="w", tracer=tracer).run()
    assert result.success and result.final_reward == 3.0


def test_runner_waits_out_an_unreachable_server(tmp_path):
    """A runner started before its server (or across a restart) keeps trying instead of dying."""
    import socket
    import threading

    from agentlightning.core.client import LightningClient
    from agentlightning.core.server import LightningServer, ServerConfig
    from agentlightning.core.store.sqlite import SqliteStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LightningClient(f"127.0.0.1:{port}", timeout_s=1.0)
    runner = Runner(client, lambda task: 1.0, worker_id="patient")
    results = []
    thread = threading.Thread(target=lambda: results.extend(runner.run(stop_when_idle=False, idle_wait_s=0.2)))
    thread.start()
    import time

    time.sleep(1.5)  # the runner is retrying against nothing
    assert thread.is_alive()
    server = LightningServer(SqliteStore(tmp_path / "late.db"), ServerConfig(port=port))
    server.start()
    try:
        with LightningClient(server.address) as admin:
            admin.wait_ready(10)
            admin.enqueue([{"x": 1}])
            deadline = time.monotonic() + 20
            while not results and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        runner.stop()
        thread.join(10)
        server.stop()
    assert [r.success for r in results] == [True]

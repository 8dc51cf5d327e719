"""The command line as a user runs it: a server process, SIGTERM, inspection commands."""
import json
import signal
import socket
import subprocess
import sys

from agentlightning.core.client import LightningClient
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.tracer import Tracer

CLI = [sys.executable, "-m", "agentlightning.core.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args, endpoint):
    return subprocess.run([*CLI, *args, "--endpoint", endpoint], capture_output=True, text=True, timeout=60)


def test_serve_inspect_and_clean_sigterm(tmp_path):
    port = _free_port()
    db = tmp_path / "cli.db"
    proc = subprocess.Popen([*CLI, "serve", "--db", str(db), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    endpoint = f"127.0.0.1:{port}"
    try:
        client = LightningClient(endpoint)
        client.wait_ready(20)
        exporter = SpanExporter(ExporterConfig(endpoint=endpoint, spool_dir=str(tmp_path / "spool")))
        tracer = Tracer(exporter)
        (rollout,) = client.enqueue([{"q": "2+2"}], group_id="g-cli")
        _, attempt = client.dequeue("w1")
        with use_rollout(new_rollout_context(rollout.rollout_id, attempt.attempt_id)):
            with tracer.span("solve", SpanKind.AGENT, agent_name="solver"):
                with tracer.span("chat", SpanKind.LLM) as llm:
                    llm.proto.llm.request_model = "tiny"
                    llm.proto.llm.usage.input_tokens, llm.proto.llm.usage.output_tokens = 11, 3
                with tracer.span("calculator", SpanKind.TOOL) as tool:
                    tool.proto.tool.name = "calculator"
                    tool.proto.tool.outcome = ToolOutcome.ERROR
                tracer.emit_reward(1.0, name="correct")
        assert exporter.flush(10) and exporter.stats().acked == 4
        exporter.close()
        client.complete(attempt.attempt_id, "w1", success=True, final_reward=1.0)

        table = _run("rollouts", endpoint=endpoint)
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()[:2]
        assert header.split()[:4] == ["ROLLOUT", "STATUS", "ATTEMPTS", "REWARD"]
        assert row.split()[:4] == [rollout.rollout_id, "succeeded", "1/3", "1.000"]

        listed = json.loads(_run("rollouts", "--json", endpoint=endpoint).stdout)
        assert listed[0]["rollout_id"] == rollout.rollout_id and listed[0]["final_reward"] == 1.0

        tree = _run("spans", rollout.rollout_id, endpoint=endpoint)
        assert tree.returncode == 0, tree.stderr
        lines = tree.stdout.splitlines()
        assert lines[0].startswith("AGENT solve  agent=solver")
        assert "LLM chat" in lines[1] and "tokens=11+3" in lines[1]
        assert "TOOL calculator" in lines[2] and "outcome=ERROR" in lines[2]
        assert "REWARD correct" in lines[3] and "correct=1" in lines[3]

        spans = json.loads(_run("spans", rollout.rollout_id, "--json", endpoint=endpoint).stdout)
        assert len(spans) == 4 and all(len(s["span_id"]) == 16 for s in spans)
        missing = _run("spans", "nope", endpoint=endpoint)
        assert missing.returncode == 1 and "no spans stored" in missing.stdout
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "server stopped" in out
    # Everything acked is still in the file after the shutdown.
    from agentlightning.core.store.sqlite import SqliteStore

    store = SqliteStore(db)
    assert store.count_spans() == 4
    store.close()


def test_cli_reports_an_unreachable_server_clearly():
    result = _run("rollouts", endpoint=f"127.0.0.1:{_free_port()}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE")

"""The smallest complete run: an embedded Lightning server, a queue of tasks, a runner with a tiny
traced agent (an LLM step, a calculator tool, a reward), then what the server stored.

    python -m agentlightning.examples.quickstart [--db agentlightning-quickstart.db]

No model is needed: the "LLM" is a rule that sometimes answers wrongly, so rewards differ.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile

from agentlightning.core.client import LightningClient
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.runner import Runner
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.span_tree import build_tree, format_tree
from agentlightning.core.store import open_store
from agentlightning.core.tracer import Tracer


def make_agent(tracer: Tracer, rng: random.Random):
    def agent(task: dict) -> float:
        """Answer 'a + b' by asking a (fake) model for a calculator call, then running the tool."""
        a, b = task["a"], task["b"]
        with tracer.span("plan", SpanKind.LLM, agent_name="solver") as llm:
            payload = llm.proto.llm
            payload.request_model = "rule-based-demo"
            payload.request_messages.add(role="user", content=f"What is {a} + {b}?")
            arguments = json.dumps({"expression": f"{a} + {b}"}) if rng.random() < 0.7 else "{not json"
            payload.response_messages.add(role="assistant").tool_calls.add(id="call_1", name="calculator",
                                                                          arguments=arguments)
            payload.usage.input_tokens, payload.usage.output_tokens = 14, 9
        with tracer.span("calculator", SpanKind.TOOL, agent_name="solver") as tool:
            tool.proto.tool.name, tool.proto.tool.call_id, tool.proto.tool.arguments = "calculator", "call_1", arguments
            try:
                expression = json.loads(arguments)["expression"]
                result = eval(expression, {"__builtins__": {}})  # demo only: "a + b" of two ints
                tool.proto.tool.arguments_valid, tool.proto.tool.result = True, str(result)
                tool.proto.tool.outcome = ToolOutcome.OK
            except json.JSONDecodeError as exc:
                tool.proto.tool.outcome = ToolOutcome.INVALID_ARGUMENTS
                tool.proto.tool.error_message = str(exc)
                result = None
        return 1.0 if result == a + b else 0.0

    return agent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="SQLite file (default: a temporary one)")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=2)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="agentlightning-quickstart-")
    db = args.db or f"{workdir}/lightning.db"

    server = LightningServer(open_store(db), ServerConfig(port=0))
    server.start()
    print(f"Lightning server on {server.address}, store {db}\n")
    exporter = SpanExporter(ExporterConfig(endpoint=server.address, spool_dir=f"{workdir}/spool"))
    tracer = Tracer(exporter)
    rng = random.Random(1)
    try:
        with LightningClient(server.address) as client:
            for t in range(args.tasks):
                task = {"a": rng.randint(1, 50), "b": rng.randint(1, 50)}
                client.enqueue([task] * args.group_size, group_id=f"task-{t}", task_id=f"task-{t}")
            results = Runner(client, make_agent(tracer, rng), worker_id="quickstart-worker", tracer=tracer).run()
            exporter.flush(10)
            stats = exporter.stats()
            print(f"ran {len(results)} rollouts; spans acked durable by the server: {stats.acked}\n")
            from agentlightning.core.cli import main as cli

            cli(["rollouts", "--endpoint", server.address])
            first = results[0].rollout_id
            print(f"\nspan tree of {first}:")
            print(format_tree(build_tree(client.query_spans(first))))
            print(f"\ninspect it yourself while a server runs: agentlightning spans {first} --endpoint {server.address}")
    finally:
        exporter.close()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LangChain/LangGraph section of ``overhead.py``: a prebuilt ReAct agent, 3 LLM calls and 2 tool calls a run.

LangChain calls our handler inline on the agent's thread (``run_inline``), so time inside the handler's
callbacks is time added to the agent. Each callback is timed and summed per LangChain run id: one
LLM call = chat_model_start + any new_token + llm_end. The handler exports through a real exporter to a
real Lightning server.

    python benchmarks/overhead.py langchain --runs 100
"""
from __future__ import annotations

import statistics
import uuid
import warnings
from typing import Any, Optional

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import ToolNode

from agentlightning.core import context as ctx
from agentlightning.core.deferred import drain_all
from agentlightning.core.tracer import Tracer
from agentlightning.integrations.langchain import LightningCallbackHandler

from overhead_harness import HookTimer, Measurement, Setup, interleaved, lightning_exporter, settle_all
from overhead_scripts import LANGCHAIN_ANSWER as ANSWER

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

_KIND = {"on_chat_model_start": "llm_call", "on_llm_start": "llm_call", "on_llm_new_token": "llm_call",
         "on_llm_end": "llm_call", "on_llm_error": "llm_call",
         "on_tool_start": "tool_call", "on_tool_end": "tool_call", "on_tool_error": "tool_call",
         "on_chain_start": "chain (incl. folded plumbing)", "on_chain_end": "chain (incl. folded plumbing)",
         "on_chain_error": "chain (incl. folded plumbing)"}
_FINAL = ("_end", "_error")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


class NoopHandler(BaseCallbackHandler):
    """A handler that does nothing: what LangChain's own dispatch to *any* handler costs."""

    run_inline = True


class Recorder(BaseCallbackHandler):
    """Keeps every callback LangChain makes during one run, to replay them with warm caches."""

    run_inline = True

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple, dict]] = []

    def __getattribute__(self, name: str) -> Any:
        if name in _KIND:
            events = object.__getattribute__(self, "events")
            return lambda *args, **kwargs: events.append((name, args, kwargs))
        return object.__getattribute__(self, name)


def replay_hot(events: list, tracer: Tracer, chains: str, rounds: int = 200) -> dict[str, float]:
    """Median µs per event when the recorded callbacks are replayed back to back (warm caches): the
    integration's intrinsic cost, free of the cache misses a busy shared machine adds in a real run."""
    timer = HookTimer()
    timer.recording = True
    for _ in range(rounds):
        handler = timed_handler(LightningCallbackHandler(tracer, chains=chains), timer)
        fresh: dict[Any, uuid.UUID] = {}
        with ctx.use_rollout(ctx.new_rollout_context("bench-replay")):
            for name, args, kwargs in events:
                if chains == "none" and name.startswith("on_chain"):
                    continue
                kw = dict(kwargs)
                for key in ("run_id", "parent_run_id"):
                    if kw.get(key) is not None:
                        kw[key] = fresh.setdefault(kw[key], uuid.uuid4())
                getattr(handler, name)(*args, **kw)
    return {kind: round(statistics.median(ns) / 1000, 1) for kind, ns in timer.samples.items()}


def timed_handler(handler: LightningCallbackHandler, timer: HookTimer) -> LightningCallbackHandler:
    """Wrap the handler's callbacks (instance attributes shadow the methods LangChain looks up)."""
    for name, kind in _KIND.items():
        setattr(handler, name, timer.timed(getattr(handler, name), kind, key=lambda *a, **k: k.get("run_id"),
                                           final=name.endswith(_FINAL)))
    return handler


def measure(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None, setup: Setup = Setup(),
            streaming: bool = False, chains: str = "graph", replay_rounds: int = 200) -> Measurement:
    """Runs happen inside one rollout context (as under a runner), so no run pays for creating one."""
    timer = HookTimer()
    with lightning_exporter(workdir) as exporter, setup.model("langchain") as base_url:
        llm = ChatOpenAI(model="scripted", base_url=base_url, api_key="dummy", max_retries=0,
                         streaming=streaming, stream_usage=streaming)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            agent = create_react_agent(llm, ToolNode([add, divide], handle_tool_errors=True), prompt="Use the tools.")
        handler = timed_handler(LightningCallbackHandler(Tracer(exporter), agent_name="calc", chains=chains), timer)
        errors_before = handler.errors  # mapping errors are counted per process (one shared worker)
        rollout = ctx.new_rollout_context("bench-langchain")
        inputs: Any = {"messages": [("user", "What is 2+3 and 1/0?")]}

        def with_handler() -> None:
            with ctx.use_rollout(rollout):
                assert agent.invoke(inputs, config={"callbacks": [handler]})["messages"][-1].content == ANSWER

        def without() -> None:
            assert agent.invoke(inputs)["messages"][-1].content == ANSWER

        noop = NoopHandler()

        def with_noop() -> None:
            assert agent.invoke(inputs, config={"callbacks": [noop]})["messages"][-1].content == ANSWER

        arms = interleaved(with_handler, without, runs, warmup, timer, extra={"noop": with_noop},
                           settle=settle_all(exporter))
        recorder = Recorder()
        agent.invoke(inputs, config={"callbacks": [recorder]})
        hot = replay_hot(recorder.events, Tracer(exporter), chains, replay_rounds)
        drain_all(30.0)
        exporter.flush(30.0)
        stats = exporter.stats()
    return Measurement(
        framework="langchain" + ("_streaming" if streaming else "") + ("" if chains == "graph" else f"_chains_{chains}"),
        runs=runs, hook_ns=dict(timer.samples),
        hook_cpu_ns=dict(timer.cpu_samples),
        arms=arms, events_per_run={"llm_call": 3, "tool_call": 2},
        notes={"handler_errors": handler.errors - errors_before, "replayed_hot_median_us": hot,
               "exporter": {"submitted": stats.submitted, "acked": stats.acked, "dropped": stats.dropped}})


def measure_streaming(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None,
                      setup: Setup = Setup()) -> Measurement:
    """Same agent with ``streaming=True``: adds the per-token callback to each LLM call's cost."""
    return measure(runs, warmup, workdir, setup, streaming=True)


def measure_no_chains(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None,
                      setup: Setup = Setup()) -> Measurement:
    """``chains="none"``: LangChain sends us no chain events (flat tree under the rollout)."""
    return measure(runs, warmup, workdir, setup, chains="none")

"""AutoGen 0.7 section of ``overhead.py``: an ``AssistantAgent`` with two tools, 3 LLM calls and 2 tool calls a run.

What instrumentation adds on the agent's task, all of it timed:

* per LLM call: the whole ``logger.info(LLMCallEvent)`` (or stream start + end) call on
  ``autogen_core.events`` — without us that logger is off and the call returns at the level check, so
  building the log record, our filter and the mapping all count — plus the agent's
  ``ToolCallRequestEvent`` debug record that we also switch on;
* per tool call: starting and ending AutoGen's ``execute_tool`` span on our tracer provider (a no-op
  span without us), the ``ToolCallEvent`` record, and the tool's share of ``ToolCallExecutionEvent``.

Timing wraps the logger's ``_log`` and the provider's ``start_span``/our ``on_end`` for the benchmark
only. Each run's total per kind is divided by that kind's events in the run (one sample per run).
Spans are built on the integration's background worker (``defer=True``): the hooks above only note
events; the bounded drain when the agent's run ends counts under "agent". The worker's own CPU is
not on the agent's thread but shares the machine: the end-to-end delta includes it.
The "without" runs use ``uninstrument()``: loggers back off, and our provider (which stays global once
installed) passes every span through, which costs about what the no-op proxy does.

    python benchmarks/overhead.py autogen --runs 60
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any, Callable, Optional

from autogen_agentchat import EVENT_LOGGER_NAME as CHAT_EVENTS
from autogen_agentchat.agents import AssistantAgent
from autogen_core import EVENT_LOGGER_NAME as CORE_EVENTS
from autogen_ext.models.openai import OpenAIChatCompletionClient
from opentelemetry import trace

from agentlightning.core.tracer import Tracer
from agentlightning.integrations import autogen as autogen_integration
from agentlightning.integrations.autogen import instrument, uninstrument

from overhead_harness import HookTimer, Measurement, Setup, interleaved, lightning_exporter, settle_all
from overhead_scripts import AUTOGEN_ANSWER as ANSWER

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}
_RECORD_KIND = {"LLMCallEvent": "llm_call", "LLMStreamStartEvent": "llm_call", "LLMStreamEndEvent": "llm_call",
                "ToolCallRequestEvent": "llm_call", "ToolCallEvent": "tool_call",
                "ToolCallExecutionEvent": "tool_call"}
_SPAN_KIND = {"execute_tool": "tool_call", "invoke_agent": "agent"}
_OWN = {"llm_call": "llm_call: our hooks only", "tool_call": "tool_call: our hooks only",
        "execute_tool": "tool_call: our hooks only"}


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(reason)


class _Totals:
    """Wall and CPU ns spent per kind during the current run."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self.cpu_ns: dict[str, int] = defaultdict(int)
        self.on = False

    def wrap(self, fn: Callable[..., Any], kind_of: Callable[..., Optional[str]]) -> Callable[..., Any]:
        wall, cpu, ns, cpu_ns = time.perf_counter_ns, time.thread_time_ns, self.ns, self.cpu_ns

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start, start_cpu = wall(), cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.on:
                    kind = kind_of(*args, **kwargs) or "other"
                    ns[kind] += wall() - start
                    cpu_ns[kind] += cpu() - start_cpu

        return wrapper


def _time_hooks(totals: _Totals, recorder: Any) -> None:
    """Everything we add (log records we switch on, GenAI spans instead of no-op ones) and, apart, our hooks."""
    for name in (CORE_EVENTS, CHAT_EVENTS):
        logger = logging.getLogger(name)
        logger._log = totals.wrap(logger._log, lambda level, msg, *a, **k: _RECORD_KIND.get(type(msg).__name__))
    tracer = trace.get_tracer_provider().get_tracer("autogen-core")
    tracer.start_span = totals.wrap(tracer.start_span, lambda name, *a, **k: _SPAN_KIND.get(
        ((k.get("attributes") or (a[2] if len(a) > 2 else None)) or {}).get("gen_ai.operation.name")))
    recorder.on_end = totals.wrap(recorder.on_end, lambda span: _SPAN_KIND.get(
        (span.attributes or {}).get("gen_ai.operation.name")))
    # Our hooks alone (also counted inside the totals above), comparable with other sections' hook times.
    recorder.on_start = totals.wrap(recorder.on_start, lambda span, *a: _OWN.get(
        (span.attributes or {}).get("gen_ai.operation.name")))
    recorder.on_record = totals.wrap(recorder.on_record, lambda record: _OWN.get(
        _RECORD_KIND.get(type(record.msg).__name__)))
    own_end = recorder.on_end
    recorder.on_end = totals.wrap(own_end, lambda span: _OWN.get(
        _SPAN_KIND.get((span.attributes or {}).get("gen_ai.operation.name"))))


def measure(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None, setup: Setup = Setup(),
            streaming: bool = False) -> Measurement:
    totals = _Totals()
    per_run: dict[str, list[int]] = defaultdict(list)
    per_run_cpu: dict[str, list[int]] = defaultdict(list)
    events = {"llm_call": 3, "tool_call": 2, "agent": 1, "llm_call: our hooks only": 3,
              "tool_call: our hooks only": 2}
    with lightning_exporter(workdir) as exporter, setup.model("autogen") as base_url:
        tracer = Tracer(exporter)
        recorder = instrument(tracer)
        _time_hooks(totals, recorder)
        loop = asyncio.new_event_loop()
        extra = {"stream_options": {"include_usage": True}} if streaming else {}
        client = OpenAIChatCompletionClient(model="scripted", base_url=base_url, api_key="dummy",
                                            model_info=MODEL_INFO, max_retries=0, **extra)

        def run_once() -> None:
            agent = AssistantAgent("calc", model_client=client, tools=[add, explode], max_tool_iterations=3,
                                   reflect_on_tool_use=True, model_client_stream=streaming)
            result = loop.run_until_complete(agent.run(task="What is 2 + 3?"))
            assert result.messages[-1].content == ANSWER, result.messages[-1].content

        gate = HookTimer()  # only its ``recording`` flag: interleaved() turns it on after warm-up

        def with_integration() -> None:
            instrument(tracer)
            for tap in autogen_integration._active[1]:  # taps made on instrument() call the timed hook
                tap._on_record = recorder.on_record
            totals.ns.clear()
            totals.cpu_ns.clear()
            totals.on = True
            run_once()
            totals.on = False
            if gate.recording:
                for kind, count in events.items():
                    per_run[kind].append(totals.ns.get(kind, 0) // count)
                    per_run_cpu[kind].append(totals.cpu_ns.get(kind, 0) // count)

        def without() -> None:
            uninstrument()
            run_once()

        arms = interleaved(with_integration, without, runs, warmup, gate, settle=settle_all(exporter))
        uninstrument()
        loop.run_until_complete(client.close())
        loop.close()
        exporter.flush(30.0)
        stats = exporter.stats()
    return Measurement(
        framework="autogen" + ("_streaming" if streaming else ""), runs=runs, hook_ns=dict(per_run),
        hook_cpu_ns=dict(per_run_cpu),
        arms=arms, events_per_run={"llm_call": 3, "tool_call": 2},
        notes={"recorder_errors": recorder.errors, "recorder_dropped": recorder.dropped,
               "exporter": {"submitted": stats.submitted, "acked": stats.acked, "dropped": stats.dropped}})


def measure_streaming(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None,
                      setup: Setup = Setup()) -> Measurement:
    """Same agent with ``model_client_stream=True``: an LLM call is a stream start and a stream end record."""
    return measure(runs, warmup, workdir, setup, streaming=True)

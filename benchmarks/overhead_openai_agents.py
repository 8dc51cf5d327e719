"""OpenAI Agents SDK section of ``overhead.py``: one agent, 2 LLM calls and 3 tool calls a run.

The SDK calls trace processors synchronously on the agent's task, so time inside our processor's hooks
is time added to the agent's thread. Every hook is timed and a span's start + end are summed per SDK
span id (one LLM call = the ``response`` span's start + end; one tool call = the ``function`` span's).
The processor hands span creation and payload mapping to its background finisher (the default), so
those rows are the hand-over cost; the work itself is reported in ``background ...`` rows (CPU moved off
the agent's thread, not removed), and the trace's end waits for what is left (``trace (incl. drain)``,
once a run). ``measure_inline`` runs the same agent with ``defer=False`` (everything on the agent's
thread). Spans go through a real exporter to a real Lightning server.

    python benchmarks/overhead.py openai_agents openai_agents_inline --runs 100
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import defaultdict
from typing import Any, Optional

os.environ.pop("OPENAI_API_KEY", None)  # the SDK's own exporter must have nothing to send with

from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_trace_processors
from agents.tracing import TracingProcessor
from openai import AsyncOpenAI

from agentlightning.core.tracer import Tracer
from agentlightning.integrations.openai_agents import LightningTracingProcessor

from overhead_harness import Measurement, Setup, interleaved, lightning_exporter, settle_all
from overhead_scripts import OPENAI_AGENTS_ANSWER as ANSWER

_EVENT = {"response": "llm_call", "generation": "llm_call", "function": "tool_call", "agent": "agent span",
          "turn": "turn (folded)", "task": "task (folded)"}


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@function_tool
def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(reason)


class TimedProcessor(TracingProcessor):
    """Forwards to our processor; sums each span's start + end hook time (wall and this thread's CPU)."""

    def __init__(self, inner: LightningTracingProcessor, prefix: str = "") -> None:
        self.inner = inner
        self.prefix = prefix
        self.samples: dict[str, list[int]] = defaultdict(list)
        self.cpu_samples: dict[str, list[int]] = defaultdict(list)
        self.recording = False
        self._pending: dict[str, tuple[int, int]] = {}
        finisher = inner._finisher
        if finisher is not None:  # time the background work too, per span type (finisher thread only)
            complete, main = finisher._handle, threading.current_thread()

            def timed_complete(item: tuple) -> None:
                wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
                complete(item)
                if item[0] == 1 and threading.current_thread() is not main:  # a span's end
                    kind = "background " + _EVENT.get(item[1].span_data.type, item[1].span_data.type)
                    self._record(kind, time.perf_counter_ns() - wall, time.thread_time_ns() - cpu)

            finisher._handle = timed_complete

    def _record(self, kind: str, wall_ns: int, cpu_ns: int) -> None:
        if self.recording:
            self.samples[self.prefix + kind].append(wall_ns)
            self.cpu_samples[self.prefix + kind].append(cpu_ns)

    def _timed(self, fn: Any, arg: Any, key: str, kind: Optional[str]) -> None:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        fn(arg)
        wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
        before_wall, before_cpu = self._pending.pop(key, (0, 0))
        if kind is None:
            self._pending[key] = (before_wall + wall, before_cpu + cpu)
        else:
            self._record(kind, before_wall + wall, before_cpu + cpu)

    def on_trace_start(self, trace: Any) -> None:
        self._timed(self.inner.on_trace_start, trace, trace.trace_id, None)

    def on_trace_end(self, trace: Any) -> None:
        self._timed(self.inner.on_trace_end, trace, trace.trace_id, "trace (incl. drain)")

    def on_span_start(self, span: Any) -> None:
        self._timed(self.inner.on_span_start, span, span.span_id, None)

    def on_span_end(self, span: Any) -> None:
        self._timed(self.inner.on_span_end, span, span.span_id,
                    _EVENT.get(span.span_data.type, span.span_data.type))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self) -> None:
        self.inner.force_flush()


def measure(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None, setup: Setup = Setup(),
            defer: bool = True) -> Measurement:
    m = Measurement("openai_agents" + ("" if defer else "_inline"), runs,
                    events_per_run={"llm_call": 2, "tool_call": 3})
    with lightning_exporter(workdir) as exporter, setup.model("openai_agents") as base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="dummy", max_retries=0)
        agent = Agent(name="calc", instructions="Use the tools.", tools=[add, explode],
                      model=OpenAIResponsesModel(model="scripted", openai_client=client),
                      model_settings=ModelSettings(include_usage=True))
        processor = TimedProcessor(LightningTracingProcessor(Tracer(exporter), defer=defer))
        loop = asyncio.new_event_loop()

        def run(processors: list) -> None:
            set_trace_processors(processors)
            assert loop.run_until_complete(Runner.run(agent, "What is 2 + 3?")).final_output == ANSWER

        try:
            m.arms = interleaved(lambda: run([processor]), lambda: run([]), runs, warmup, timer=processor,
                                 settle=settle_all(exporter))
        finally:
            set_trace_processors([])
            loop.close()
        m.hook_ns, m.hook_cpu_ns = dict(processor.samples), dict(processor.cpu_samples)
        stats = exporter.stats()
        m.notes = {"exporter": {"submitted": stats.submitted, "dropped": stats.dropped},
                   "processor_errors": processor.inner.errors,
                   "agent": "1 agent, Responses API; per run: 2 LLM calls, 3 tool calls (ok, raises, invalid JSON)"}
    return m


def measure_inline(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None, setup: Setup = Setup()
                   ) -> Measurement:
    """``defer=False``: every span created and mapped on the agent's thread."""
    return measure(runs, warmup, workdir, setup, defer=False)

"""CrewAI section of ``overhead.py``: a sequential crew of two agents, 4 LLM calls and 2 tool calls a run.

CrewAI runs sync handlers on its own thread pool (stream-chunk handlers inline on the agent's thread).
Our handlers there only note the event; the spans are built in one batch when the kickoff completes
(on CrewAI's pool thread) or by our worker thread in a long crew. So the agent's thread pays our
handlers only as interpreter-lock time, plus the chunk hook when streaming: the end-to-end rows show
it, and the CPU rows show where the work went ("framework's other threads" = CrewAI's pool).
Hook time is the time to build each event's span, wherever it is built: every handler of the listener
is wrapped and its time summed per event (one LLM call = started + chunks + completed, keyed by
CrewAI's ``call_id``; one tool call = started + finished/error). CrewAI already runs handlers of its
own on the same pool for every event we listen to, so the pool hand-off is not ours. The listener
exports through a real exporter to a real Lightning server; runs with the listener registered and
without are interleaved.

The replay feeds the events of one recorded run again (fresh ids) to a fresh listener, back to back on
one thread (``replayed_hot_median_us``): the work itself, with warm caches.

    python benchmarks/overhead.py crewai --runs 60
"""
from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from typing import Any, Callable, Optional

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ["HOME"] = tempfile.mkdtemp(prefix="al-bench-crewai-home-")  # CrewAI writes under $HOME

from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.events import crewai_event_bus  # noqa: E402
from crewai.tools import tool  # noqa: E402

from agentlightning.core.tracer import Tracer  # noqa: E402
from agentlightning.integrations.crewai.listener import AgentLightningListener  # noqa: E402

from overhead_harness import HookTimer, Measurement, Setup, interleaved, lightning_exporter, settle_all  # noqa: E402
from overhead_scripts import CREWAI_ANSWER as ANSWER  # noqa: E402

logging.getLogger("crewai").setLevel(logging.ERROR)  # its per-call token-estimate warning is not ours

# handler name -> (event kind, key of the event it belongs to, whether it closes the event)
_LLM_KEY: Callable[..., Any] = lambda source, event: ("llm", event.call_id)  # noqa: E731
_START_KEY: Callable[..., Any] = lambda source, event: event.event_id  # noqa: E731
_END_KEY: Callable[..., Any] = lambda source, event: event.started_event_id  # noqa: E731
_HOOKS = {
    "_on_llm_start": ("llm_call", _LLM_KEY, False),
    "_on_llm_chunk": ("llm_call", _LLM_KEY, False),
    "_on_llm_end": ("llm_call", _LLM_KEY, True),
    "_on_tool_start": ("tool_call", _START_KEY, False),
    "_on_tool_end": ("tool_call", _END_KEY, True),
    "_on_tool_failure": ("tool failure event (paired: skipped)", _START_KEY, True),
    "_on_agent_start": ("agent", _START_KEY, False),
    "_on_agent_end": ("agent", _END_KEY, True),
    "_on_task_start": ("task", _START_KEY, False),
    "_on_task_end": ("task", _END_KEY, True),
    "_on_crew_start": ("crew", _START_KEY, False),
    "_on_crew_end": ("crew", _END_KEY, True),
    "_on_scope_start": ("other scope (pass-through)", _START_KEY, False),
    "_on_scope_close": ("other scope (pass-through)", _END_KEY, True),
}


@tool("add")
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool("divide")
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


def _crew(base_url: str, stream: bool) -> Crew:
    llm = LLM(model="openai/scripted", base_url=base_url, api_key="dummy", stream=stream)
    mathematician = Agent(role="Mathematician", goal="add numbers", backstory="Good at sums.", tools=[add],
                          llm=llm, verbose=False)
    divider = Agent(role="Divider", goal="divide numbers", backstory="Good at quotients.", tools=[divide],
                    llm=llm, verbose=False)
    tasks = [Task(description="Add 2 and 3.", expected_output="a number", agent=mathematician),
             Task(description="Divide 1 by 0.", expected_output="a number", agent=divider)]
    return Crew(agents=[mathematician, divider], tasks=tasks, process=Process.sequential, verbose=False)


def timed_listener(tracer: Tracer, timer: HookTimer) -> AgentLightningListener:
    """The real listener with each handler wrapped (instance attributes shadow the methods), re-registered."""
    listener = AgentLightningListener(tracer)
    listener.close()
    for name, (kind, key, final) in _HOOKS.items():
        setattr(listener, name, timer.timed(getattr(listener, name), kind, key=key, final=final))
    # The chunk hook is the one CrewAI runs inline on the agent's thread: also time it per chunk.
    listener._on_llm_chunk = timer.timed(listener._on_llm_chunk, "stream chunk (inline, agent thread)",
                                         key=lambda source, event: ("chunk", event.event_id), final=True)
    listener.setup_listeners(crewai_event_bus)
    return listener



def replayed(exporter: Any, base_url: str, stream: bool, repeats: int = 200) -> dict[str, list[int]]:
    """Per-event hook time (ns, wall) when the events of one real run are replayed hot on this thread."""
    recorded: list[tuple[str, Any, Any]] = []
    recorder = AgentLightningListener(Tracer(exporter))
    recorder.close()
    def recording(name: str, hook: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        def handler(source: Any, event: Any) -> Any:  # exactly two parameters: CrewAI counts them
            recorded.append((name, source, event))
            return hook(source, event)
        return handler

    for name in _HOOKS:
        setattr(recorder, name, recording(name, getattr(recorder, name)))
    recorder.setup_listeners(crewai_event_bus)
    try:
        _crew(base_url, stream).kickoff()
        crewai_event_bus.flush()
    finally:
        recorder.close()
    recorded.sort(key=lambda r: r[2].timestamp)
    rounds = []
    for _ in range(repeats):  # fresh ids per round, made before timing
        ids: dict[str, str] = {}

        def fresh(value: Optional[str]) -> Optional[str]:
            return None if value is None else ids.setdefault(value, str(uuid.uuid4()))

        rounds.append([(n, src, ev.model_copy(update={
            k: fresh(getattr(ev, k)) for k in ("event_id", "parent_event_id", "started_event_id",
                                                "previous_event_id", "call_id") if hasattr(ev, k)}))
            for n, src, ev in recorded])
    listener = AgentLightningListener(Tracer(exporter))
    listener.close()
    samples: dict[str, list[int]] = defaultdict(list)
    clock = time.perf_counter_ns
    for index, events in enumerate(rounds):
        per_event: dict[tuple, int] = defaultdict(int)
        for name, source, event in events:
            kind, key, _ = _HOOKS[name]
            handler = getattr(listener, name)
            started = clock()
            handler(source, event)
            per_event[(kind, key(source, event))] += clock() - started
        if index >= repeats // 5:  # the first rounds warm up
            for (kind, _), ns in per_event.items():
                samples[kind].append(ns)
    return dict(samples)


def measure(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None, setup: Setup = Setup(),
            stream: bool = False) -> Measurement:
    timer = HookTimer()
    with lightning_exporter(workdir) as exporter, setup.model("crewai") as base_url:
        listener = timed_listener(Tracer(exporter), timer)
        crew: list[Crew] = []

        def prepare(mode: str) -> None:
            """Untimed: (un)register the listener, build a fresh crew."""
            if mode == "with" and not listener._registered:
                listener.setup_listeners(crewai_event_bus)
            elif mode == "without" and listener._registered:
                listener.close()
            crew[:] = [_crew(base_url, stream)]

        def run() -> None:
            output = crew[0].kickoff()
            crewai_event_bus.flush()  # kickoff flushes before its last event; wait for that one's handlers too
            assert ANSWER in str(output), output

        try:
            arms = interleaved(run, run, runs, warmup, timer, settle=settle_all(exporter), prepare=prepare)
        finally:
            listener.close()
        hot = replayed(exporter, base_url, stream)
        exporter.flush(30.0)
        stats = exporter.stats()
    return Measurement(
        framework="crewai" + ("_streaming" if stream else ""), runs=runs, hook_ns=dict(timer.samples),
        arms=arms, events_per_run={"llm_call": 4, "tool_call": 2},
        hook_cpu_ns=dict(timer.cpu_samples),
        notes={"replayed_hot_median_us": {k: round(statistics.median(v) / 1000, 1) for k, v in hot.items()},
               "listener_errors": listener.linker.errors, "spans_left_open": listener.linker.pending(),
               "exporter": {"submitted": stats.submitted, "acked": stats.acked, "dropped": stats.dropped}})


def measure_streaming(runs: int = 60, warmup: int = 5, workdir: Optional[str] = None,
                      setup: Setup = Setup()) -> Measurement:
    """Same crew with ``stream=True``: the chunk handler runs inline on the agent's thread."""
    return measure(runs, warmup, workdir, setup, stream=True)

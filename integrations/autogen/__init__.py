"""AutoGen 0.7 integration: one line records agent runs, team turns, model calls and tool executions.

    from agentlightning.integrations.autogen import instrument
    instrument()

Nothing in the agent changes. Two public AutoGen hooks feed it:

- OpenTelemetry GenAI spans (``invoke_agent`` per agent run or team turn, ``execute_tool`` per tool)
  become AGENT and TOOL spans carrying the agent's name (see ``otel`` for how the provider is found);
- the ``autogen_core.events`` log records (``LLMCallEvent``, ``LLMStreamStartEvent``/``LLMStreamEndEvent``)
  become LLM spans under the agent that made the call, and ``ToolCallExecutionEvent`` on
  ``autogen_agentchat.events`` supplies each tool's result and ``is_error`` (see ``logtap`` for how
  those loggers are opened without changing what the application's logging shows).

Hooks only note events; spans are built in one batch by a background thread woken when an agent's run ends (and
every half second during a long run).
A team's turns are separate agent spans: run the team inside ``agentlightning.rollout()`` (runners
do) for one rollout per team run; outside a rollout each turn gets a generated one. AutoGen logs a
non-streamed model call once it returned (the LLM span is that instant; a streamed one spans first
chunk to end, without the model name or the offered tools, which AutoGen does not log for streams).
A failed model call logs nothing and shows as an error on the agent span.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

from agentlightning.core.tracer import Tracer
from agentlightning.integrations.autogen.recorder import AutoGenRecorder

__all__ = ["AutoGenRecorder", "instrument", "uninstrument"]

_lock = threading.Lock()
_recorder: Optional[AutoGenRecorder] = None  # kept across uninstrument() so instrument() resumes it
_active: Optional[tuple[Any, list]] = None  # OTel provider used, log taps installed


def instrument(tracer: Optional[Tracer] = None, *, defer: bool = True) -> AutoGenRecorder:
    """Start recording AutoGen (idempotent) and return the recorder.

    ``tracer`` defaults to the process-wide one (``agentlightning.configure``), looked up per span.
    ``defer`` (fixed on the first call) builds spans later, in batches; hooks only note events.
    """
    global _recorder, _active
    import logging

    from autogen_core import EVENT_LOGGER_NAME as CORE_EVENTS

    from agentlightning.integrations.autogen import otel
    from agentlightning.integrations.autogen.logtap import EventTap
    from agentlightning.integrations.autogen.recorder import agentchat_event_handlers, core_event_handlers

    with _lock:
        if _recorder is None:
            _recorder = AutoGenRecorder(tracer, defer=defer)
            _recorder.register_event_types(core_event_handlers())
        elif tracer is not None:
            _recorder.tracer = tracer
        recorder = _recorder
        if _active is not None:
            return recorder
        taps = [EventTap(CORE_EVENTS, logging.INFO, recorder.on_record)]
        try:
            from autogen_agentchat import EVENT_LOGGER_NAME as CHAT_EVENTS

            recorder.register_event_types(agentchat_event_handlers())
            taps.append(EventTap(CHAT_EVENTS, logging.DEBUG, recorder.on_record))
        except ImportError:  # autogen-core alone: model calls and tool spans, no tool results
            pass
        provider = otel.attach(recorder)
        recorder.attached_provider = provider
        recorder.record_passthrough_parents = not isinstance(provider, otel.GenAiTracerProvider)
        for tap in taps:
            tap.install()
        recorder.enabled = True
        _active = (provider, taps)
        return recorder


def uninstrument() -> None:
    """Stop recording and give the loggers their levels back (a provider we installed stays, inert).

    ``instrument()`` resumes the same recorder, so a provider that cannot drop processors never gets two.
    """
    global _active
    from agentlightning.integrations.autogen import otel

    with _lock:
        if _active is None or _recorder is None:
            return
        provider, taps = _active
        _recorder.enabled = False
        _recorder.flush()
        _recorder.tracer = None  # a later instrument() without a tracer uses the process-wide one
        for tap in taps:
            tap.remove()
        otel.detach(provider, _recorder)
        _active = None

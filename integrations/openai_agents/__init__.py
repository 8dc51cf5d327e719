"""OpenAI Agents SDK integration: one line records agents, model calls, tools, handoffs and guardrails.

    from agentlightning.integrations.openai_agents import instrument
    instrument()   # adds a tracing processor; the user's other processors keep running

It uses the SDK's own hook (``agents.add_trace_processor``), so nothing in the agent changes. The SDK
must have tracing on (it is by default; ``OPENAI_AGENTS_DISABLE_TRACING`` or
``RunConfig(tracing_disabled=True)`` turn it off for every processor, ours included). With
``trace_include_sensitive_data=False`` the SDK withholds messages and tool arguments from processors,
so only structure, usage and outcomes are recorded.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

from agentlightning.core.tracer import Tracer
from agentlightning.integrations.openai_agents.processor import LightningTracingProcessor

__all__ = ["LightningTracingProcessor", "instrument", "uninstrument"]

_lock = threading.Lock()
_processor: Optional[LightningTracingProcessor] = None
_added = False  # registered with a provider that does not expose its processor list


def _registered(provider: Any) -> Optional[tuple]:
    """The provider's current processors when it exposes them (the default provider does), else None."""
    multi = getattr(provider, "_multi_processor", None)
    processors = getattr(multi, "_processors", None)
    return tuple(processors) if isinstance(processors, (tuple, list)) else None


def instrument(tracer: Optional[Tracer] = None, **options: Any) -> LightningTracingProcessor:
    """Register the processor once (idempotent) and return it.

    ``tracer`` defaults to the process-wide one (``agentlightning.configure``); ``options`` go to
    ``LightningTracingProcessor`` on first registration. Calling again after the processor list was
    replaced (``set_trace_processors``) adds it back.
    """
    global _processor, _added
    from agents.tracing import add_trace_processor, get_trace_provider

    with _lock:
        if _processor is None:
            _processor = LightningTracingProcessor(tracer, **options)
        elif tracer is not None:
            _processor._tracer = tracer
        _processor.enabled = True
        current = _registered(get_trace_provider())
        if (current is None and not _added) or (current is not None and _processor not in current):
            add_trace_processor(_processor)
            _added = current is None
        return _processor


def uninstrument() -> None:
    """Stop recording: our processor goes inert and is removed from the provider when it can be."""
    global _processor, _added
    from agents.tracing import get_trace_provider, set_trace_processors

    with _lock:
        if _processor is None:
            return
        _processor.enabled = False
        current = _registered(get_trace_provider())
        if current is not None:
            set_trace_processors([p for p in current if p is not _processor])
            _processor, _added = None, False

"""CrewAI integration: one line records every crew, task, agent, LLM call and tool use as spans.

    from agentlightning.integrations.crewai import instrument
    instrument()            # then run crews as usual

Importing this package imports nothing from CrewAI; ``instrument()`` does (and no other framework).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from agentlightning.core.tracer import Tracer
    from agentlightning.integrations.crewai.listener import AgentLightningListener

__all__ = ["AgentLightningListener", "instrument", "uninstrument"]

_lock = threading.Lock()
_listener: Optional["AgentLightningListener"] = None


def instrument(tracer: Optional["Tracer"] = None) -> "AgentLightningListener":
    """Register the listener on CrewAI's event bus, once per process (a second call returns the same one).

    ``tracer`` defaults to the process-wide one (``agentlightning.core.api.get_tracer()``), looked up at
    each span so a later ``configure()`` still applies."""
    global _listener
    from agentlightning.integrations.crewai.listener import AgentLightningListener

    with _lock:
        if _listener is None:
            _listener = AgentLightningListener(tracer)
        elif tracer is not None:
            _listener._tracer_override = tracer
        return _listener


def uninstrument() -> None:
    """Unregister it (nothing happens if ``instrument()`` was never called)."""
    global _listener
    with _lock:
        listener, _listener = _listener, None
    if listener is not None:
        listener.close()


def __getattr__(name: str) -> Any:
    if name == "AgentLightningListener":
        from agentlightning.integrations.crewai.listener import AgentLightningListener

        return AgentLightningListener
    raise AttributeError(name)

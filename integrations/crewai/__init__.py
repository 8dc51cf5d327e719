"""CrewAI integration: one line records every crew, task, agent, LLM call and tool use as spans.

    from agentlightning.integrations.crewai import instrument
    instrument()            # then run crews as usual

Importing this package imports nothing from CrewAI; ``instrument()`` does (and no other framework).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from agentlightning.core.tracer import Tracer
    from agentlightning.integrations.crewai.listener import AgentLightningListener

__all__ = ["AgentLightningListener", "instrument", "uninstrument"]


def instrument(tracer: Optional["Tracer"] = None) -> "AgentLightningListener":
    """Register the listener on CrewAI's event bus (idempotent). ``tracer`` defaults to the process-wide one."""
    from agentlightning.integrations.crewai import listener

    return listener.instrument(tracer)


def uninstrument() -> None:
    """Unregister it (nothing happens if ``instrument()`` was never called)."""
    import sys

    module = sys.modules.get("agentlightning.integrations.crewai.listener")
    if module is not None:
        module.uninstrument()


def __getattr__(name: str) -> Any:
    if name == "AgentLightningListener":
        from agentlightning.integrations.crewai.listener import AgentLightningListener

        return AgentLightningListener
    raise AttributeError(name)

"""Process-wide registration through LangChain's own configure hook (no monkeypatching).

``langchain_core.tracers.context.register_configure_hook`` lets a context variable contribute a handler
to every callback manager LangChain builds. Our variable's *default* is the handler, so it is seen in
every thread and task (a plain ``ContextVar.set`` would only reach the current context); ``handle_class``
makes LangChain skip it when the run already carries a ``LightningCallbackHandler`` (no double spans).
"""
from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Optional

from langchain_core.tracers.context import register_configure_hook

from agentlightning.core.tracer import Tracer
from agentlightning.integrations.langchain.handler import LightningCallbackHandler

_lock = threading.Lock()
_handler: Optional[LightningCallbackHandler] = None
_var: Optional[ContextVar] = None


def instrument(tracer: Optional[Tracer] = None, *, agent_name: str = "", chains: str = "graph"
               ) -> LightningCallbackHandler:
    """Record every LangChain/LangGraph run in this process; returns the (single) global handler.

    Calling it again reconfigures the same handler (new tracer/agent name) rather than adding one.
    """
    global _handler, _var
    with _lock:
        if _handler is None:
            _handler = LightningCallbackHandler(tracer, agent_name=agent_name, chains=chains)
            _var = ContextVar("agentlightning_langchain_handler", default=_handler)
            register_configure_hook(_var, True, LightningCallbackHandler, None)
        else:
            _handler._tracer = tracer
            _handler.agent_name = agent_name
            _handler.chains = chains
        _handler.enabled = True
        return _handler


def uninstrument() -> None:
    """Stop recording (the hook stays registered but its handler does nothing)."""
    with _lock:
        if _handler is not None:
            _handler.enabled = False


def global_handler() -> Optional[LightningCallbackHandler]:
    return _handler

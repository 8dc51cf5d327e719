"""Agent Lightning for LangChain / LangGraph: one line to record runs as spans.

    handler = LightningCallbackHandler()
    graph.invoke(inputs, config={"callbacks": [handler]})   # or, process-wide: instrument()
"""
from agentlightning.integrations.langchain.handler import LightningCallbackHandler
from agentlightning.integrations.langchain.instrument import global_handler, instrument, uninstrument

__all__ = ["LightningCallbackHandler", "global_handler", "instrument", "uninstrument"]

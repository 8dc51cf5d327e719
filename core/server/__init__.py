"""The Lightning server: gRPC ingest, rollout queue and resources over one durable store."""
from agentlightning.core.server.app import LightningServer, ServerConfig, serve

__all__ = ["LightningServer", "ServerConfig", "serve"]

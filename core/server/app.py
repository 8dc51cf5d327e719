"""Assemble the services into one gRPC server with health checks and a clean shutdown."""
from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Optional

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agentlightning.core.server.group_commit import GroupCommitter
from agentlightning.core.server.otlp import otlp_handler
from agentlightning.core.server.resource_service import ResourceService
from agentlightning.core.server.security import SecurityInterceptor
from agentlightning.core.server.rollout_service import RolloutService
from agentlightning.core.server.trace_service import TraceService
from agentlightning.core.store import Store, open_store, redact
from agentlightning.v1 import resources_pb2_grpc, rollouts_pb2_grpc

logger = logging.getLogger("agentlightning.server")

SERVICE_NAMES = (
    "agentlightning.v1.TraceService",
    "agentlightning.v1.RolloutService",
    "agentlightning.v1.ResourceService",
)


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4747  # 0 = pick a free port
    max_workers: int = 32
    max_message_bytes: int = 64 * 1024 * 1024
    expire_interval_s: float = 0.5
    shutdown_grace_s: float = 10.0
    require_auth: bool = False       # tokens from `agentlightning token create`
    tls_cert_file: Optional[str] = None
    tls_key_file: Optional[str] = None
    rate_limit_rps: float = 5000.0   # requests/s per client (token name, else host); 0 = off
    rate_limit_burst: float = 0.0    # 0 = twice the rate


class LightningServer:
    """Owns the store, the group-commit writer and the gRPC server. ``start()``, then ``stop()``."""

    def __init__(self, store: Store, config: Optional[ServerConfig] = None) -> None:
        self.store = store
        self.config = config or ServerConfig()
        self.committer = GroupCommitter(store)
        self.traces = TraceService(store, self.committer)
        self.rollouts = RolloutService(store)
        self.resources = ResourceService(store)
        self.health = health.HealthServicer()
        self.traces.require_ownership = self.config.require_auth
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="agentlightning-rpc"),
            interceptors=[SecurityInterceptor(store, self.config.require_auth, self.config.rate_limit_rps,
                                              self.config.rate_limit_burst)],
            options=[
                ("grpc.max_receive_message_length", self.config.max_message_bytes),
                ("grpc.max_send_message_length", self.config.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._server.add_generic_rpc_handlers((self.traces.handler(),))
        otlp = otlp_handler(self.traces)  # OpenTelemetry senders, when the `otlp` extra is installed
        if otlp is not None:
            self._server.add_generic_rpc_handlers((otlp,))
        rollouts_pb2_grpc.add_RolloutServiceServicer_to_server(self.rollouts, self._server)
        resources_pb2_grpc.add_ResourceServiceServicer_to_server(self.resources, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self.port: Optional[int] = None
        self._stopped = threading.Event()
        self._expirer = threading.Thread(target=self._expire_loop, name="agentlightning-expirer", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    def start(self) -> int:
        address = f"{self.config.host}:{self.config.port}"
        if self.config.tls_cert_file or self.config.tls_key_file:
            if not (self.config.tls_cert_file and self.config.tls_key_file):
                raise ValueError("TLS needs both a certificate and a key file")
            with open(self.config.tls_key_file, "rb") as key, open(self.config.tls_cert_file, "rb") as cert:
                credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
            self.port = self._server.add_secure_port(address, credentials)
        else:
            self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}")
        self._server.start()
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._expirer.start()
        logger.info("Lightning server listening on %s", self.address)
        return self.port

    def _expire_loop(self) -> None:
        while not self._stopped.wait(self.config.expire_interval_s):
            self.rollouts.expire()

    def stop(self, grace_s: Optional[float] = None) -> None:
        """Refuse new calls, let in-flight ones finish (their batches are committed), close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self._server.stop(self.config.shutdown_grace_s if grace_s is None else grace_s).wait()
        self.committer.close()
        self.store.close()
        logger.info("Lightning server stopped")

    def wait(self) -> None:
        self._stopped.wait()


def serve(db: str = "agentlightning.db", config: Optional[ServerConfig] = None,
          ready: Optional[threading.Event] = None) -> None:
    """Run a server until SIGTERM/SIGINT; everything acked before the signal stays stored."""
    config = config or ServerConfig()
    server = LightningServer(open_store(db), config)
    server.start()
    details = ", ".join(filter(None, ["auth on" if config.require_auth else "auth OFF",
                                      "TLS" if config.tls_cert_file else "plaintext"]))
    print(f"agentlightning server listening on {server.address} (store: {redact(db)}; {details})", flush=True)
    stop = threading.Event()

    def on_signal(signum, _frame):
        logger.info("signal %s: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ready is not None:
        ready.set()
    while not stop.wait(0.5):
        pass
    server.stop()
    print("agentlightning server stopped", flush=True)

"""The exporter's settings (with their environment variables) and its per-fate span counters."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from agentlightning.v1 import traces_pb2

DEFAULT_ENDPOINT = "127.0.0.1:4747"


def default_spool_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "agentlightning" / "spool"


@dataclass
class ExporterConfig:
    endpoint: str = DEFAULT_ENDPOINT  # host:port, or several replicas "h1:p,h2:p" (round-robin)
    token: Optional[str] = None
    tls_ca_file: Optional[str] = None  # verify the server's certificate against this CA (enables TLS)
    max_queue_bytes: int = 32 * 1024 * 1024
    # Under a backlog every Export call carries this many spans (or max_batch_bytes). Fewer, larger calls
    # matter most when the agent's own thread keeps the GIL busy: each call needs the GIL a few times,
    # and each time can wait up to Python's 5 ms switch interval (measured while a tight loop produced:
    # ~3x more spans shipped per second at 2048 than at 512). A light load still sends small batches.
    max_batch_spans: int = 2048
    max_batch_bytes: int = 4 * 1024 * 1024
    flush_interval_s: float = 0.2
    rpc_timeout_s: float = 10.0
    # Export calls in flight at once: while the server makes one batch durable, the next is on its way
    # (one at a time leaves both sides idle half the time: measured ~2x slower). Three let the server's
    # group commit merge batches (~1.4 per transaction; two: ~1.05) and measured best of 2, 3 and 4.
    senders: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    spool_dir: Optional[str] = None
    spool_max_bytes: int = 1024 * 1024 * 1024
    # Called on the exporter thread with (ExportRequest bytes, ExportResponse) after each answered
    # batch: for audits and fault tests that must know exactly what the server acknowledged.
    on_ack: Optional[Callable[[bytes, "traces_pb2.ExportResponse"], None]] = None

    @classmethod
    def from_env(cls, **overrides) -> "ExporterConfig":
        env = os.environ
        config = cls(
            endpoint=env.get("AGENTLIGHTNING_ENDPOINT", DEFAULT_ENDPOINT),
            token=env.get("AGENTLIGHTNING_TOKEN") or None,
            tls_ca_file=env.get("AGENTLIGHTNING_TLS_CA") or None,
            spool_dir=env.get("AGENTLIGHTNING_SPOOL_DIR") or None,
        )
        if "AGENTLIGHTNING_MAX_QUEUE_BYTES" in env:
            config.max_queue_bytes = int(env["AGENTLIGHTNING_MAX_QUEUE_BYTES"])
        if "AGENTLIGHTNING_SPOOL_MAX_BYTES" in env:
            config.spool_max_bytes = int(env["AGENTLIGHTNING_SPOOL_MAX_BYTES"])
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise TypeError(f"unknown exporter setting {key!r}")
            setattr(config, key, value)
        return config


@dataclass
class ExporterStats:
    """What happened to every span handed to the exporter."""

    submitted: int = 0
    sent: int = 0        # spans put on the wire (including retries)
    acked: int = 0       # accepted or already stored: durable on the server
    duplicates: int = 0  # subset of acked: the server had them already (a retry)
    rejected: int = 0    # the server refused them as invalid (never retried)
    spooled: int = 0     # written to the spool after a failure
    replayed: int = 0    # acked from the spool
    dropped: dict = field(default_factory=dict)  # reason -> count
    queued_bytes: int = 0
    export_errors: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

"""Shared fixtures: a real Lightning server on 127.0.0.1 over a real SQLite file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

# No framework may phone home from a test run.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from agentlightning.core.client import LightningClient  # noqa: E402
from agentlightning.core.exporter import ExporterConfig, SpanExporter  # noqa: E402
from agentlightning.core.server import LightningServer, ServerConfig  # noqa: E402
from agentlightning.core.store.sqlite import SqliteStore  # noqa: E402
from agentlightning.core.tracer import Tracer  # noqa: E402


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "lightning.db"


@pytest.fixture
def lightning_server(db_path: Path) -> Iterator[LightningServer]:
    """A started server on a free port; ``.address`` is host:port."""
    server = LightningServer(SqliteStore(db_path, default_heartbeat_timeout_s=60.0), ServerConfig(port=0))
    server.start()
    try:
        yield server
    finally:
        server.stop(grace_s=1.0)


@pytest.fixture
def client(lightning_server: LightningServer) -> Iterator[LightningClient]:
    with LightningClient(lightning_server.address) as c:
        yield c


@pytest.fixture
def exporter(lightning_server: LightningServer, tmp_path: Path) -> Iterator[SpanExporter]:
    """An exporter to the test server with its own spool directory and a short flush interval."""
    exp = SpanExporter(ExporterConfig(endpoint=lightning_server.address, spool_dir=str(tmp_path / "spool"),
                                      flush_interval_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.5))
    try:
        yield exp
    finally:
        exp.close()


@pytest.fixture
def tracer(exporter: SpanExporter) -> Tracer:
    """A tracer that exports to the test server. Call ``tracer.sink.flush()`` before reading back."""
    return Tracer(exporter)


@pytest.fixture
def global_tracer(exporter: SpanExporter) -> Iterator[Tracer]:
    """Installs a process-wide tracer exporting to the test server (for one-line integrations)."""
    from agentlightning.core import api

    previous = api._tracer
    api._tracer = Tracer(exporter)
    try:
        yield api._tracer
    finally:
        api._tracer = previous

"""Storage faults: a full disk and a read-only database give clients UNAVAILABLE (so they spool), never
corrupt the file, and ingest resumes by itself when the fault is fixed. Plus a 30 s outage under a
running agent."""
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.core.tracer import Tracer
from spans_factory import llm_span


def _exporter(address: str, spool: Path) -> SpanExporter:
    # 512-span batches: the full-disk test needs the disk to fill part-way through the spans sent.
    return SpanExporter(ExporterConfig(endpoint=address, spool_dir=str(spool), flush_interval_s=0.02,
                                       backoff_initial_s=0.05, backoff_max_s=0.3, rpc_timeout_s=5.0,
                                       max_batch_spans=512))


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MiB filesystem (tmpfs; needs root, which CI and these machines have)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_full_disk_gives_unavailable_then_resumes_without_corruption(small_disk, tmp_path, caplog):
    db = small_disk / "lightning.db"
    server = LightningServer(SqliteStore(db), ServerConfig(port=0))
    server.start()
    exporter = _exporter(server.address, tmp_path / "spool")
    try:
        sent = [llm_span("full", seq=i, text_bytes=2000) for i in range(2500)]  # ~5 MB > 3 MiB
        with caplog.at_level("ERROR", logger="agentlightning.server"):
            for span in sent:
                exporter.submit(span)
            assert exporter.flush(60)
        stats = exporter.stats()
        assert stats.spooled > 0, stats          # the server said UNAVAILABLE; the client kept the rest
        assert "database or disk is full" in caplog.text
        stored_before = server.store.count_spans()
        assert 0 < stored_before < len(sent)
        # Fix the fault: grow the filesystem. Ingest resumes; the spool delivers the rest.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        assert exporter.drain_spool(60)
        assert server.store.count_spans() == len(sent)
    finally:
        exporter.close()
        server.stop()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT span_id) FROM spans").fetchone() == (2500, 2500)
    conn.close()


def test_read_only_database_gives_unavailable_then_resumes(tmp_path):
    """Root ignores file permissions and a busy mount cannot be remounted read-only, so the fault is
    injected in SQLite itself (query_only): writes fail with the same SQLITE_READONLY error."""
    store = SqliteStore(tmp_path / "ro.db")
    server = LightningServer(store, ServerConfig(port=0))
    server.start()
    exporter = _exporter(server.address, tmp_path / "spool")
    try:
        store._writer.execute("PRAGMA query_only=1")
        for i in range(100):
            exporter.submit(llm_span("ro", seq=i))
        assert exporter.flush(20)
        assert exporter.stats().spooled == 100 and store.count_spans() == 0
        store._writer.execute("PRAGMA query_only=0")
        assert exporter.drain_spool(30)
        assert store.count_spans() == 100
    finally:
        exporter.close()
        server.stop()


def test_server_down_30s_while_an_agent_runs(tmp_path):
    db = tmp_path / "down.db"
    server = LightningServer(SqliteStore(db), ServerConfig(port=0))
    port = server.start()
    exporter = _exporter(f"127.0.0.1:{port}", tmp_path / "spool")
    tracer = Tracer(exporter)
    step_times: list[float] = []
    produced: list[bytes] = []
    stop = threading.Event()
    rollout_id = f"down-{uuid.uuid4().hex[:6]}"

    def agent():
        with use_rollout(new_rollout_context(rollout_id)):
            while not stop.is_set():
                t0 = time.perf_counter()
                with tracer.span("step", SpanKind.LLM, agent_name="agent") as s:
                    s.proto.llm.request_messages.add(role="user", content="hello " * 50)
                    produced.append(s.proto.span_id)
                step_times.append(time.perf_counter() - t0)
                time.sleep(0.005)

    thread = threading.Thread(target=agent)
    thread.start()
    time.sleep(1.0)
    server.stop(grace_s=0)
    time.sleep(30.0)                       # down for 30 s; the agent keeps going
    server = LightningServer(SqliteStore(db), ServerConfig(port=port))
    server.start()
    time.sleep(1.0)
    stop.set()
    thread.join()
    try:
        assert exporter.drain_spool(60)
        stored = [s.span_id for s in server.store.get_spans(rollout_id)]
        assert len(stored) == len(set(stored)) and set(stored) == set(produced)
        step_times.sort()
        # Recording a span takes tens of microseconds; blocking on the dead server would take seconds.
        assert step_times[int(len(step_times) * 0.99)] < 0.02, "the agent was slowed by the outage"
        assert len(produced) > 3000  # it really ran throughout
    finally:
        exporter.close()
        server.stop()


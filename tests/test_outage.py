"""Durability across a server outage: the client spools, replays, and the store has each span once."""
import threading
import time
from pathlib import Path

from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.spool import MAGIC, Spool, read_segment
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.core.tracer import Tracer


def _start(db: Path, port: int = 0) -> LightningServer:
    server = LightningServer(SqliteStore(db), ServerConfig(port=port))
    server.start()
    return server


def test_server_down_while_producing_then_back_every_span_once(tmp_path):
    db = tmp_path / "store.db"
    server = _start(db)
    port = server.port
    exporter = SpanExporter(ExporterConfig(endpoint=f"127.0.0.1:{port}", spool_dir=str(tmp_path / "spool"),
                                           flush_interval_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.3,
                                           rpc_timeout_s=2.0, max_batch_spans=50))
    tracer = Tracer(exporter)
    produced = []
    stop = threading.Event()

    def agent():
        with use_rollout(new_rollout_context("outage")):
            i = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                with tracer.span(f"step-{i}", SpanKind.LLM) as s:
                    produced.append(s.proto.span_id)
                assert time.perf_counter() - t0 < 0.5, "the agent was blocked by the exporter"
                i += 1
                time.sleep(0.001)

    thread = threading.Thread(target=agent)
    thread.start()
    time.sleep(0.4)
    server.stop(grace_s=0)  # down while the agent keeps producing
    time.sleep(1.0)
    mid = exporter.stats()
    assert mid.spooled > 0, mid
    server = _start(db, port)  # back on the same address and file
    time.sleep(0.6)
    stop.set()
    thread.join()
    assert exporter.drain_spool(20)
    stats = exporter.stats()
    exporter.close()
    stored = server.store.get_spans("outage")
    server.stop()
    ids = [s.span_id for s in stored]
    assert len(ids) == len(set(ids)), "a span was stored twice"
    assert set(ids) == set(produced), f"lost {len(set(produced) - set(ids))} of {len(produced)}"
    assert stats.dropped_total == 0 and stats.replayed > 0
    assert not list((tmp_path / "spool").glob("*.seg")), "spool not emptied"


def test_spans_spooled_by_one_process_are_delivered_by_the_next(tmp_path, lightning_server):
    spool_dir = tmp_path / "spool"
    dead = SpanExporter(ExporterConfig(endpoint="127.0.0.1:1", spool_dir=str(spool_dir), rpc_timeout_s=0.5,
                                       flush_interval_s=0.02))
    tracer = Tracer(dead)
    with use_rollout(new_rollout_context("handover")):
        for i in range(30):
            with tracer.span(f"s{i}", SpanKind.TOOL):
                pass
    dead.close()  # nothing could be sent: all of it is in the spool now
    assert dead.stats().spooled == 30
    live = SpanExporter(ExporterConfig(endpoint=lightning_server.address, spool_dir=str(spool_dir),
                                       flush_interval_s=0.02))
    assert live.drain_spool(10)
    live.close()
    assert len(lightning_server.store.get_spans("handover")) == 30


def test_corrupt_and_truncated_spool_records_are_skipped_and_named(tmp_path, lightning_server, caplog):
    from agentlightning.core.wire import frame_span
    from spans_factory import llm_span

    spool = Spool(tmp_path / "spool", max_bytes=10**9)
    batches = [[llm_span("spooled", seq=b * 10 + i) for i in range(5)] for b in range(4)]
    for batch in batches:
        spool.append(b"".join(frame_span(s.SerializeToString()) for s in batch))
    spool.seal()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    data = bytearray(segment.read_bytes())
    second = data.find(MAGIC, 1)
    data[second + 20] ^= 0xFF          # flip a payload byte of record 2: checksum mismatch
    segment.write_bytes(bytes(data[:-7]))  # and cut the last record short
    skipped = []
    good = list(read_segment(segment, skipped))
    assert len(good) == 2
    assert [s.reason for s in skipped] == ["checksum mismatch", "truncated record (length %d, %d bytes left)" % (
        len(b"".join(frame_span(s.SerializeToString()) for s in batches[3])),
        len(b"".join(frame_span(s.SerializeToString()) for s in batches[3])) - 7)]
    exporter = SpanExporter(ExporterConfig(endpoint=lightning_server.address, spool_dir=str(tmp_path / "spool")))
    with caplog.at_level("WARNING", logger="agentlightning.spool"):
        assert exporter.drain_spool(10)
    exporter.close()
    assert "checksum mismatch" in caplog.text and segment.name in caplog.text
    stored = {s.sequence for s in lightning_server.store.get_spans("spooled")}
    assert stored == {s.sequence for s in batches[0] + batches[2]}


def test_queue_is_bounded_by_bytes_and_drops_are_counted(tmp_path):
    exporter = SpanExporter(ExporterConfig(endpoint="127.0.0.1:1", spool_dir=str(tmp_path / "spool"),
                                           max_queue_bytes=20_000, flush_interval_s=60, rpc_timeout_s=0.2))
    from spans_factory import llm_span

    accepted = sum(exporter.submit(llm_span("q", seq=i)) for i in range(100))
    stats = exporter.stats()
    assert 0 < accepted < 100
    assert stats.dropped == {"queue_full": 100 - accepted}
    assert stats.queued_bytes <= 20_000
    exporter.close()


def test_spool_cap_is_respected(tmp_path):
    from spans_factory import llm_span

    exporter = SpanExporter(ExporterConfig(endpoint="127.0.0.1:1", spool_dir=str(tmp_path / "spool"),
                                           spool_max_bytes=30_000, rpc_timeout_s=0.2, flush_interval_s=0.01,
                                           max_batch_spans=10))
    for i in range(200):
        exporter.submit(llm_span("cap", seq=i))
    exporter.close()
    stats = exporter.stats()
    assert stats.dropped.get("spool_full", 0) > 0
    assert stats.spooled + stats.dropped_total == 200
    assert sum(p.stat().st_size for p in (tmp_path / "spool").iterdir()) <= 30_000


def test_a_long_running_agent_replays_its_spool_without_being_closed(tmp_path):
    """After an outage the worker replays on its own (no drain/close needed) once the server is back."""
    from spans_factory import llm_span

    db = tmp_path / "late.db"
    server = _start(db)
    port = server.port
    server.stop(grace_s=0)
    exporter = SpanExporter(ExporterConfig(endpoint=f"127.0.0.1:{port}", spool_dir=str(tmp_path / "spool"),
                                           flush_interval_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.2,
                                           rpc_timeout_s=1.0))
    for i in range(50):
        exporter.submit(llm_span("late", seq=i))
    assert exporter.flush(10)
    assert exporter.stats().spooled == 50
    server = _start(db, port)
    try:
        deadline = time.monotonic() + 15
        while exporter.stats().replayed < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert exporter.stats().replayed == 50
        assert len(server.store.get_spans("late")) == 50
    finally:
        exporter.close()
        server.stop()

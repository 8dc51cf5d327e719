"""One load-generating client process for the crash tests.

    python crash_client.py INDEX SPANS ENDPOINT SPOOL_DIR ACK_LOG [RATE]

Emits SPANS spans with ids (INDEX, n) through the real Tracer + SpanExporter, logs the ids of every span
the server acknowledged (appended and fsynced after each ack), then drains its spool and exits 0 when
everything it produced was acknowledged.
"""
from __future__ import annotations

import os
import struct
import sys
import time

from agentlightning.core.context import new_rollout_context, use_rollout
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind
from agentlightning.core.tracer import Tracer
from agentlightning.core.wire import split_export_request
from agentlightning.v1 import spans_pb2


def span_id(index: int, n: int) -> bytes:
    return struct.pack(">II", index + 1, n + 1)


def main() -> int:
    index, total, endpoint, spool_dir, ack_log = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0  # spans/s; 0 = as fast as possible
    log = open(ack_log, "ab", buffering=0)

    def on_ack(payload: bytes, response) -> None:
        if response.rejected:
            raise SystemExit(f"server rejected spans: {list(response.results)[:3]}")
        ids = b"".join(spans_pb2.Span.FromString(chunk).span_id for chunk in split_export_request(payload))
        log.write(ids)
        os.fsync(log.fileno())

    exporter = SpanExporter(ExporterConfig(endpoint=endpoint, spool_dir=spool_dir, flush_interval_s=0.01,
                                           backoff_initial_s=0.05, backoff_max_s=0.5, rpc_timeout_s=3.0,
                                           max_batch_spans=200, on_ack=on_ack))
    tracer = Tracer(exporter)
    start = time.monotonic()
    for n in range(total):
        if n % 100 == 0:
            context = new_rollout_context(f"crash-{index}-{n // 100}")
        with use_rollout(context):
            span = tracer.start_span("chat", SpanKind.LLM, agent_name=f"client-{index}")
            span.proto.span_id = span_id(index, n)
            span.proto.llm.request_messages.add(role="user", content="x" * 300)
            span.end()
        if rate and n % 50 == 0:  # a sustained stream over the whole run, not one burst
            ahead = n / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    deadline = time.monotonic() + 300
    drained = False
    while not drained and time.monotonic() < deadline:
        drained = exporter.drain_spool(10)  # True once queue and spool are empty: all acked
    stats = exporter.stats()
    exporter.close()
    print(f"client {index}: produced {total} acked {stats.acked} duplicates {stats.duplicates} "
          f"spooled {stats.spooled} replayed {stats.replayed} dropped {stats.dropped}", flush=True)
    return 0 if drained and not stats.dropped else 1


if __name__ == "__main__":
    sys.exit(main())

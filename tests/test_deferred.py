"""The shared background worker of the integrations, and flush() draining it."""
import threading
import time

from agentlightning.core import api
from agentlightning.core.deferred import DeferredWorker, drain_all
from agentlightning.core.kinds import SpanKind


def test_items_are_applied_in_order_off_the_calling_thread():
    seen, threads = [], set()

    def handle(item):
        seen.append(item)
        threads.add(threading.current_thread().name)

    worker = DeferredWorker(handle, name="test-worker", interval_s=0.001)
    for i in range(500):
        assert worker.submit(i)
    deadline = time.monotonic() + 5
    while len(seen) < 500 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == list(range(500))
    assert "test-worker" in threads


def test_backlog_is_bounded_and_errors_are_counted():
    gate = threading.Event()
    worker = DeferredWorker(lambda item: gate.wait(5) and (1 / item), max_backlog=3, interval_s=0.001)
    accepted = [worker.submit(x) for x in (0, 1, 1, 1, 1, 1)]
    assert accepted.count(False) >= 2
    gate.set()
    assert worker.drain(5)
    assert worker.errors == 1  # 1 / 0


def test_flush_drains_integration_workers_before_the_exporter(global_tracer, client):
    from agentlightning.core.context import new_rollout_context

    rollout = new_rollout_context("deferred-rollout")

    def make_span(name):
        global_tracer.start_span(name, SpanKind.TOOL, rollout=rollout).end()

    worker = DeferredWorker(make_span, interval_s=10.0)
    worker._started = True  # no thread: only a drain can apply the items
    for i in range(20):
        assert worker.submit(f"deferred-{i}")
    assert worker.pending == 20
    assert api.flush(10)  # drains the worker on this thread, then flushes the exporter
    assert worker.pending == 0 and drain_all(1)
    stored = sorted(s.name for s in client.query_spans("deferred-rollout"))
    assert stored == sorted(f"deferred-{i}" for i in range(20))

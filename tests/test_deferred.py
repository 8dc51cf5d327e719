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


def test_a_kick_has_the_thread_handle_the_queue_now():
    """A run's end kicks the worker: its items are applied on the worker's thread at once, not at its next
    look (here an hour away), and the kicking thread does none of the work."""
    done = threading.Event()
    applied_on = []

    def handle(item):
        applied_on.append(threading.current_thread().name)
        if item == "last":
            done.set()

    worker = DeferredWorker(handle, name="kicked-worker", interval_s=3600)
    for item in ("a", "b", "last"):
        worker.submit(item)
    time.sleep(0.05)
    assert not done.is_set()  # nothing wakes the thread per item
    worker.kick()
    assert done.wait(5)
    assert applied_on == ["kicked-worker"] * 3
    worker.kick()  # nothing queued: a no-op


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


def test_spans_still_deferred_at_exit_reach_the_server(lightning_server, tmp_path):
    """A process that exits right after queuing work on an integration worker loses nothing."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import agentlightning as agl
        from agentlightning.core.context import new_rollout_context
        from agentlightning.core.deferred import DeferredWorker
        agl.configure({lightning_server.address!r}, spool_dir={str(tmp_path / "spool")!r})
        rollout = new_rollout_context("exit-rollout")
        tracer = agl.get_tracer()
        worker = DeferredWorker(lambda name: tracer.start_span(name, agl.SpanKind.TOOL, rollout=rollout).end(),
                                interval_s=60.0)
        worker._started = True  # no thread: only the exit drain can apply these
        for i in range(10):
            worker.submit(f"late-{{i}}")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    stored = sorted(s.name for s in lightning_server.store.get_spans("exit-rollout"))
    assert stored == sorted(f"late-{i}" for i in range(10))

"""Several ingest replicas on one PostgreSQL database: every span and rollout exactly once, even when
a replica is killed mid-run. Real server processes (`agentlightning serve --db postgresql://...`),
real runner processes (agentlightning.core.runner.Runner), clients given every replica."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from agentlightning.core import rollout_states as states
from agentlightning.core.client import LightningClient
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.store.postgres import PostgresStore
from pg_fixtures import pg_server_url, pg_url  # noqa: F401 (fixtures)
from spans_factory import llm_span

RUNNER = r"""
import json, signal, sys, time
from agentlightning.core.client import LightningClient
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.kinds import SpanKind
from agentlightning.core.runner import Runner
from agentlightning.core.tracer import Tracer

endpoint, worker, spool, out = sys.argv[1:5]
exporter = SpanExporter(ExporterConfig(endpoint=endpoint, spool_dir=spool, flush_interval_s=0.05,
                                       backoff_initial_s=0.05, backoff_max_s=0.5))
emitted = []

class Recording:  # remembers which spans this runner produced, then hands them to the exporter
    def submit(self, span):
        emitted.append([span.rollout_id, span.span_id.hex()])
        return exporter.submit(span)

tracer = Tracer(Recording())

def agent(task):
    for step in range(4):
        with tracer.span(f"step-{step}", SpanKind.TOOL):
            time.sleep(0.02)
    return float(task["i"])

client = LightningClient(endpoint, timeout_s=10)
runner = Runner(client, agent, worker, tracer=tracer, heartbeat_interval_s=0.3)
signal.signal(signal.SIGTERM, lambda *_: runner.stop())
results = runner.run(idle_wait_s=0.5, stop_when_idle=False)
flushed = exporter.flush(60)
exporter.close()
with open(out, "w") as f:
    json.dump({"emitted": emitted, "flushed": flushed, "stats": repr(exporter.stats()),
               "results": [[r.rollout_id, r.success] for r in results]}, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db: str, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agentlightning.core.cli", "serve", "--db", db, "--port",
                             str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen, str]]]:
    procs = []
    for i in range(2):
        port = _free_port()
        procs.append((_serve(pg_url, port, tmp_path / f"replica-{i}.log"), f"127.0.0.1:{port}"))
    try:
        for proc, address in procs:
            with LightningClient(address) as probe:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, f"replica {address} exited:\n{(tmp_path / 'replica-0.log').read_text()}" \
                        f"\n{(tmp_path / 'replica-1.log').read_text()}"
                    try:
                        probe.wait_ready(1)
                        break
                    except grpc.FutureTimeoutError:
                        assert time.monotonic() < deadline, f"replica {address} did not start"
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in procs:
            proc.wait(30)


def test_two_replicas_many_runners_one_killed_everything_exactly_once(replicas, tmp_path: Path):
    endpoint = ",".join(address for _, address in replicas)
    n_rollouts, n_runners = 60, 3
    with LightningClient(endpoint) as client:
        client.wait_ready(30)
        made = client.enqueue([{"i": i} for i in range(n_rollouts)], max_attempts=5, heartbeat_timeout_s=3.0)
        expected = {r.rollout_id for r in made}
        runners = [subprocess.Popen([sys.executable, "-c", RUNNER, endpoint, f"runner-{i}", str(tmp_path / f"spool-{i}"),
                                     str(tmp_path / f"runner-{i}.json")]) for i in range(n_runners)]
        try:
            deadline = time.monotonic() + 240
            killed = False
            while time.monotonic() < deadline:
                done = client.list_rollouts(status=states.SUCCEEDED, limit=1000)
                if not killed and len(done) >= n_rollouts // 3:
                    replicas[0][0].send_signal(signal.SIGKILL)  # mid-run: calls in flight on it fail
                    killed = True
                if len(done) == n_rollouts:
                    break
                time.sleep(0.1)
            assert killed
        finally:
            for r in runners:
                r.send_signal(signal.SIGTERM)
            for r in runners:
                r.wait(90)
        assert all(r.returncode == 0 for r in runners)
        reports = [json.loads((tmp_path / f"runner-{i}.json").read_text()) for i in range(n_runners)]
        assert all(rep["flushed"] for rep in reports), [rep["stats"] for rep in reports]
        assert all(rep["results"] for rep in reports), "every runner took work"

        rollouts = {r.rollout_id: r for r in client.list_rollouts(limit=1000)}
        assert set(rollouts) == expected
        for rollout_id, rollout in rollouts.items():
            assert rollout.status == states.SUCCEEDED, (rollout_id, rollout.error)
            attempts = client.list_attempts(rollout_id)
            assert [a.status for a in attempts].count(states.SUCCEEDED) == 1
            assert rollout.final_reward == json.loads(rollout.input_json)["i"]

        emitted: dict[str, list[str]] = {}
        for rep in reports:
            for rollout_id, span_id in rep["emitted"]:
                emitted.setdefault(rollout_id, []).append(span_id)
        assert set(emitted) == expected
        for rollout_id, span_ids in emitted.items():
            stored = [s.span_id.hex() for s in client.query_spans(rollout_id)]
            assert len(stored) == len(set(stored)), f"{rollout_id}: a span stored twice"
            assert sorted(stored) == sorted(span_ids), f"{rollout_id}: spans lost or foreign"


def test_a_client_given_two_replicas_spreads_calls_and_survives_one(pg_url: str, tmp_path: Path):
    """In-process replicas, so each one's commit counter shows the load was spread."""
    servers = [LightningServer(PostgresStore(pg_url), ServerConfig(port=0)) for _ in range(2)]
    for s in servers:
        s.start()
    try:
        endpoint = ",".join(s.address for s in servers)
        exporter = SpanExporter(ExporterConfig(endpoint=endpoint, spool_dir=str(tmp_path / "spool"),
                                               flush_interval_s=0.01, max_batch_spans=10, senders=1,
                                               backoff_initial_s=0.05, backoff_max_s=0.2))
        sent = []
        for i in range(200):
            span = llm_span("spread", seq=i, text_bytes=100)
            sent.append(span.span_id)
            exporter.submit(span)
            if i % 10 == 9:
                assert exporter.flush(30)
        assert all(s.committer.groups > 0 for s in servers), [s.committer.groups for s in servers]
        servers[0].stop(grace_s=0)
        with LightningClient(endpoint) as client:
            made = client.enqueue([{"i": i} for i in range(10)])
            assert len({r.rollout_id for r in made}) == 10
            for i in range(200, 260):
                span = llm_span("spread", seq=i, text_bytes=100)
                sent.append(span.span_id)
                exporter.submit(span)
            assert exporter.flush(30)
            exporter.close()
            stored = [s.span_id for s in client.query_spans("spread")]
            assert sorted(stored) == sorted(sent)
            assert client.dequeue("w") is not None
    finally:
        for s in servers:
            s.stop(grace_s=0)


def test_serve_refuses_a_postgres_url_it_cannot_reach(tmp_path: Path):
    port = _free_port()
    done = subprocess.run([sys.executable, "-m", "agentlightning.core.cli", "serve", "--db",
                           f"postgresql://x:y@127.0.0.1:{_free_port()}/none", "--port", str(port)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "cannot connect to PostgreSQL" in done.stderr


def test_replica_lists_become_one_grpc_target():
    from agentlightning.core.channel import replica_target

    assert replica_target(["127.0.0.1:5", " 127.0.0.2:6"]) == ("ipv4:127.0.0.1:5,127.0.0.2:6", None)
    target, name = replica_target(["localhost:5", "127.0.0.1:6"])
    assert name == "localhost" and target.startswith(("ipv4:127.0.0.1:5", "ipv6:[::1]:5"))
    assert replica_target(["[::1]:7", "[::1]:8"]) == ("ipv6:[::1]:7,[::1]:8", None)
    with pytest.raises(ValueError, match="host:port"):
        replica_target(["127.0.0.1", "127.0.0.1:6"])

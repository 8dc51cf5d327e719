"""Security: tokens on every service, roles, attempt ownership, TLS, size and rate limits, quiet logs."""
import logging
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentlightning.core.auth import hash_token, new_token
from agentlightning.core.client import LightningClient
from agentlightning.core.exporter import ExporterConfig, SpanExporter
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.v1 import spans_pb2
from spans_factory import llm_span


def _tokens(store: SqliteStore, *specs: tuple[str, str]) -> dict[str, str]:
    out = {}
    for name, role in specs:
        out[name] = new_token()
        store.add_token(name, role, hash_token(out[name]))
    return out


@pytest.fixture
def secure(tmp_path):
    store = SqliteStore(tmp_path / "secure.db")
    tokens = _tokens(store, ("admin", "admin"), ("worker-a", "worker"), ("worker-b", "worker"), ("viewer", "reader"))
    server = LightningServer(store, ServerConfig(port=0, require_auth=True))
    server.start()
    yield server, tokens
    server.stop(grace_s=0)


def _export(address: str, spans, token=None, tls_ca=None):
    from agentlightning.core.channel import open_channel
    from agentlightning.v1 import traces_pb2, traces_pb2_grpc

    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with open_channel(address, tls_ca) as channel:
        return traces_pb2_grpc.TraceServiceStub(channel).Export(
            traces_pb2.ExportRequest(spans=spans), timeout=10, metadata=metadata)


def test_every_service_requires_a_valid_token(secure):
    server, tokens = secure
    anonymous = LightningClient(server.address)
    wrong = LightningClient(server.address, token=new_token())
    for call in (lambda c: c.list_rollouts(), lambda c: c.enqueue([{}]), lambda c: c.get_model(),
                 lambda c: c.query_spans("r"), lambda c: c.dequeue("w")):
        for client in (anonymous, wrong):
            with pytest.raises(grpc.RpcError) as err:
                call(client)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        _export(server.address, [llm_span()])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "missing access token" in err.value.details()
    # Health checks stay open for load balancers.
    with grpc.insecure_channel(server.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    admin = LightningClient(server.address, token=tokens["admin"])
    assert admin.list_rollouts() == []


def test_roles_limit_what_a_token_may_do(secure):
    server, tokens = secure
    viewer = LightningClient(server.address, token=tokens["viewer"])
    worker = LightningClient(server.address, token=tokens["worker-a"])
    assert viewer.list_rollouts() == []
    with pytest.raises(grpc.RpcError) as err:
        viewer.enqueue([{"q": 1}])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "role reader" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        _export(server.address, [llm_span()], token=tokens["viewer"])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        worker.enqueue([{"q": 1}])  # only admins feed the queue
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _export(server.address, [llm_span("live-1")], token=tokens["worker-a"]).accepted == 1


def test_revoked_tokens_stop_working(secure):
    server, tokens = secure
    worker = LightningClient(server.address, token=tokens["worker-b"])
    assert worker.list_rollouts() == []
    assert server.store.revoke_token("worker-b")
    time.sleep(1.2)  # token cache
    with pytest.raises(grpc.RpcError) as err:
        worker.list_rollouts()
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.value.details()


def test_tokens_are_stored_only_as_hashes(secure, tmp_path):
    server, tokens = secure
    raw = (tmp_path / "secure.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("secure.db-wal"))
    for token in tokens.values():
        assert token.encode() not in raw
        assert hash_token(token) in raw


def test_only_the_worker_holding_the_attempt_writes_its_spans(secure):
    server, tokens = secure
    admin = LightningClient(server.address, token=tokens["admin"])
    worker_a = LightningClient(server.address, token=tokens["worker-a"])
    (rollout,) = admin.enqueue([{"q": 1}])
    _, attempt = worker_a.dequeue("a")
    mine = llm_span(rollout.rollout_id)
    mine.attempt_id = attempt.attempt_id
    forged = llm_span(rollout.rollout_id)
    forged.attempt_id = attempt.attempt_id
    made_up = llm_span(rollout.rollout_id)
    made_up.attempt_id = "invented:9"
    assert _export(server.address, [mine], token=tokens["worker-a"]).accepted == 1
    response = _export(server.address, [forged, made_up], token=tokens["worker-b"])
    assert (response.accepted, response.rejected) == (0, 2)
    assert "is not held by token 'worker-b'" in response.results[0].reason
    response = _export(server.address, [made_up], token=tokens["worker-a"])
    assert response.rejected == 1  # an attempt that does not exist is held by nobody
    assert [s.span_id for s in admin.query_spans(rollout.rollout_id)] == [mine.span_id]


def test_cli_token_lifecycle(tmp_path):
    import sys

    db = str(tmp_path / "cli.db")
    cli = [sys.executable, "-m", "agentlightning.core.cli", "token"]
    created = subprocess.run([*cli, "create", "runner-1", "--role", "worker", "--db", db],
                             capture_output=True, text=True, check=True)
    token = created.stdout.strip()
    assert token.startswith("alt_") and len(token) > 40 and "shown once" in created.stderr
    again = subprocess.run([*cli, "create", "runner-1", "--db", db], capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = subprocess.run([*cli, "list", "--db", db], capture_output=True, text=True, check=True).stdout
    assert listed.split() == ["runner-1", "worker", "active"] and token not in listed
    subprocess.run([*cli, "revoke", "runner-1", "--db", db], check=True, capture_output=True)
    listed = subprocess.run([*cli, "list", "--db", db], capture_output=True, text=True, check=True).stdout
    assert listed.split() == ["runner-1", "worker", "revoked"]
    refused = subprocess.run([sys.executable, "-m", "agentlightning.core.cli", "serve", "--host", "0.0.0.0",
                              "--db", db], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "without --auth" in refused.stderr


def _self_signed(directory: Path, name: str) -> tuple[str, str]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_client_verifies_the_server(tmp_path):
    cert, key = _self_signed(tmp_path, "server")
    other_ca, _ = _self_signed(tmp_path, "other")
    server = LightningServer(SqliteStore(tmp_path / "tls.db"),
                             ServerConfig(host="localhost", port=0, tls_cert_file=cert, tls_key_file=key))
    server.start()
    address = f"localhost:{server.port}"
    try:
        assert LightningClient(address, tls_ca_file=cert).list_rollouts() == []
        for bad in (LightningClient(address, timeout_s=3), LightningClient(address, tls_ca_file=other_ca, timeout_s=3)):
            with pytest.raises(grpc.RpcError) as err:
                bad.list_rollouts()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        exporter = SpanExporter(ExporterConfig(endpoint=address, tls_ca_file=cert, spool_dir=str(tmp_path / "sp")))
        assert exporter.submit(llm_span("tls-rollout"))
        assert exporter.flush(10) and exporter.stats().acked == 1
        exporter.close()
    finally:
        server.stop(grace_s=0)


def test_oversized_messages_are_refused_and_the_exporter_splits(tmp_path):
    server = LightningServer(SqliteStore(tmp_path / "small.db"), ServerConfig(port=0, max_message_bytes=64 * 1024))
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            _export(server.address, [llm_span("big", seq=i, text_bytes=4000) for i in range(40)])
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        exporter = SpanExporter(ExporterConfig(endpoint=server.address, spool_dir=str(tmp_path / "sp"),
                                               flush_interval_s=0.02))
        huge = llm_span("big", seq=999)
        huge.llm.request_messages.add(role="user", content="x" * 100_000)
        for i in range(40):
            exporter.submit(llm_span("big", seq=i, text_bytes=4000))
        exporter.submit(huge)
        assert exporter.flush(20)
        stats = exporter.stats()
        exporter.close()
        assert stats.acked == 40 and stats.dropped == {"span_too_large": 1}
        assert len(server.store.get_spans("big")) == 40
    finally:
        server.stop(grace_s=0)


def test_rate_limit_per_client(tmp_path):
    server = LightningServer(SqliteStore(tmp_path / "rl.db"),
                             ServerConfig(port=0, rate_limit_rps=5, rate_limit_burst=5))
    server.start()
    try:
        client = LightningClient(server.address)
        codes = []
        for _ in range(15):
            try:
                client.list_rollouts()
                codes.append("ok")
            except grpc.RpcError as err:
                codes.append(err.code())
                assert "rate limit of 5 requests/s exceeded" in err.details()
        assert codes[:5] == ["ok"] * 5 and grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        time.sleep(1.0)
        assert client.list_rollouts() == []  # refilled
    finally:
        server.stop(grace_s=0)


def test_logs_carry_no_tokens_or_prompts(secure, caplog):
    server, tokens = secure
    span = llm_span("quiet")
    span.llm.request_messages[0].content = "SECRET-PROMPT-TEXT"
    bad = llm_span("quiet")
    bad.kind = spans_pb2.SPAN_KIND_REWARD  # rejected: logged
    with caplog.at_level(logging.DEBUG):
        _export(server.address, [span, bad], token=tokens["worker-a"])
        with pytest.raises(grpc.RpcError):
            _export(server.address, [span], token=tokens["worker-a"] + "x")
        exporter = SpanExporter(ExporterConfig(endpoint=server.address, token=tokens["viewer"],
                                               spool_dir=str(server.store.path) + "-spool"))
        exporter.submit(span)
        exporter.flush(5)
        exporter.close()
    assert caplog.records, "expected some log lines to inspect"
    for token in tokens.values():
        assert token not in caplog.text
    assert "SECRET-PROMPT-TEXT" not in caplog.text

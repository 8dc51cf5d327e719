"""Property-based attacks on the ingest and rollout services. The server must answer every input with
a clear status, keep valid spans that share a batch with bad ones, and stay up.

Cases per property: $AGENTLIGHTNING_FUZZ_EXAMPLES (default 150; docs/RELIABILITY.md records a long run).
"""
import math
import os

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentlightning.core.wire import encode_varint, frame_span
from agentlightning.v1 import rollouts_pb2, spans_pb2, traces_pb2
from spans_factory import llm_span

EXAMPLES = int(os.environ.get("AGENTLIGHTNING_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CLEAR_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
               grpc.StatusCode.RESOURCE_EXHAUSTED}
CASES = {"count": 0}


@pytest.fixture
def raw_export(lightning_server):
    channel = grpc.insecure_channel(lightning_server.address)
    export = channel.unary_unary("/agentlightning.v1.TraceService/Export", request_serializer=None,
                                 response_deserializer=traces_pb2.ExportResponse.FromString)
    yield export
    with grpc.insecure_channel(lightning_server.address) as probe:  # still alive after the barrage
        status = health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


def _call(fn, *args):
    CASES["count"] += 1
    try:
        return fn(*args, timeout=10), None
    except grpc.RpcError as err:
        assert err.code() in CLEAR_CODES, f"unclear status {err.code()}: {err.details()}"
        assert err.details(), "an error must say what was wrong"
        return None, err


@FUZZ
@given(payload=st.binary(max_size=2048))
def test_arbitrary_bytes_get_a_clear_answer(raw_export, payload):
    response, err = _call(raw_export, payload)
    if response is not None:
        assert response.accepted + response.rejected + response.duplicates <= len(payload)
        assert all(r.reason for r in response.results if r.code == traces_pb2.SPAN_RESULT_CODE_REJECTED)


def _mutations():
    """One broken field per case, with the words the rejection must contain."""
    ident = st.binary(max_size=20).filter(lambda b: len(b) not in (8,) or not any(b))
    return st.one_of(
        st.tuples(st.just("trace_id"), st.binary(max_size=24).filter(lambda b: len(b) != 16 or not any(b)), st.just("trace_id")),
        st.tuples(st.just("span_id"), ident, st.just("span_id")),
        st.tuples(st.just("rollout_id"), st.text(alphabet=st.characters(max_codepoint=31), min_size=1), st.just("rollout_id")),
        st.tuples(st.just("rollout_id"), st.just(""), st.just("rollout_id")),
        st.tuples(st.just("rollout_id"), st.text(min_size=257, max_size=300), st.just("rollout_id")),
        st.tuples(st.just("kind"), st.integers(min_value=8, max_value=2**31 - 1), st.just("kind")),
        st.tuples(st.just("start_time_unix_nano"), st.one_of(st.just(0), st.integers(min_value=2**62, max_value=2**64 - 1)), st.just("start_time_unix_nano")),
        st.tuples(st.just("reward"), st.sampled_from([math.nan, math.inf, -math.inf]), st.just("reward.value")),
        st.tuples(st.just("logprobs"), st.lists(st.floats(min_value=0.001, allow_infinity=False), min_size=1, max_size=5), st.just("logprobs")),
        st.tuples(st.just("nesting"), st.integers(min_value=9, max_value=60), st.just("nested")),
        st.tuples(st.just("schema_version"), st.integers(min_value=2, max_value=1000), st.just("schema_version")),
        st.tuples(st.just("utf8"), st.binary(min_size=1, max_size=8).filter(_invalid_utf8), st.just("not a valid Span")),
    )


def _invalid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _broken(field: str, value) -> bytes:
    span = llm_span("fuzz-bad")
    if field in ("trace_id", "span_id", "rollout_id", "kind", "start_time_unix_nano", "schema_version"):
        setattr(span, field, value)
    elif field == "reward":
        span.ClearField("llm")
        span.kind = spans_pb2.SPAN_KIND_REWARD
        span.reward.value = value
    elif field == "logprobs":
        span.llm.completion_token_ids.extend(range(len(value)))
        span.llm.completion_logprobs.extend(value)
    elif field == "nesting":
        slot = span.attributes["deep"]
        for _ in range(value):
            slot = slot.map_value.values["x"]
        slot.int_value = 1
    elif field == "utf8":
        # protobuf refuses to build such a span, so forge the wire bytes: rollout_id (field 5) again.
        return span.SerializeToString() + b"\x2a" + encode_varint(len(value)) + value
    return span.SerializeToString()


@FUZZ
@given(mutation=_mutations(), position=st.integers(min_value=0, max_value=3))
def test_one_bad_span_is_named_and_its_batch_mates_are_kept(raw_export, lightning_server, mutation, position):
    field, value, words = mutation
    good = [llm_span("fuzz-good", seq=i) for i in range(3)]
    frames = [frame_span(s.SerializeToString()) for s in good]
    frames.insert(position, frame_span(_broken(field, value)))
    response, err = _call(raw_export, b"".join(frames))
    assert err is None, err
    assert response.accepted == 3 and response.rejected == 1, response
    (result,) = [r for r in response.results if r.code == traces_pb2.SPAN_RESULT_CODE_REJECTED]
    assert result.index == position
    assert words in result.reason or (field == "nesting" and "not a valid Span" in result.reason), result.reason
    stored = {s.span_id for s in lightning_server.store.get_spans("fuzz-good")}
    assert {s.span_id for s in good} <= stored


@FUZZ
@given(
    rollout_id=st.text(max_size=300),
    input_json=st.one_of(st.text(max_size=200), st.builds(lambda v: __import__("json").dumps(v), st.integers())),
    timeout=st.floats(allow_nan=True, allow_infinity=True),
    max_attempts=st.integers(min_value=0, max_value=2**32 - 1),
    wait=st.floats(allow_nan=True, allow_infinity=True),
    reward=st.floats(allow_nan=True, allow_infinity=True),
    attempt_id=st.text(max_size=50),
)
def test_rollout_service_answers_clearly(client, rollout_id, input_json, timeout, max_attempts, wait, reward,
                                         attempt_id):
    spec = rollouts_pb2.RolloutSpec(rollout_id=rollout_id, input_json=input_json, heartbeat_timeout_s=timeout,
                                    max_attempts=max_attempts)
    _call(client.rollouts.Enqueue, rollouts_pb2.EnqueueRequest(rollouts=[spec]))
    short_wait = min(wait, 0.05) if math.isfinite(wait) else wait  # NaN/inf go through as sent
    _call(client.rollouts.Dequeue, rollouts_pb2.DequeueRequest(worker_id="w", wait_s=short_wait))
    request = rollouts_pb2.CompleteRequest(attempt_id=attempt_id, worker_id="w", final_reward=reward)
    _call(client.rollouts.Complete, request)
    _call(client.rollouts.Heartbeat, rollouts_pb2.HeartbeatRequest(attempt_id=attempt_id, worker_id="w"))
    _call(client.rollouts.GetRollout, rollouts_pb2.GetRolloutRequest(rollout_id=rollout_id))


@pytest.fixture(scope="module", autouse=True)
def report_case_count():
    """Prints how many inputs the properties tried (visible with pytest -s; recorded in RELIABILITY.md)."""
    yield
    print(f"\nfuzz cases tried in this module: {CASES['count']}")

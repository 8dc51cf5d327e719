"""The Store contract: what every backend (SQLite, PostgreSQL) must do, tested on the store itself.

Test functions take ``store`` (an open store on a fresh database), ``store_url`` (to open it again,
like a second server replica or process would) and ``open_store_again`` (a second Store instance on
the same database). tests/test_store_contract.py runs them against each backend.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Callable

import pytest

from agentlightning.core import rollout_states as states
from agentlightning.core.store import AttemptNotActive, NotFound, SpanRecord, Store, StoreError
from agentlightning.v1 import resources_pb2, rollouts_pb2
from spans_factory import llm_span

OpenAgain = Callable[[], Store]


def _records(rollout_id: str, n: int, attempt: str = "") -> list[SpanRecord]:
    out = []
    for i in range(n):
        span = llm_span(rollout_id, seq=i + 1, text_bytes=200)
        if attempt:
            span.attempt_id = attempt
        out.append(SpanRecord.from_span(span))
    return out


def _spec(rollout_id: str = "", **kw) -> rollouts_pb2.RolloutSpec:
    return rollouts_pb2.RolloutSpec(rollout_id=rollout_id, input_json=json.dumps(kw.pop("input", {})), **kw)


# -- spans -------------------------------------------------------------------------------------
def test_insert_reports_new_and_duplicates_within_and_across_batches(store: Store):
    a, b, c = _records("r1", 3)
    assert store.insert_spans([a, b, a]) == [True, True, False]
    assert store.insert_spans([b, c, c]) == [False, True, False]
    assert store.insert_spans([]) == []
    assert store.count_spans() == 3
    assert [s.span_id for s in store.get_spans("r1")] == [a.span_id, b.span_id, c.span_id]


def test_same_span_id_in_another_trace_is_a_different_span(store: Store):
    (a,) = _records("r1", 1)
    other = a._replace(trace_id=bytes(15) + b"\x01")
    assert store.insert_spans([a, other]) == [True, True]


def test_get_spans_in_ingest_order_by_rollout_and_attempt(store: Store):
    first = _records("r1", 5, attempt="r1:1")
    second = _records("r1", 3, attempt="r1:2")
    noise = _records("r2", 4)
    store.insert_spans(first[:2] + noise[:2])
    store.insert_spans(second + first[2:] + noise[2:])
    assert [s.span_id for s in store.get_spans("r1")] == [r.span_id for r in first[:2] + second + first[2:]]
    assert [s.span_id for s in store.get_spans("r1", "r1:2")] == [r.span_id for r in second]
    assert store.get_spans("r1", "r1:9") == [] and store.get_spans("nobody") == []
    stored = store.get_spans("r2")[0]
    assert stored.llm.usage.input_tokens == 120 and stored.SerializeToString() == noise[0].data


def test_large_uint64_sequence_round_trips(store: Store):
    span = llm_span("big", seq=2**64 - 1)
    store.insert_spans([SpanRecord.from_span(span)])
    assert store.get_spans("big")[0].sequence == 2**64 - 1


def test_concurrent_writers_store_each_span_once(store: Store, open_store_again: OpenAgain):
    """Two store instances (two replicas) and several threads insert overlapping batches."""
    records = _records("race", 400)
    other = open_store_again()
    results: list[list[bool]] = []
    lock = threading.Lock()

    def write(s: Store, offset: int) -> None:
        for start in range(offset, 400, 50):
            batch = records[start : start + 100]  # overlaps the next writer's batch
            got = s.insert_spans(batch)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=write, args=(s, off)) for s in (store, other) for off in (0, 0, 50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sum(r) for r in results) == 400  # each span reported new exactly once
    assert store.count_spans() == 400 == len({s.span_id for s in store.get_spans("race")})


def test_acked_spans_survive_reopening(store: Store, open_store_again: OpenAgain):
    records = _records("durable", 20)
    store.insert_spans(records)
    store.close()
    again = open_store_again()
    assert [s.span_id for s in again.get_spans("durable")] == [r.span_id for r in records]


# -- rollouts: enqueue / dequeue ---------------------------------------------------------------
def test_enqueue_defaults_and_idempotence(store: Store):
    made = store.enqueue([_spec(input={"q": 1}, group_id="g", task_id="t", metadata={"k": "v"}), _spec()])
    assert len({r.rollout_id for r in made}) == 2
    r = made[0]
    assert (r.status, r.group_id, r.task_id, dict(r.metadata), json.loads(r.input_json)) == (
        states.QUEUED, "g", "t", {"k": "v"}, {"q": 1})
    assert r.max_attempts == 3 and r.heartbeat_timeout_s > 0 and r.mode == "train" and r.created_unix_nano > 0
    fixed = store.enqueue([_spec("fixed", input={"x": 1}), _spec("fixed", input={"x": 2})])
    assert [f.rollout_id for f in fixed] == ["fixed", "fixed"] and json.loads(fixed[1].input_json) == {"x": 1}
    store.dequeue("w")
    store.dequeue("w")
    running = store.dequeue("w")[0]
    assert running.rollout_id == "fixed"
    (again,) = store.enqueue([_spec("fixed", input={"x": 3})])
    assert again.status == states.RUNNING and again.attempt_count == 1  # untouched
    assert len(store.list_rollouts()) == 3


def test_dequeue_is_fifo_by_mode_and_records_the_attempt(store: Store):
    assert store.dequeue("w") is None
    store.enqueue([_spec("a"), _spec("b", mode="val"), _spec("c")])
    rollout, attempt = store.dequeue("w1", mode="val", principal="tok-1")
    assert rollout.rollout_id == "b" and rollout.status == states.RUNNING and rollout.attempt_count == 1
    assert rollout.current_attempt_id == attempt.attempt_id
    assert (attempt.rollout_id, attempt.number, attempt.worker_id, attempt.status) == ("b", 1, "w1", states.RUNNING)
    assert attempt.start_time_unix_nano > 0 and attempt.last_heartbeat_unix_nano > 0
    assert store.dequeue("w1", mode="val") is None
    assert [store.dequeue("w2")[0].rollout_id for _ in range(2)] == ["a", "c"]
    assert store.dequeue("w2") is None
    assert store.attempt_owners(["b", "a", "zzz"]) == {"b": {attempt.attempt_id: "tok-1"}, "a": {"a:1": ""}}


def test_dequeue_from_many_threads_and_instances_never_repeats(store: Store, open_store_again: OpenAgain):
    store.enqueue([_spec(f"r{i:03d}") for i in range(120)])
    stores = [store, open_store_again()]
    taken: list[str] = []
    lock = threading.Lock()

    def work(s: Store, name: str) -> None:
        while (got := s.dequeue(name)) is not None:
            with lock:
                taken.append(got[0].rollout_id)

    threads = [threading.Thread(target=work, args=(stores[i % 2], f"w{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == [f"r{i:03d}" for i in range(120)]
    assert all(r.attempt_count == 1 for r in store.list_rollouts(limit=1000))


_DEQUEUE_CHILD = """
import json, sys
from agentlightning.core.store import open_store
store = open_store(sys.argv[1])
ids = []
while (got := store.dequeue(sys.argv[2])) is not None:
    ids.append(got[0].rollout_id)
print(json.dumps(ids))
"""


def test_dequeue_from_several_processes_never_repeats(store: Store, store_url: str):
    store.enqueue([_spec(f"p{i:03d}") for i in range(90)])
    children = [subprocess.Popen([sys.executable, "-c", _DEQUEUE_CHILD, store_url, f"proc-{i}"],
                                 stdout=subprocess.PIPE, text=True) for i in range(3)]
    taken: list[str] = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        taken += json.loads(out)
    assert sorted(taken) == [f"p{i:03d}" for i in range(90)]


# -- heartbeats, expiry, completion ------------------------------------------------------------
def test_heartbeat_only_for_the_running_owner(store: Store):
    store.enqueue([_spec("h")])
    _, attempt = store.dequeue("owner")
    before = store.list_attempts("h")[0].last_heartbeat_unix_nano
    time.sleep(0.01)
    beat = store.heartbeat(attempt.attempt_id, "owner")
    assert beat.active and beat.rollout_status == states.RUNNING
    assert store.list_attempts("h")[0].last_heartbeat_unix_nano > before
    assert not store.heartbeat(attempt.attempt_id, "intruder").active
    with pytest.raises(NotFound):
        store.heartbeat("h:9", "owner")


def test_expiry_requeues_until_attempts_run_out(store: Store):
    store.enqueue([_spec("x", max_attempts=2, heartbeat_timeout_s=1.0), _spec("y", heartbeat_timeout_s=100.0)])
    _, first = store.dequeue("slow")
    store.dequeue("fine")
    now = time.time_ns()
    assert store.expire_attempts(now) == []  # not yet
    assert store.expire_attempts(now + 2 * 10**9) == ["x"]
    assert store.expire_attempts(now + 2 * 10**9) == []  # once only
    rollout = store.get_rollout("x")
    assert rollout.status == states.QUEUED and rollout.current_attempt_id == "" and rollout.attempt_count == 1
    assert store.get_rollout("y").status == states.RUNNING
    beat = store.heartbeat(first.attempt_id, "slow")
    assert not beat.active and beat.rollout_status == states.QUEUED
    with pytest.raises(AttemptNotActive):
        store.complete(first.attempt_id, "slow", True, 1.0, "")
    again, second = store.dequeue("other")
    assert again.rollout_id == "x" and second.number == 2
    assert store.expire_attempts(time.time_ns() + 2 * 10**9) == ["x"]
    final = store.get_rollout("x")
    assert final.status == states.TIMED_OUT and "attempt 2/2" in final.error and "no heartbeat" in final.error
    assert [a.status for a in store.list_attempts("x")] == [states.TIMED_OUT, states.TIMED_OUT]
    assert all(a.end_time_unix_nano > 0 for a in store.list_attempts("x"))


def test_complete_success_failure_retry_and_errors(store: Store):
    store.enqueue([_spec("ok"), _spec("flaky", max_attempts=2)])
    _, attempt = store.dequeue("w")
    with pytest.raises(AttemptNotActive):
        store.complete(attempt.attempt_id, "intruder", True, 1.0, "")
    done = store.complete(attempt.attempt_id, "w", True, 0.25, "")
    assert done.status == states.SUCCEEDED and done.has_final_reward and done.final_reward == 0.25
    assert done.current_attempt_id == attempt.attempt_id
    with pytest.raises(AttemptNotActive):
        store.complete(attempt.attempt_id, "w", True, 1.0, "")  # twice
    with pytest.raises(NotFound):
        store.complete("nope:1", "w", True, None, "")
    for number in (1, 2):
        _, attempt = store.dequeue("w")
        assert attempt.number == number
        after = store.complete(attempt.attempt_id, "w", False, None, f"boom {number}")
    assert after.status == states.FAILED and after.error == "attempt 2/2: boom 2" and not after.has_final_reward
    assert [a.error for a in store.list_attempts("flaky")] == ["boom 1", "boom 2"]
    assert store.dequeue("w") is None


def test_error_text_with_nul_is_stored(store: Store):
    store.enqueue([_spec("nul", max_attempts=1)])
    _, attempt = store.dequeue("w\x00x")
    after = store.complete(attempt.attempt_id, "w\x00x", False, None, "bad\x00byte")
    assert after.status == states.FAILED and after.error.startswith("attempt 1/1: bad")


def test_cancel_and_state_machine(store: Store):
    store.enqueue([_spec("q"), _spec("r"), _spec("done")])
    assert store.cancel("q").status == states.CANCELLED
    _, running = store.dequeue("w")
    assert running.rollout_id == "r"
    cancelled = store.cancel("r")
    assert cancelled.status == states.CANCELLED and cancelled.current_attempt_id == ""
    assert store.list_attempts("r")[0].status == states.CANCELLED
    assert not store.heartbeat(running.attempt_id, "w").active
    with pytest.raises(AttemptNotActive):
        store.complete(running.attempt_id, "w", True, None, "")
    _, last = store.dequeue("w")
    store.complete(last.attempt_id, "w", True, None, "")
    assert store.cancel("done").status == states.SUCCEEDED  # terminal: unchanged
    with pytest.raises(NotFound):
        store.cancel("ghost")
    assert store.dequeue("w") is None


def test_complete_racing_expiry_on_two_instances_acts_once(store: Store, open_store_again: OpenAgain):
    """A worker completes while another replica's expiry runs: each attempt ends exactly one way."""
    n = 40
    store.enqueue([_spec(f"c{i:02d}", max_attempts=1, heartbeat_timeout_s=1.0) for i in range(n)])
    attempts = [store.dequeue("w")[1] for _ in range(n)]
    other = open_store_again()
    completed, expired = [], []

    def complete_all() -> None:
        for a in attempts:
            try:
                store.complete(a.attempt_id, "w", True, 1.0, "")
                completed.append(a.rollout_id)
            except AttemptNotActive:
                pass

    def expire_all() -> None:
        for _ in range(20):
            expired.extend(other.expire_attempts(time.time_ns() + 5 * 10**9))

    threads = [threading.Thread(target=complete_all), threading.Thread(target=expire_all)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(completed + expired) == [f"c{i:02d}" for i in range(n)]
    for r in store.list_rollouts(limit=n):
        assert r.status == (states.SUCCEEDED if r.rollout_id in completed else states.TIMED_OUT)


def test_reads_and_listing(store: Store):
    with pytest.raises(NotFound):
        store.get_rollout("none")
    store.enqueue([_spec(f"l{i}", group_id="g1" if i % 2 else "g2") for i in range(6)])
    store.dequeue("w")
    assert [r.rollout_id for r in store.list_rollouts()] == [f"l{i}" for i in range(6)]
    assert [r.rollout_id for r in store.list_rollouts(group_id="g1")] == ["l1", "l3", "l5"]
    assert [r.rollout_id for r in store.list_rollouts(status=states.RUNNING)] == ["l0"]
    assert [r.rollout_id for r in store.list_rollouts(limit=2, offset=3)] == ["l3", "l4"]
    assert store.list_attempts("l0")[0].number == 1 and store.list_attempts("l1") == []
    assert store.attempt_owners([]) == {}


# -- resources and tokens ----------------------------------------------------------------------
def test_resources_publish_overwrite_and_default_name(store: Store):
    with pytest.raises(NotFound):
        store.get_resource("policy")
    first = store.publish_resource(resources_pb2.ModelResource(endpoint="http://a", model="m", version="v1"))
    assert first.name == "policy" and first.published_unix_nano > 0
    store.publish_resource(resources_pb2.ModelResource(name="policy", endpoint="http://a", model="m", version="v2",
                                                       metadata={"step": "2"}))
    store.publish_resource(resources_pb2.ModelResource(name="judge", model="j", version="1"))
    current = store.get_resource("")
    assert (current.version, dict(current.metadata)) == ("v2", {"step": "2"})
    assert store.get_resource("judge").model == "j"


def test_tokens_add_list_revoke(store: Store):
    store.add_token("worker-b", "worker", b"\x02" * 32)
    record = store.add_token("admin-a", "admin", b"\x01" * 32)
    assert record.name == "admin-a" and record.created_unix_nano > 0
    with pytest.raises(StoreError, match="already exists"):
        store.add_token("admin-a", "reader", b"\x03" * 32)
    assert store.revoke_token("worker-b") and not store.revoke_token("nobody")
    listed = store.list_tokens()
    assert [(t.name, t.role, t.token_hash, t.revoked) for t in listed] == [
        ("admin-a", "admin", b"\x01" * 32, False), ("worker-b", "worker", b"\x02" * 32, True)]

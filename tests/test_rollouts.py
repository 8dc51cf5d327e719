"""Rollout lifecycle through the real gRPC service: queue, attempts, heartbeats, retries, rewards."""
import threading
import time

import grpc
import pytest

from agentlightning.core import rollout_states as states
from agentlightning.v1 import rollouts_pb2


def test_enqueue_dequeue_complete_stores_final_reward(client):
    (rollout,) = client.enqueue([{"question": "2+2"}], group_id="task-1", task_id="t1")
    assert rollout.status == states.QUEUED and rollout.group_id == "task-1"
    taken = client.dequeue("worker-a")
    assert taken is not None
    running, attempt = taken
    assert running.rollout_id == rollout.rollout_id and running.status == states.RUNNING
    assert attempt.number == 1 and attempt.worker_id == "worker-a"
    assert client.heartbeat(attempt.attempt_id, "worker-a").active
    done = client.complete(attempt.attempt_id, "worker-a", success=True, final_reward=0.75)
    assert done.status == states.SUCCEEDED and done.has_final_reward and done.final_reward == 0.75
    assert client.get_rollout(rollout.rollout_id).final_reward == 0.75
    assert client.dequeue("worker-a") is None


def test_enqueue_with_a_given_id_is_idempotent(client):
    spec = rollouts_pb2.RolloutSpec(rollout_id="fixed-1", input_json='{"x": 1}')
    first = client.enqueue_specs([spec])
    second = client.enqueue_specs([spec])
    assert first[0].rollout_id == second[0].rollout_id == "fixed-1"
    assert len(client.list_rollouts()) == 1


def test_two_workers_never_get_the_same_rollout(client):
    client.enqueue([{"i": i} for i in range(40)])
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def work(name):
        while True:
            got = client.dequeue(f"worker-{name}")
            if got is None:
                return
            taken[name].append(got[0].rollout_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_taken = taken["a"] + taken["b"]
    assert len(all_taken) == 40 and len(set(all_taken)) == 40
    assert taken["a"] and taken["b"]


def test_long_poll_dequeue_wakes_on_enqueue(client):
    result = {}

    def wait():
        result["got"] = client.dequeue("sleeper", wait_s=10)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    (rollout,) = client.enqueue([{"late": True}])
    t.join(5)
    assert result["got"][0].rollout_id == rollout.rollout_id
    assert time.monotonic() - start < 2


def test_missed_heartbeats_requeue_then_time_out(client):
    (rollout,) = client.enqueue([{"q": 1}], max_attempts=2, heartbeat_timeout_s=0.3)
    _, first = client.dequeue("slow-worker")
    time.sleep(1.5)  # no heartbeat: the server's expiry loop re-queues it
    again = client.get_rollout(rollout.rollout_id)
    assert again.status == states.QUEUED and again.attempt_count == 1
    # The stale worker is told to stop and cannot complete any more.
    assert not client.heartbeat(first.attempt_id, "slow-worker").active
    with pytest.raises(grpc.RpcError) as err:
        client.complete(first.attempt_id, "slow-worker", success=True, final_reward=1.0)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    _, second = client.dequeue("worker-b")
    assert second.number == 2
    time.sleep(1.5)
    final = client.get_rollout(rollout.rollout_id)
    assert final.status == states.TIMED_OUT
    assert "attempt 2/2" in final.error and "no heartbeat" in final.error
    attempts = client.list_attempts(rollout.rollout_id)
    assert [a.status for a in attempts] == [states.TIMED_OUT, states.TIMED_OUT]


def test_heartbeats_keep_an_attempt_alive(client):
    (rollout,) = client.enqueue([{"q": 1}], heartbeat_timeout_s=0.4)
    _, attempt = client.dequeue("steady")
    for _ in range(8):
        time.sleep(0.15)
        assert client.heartbeat(attempt.attempt_id, "steady").active
    assert client.get_rollout(rollout.rollout_id).status == states.RUNNING


def test_failures_are_retried_up_to_the_limit_then_failed(client):
    (rollout,) = client.enqueue([{"q": 1}], max_attempts=3)
    for number in (1, 2, 3):
        _, attempt = client.dequeue("flaky")
        assert attempt.number == number
        after = client.complete(attempt.attempt_id, "flaky", success=False, error=f"boom {number}")
    assert after.status == states.FAILED
    assert after.error == "attempt 3/3: boom 3"
    assert client.dequeue("flaky") is None


def test_worker_cannot_complete_someone_elses_attempt(client):
    client.enqueue([{"q": 1}])
    _, attempt = client.dequeue("owner")
    with pytest.raises(grpc.RpcError) as err:
        client.complete(attempt.attempt_id, "intruder", success=True)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_cancel_and_state_machine(client):
    (rollout,) = client.enqueue([{"q": 1}])
    cancelled = client.cancel(rollout.rollout_id)
    assert cancelled.status == states.CANCELLED
    assert client.dequeue("w") is None
    with pytest.raises(states.InvalidTransition):
        states.check_transition(states.SUCCEEDED, states.RUNNING)


def test_bad_requests_get_clear_errors(client):
    with pytest.raises(grpc.RpcError) as err:
        client.get_rollout("no-such-rollout")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-rollout" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        client.dequeue("")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client.enqueue([{"q": 1}])
    _, attempt = client.dequeue("w")
    with pytest.raises(grpc.RpcError) as err:
        client.complete(attempt.attempt_id, "w", final_reward=float("nan"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_resources_publish_and_read(client):
    with pytest.raises(grpc.RpcError) as err:
        client.get_model()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    client.publish_model("http://127.0.0.1:8000/v1", "smollm2", "v1")
    published = client.publish_model("http://127.0.0.1:8000/v1", "smollm2", "v2")
    current = client.get_model()
    assert (current.version, current.model) == ("v2", "smollm2")
    assert current.published_unix_nano == published.published_unix_nano > 0

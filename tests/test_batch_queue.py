"""The exporter's queue: bounded by bytes, batches formed as frames arrive, taken oldest first."""
from agentlightning.core.batch_queue import BATCH_READY, QUEUED, REJECTED, BatchQueue


def test_batches_close_at_the_span_count_and_are_taken_oldest_first():
    queue = BatchQueue(max_bytes=10_000, max_batch_spans=3, max_batch_bytes=10_000)
    outcomes = [queue.put(bytes([i]) * 10) for i in range(7)]
    assert outcomes == [QUEUED, QUEUED, BATCH_READY, QUEUED, QUEUED, BATCH_READY, QUEUED]
    assert queue.bytes == 70
    assert queue.take() == [bytes([0]) * 10, bytes([1]) * 10, bytes([2]) * 10]
    assert queue.take() == [bytes([3]) * 10, bytes([4]) * 10, bytes([5]) * 10]
    assert queue.take() == [bytes([6]) * 10]  # the open, partial batch
    assert queue.take() == [] and not queue and queue.bytes == 0


def test_batches_close_before_exceeding_the_batch_bytes():
    queue = BatchQueue(max_bytes=10_000, max_batch_spans=100, max_batch_bytes=25)
    for i in range(4):
        queue.put(bytes([i]) * 10)
    assert [len(queue.take()) for _ in range(3)] == [2, 2, 0]
    queue.put(b"x" * 40)  # larger than a batch on its own: sent alone
    queue.put(b"y")
    assert queue.take() == [b"x" * 40]
    assert queue.take() == [b"y"]


def test_the_byte_bound_rejects_and_take_all_empties():
    queue = BatchQueue(max_bytes=25, max_batch_spans=2, max_batch_bytes=100)
    assert [queue.put(b"a" * 10), queue.put(b"b" * 10), queue.put(b"c" * 10)] == [QUEUED, BATCH_READY, REJECTED]
    assert queue.put(b"d" * 5) == QUEUED
    assert queue.take_all() == [b"a" * 10, b"b" * 10, b"d" * 5]
    assert queue.bytes == 0 and not queue
    assert queue.put(b"e" * 25) == QUEUED  # room again

"""The exporter's queue: bounded by bytes, batches built as ExportRequests as spans arrive, oldest first."""
from agentlightning.core.batch_queue import BATCH_READY, QUEUED, REJECTED, BatchQueue
from agentlightning.core.wire import frame_span, split_export_request


def _span(i: int, size: int = 10) -> bytes:
    return bytes([i]) * size


def test_batches_close_at_the_span_count_and_are_taken_oldest_first():
    queue = BatchQueue(max_bytes=10_000, max_batch_spans=3, max_batch_bytes=10_000)
    outcomes = [queue.put(_span(i)) for i in range(7)]
    assert outcomes == [QUEUED, QUEUED, BATCH_READY, QUEUED, QUEUED, BATCH_READY, QUEUED]
    assert queue.bytes == 7 * 12  # each span framed: tag, length, bytes
    first, n = queue.take()
    assert n == 3 and bytes(first) == b"".join(frame_span(_span(i)) for i in range(3))
    assert list(split_export_request(bytes(first))) == [_span(0), _span(1), _span(2)]
    assert queue.take()[1] == 3
    last, n = queue.take()  # the open, partial batch
    assert n == 1 and list(split_export_request(bytes(last))) == [_span(6)]
    assert queue.take() == (bytearray(), 0) and not queue and queue.bytes == 0


def test_batches_close_before_exceeding_the_batch_bytes():
    queue = BatchQueue(max_bytes=10_000, max_batch_spans=100, max_batch_bytes=25)
    for i in range(4):
        queue.put(_span(i))
    assert [queue.take()[1] for _ in range(3)] == [2, 2, 0]
    queue.put(b"x" * 40)  # larger than a batch on its own: sent alone
    queue.put(b"y")
    assert list(split_export_request(bytes(queue.take()[0]))) == [b"x" * 40]
    assert list(split_export_request(bytes(queue.take()[0]))) == [b"y"]


def test_the_byte_bound_rejects_and_take_all_empties():
    queue = BatchQueue(max_bytes=30, max_batch_spans=2, max_batch_bytes=100)
    assert [queue.put(_span(1)), queue.put(_span(2)), queue.put(_span(3))] == [QUEUED, BATCH_READY, REJECTED]
    assert queue.put(_span(4, 4)) == QUEUED
    payload, n = queue.take_all()
    assert n == 3 and list(split_export_request(bytes(payload))) == [_span(1), _span(2), _span(4, 4)]
    assert queue.bytes == 0 and not queue
    assert queue.put(_span(5, 28)) == QUEUED  # room again


def test_large_spans_get_multi_byte_lengths():
    queue = BatchQueue(max_bytes=1 << 20, max_batch_spans=10, max_batch_bytes=1 << 20)
    spans = [_span(1, 100), _span(2, 300), _span(3, 20_000)]
    for span in spans:
        queue.put(span)
    assert list(split_export_request(bytes(queue.take()[0]))) == spans

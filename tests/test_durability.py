"""Durable acks with the flush outside the write lock: the SQLite store commits at synchronous=NORMAL and
fdatasyncs the WAL itself; the group committer answers a batch only after that flush; a failed flush
stops all writes (what reached the disk is unknown) instead of acknowledging anything more."""
from __future__ import annotations

import errno
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentlightning.core.server.group_commit import GroupCommitter
from agentlightning.core.store import SpanRecord, StoreUnavailable
from agentlightning.core.store import sqlite_durability
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.v1 import rollouts_pb2
from spans_factory import llm_span


def _records(n: int, rollout_id: str = "r1") -> list[SpanRecord]:
    return [SpanRecord.from_span(llm_span(rollout_id, seq=i + 1, text_bytes=200)) for i in range(n)]


@pytest.fixture
def flushes(monkeypatch):
    """Every fdatasync the store makes: the path of the file it flushed."""
    done: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        done.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(sqlite_durability.os, "fdatasync", recording)
    return done


def test_full_commits_flush_the_wal_themselves(tmp_path, flushes):
    store = SqliteStore(tmp_path / "d.db")
    try:
        assert store._writer.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL: we flush
        assert store.insert_spans(_records(3)) == [True] * 3
        assert flushes and all(path.endswith("d.db-wal") for path in flushes)

        flushes.clear()
        inserted, sync = store.insert_spans_then_sync(_records(2, "r2"))
        assert inserted == [True, True] and flushes == []  # committed, not yet flushed
        sync()
        assert len(flushes) == 1

        flushes.clear()
        store.enqueue([rollouts_pb2.RolloutSpec(rollout_id="q1", input_json="{}")])  # every write is durable
        assert len(flushes) == 1
    finally:
        store.close()


def test_a_flush_covers_every_earlier_commit_and_a_repeat_is_free(tmp_path, flushes):
    store = SqliteStore(tmp_path / "d.db")
    try:
        syncs = [store.insert_spans_then_sync(_records(2, f"r{i}"))[1] for i in range(3)]
        syncs[-1]()
        syncs[0]()
        syncs[1]()
        assert len(flushes) == 1
    finally:
        store.close()


def test_an_answer_of_already_stored_is_flushed_too(tmp_path, flushes):
    """The first copy may be another server process's commit that nobody has flushed yet."""
    first = SqliteStore(tmp_path / "shared.db")
    second = SqliteStore(tmp_path / "shared.db")
    try:
        records = _records(2)
        assert first.insert_spans_then_sync(records)[0] == [True, True]  # committed, not flushed
        flushes.clear()
        assert second.insert_spans(records) == [False, False]
        assert len(flushes) == 1
    finally:
        first.close()
        second.close()


def test_synchronous_off_never_flushes(tmp_path, flushes):
    store = SqliteStore(tmp_path / "off.db", synchronous="OFF")
    try:
        store.insert_spans(_records(2))
        assert flushes == []
    finally:
        store.close()


def test_a_failed_flush_stops_every_later_write(tmp_path, monkeypatch):
    store = SqliteStore(tmp_path / "eio.db")
    try:
        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(sqlite_durability.os, "fdatasync", broken)
        with pytest.raises(StoreUnavailable, match="fsync"):
            store.insert_spans(_records(2))
        monkeypatch.undo()  # the disk "works" again: still refused, the earlier rows may not be on it
        with pytest.raises(StoreUnavailable, match="restarts"):
            store.insert_spans(_records(1, "r2"))
        with pytest.raises(StoreUnavailable):
            store.enqueue([rollouts_pb2.RolloutSpec(rollout_id="q1", input_json="{}")])
    finally:
        store.close()
    reopened = SqliteStore(tmp_path / "eio.db")  # a restart recovers from what the disk holds
    try:
        assert reopened.insert_spans(_records(1, "r3")) == [True]
    finally:
        reopened.close()


class _GatedStore:
    """Commits at once; its sync waits for a gate, so a test can see who was answered before it."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.fail = fail
        self.committed: list[int] = []

    def insert_spans_then_sync(self, records):
        self.committed.append(len(records))
        return [True] * len(records), self._sync

    def _sync(self) -> None:
        self.gate.wait(10)
        if self.fail:
            raise StoreUnavailable("disk went away")


def test_group_commit_answers_only_after_the_flush():
    store = _GatedStore()
    committer = GroupCommitter(store)
    with ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(committer.submit, _records(3, f"r{i}")) for i in range(4)]
        assert not any(f.done() for f in waiting)
        deadline = threading.Event()
        while sum(store.committed) < 12 and not deadline.wait(0.01):
            pass
        assert sum(store.committed) == 12  # all four committed while the first flush is still pending
        assert not any(f.done() for f in waiting)
        store.gate.set()
        assert [f.result(10) for f in waiting] == [[True] * 3] * 4
    committer.close()
    assert committer.batches == 4 and committer.syncs >= 1


def test_group_commit_reports_a_failed_flush_to_every_waiter():
    store = _GatedStore(fail=True)
    committer = GroupCommitter(store)
    with ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(committer.submit, _records(2, f"r{i}")) for i in range(3)]
        store.gate.set()
        for future in waiting:
            with pytest.raises(StoreUnavailable):
                future.result(10)
    committer.close()

"""Bulk span insert for the SQLite store: the server's hottest write path.

Python's ``executemany`` steps the statement once per row and releases and retakes the GIL around each
row (twice: binding and stepping). While the server's RPC threads parse the next batches, every retake
can wait for the GIL's switch interval, so the single writer thread crawled (measured: most of its time
went to binding and GIL waits). One multi-row ``INSERT ... VALUES (...),(...)`` statement per chunk
releases the GIL once per chunk instead, and SQLite's own work runs in parallel with parsing.

Blobs are bound as ``bytearray``: ``bytes`` parameters take sqlite3's adapter-lookup path on every
bind (measured ~0.24 µs each), ``bytearray`` does not, and both are stored as the same BLOB.
"""
from __future__ import annotations

import functools
import sqlite3
from typing import Sequence

from agentlightning.core.store.base import SpanRecord

SPAN_COLUMNS = "trace_id, span_id, rollout_id, attempt_id, kind, start_ns, producer_id, seq, data"
_ROW = "(?,?,?,?,?,?,?,?,?)"
_INSERT_HEAD = f"INSERT OR IGNORE INTO spans({SPAN_COLUMNS}) VALUES "
SPAN_INSERT = _INSERT_HEAD + _ROW
_N_COLUMNS = 9
_INT64 = 1 << 63  # the index column `seq` is signed; the span bytes keep the exact uint64
_UINT64 = 1 << 64
_MAX_CHUNK_ROWS = 512


def max_chunk_rows(conn: sqlite3.Connection) -> int:
    """The largest power-of-two row count whose parameters fit this SQLite's variable limit."""
    try:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # Python >= 3.11
    except AttributeError:
        limit = 999  # the smallest limit any SQLite build has shipped with
    rows = 1
    while rows * 2 <= min(_MAX_CHUNK_ROWS, limit // _N_COLUMNS):
        rows *= 2
    return rows


@functools.lru_cache(maxsize=None)
def _statement(rows: int) -> str:
    return _INSERT_HEAD + ",".join([_ROW] * rows)


def _flat_params(records: Sequence[SpanRecord]) -> list:
    params: list = []
    extend = params.extend
    for trace_id, span_id, rollout_id, attempt_id, kind, start, producer_id, seq, data in records:
        if seq >= _INT64:  # uint64 sequence past SQLite's int64: store it wrapped
            seq -= _UINT64
        extend((bytearray(trace_id), bytearray(span_id), rollout_id, attempt_id, kind, start, producer_id, seq,
                bytearray(data)))
    return params


def insert_all_new(conn: sqlite3.Connection, records: Sequence[SpanRecord], chunk_rows: int) -> bool:
    """Insert ``records`` (OR IGNORE) inside the caller's transaction. True when every row was new.

    Chunks are powers of two no larger than ``chunk_rows``, so at most a handful of distinct statements
    exist and sqlite3's statement cache keeps them all prepared.
    """
    before = conn.total_changes
    pos, total = 0, len(records)
    size = chunk_rows
    while pos < total:
        while size > total - pos:
            size //= 2
        conn.execute(_statement(size), _flat_params(records[pos : pos + size]))
        pos += size
    return conn.total_changes - before == total


def insert_one_by_one(conn: sqlite3.Connection, records: Sequence[SpanRecord]) -> list[bool]:
    """Per record, True when it was inserted, False when its (trace_id, span_id) was already stored."""
    return [conn.execute(SPAN_INSERT, _flat_params((record,))).rowcount == 1 for record in records]

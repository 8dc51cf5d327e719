"""PostgreSQL store: the same contract as SQLite, shared by several stateless server replicas.

Why these choices: spans go in with one COPY into a per-session temp table and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` (batched, and the unique key on
(trace_id, span_id) says which records were new); every write commits before returning (durable with
PostgreSQL's default ``synchronous_commit``); dequeue takes ``FOR UPDATE SKIP LOCKED`` so replicas never
hand one rollout to two workers; rows are always locked rollout first, then attempt, so complete,
cancel, heartbeat and expiry on different replicas cannot deadlock or act twice.
"""
from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Iterator, Optional, Sequence

import psycopg
from psycopg import errors as pg_errors

from agentlightning.core import ids
from agentlightning.core import rollout_states as states
from agentlightning.core.auth import TokenRecord
from agentlightning.core.store import lifecycle
from agentlightning.core.store.base import NotFound, SpanRecord, Store, StoreError, StoreUnavailable
from agentlightning.core.store.lifecycle import (
    A_COLUMNS, ATTEMPT_COLUMNS, ROLLOUT_COLUMNS, attempt_from_row, rollout_from_row)
from agentlightning.core.store.pg_schema import (
    SCHEMA, SCHEMA_LOCK, SCHEMA_VERSION, SPAN_COLUMNS, SPAN_STAGE, SPAN_TYPES, pg_text, to_int64)
from agentlightning.v1 import resources_pb2, rollouts_pb2, spans_pb2

# Errors that mean "the database cannot take this write now", as opposed to a bad request.
_UNAVAILABLE = (psycopg.OperationalError, pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientResources,
                pg_errors.CannotConnectNow, pg_errors.AdminShutdown,
                pg_errors.TransactionRollback)  # deadlock / serialization: retry later


class PostgresStore(Store):
    """``PostgresStore("postgresql://user:pw@host/db")``; thread-safe, a small pool of connections."""

    def __init__(self, url: str, default_max_attempts: int = 3, default_heartbeat_timeout_s: float = 60.0,
                 pool_size: int = 8, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.default_max_attempts = default_max_attempts
        self.default_heartbeat_timeout_s = default_heartbeat_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()
        self._closed = False
        self._staged: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()  # have the span_stage table
        self._create_schema()

    def _create_schema(self) -> None:
        """Once per database, in one transaction. DDL only when missing: CREATE INDEX IF NOT EXISTS
        still takes a table lock, which deadlocks with live dequeues of other replicas."""
        # A query on pg_tables (not to_regclass: its catalog cache may not yet see a table another
        # session just committed) after the advisory lock sees the winner's schema.
        exists = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                  " AND tablename = 'agentlightning_schema')")
        with self._transaction() as conn:
            if conn.execute(exists).fetchone()[0]:
                return
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            if not conn.execute(exists).fetchone()[0]:
                conn.execute(SCHEMA)
                conn.execute("CREATE TABLE agentlightning_schema (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO agentlightning_schema VALUES (%s)", (SCHEMA_VERSION,))

    # -- connections ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection; one that failed is closed, never handed out again."""
        if not self._slots.acquire(timeout=60):
            raise StoreUnavailable("no free database connection for 60 s")
        conn: Optional[psycopg.Connection] = None
        try:
            with self._idle_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                try:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout_s,
                                           application_name="agentlightning")
                except psycopg.Error as exc:
                    conn = None
                    raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
            try:
                yield conn
            except psycopg.Error as exc:
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                if isinstance(exc, psycopg.OperationalError):
                    self._drop_idle()  # a restarted server killed those too: fail once, not once per connection
                raise self._translate(exc) from exc
        finally:
            if conn is not None:
                if conn.closed or self._closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                else:
                    with self._idle_lock:
                        self._idle.append(conn)
            self._slots.release()

    @staticmethod
    def _translate(exc: psycopg.Error) -> StoreError:
        if isinstance(exc, _UNAVAILABLE):
            return StoreUnavailable(f"database cannot be written: {exc}")
        return StoreError(str(exc).strip())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction, committed before the block's result is returned (rolled back on error)."""
        with self._connection() as conn:
            with conn.transaction():
                yield conn

    def _drop_idle(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._drop_idle()

    # -- spans ---------------------------------------------------------------------------
    def insert_spans(self, records: Sequence[SpanRecord]) -> list[bool]:
        """Optimistic: COPY straight into ``spans`` (retries are rare, and this halves the database's
        CPU per span, measured); on a duplicate key, redo the batch through the staging table, whose
        ``ON CONFLICT DO NOTHING RETURNING`` says which records were new."""
        if not records:
            return []
        rows = [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], to_int64(r[7]), r[8]) for r in records]
        with self._connection() as conn:
            if conn not in self._staged:  # autocommit: the table outlives a rolled-back batch
                conn.execute(SPAN_STAGE)
                self._staged.add(conn)
            with conn.transaction(), conn.cursor() as cur:
                try:
                    with conn.transaction():  # a savepoint: a duplicate undoes only the COPY
                        with cur.copy(f"COPY spans ({SPAN_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                            copy.set_types(SPAN_TYPES[1:])
                            for row in rows:
                                copy.write_row(row)
                    return [True] * len(records)
                except pg_errors.UniqueViolation:
                    pass
                with cur.copy(f"COPY span_stage (ord, {SPAN_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(SPAN_TYPES)
                    for i, row in enumerate(rows):
                        copy.write_row((i, *row))
                cur.execute(f"INSERT INTO spans ({SPAN_COLUMNS}) SELECT {SPAN_COLUMNS} FROM span_stage"
                            " ORDER BY ord ON CONFLICT DO NOTHING RETURNING trace_id, span_id")
                new = {(bytes(t), bytes(s)) for t, s in cur.fetchall()}
        result = []
        for r in records:  # the first of several equal keys in one batch is the one stored
            key = (r[0], r[1])
            result.append(key in new)
            new.discard(key)
        return result

    def get_spans(self, rollout_id: str, attempt_id: str = "") -> list[spans_pb2.Span]:
        with self._connection() as conn:
            if attempt_id:
                rows = conn.execute("SELECT data FROM spans WHERE rollout_id=%s AND attempt_id=%s ORDER BY id",
                                    (rollout_id, attempt_id)).fetchall()
            else:
                rows = conn.execute("SELECT data FROM spans WHERE rollout_id=%s ORDER BY id", (rollout_id,)).fetchall()
        return [spans_pb2.Span.FromString(row[0]) for row in rows]

    def iter_span_bytes(self, kind: int = 0, batch: int = 10000) -> Iterator[bytes]:
        """All stored spans (optionally of one kind), serialized, in ingest order."""
        last = 0
        while True:
            with self._connection() as conn:
                rows = conn.execute("SELECT id, data FROM spans WHERE id>%s AND (%s=0 OR kind=%s) ORDER BY id LIMIT %s",
                                    (last, kind, kind, batch)).fetchall()
            if not rows:
                return
            for _, data in rows:
                yield bytes(data)
            last = rows[-1][0]

    def count_spans(self) -> int:
        with self._connection() as conn:
            return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]

    # -- rollouts ------------------------------------------------------------------------
    @staticmethod
    def _get_rollout(conn: psycopg.Connection, rollout_id: str, lock: bool = False) -> rollouts_pb2.Rollout:
        row = conn.execute(f"SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE rollout_id=%s"
                           + (" FOR UPDATE" if lock else ""), (rollout_id,)).fetchone()
        if row is None:
            raise NotFound(f"no rollout {rollout_id!r}")
        return rollout_from_row(row)

    @staticmethod
    def _get_attempt(conn: psycopg.Connection, attempt_id: str, lock: bool = False) -> rollouts_pb2.Attempt:
        row = conn.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE attempt_id=%s"
                           + (" FOR UPDATE" if lock else ""), (attempt_id,)).fetchone()
        if row is None:
            raise NotFound(f"no attempt {attempt_id!r}")
        return attempt_from_row(row)

    def _lock_attempt(self, conn: psycopg.Connection, attempt_id: str
                      ) -> tuple[rollouts_pb2.Attempt, rollouts_pb2.Rollout]:
        """Lock the attempt's rollout, then the attempt (the one lock order every writer uses)."""
        rollout_id = self._get_attempt(conn, attempt_id).rollout_id
        rollout = self._get_rollout(conn, rollout_id, lock=True)
        return self._get_attempt(conn, attempt_id, lock=True), rollout

    def enqueue(self, specs: Sequence[rollouts_pb2.RolloutSpec]) -> list[rollouts_pb2.Rollout]:
        now = time.time_ns()
        out = []
        with self._transaction() as conn:
            for spec in specs:
                rollout_id = spec.rollout_id or ids.new_rollout_id()
                conn.execute(
                    f"INSERT INTO rollouts ({ROLLOUT_COLUMNS}) VALUES"
                    " (%s,%s,%s,%s,%s,%s,%s,%s,%s,0,'',FALSE,0,'',%s,%s) ON CONFLICT (rollout_id) DO NOTHING",
                    lifecycle.new_rollout_row(spec, rollout_id, self.default_max_attempts,
                                              self.default_heartbeat_timeout_s, now, text=pg_text))
                out.append(self._get_rollout(conn, rollout_id))
        return out

    def dequeue(self, worker_id: str, mode: str = "", principal: str = ""):
        now = time.time_ns()
        worker_id, mode = pg_text(worker_id), pg_text(mode)
        with self._connection() as conn:  # waiting workers poll: an empty queue costs one round trip
            if conn.execute("SELECT EXISTS (SELECT 1 FROM rollouts WHERE status=%s AND (%s='' OR mode=%s))",
                            (states.QUEUED, mode, mode)).fetchone()[0] is False:
                return None
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE status=%s AND (%s='' OR mode=%s)"
                " ORDER BY queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED", (states.QUEUED, mode, mode)).fetchone()
            if row is None:
                return None
            rollout = rollout_from_row(row)
            number = rollout.attempt_count + 1
            attempt_id = ids.new_attempt_id(rollout.rollout_id, number)
            conn.execute(f"INSERT INTO attempts ({ATTEMPT_COLUMNS}, principal) VALUES (%s,%s,%s,%s,%s,%s,0,%s,'',%s)",
                         (attempt_id, rollout.rollout_id, number, worker_id, states.RUNNING, now, now,
                          pg_text(principal)))
            conn.execute("UPDATE rollouts SET status=%s, attempt_count=%s, current_attempt_id=%s, updated_ns=%s"
                         " WHERE rollout_id=%s", (states.RUNNING, number, attempt_id, now, rollout.rollout_id))
            return self._get_rollout(conn, rollout.rollout_id), self._get_attempt(conn, attempt_id)

    def heartbeat(self, attempt_id: str, worker_id: str) -> rollouts_pb2.HeartbeatResponse:
        now = time.time_ns()
        with self._transaction() as conn:
            attempt, rollout = self._lock_attempt(conn, attempt_id)
            active = lifecycle.is_active(attempt, rollout, pg_text(worker_id))
            if active:
                conn.execute("UPDATE attempts SET last_heartbeat_ns=%s WHERE attempt_id=%s", (now, attempt_id))
        return rollouts_pb2.HeartbeatResponse(active=active, rollout_status=rollout.status)

    def _finish_attempt(self, conn: psycopg.Connection, attempt: rollouts_pb2.Attempt, rollout: rollouts_pb2.Rollout,
                        status: int, error: str, now: int, timed_out: bool,
                        final_reward: Optional[float] = None) -> None:
        conn.execute("UPDATE attempts SET status=%s, end_ns=%s, error=%s WHERE attempt_id=%s",
                     (status, now, error, attempt.attempt_id))
        new_status, rollout_error = lifecycle.attempt_end(attempt, rollout, status, error, timed_out)
        has_reward, reward = lifecycle.reward_columns(final_reward)
        conn.execute(
            "UPDATE rollouts SET status=%s, error=%s, updated_ns=%s,"
            " has_final_reward = has_final_reward OR %s,"
            " final_reward = CASE WHEN %s THEN %s ELSE final_reward END,"
            " current_attempt_id = CASE WHEN %s THEN '' ELSE current_attempt_id END WHERE rollout_id=%s",
            (new_status, rollout_error, now, has_reward, has_reward, reward, new_status == states.QUEUED,
             attempt.rollout_id))

    def complete(self, attempt_id: str, worker_id: str, success: bool,
                 final_reward: Optional[float], error: str) -> rollouts_pb2.Rollout:
        now = time.time_ns()
        with self._transaction() as conn:
            attempt, rollout = self._lock_attempt(conn, attempt_id)
            lifecycle.ensure_active(attempt, rollout, pg_text(worker_id))
            status, attempt_error = lifecycle.completion(success, pg_text(error))
            self._finish_attempt(conn, attempt, rollout, status, attempt_error, now, timed_out=False,
                                 final_reward=final_reward)
            return self._get_rollout(conn, attempt.rollout_id)

    def cancel(self, rollout_id: str) -> rollouts_pb2.Rollout:
        now = time.time_ns()
        with self._transaction() as conn:
            rollout = self._get_rollout(conn, rollout_id, lock=True)
            if rollout.status in states.TERMINAL:
                return rollout
            states.check_transition(rollout.status, states.CANCELLED)
            conn.execute("UPDATE attempts SET status=%s, end_ns=%s, error='cancelled' WHERE rollout_id=%s AND status=%s",
                         (states.CANCELLED, now, rollout_id, states.RUNNING))
            conn.execute("UPDATE rollouts SET status=%s, current_attempt_id='', updated_ns=%s WHERE rollout_id=%s",
                         (states.CANCELLED, now, rollout_id))
            return self._get_rollout(conn, rollout_id)

    def expire_attempts(self, now_ns: int) -> list[str]:
        """Rows another replica is finishing right now are skipped (SKIP LOCKED), never finished twice."""
        affected = []
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {A_COLUMNS}, r.heartbeat_timeout_s, {', '.join('r.' + c.strip() for c in ROLLOUT_COLUMNS.split(','))}"
                " FROM attempts a JOIN rollouts r ON r.rollout_id = a.rollout_id"
                " WHERE a.status=%s AND a.last_heartbeat_ns + (r.heartbeat_timeout_s * 1e9)::BIGINT < %s"
                " ORDER BY r.queue_seq FOR UPDATE OF r, a SKIP LOCKED", (states.RUNNING, now_ns)).fetchall()
            for row in rows:
                attempt, timeout_s, rollout = attempt_from_row(row[:9]), row[9], rollout_from_row(row[10:])
                self._finish_attempt(conn, attempt, rollout, states.TIMED_OUT, lifecycle.expiry_error(timeout_s),
                                     now_ns, timed_out=True)
                affected.append(attempt.rollout_id)
        return affected

    def get_rollout(self, rollout_id: str) -> rollouts_pb2.Rollout:
        with self._connection() as conn:
            return self._get_rollout(conn, rollout_id)

    def list_rollouts(self, status: int = 0, group_id: str = "", limit: int = 100,
                      offset: int = 0) -> list[rollouts_pb2.Rollout]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE (%s=0 OR status=%s) AND (%s='' OR group_id=%s)"
                " ORDER BY created_ns, queue_seq LIMIT %s OFFSET %s",
                (status, status, group_id, group_id, limit, offset)).fetchall()
        return [rollout_from_row(r) for r in rows]

    def list_attempts(self, rollout_id: str) -> list[rollouts_pb2.Attempt]:
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE rollout_id=%s ORDER BY number",
                                (rollout_id,)).fetchall()
        return [attempt_from_row(r) for r in rows]

    def attempt_owners(self, rollout_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        unique = list(dict.fromkeys(rollout_ids))
        owners: dict[str, dict[str, str]] = {}
        with self._connection() as conn:
            for (rollout_id,) in conn.execute("SELECT rollout_id FROM rollouts WHERE rollout_id = ANY(%s)", (unique,)):
                owners.setdefault(rollout_id, {})
            for rollout_id, attempt_id, principal in conn.execute(
                    "SELECT rollout_id, attempt_id, principal FROM attempts WHERE rollout_id = ANY(%s)", (unique,)):
                owners.setdefault(rollout_id, {})[attempt_id] = principal
        return owners

    # -- access tokens -------------------------------------------------------------------
    def add_token(self, name: str, role: str, token_hash: bytes) -> TokenRecord:
        now = time.time_ns()
        try:
            with self._transaction() as conn:
                conn.execute("INSERT INTO tokens (name, role, token_hash, created_ns) VALUES (%s,%s,%s,%s)",
                             (name, role, token_hash, now))
        except StoreError as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise StoreError(f"a token named {name!r} already exists") from None
            raise
        return TokenRecord(name, role, token_hash, now)

    def revoke_token(self, name: str) -> bool:
        with self._transaction() as conn:
            return conn.execute("UPDATE tokens SET revoked=TRUE WHERE name=%s", (name,)).rowcount == 1

    def list_tokens(self) -> list[TokenRecord]:
        with self._connection() as conn:
            rows = conn.execute("SELECT name, role, token_hash, created_ns, revoked FROM tokens ORDER BY name").fetchall()
        return [TokenRecord(n, r, bytes(h), c, bool(v)) for n, r, h, c, v in rows]

    # -- resources -----------------------------------------------------------------------
    def publish_resource(self, resource: resources_pb2.ModelResource) -> resources_pb2.ModelResource:
        stored = resources_pb2.ModelResource()
        stored.CopyFrom(resource)
        stored.name = stored.name or "policy"
        stored.published_unix_nano = time.time_ns()
        with self._transaction() as conn:
            conn.execute("INSERT INTO resources (name, data) VALUES (%s, %s)"
                         " ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data",
                         (stored.name, stored.SerializeToString()))
        return stored

    def get_resource(self, name: str) -> resources_pb2.ModelResource:
        name = name or "policy"
        with self._connection() as conn:
            row = conn.execute("SELECT data FROM resources WHERE name=%s", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no resource {name!r} has been published")
        return resources_pb2.ModelResource.FromString(row[0])

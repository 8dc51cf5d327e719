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
import json
import threading
import time
import weakref
from typing import Any, Iterator, Optional, Sequence

import psycopg
from psycopg import errors as pg_errors

from agentlightning.core import ids
from agentlightning.core import rollout_states as states
from agentlightning.core.auth import TokenRecord
from agentlightning.core.store.base import AttemptNotActive, NotFound, SpanRecord, Store, StoreError, StoreUnavailable
from agentlightning.v1 import resources_pb2, rollouts_pb2, spans_pb2

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id BYTEA NOT NULL, span_id BYTEA NOT NULL, rollout_id TEXT NOT NULL, attempt_id TEXT NOT NULL,
    kind INTEGER NOT NULL, start_ns BIGINT NOT NULL, producer_id TEXT NOT NULL, seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    CONSTRAINT spans_key UNIQUE (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_rollout ON spans(rollout_id, attempt_id);
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, group_id TEXT NOT NULL, input_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL, mode TEXT NOT NULL, status INTEGER NOT NULL, max_attempts INTEGER NOT NULL,
    heartbeat_timeout_s DOUBLE PRECISION NOT NULL, attempt_count INTEGER NOT NULL DEFAULT 0,
    current_attempt_id TEXT NOT NULL DEFAULT '', has_final_reward BOOLEAN NOT NULL DEFAULT FALSE,
    final_reward DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
    created_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL,
    queue_seq BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS rollouts_queue ON rollouts(status, queue_seq);
CREATE INDEX IF NOT EXISTS rollouts_group ON rollouts(group_id);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id TEXT PRIMARY KEY, rollout_id TEXT NOT NULL, number INTEGER NOT NULL, worker_id TEXT NOT NULL,
    status INTEGER NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL DEFAULT 0,
    last_heartbeat_ns BIGINT NOT NULL, error TEXT NOT NULL DEFAULT '', principal TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS attempts_rollout ON attempts(rollout_id);
CREATE INDEX IF NOT EXISTS attempts_status ON attempts(status);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash BYTEA NOT NULL UNIQUE, created_ns BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS resources (name TEXT PRIMARY KEY, data BYTEA NOT NULL);
"""
_SCHEMA_LOCK = 0x61676C74  # advisory lock: replicas starting together create the schema once
_SPAN_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS span_stage (ord INTEGER, trace_id BYTEA, span_id BYTEA,"
               " rollout_id TEXT, attempt_id TEXT, kind INTEGER, start_ns BIGINT, producer_id TEXT, seq BIGINT,"
               " data BYTEA) ON COMMIT DELETE ROWS")
_SPAN_TYPES = ["int4", "bytea", "bytea", "text", "text", "int4", "int8", "text", "int8", "bytea"]
_SPAN_COLUMNS = "trace_id, span_id, rollout_id, attempt_id, kind, start_ns, producer_id, seq, data"
_ROLLOUT_COLUMNS = ("rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts,"
                    " heartbeat_timeout_s, attempt_count, current_attempt_id, has_final_reward, final_reward,"
                    " error, created_ns, updated_ns")
_ATTEMPT_COLUMNS = "attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, last_heartbeat_ns, error"
_A_COLUMNS = ", ".join("a." + c.strip() for c in _ATTEMPT_COLUMNS.split(","))
# Errors that mean "the database cannot take this write now", as opposed to a bad request.
_UNAVAILABLE = (psycopg.OperationalError, pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientResources,
                pg_errors.CannotConnectNow, pg_errors.AdminShutdown,
                pg_errors.TransactionRollback)  # deadlock / serialization: retry later
_INT64 = 1 << 63


def _i64(value: int) -> int:
    """uint64 index columns (sequence) as BIGINT; the exact value lives in the span bytes."""
    return value - (1 << 64) if value >= _INT64 else value


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; user-supplied strings (errors, worker ids) may."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _rollout(row: Sequence[Any]) -> rollouts_pb2.Rollout:
    (rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts, timeout_s,
     attempt_count, current_attempt_id, has_final_reward, final_reward, error, created_ns, updated_ns) = row
    return rollouts_pb2.Rollout(
        rollout_id=rollout_id, task_id=task_id, group_id=group_id, input_json=input_json,
        metadata=json.loads(metadata_json), mode=mode, status=status, max_attempts=max_attempts,
        heartbeat_timeout_s=timeout_s, attempt_count=attempt_count, current_attempt_id=current_attempt_id,
        has_final_reward=has_final_reward, final_reward=final_reward, error=error,
        created_unix_nano=created_ns, updated_unix_nano=updated_ns)


def _attempt(row: Sequence[Any]) -> rollouts_pb2.Attempt:
    attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, hb_ns, error = row
    return rollouts_pb2.Attempt(
        attempt_id=attempt_id, rollout_id=rollout_id, number=number, worker_id=worker_id, status=status,
        start_time_unix_nano=start_ns, end_time_unix_nano=end_ns, last_heartbeat_unix_nano=hb_ns, error=error)


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
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
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
        if not records:
            return []
        with self._connection() as conn:
            if conn not in self._staged:  # autocommit: the table outlives a rolled-back batch
                conn.execute(_SPAN_STAGE)
                self._staged.add(conn)
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(f"COPY span_stage (ord, {_SPAN_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(_SPAN_TYPES)
                        for i, r in enumerate(records):
                            copy.write_row((i, r[0], r[1], r[2], r[3], r[4], r[5], r[6], _i64(r[7]), r[8]))
                    cur.execute(f"INSERT INTO spans ({_SPAN_COLUMNS}) SELECT {_SPAN_COLUMNS} FROM span_stage"
                                " ORDER BY ord ON CONFLICT DO NOTHING RETURNING trace_id, span_id")
                    new = {(bytes(t), bytes(s)) for t, s in cur.fetchall()}
        if len(new) == len(records):
            return [True] * len(records)
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
        row = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE rollout_id=%s"
                           + (" FOR UPDATE" if lock else ""), (rollout_id,)).fetchone()
        if row is None:
            raise NotFound(f"no rollout {rollout_id!r}")
        return _rollout(row)

    @staticmethod
    def _get_attempt(conn: psycopg.Connection, attempt_id: str, lock: bool = False) -> rollouts_pb2.Attempt:
        row = conn.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE attempt_id=%s"
                           + (" FOR UPDATE" if lock else ""), (attempt_id,)).fetchone()
        if row is None:
            raise NotFound(f"no attempt {attempt_id!r}")
        return _attempt(row)

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
                    f"INSERT INTO rollouts ({_ROLLOUT_COLUMNS}) VALUES"
                    " (%s,%s,%s,%s,%s,%s,%s,%s,%s,0,'',FALSE,0,'',%s,%s) ON CONFLICT (rollout_id) DO NOTHING",
                    (rollout_id, spec.task_id, spec.group_id, spec.input_json or "null",
                     json.dumps(dict(spec.metadata)), _text(spec.mode or "train"), states.QUEUED,
                     spec.max_attempts or self.default_max_attempts,
                     spec.heartbeat_timeout_s or self.default_heartbeat_timeout_s, now, now))
                out.append(self._get_rollout(conn, rollout_id))
        return out

    def dequeue(self, worker_id: str, mode: str = "", principal: str = ""):
        now = time.time_ns()
        worker_id, mode = _text(worker_id), _text(mode)
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE status=%s AND (%s='' OR mode=%s)"
                " ORDER BY queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED", (states.QUEUED, mode, mode)).fetchone()
            if row is None:
                return None
            rollout = _rollout(row)
            number = rollout.attempt_count + 1
            attempt_id = ids.new_attempt_id(rollout.rollout_id, number)
            conn.execute(f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}, principal) VALUES (%s,%s,%s,%s,%s,%s,0,%s,'',%s)",
                         (attempt_id, rollout.rollout_id, number, worker_id, states.RUNNING, now, now,
                          _text(principal)))
            conn.execute("UPDATE rollouts SET status=%s, attempt_count=%s, current_attempt_id=%s, updated_ns=%s"
                         " WHERE rollout_id=%s", (states.RUNNING, number, attempt_id, now, rollout.rollout_id))
            return self._get_rollout(conn, rollout.rollout_id), self._get_attempt(conn, attempt_id)

    def heartbeat(self, attempt_id: str, worker_id: str) -> rollouts_pb2.HeartbeatResponse:
        now = time.time_ns()
        with self._transaction() as conn:
            attempt, rollout = self._lock_attempt(conn, attempt_id)
            active = (attempt.status == states.RUNNING and attempt.worker_id == _text(worker_id)
                      and rollout.current_attempt_id == attempt_id)
            if active:
                conn.execute("UPDATE attempts SET last_heartbeat_ns=%s WHERE attempt_id=%s", (now, attempt_id))
        return rollouts_pb2.HeartbeatResponse(active=active, rollout_status=rollout.status)

    def _finish_attempt(self, conn: psycopg.Connection, attempt: rollouts_pb2.Attempt, rollout: rollouts_pb2.Rollout,
                        status: int, error: str, now: int, timed_out: bool,
                        final_reward: Optional[float] = None) -> None:
        conn.execute("UPDATE attempts SET status=%s, end_ns=%s, error=%s WHERE attempt_id=%s",
                     (status, now, error, attempt.attempt_id))
        if status == states.SUCCEEDED:
            new_status = states.SUCCEEDED
        else:
            new_status = states.after_failed_attempt(attempt.number, rollout.max_attempts, timed_out)
        states.check_transition(rollout.status, new_status)
        if new_status in (states.FAILED, states.TIMED_OUT):
            error = f"attempt {attempt.number}/{rollout.max_attempts}: {error}"
        has_reward = final_reward is not None
        conn.execute(
            "UPDATE rollouts SET status=%s, error=%s, updated_ns=%s,"
            " has_final_reward = has_final_reward OR %s,"
            " final_reward = CASE WHEN %s THEN %s ELSE final_reward END,"
            " current_attempt_id = CASE WHEN %s THEN '' ELSE current_attempt_id END WHERE rollout_id=%s",
            (new_status, error, now, has_reward, has_reward, final_reward if has_reward else 0.0,
             new_status == states.QUEUED, attempt.rollout_id))

    def complete(self, attempt_id: str, worker_id: str, success: bool,
                 final_reward: Optional[float], error: str) -> rollouts_pb2.Rollout:
        now = time.time_ns()
        with self._transaction() as conn:
            attempt, rollout = self._lock_attempt(conn, attempt_id)
            if (attempt.status != states.RUNNING or attempt.worker_id != _text(worker_id)
                    or rollout.current_attempt_id != attempt_id):
                raise AttemptNotActive(
                    f"attempt {attempt_id!r} is not running for worker {worker_id!r} "
                    f"(attempt {states.name(attempt.status)}, rollout {states.name(rollout.status)})")
            status = states.SUCCEEDED if success else states.FAILED
            self._finish_attempt(conn, attempt, rollout, status, "" if success else _text(error or "failed"), now,
                                 timed_out=False, final_reward=final_reward)
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
                f"SELECT {_A_COLUMNS}, r.heartbeat_timeout_s, {', '.join('r.' + c.strip() for c in _ROLLOUT_COLUMNS.split(','))}"
                " FROM attempts a JOIN rollouts r ON r.rollout_id = a.rollout_id"
                " WHERE a.status=%s AND a.last_heartbeat_ns + (r.heartbeat_timeout_s * 1e9)::BIGINT < %s"
                " ORDER BY r.queue_seq FOR UPDATE OF r, a SKIP LOCKED", (states.RUNNING, now_ns)).fetchall()
            for row in rows:
                attempt, timeout_s, rollout = _attempt(row[:9]), row[9], _rollout(row[10:])
                self._finish_attempt(conn, attempt, rollout, states.TIMED_OUT,
                                     f"timed out: no heartbeat for {timeout_s:g}s", now_ns, timed_out=True)
                affected.append(attempt.rollout_id)
        return affected

    def get_rollout(self, rollout_id: str) -> rollouts_pb2.Rollout:
        with self._connection() as conn:
            return self._get_rollout(conn, rollout_id)

    def list_rollouts(self, status: int = 0, group_id: str = "", limit: int = 100,
                      offset: int = 0) -> list[rollouts_pb2.Rollout]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE (%s=0 OR status=%s) AND (%s='' OR group_id=%s)"
                " ORDER BY created_ns, queue_seq LIMIT %s OFFSET %s",
                (status, status, group_id, group_id, limit, offset)).fetchall()
        return [_rollout(r) for r in rows]

    def list_attempts(self, rollout_id: str) -> list[rollouts_pb2.Attempt]:
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE rollout_id=%s ORDER BY number",
                                (rollout_id,)).fetchall()
        return [_attempt(r) for r in rows]

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

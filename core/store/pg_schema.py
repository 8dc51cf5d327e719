"""PostgreSQL schema and span column lists for core/store/postgres.py (rollout and attempt columns and
row converters are shared with SQLite: core/store/lifecycle.py)."""
from __future__ import annotations

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
SCHEMA_LOCK = 0x61676C74  # advisory lock: replicas starting together create the schema once
SPAN_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS span_stage (ord INTEGER, trace_id BYTEA, span_id BYTEA,"
              " rollout_id TEXT, attempt_id TEXT, kind INTEGER, start_ns BIGINT, producer_id TEXT, seq BIGINT,"
              " data BYTEA) ON COMMIT DELETE ROWS")
SPAN_TYPES = ["int4", "bytea", "bytea", "text", "text", "int4", "int8", "text", "int8", "bytea"]
SPAN_COLUMNS = "trace_id, span_id, rollout_id, attempt_id, kind, start_ns, producer_id, seq, data"
INT64 = 1 << 63


def to_int64(value: int) -> int:
    """uint64 index columns (sequence) as BIGINT; the exact value lives in the span bytes."""
    return value - (1 << 64) if value >= INT64 else value


def pg_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; user-supplied strings (errors, worker ids) may."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


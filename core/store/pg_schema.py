"""PostgreSQL schema, SQL column lists and row converters for core/store/postgres.py."""
from __future__ import annotations

import json
from typing import Any, Sequence

from agentlightning.v1 import rollouts_pb2

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
ROLLOUT_COLUMNS = ("rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts,"
                   " heartbeat_timeout_s, attempt_count, current_attempt_id, has_final_reward, final_reward,"
                   " error, created_ns, updated_ns")
ATTEMPT_COLUMNS = "attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, last_heartbeat_ns, error"
A_COLUMNS = ", ".join("a." + c.strip() for c in ATTEMPT_COLUMNS.split(","))
INT64 = 1 << 63


def to_int64(value: int) -> int:
    """uint64 index columns (sequence) as BIGINT; the exact value lives in the span bytes."""
    return value - (1 << 64) if value >= INT64 else value


def pg_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; user-supplied strings (errors, worker ids) may."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def rollout_from_row(row: Sequence[Any]) -> rollouts_pb2.Rollout:
    (rollout_id, task_id, group_id, input_json, metadata_json, mode, status, max_attempts, timeout_s,
     attempt_count, current_attempt_id, has_final_reward, final_reward, error, created_ns, updated_ns) = row
    return rollouts_pb2.Rollout(
        rollout_id=rollout_id, task_id=task_id, group_id=group_id, input_json=input_json,
        metadata=json.loads(metadata_json), mode=mode, status=status, max_attempts=max_attempts,
        heartbeat_timeout_s=timeout_s, attempt_count=attempt_count, current_attempt_id=current_attempt_id,
        has_final_reward=has_final_reward, final_reward=final_reward, error=error,
        created_unix_nano=created_ns, updated_unix_nano=updated_ns)


def attempt_from_row(row: Sequence[Any]) -> rollouts_pb2.Attempt:
    attempt_id, rollout_id, number, worker_id, status, start_ns, end_ns, hb_ns, error = row
    return rollouts_pb2.Attempt(
        attempt_id=attempt_id, rollout_id=rollout_id, number=number, worker_id=worker_id, status=status,
        start_time_unix_nano=start_ns, end_time_unix_nano=end_ns, last_heartbeat_unix_nano=hb_ns, error=error)

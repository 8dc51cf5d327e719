"""SQLite schema for core/store/sqlite.py (the column lists are shared: core/store/lifecycle.py)."""
from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    rollout_id TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    producer_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_key ON spans(trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_rollout ON spans(rollout_id, attempt_id);
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    input_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    mode TEXT NOT NULL,
    status INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    heartbeat_timeout_s REAL NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    current_attempt_id TEXT NOT NULL DEFAULT '',
    has_final_reward INTEGER NOT NULL DEFAULT 0,
    final_reward REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    queue_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rollouts_queue ON rollouts(status, queue_seq);
CREATE INDEX IF NOT EXISTS rollouts_group ON rollouts(group_id);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id TEXT PRIMARY KEY,
    rollout_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL DEFAULT 0,
    last_heartbeat_ns INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    principal TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_rollout ON attempts(rollout_id);
CREATE INDEX IF NOT EXISTS attempts_status ON attempts(status);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS resources (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
"""

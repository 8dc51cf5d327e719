"""Identifier helpers: W3C-sized trace/span ids and readable rollout ids."""
from __future__ import annotations

import os
import secrets
import socket
import uuid


def new_trace_id() -> bytes:
    """16 random bytes, never all zero (the W3C invalid value)."""
    while True:
        value = secrets.token_bytes(16)
        if any(value):
            return value


def new_span_id() -> bytes:
    """8 random bytes, never all zero."""
    while True:
        value = secrets.token_bytes(8)
        if any(value):
            return value


def new_rollout_id(prefix: str = "ro") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def new_attempt_id(rollout_id: str, number: int) -> str:
    return f"{rollout_id}:{number}"


def new_producer_id() -> str:
    """Unique per process start: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def hex_id(value: bytes) -> str:
    return value.hex()

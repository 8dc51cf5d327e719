"""Identifier helpers: W3C-sized trace/span ids and readable rollout ids."""
from __future__ import annotations

import os
import random
import secrets
import socket
import uuid

# Span ids need uniqueness, not secrecy: a seeded Mersenne Twister is ~10x cheaper than urandom on the
# agent's hot path. Re-seeded after fork so child processes never repeat the parent's sequence.
_rng = random.Random(secrets.randbits(128))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _rng.seed(secrets.randbits(128)))


def new_trace_id() -> bytes:
    """16 random bytes, never all zero (the W3C invalid value)."""
    while True:
        value = secrets.token_bytes(16)
        if any(value):
            return value


def new_span_id() -> bytes:
    """8 random bytes, never all zero."""
    value = _rng.getrandbits(64)
    while not value:
        value = _rng.getrandbits(64)
    return value.to_bytes(8, "big")


def new_rollout_id(prefix: str = "ro") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def new_attempt_id(rollout_id: str, number: int) -> str:
    return f"{rollout_id}:{number}"


def new_producer_id() -> str:
    """Unique per process start: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def hex_id(value: bytes) -> str:
    return value.hex()

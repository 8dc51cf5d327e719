"""Access tokens: random secrets handed out once, stored only as SHA-256 hashes, checked in constant time.

Roles: ``admin`` (everything), ``worker`` (export spans, run rollouts, read), ``reader`` (read only).
Tokens are 256-bit random strings, so an unsalted SHA-256 is enough to make a stolen database useless
for logging in (there is nothing to brute-force).
"""
from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Optional, Sequence

ROLES = ("admin", "worker", "reader")
TOKEN_PREFIX = "alt_"

# Which role may call which method ("Service/Method"); admin may call anything.
_WORKER_METHODS = frozenset({
    "TraceService/Export", "TraceService/QuerySpans",
    "RolloutService/Dequeue", "RolloutService/Heartbeat", "RolloutService/Complete",
    "RolloutService/GetRollout", "RolloutService/ListRollouts", "RolloutService/ListAttempts",
    "ResourceService/Get",
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",  # OTLP receiver
})
_READER_METHODS = frozenset({
    "TraceService/QuerySpans", "RolloutService/GetRollout", "RolloutService/ListRollouts",
    "RolloutService/ListAttempts", "ResourceService/Get",
})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role ("" name when auth is off)."""

    name: str
    role: str


ANONYMOUS = Principal("", "admin")
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("agentlightning_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    return _current.get()


def set_principal(principal: Principal) -> contextvars.Token:
    return _current.set(principal)


def reset_principal(token: contextvars.Token) -> None:
    _current.reset(token)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: str
    token_hash: bytes
    created_unix_nano: int
    revoked: bool = False


def authenticate(token: str, records: Sequence[TokenRecord]) -> Optional[Principal]:
    """The principal whose (unrevoked) token this is. Compares every hash in constant time."""
    candidate = hash_token(token)
    found: Optional[Principal] = None
    for record in records:
        if hmac.compare_digest(candidate, record.token_hash) and not record.revoked:
            found = Principal(record.name, record.role)
    return found


def allowed(principal: Principal, method: str) -> bool:
    """``method`` is "/agentlightning.v1.Service/Method" or "/grpc.health.v1.Health/Check"."""
    if method.startswith("/grpc.health.v1.Health/"):
        return True
    short = method.rsplit(".", 1)[-1] if method.startswith("/agentlightning.v1.") else method
    if principal.role == "admin":
        return True
    if principal.role == "worker":
        return short in _WORKER_METHODS
    if principal.role == "reader":
        return short in _READER_METHODS
    return False

"""Access control at the door: token authentication, per-role method checks, per-client rate limits.

One gRPC server interceptor does it for every service, so no servicer can forget. Tokens are read from
the store (hashed) and cached for a second, so a revoked token stops working within about a second.
Nothing secret is logged: failures name the method and the reason, never the token.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import grpc

from agentlightning.core.auth import ANONYMOUS, Principal, TokenRecord, allowed, authenticate, reset_principal, set_principal
from agentlightning.core.store import Store

logger = logging.getLogger("agentlightning.server")

HEALTH_PREFIX = "/grpc.health.v1.Health/"


class RateLimiter:
    """A token bucket per client key: ``rate`` requests/s sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True


def _deny(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def reject(_request, context: grpc.ServicerContext):
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(reject)  # request left undecoded: nothing to parse


class SecurityInterceptor(grpc.ServerInterceptor):
    def __init__(self, store: Store, require_auth: bool, rate_limit_rps: float = 0.0,
                 rate_limit_burst: float = 0.0, token_cache_s: float = 1.0) -> None:
        self.store = store
        self.require_auth = require_auth
        self.limiter = RateLimiter(rate_limit_rps, rate_limit_burst or 2 * rate_limit_rps) if rate_limit_rps > 0 else None
        self.token_cache_s = token_cache_s
        self._tokens: list[TokenRecord] = []
        self._tokens_at = -1e9
        self._lock = threading.Lock()

    def _token_records(self) -> list[TokenRecord]:
        now = time.monotonic()
        if now - self._tokens_at > self.token_cache_s:
            with self._lock:
                if now - self._tokens_at > self.token_cache_s:
                    self._tokens = self.store.list_tokens()
                    self._tokens_at = now
        return self._tokens

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails):
        handler = continuation(details)
        method = details.method
        if handler is None or method.startswith(HEALTH_PREFIX):
            return handler
        principal = ANONYMOUS
        if self.require_auth:
            header = ""
            for key, value in details.invocation_metadata or ():
                if key == "authorization":
                    header = value
                    break
            if not header.startswith("Bearer "):
                logger.info("rejected %s: no access token", method)
                return _deny(grpc.StatusCode.UNAUTHENTICATED,
                             "missing access token: send metadata 'authorization: Bearer <token>'")
            found = authenticate(header[len("Bearer "):], self._token_records())
            if found is None:
                logger.info("rejected %s: invalid or revoked token", method)
                return _deny(grpc.StatusCode.UNAUTHENTICATED, "invalid or revoked access token")
            if not allowed(found, method):
                logger.info("rejected %s for %s: role %s", method, found.name, found.role)
                return _deny(grpc.StatusCode.PERMISSION_DENIED,
                             f"token {found.name!r} (role {found.role}) may not call {method}")
            principal = found
        if handler.unary_unary is None:
            return handler
        return self._wrap(handler, principal)

    def _wrap(self, handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        limiter = self.limiter

        def behavior(request, context: grpc.ServicerContext):
            if limiter is not None:
                key = principal.name or _peer_host(context.peer())
                if not limiter.allow(key):
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  f"rate limit of {limiter.rate:g} requests/s exceeded for "
                                  f"{principal.name or 'this client'}; retry later")
            token = set_principal(principal)
            try:
                return inner(request, context)
            finally:
                reset_principal(token)

        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def _peer_host(peer: Optional[str]) -> str:
    """'ipv4:127.0.0.1:5555' -> 'ipv4:127.0.0.1' (one bucket per host, not per connection)."""
    if not peer:
        return "unknown"
    return peer.rsplit(":", 1)[0]

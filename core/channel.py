"""One way to open a gRPC channel to a Lightning server (plaintext or TLS), for every client piece.

An endpoint may list several server replicas, comma-separated (``10.0.0.5:4747,10.0.0.6:4747``):
gRPC then balances calls round-robin over the replicas that answer, and a replica that goes away
is skipped. Client retries (RPCs, not the exporter, which keeps its own spool) go to another replica.
"""
from __future__ import annotations

import json
import socket
from typing import Optional, Sequence

import grpc

# Calls that fail because a replica vanished mid-call are retried (on another replica).
_REPLICA_SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{}],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "2s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
    }],
})


def _split_host_port(endpoint: str) -> tuple[str, str]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} must be host:port")
    return host.strip("[]"), port


def replica_target(endpoints: Sequence[str]) -> tuple[str, Optional[str]]:
    """A gRPC target naming every address of the replicas (``ipv4:a:p,b:p`` / ``ipv6:[a]:p,...``),
    and the first host name (for TLS name checks), or None when the hosts are IP addresses.
    Names are resolved once, here: list replicas by address where they move."""
    v4: list[str] = []
    v6: list[str] = []
    name: Optional[str] = None
    for endpoint in endpoints:
        host, port = _split_host_port(endpoint.strip())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            socket.inet_pton(family, host)
            found = [(family, host)]
        except OSError:
            name = name or host
            try:
                found = [(f, sa[0]) for f, _, _, _, sa in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)]
            except OSError as exc:
                raise ValueError(f"cannot resolve replica {endpoint!r}: {exc}") from None
        for family, ip in found:
            bucket, address = (v4, f"{ip}:{port}") if family == socket.AF_INET else (v6, f"[{ip}]:{port}")
            if address not in bucket:
                bucket.append(address)
    if not v4 and not v6:
        raise ValueError(f"no address for any of {list(endpoints)}")
    return ("ipv4:" + ",".join(v4) if v4 else "ipv6:" + ",".join(v6)), name


def open_channel(endpoint: str, tls_ca_file: Optional[str] = None, tls: bool = False,
                 options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """TLS when ``tls_ca_file`` is given (verify the server against that CA) or ``tls`` is set (system
    roots); plaintext otherwise. The server's name is checked against its certificate either way.
    ``endpoint`` may be a comma-separated list of replicas (one certificate must name them all)."""
    # gRPC's default reconnect backoff grows to 120 s: a client that saw the server down for a while
    # would then wait minutes after it is back. Retry connecting every few seconds at most.
    options = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
               ("grpc.max_reconnect_backoff_ms", 3000), *options]
    target = endpoint
    replicas = [e.strip() for e in endpoint.split(",") if e.strip()]
    if len(replicas) > 1:
        target, name = replica_target(replicas)
        options.append(("grpc.service_config", _REPLICA_SERVICE_CONFIG))
        if name and (tls_ca_file or tls):
            options.append(("grpc.ssl_target_name_override", name))
    if tls_ca_file or tls:
        roots = None
        if tls_ca_file:
            with open(tls_ca_file, "rb") as f:
                roots = f.read()
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options=options)
    return grpc.insecure_channel(target, options=options)

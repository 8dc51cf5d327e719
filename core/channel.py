"""One way to open a gRPC channel to a Lightning server (plaintext or TLS), for every client piece."""
from __future__ import annotations

from typing import Optional, Sequence

import grpc


def open_channel(endpoint: str, tls_ca_file: Optional[str] = None, tls: bool = False,
                 options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """TLS when ``tls_ca_file`` is given (verify the server against that CA) or ``tls`` is set (system
    roots); plaintext otherwise. The server's name is checked against its certificate either way."""
    if tls_ca_file or tls:
        roots = None
        if tls_ca_file:
            with open(tls_ca_file, "rb") as f:
                roots = f.read()
        return grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(root_certificates=roots), options=list(options))
    return grpc.insecure_channel(endpoint, options=list(options))

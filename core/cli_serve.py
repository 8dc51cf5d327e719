"""``agentlightning serve`` (run the server) and ``agentlightning token`` (manage access tokens)."""
from __future__ import annotations

import argparse
import ipaddress
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the Lightning server (gRPC ingest, rollouts, resources)")
    p.add_argument("--db", default="agentlightning.db",
                   help="SQLite file (default: ./agentlightning.db) or postgresql://user:pw@host/db (several replicas)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4747, help="port (default 4747; 0 = any free port)")
    p.add_argument("--auth", action="store_true", help="require access tokens (see `agentlightning token`)")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain: serve TLS")
    p.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    p.add_argument("--rate-limit", type=float, default=5000.0, help="requests/s per client (0 = off)")
    p.add_argument("--max-message-mib", type=int, default=64, help="largest request accepted (MiB)")
    p.add_argument("--insecure", action="store_true",
                   help="allow listening on a non-loopback address without --auth")
    p.set_defaults(func=run_serve)

    t = sub.add_parser("token", help="create, list and revoke access tokens (stored hashed in the db)")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    create = tsub.add_parser("create", help="create a token and print it once")
    create.add_argument("name")
    create.add_argument("--role", choices=("admin", "worker", "reader"), default="worker")
    create.add_argument("--db", default="agentlightning.db")
    create.set_defaults(func=run_token_create)
    revoke = tsub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    revoke.add_argument("--db", default="agentlightning.db")
    revoke.set_defaults(func=run_token_revoke)
    listing = tsub.add_parser("list", help="list token names and roles (never the tokens)")
    listing.add_argument("--db", default="agentlightning.db")
    listing.set_defaults(func=run_token_list)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    from agentlightning.core.server import ServerConfig, serve

    if not args.auth and not args.insecure and not _is_loopback(args.host):
        print(f"error: refusing to listen on {args.host} without --auth (anyone could write and read); "
              "create tokens with `agentlightning token create`, or pass --insecure", file=sys.stderr)
        return 2
    config = ServerConfig(host=args.host, port=args.port, require_auth=args.auth, tls_cert_file=args.tls_cert,
                          tls_key_file=args.tls_key, rate_limit_rps=args.rate_limit,
                          max_message_bytes=args.max_message_mib * 1024 * 1024)
    if args.auth:
        from agentlightning.core.store import open_store

        store = open_store(args.db)
        count = sum(1 for t in store.list_tokens() if not t.revoked)
        store.close()
        if not count:
            print("error: --auth but no token exists; create one: agentlightning token create NAME "
                  f"--role admin --db {args.db}", file=sys.stderr)
            return 2
    serve(db=args.db, config=config)
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    from agentlightning.core.auth import hash_token, new_token
    from agentlightning.core.store import StoreError, open_store

    store = open_store(args.db)
    token = new_token()
    try:
        store.add_token(args.name, args.role, hash_token(token))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(token)
    print(f"(token {args.name!r}, role {args.role}: shown once, stored only as a hash)", file=sys.stderr)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    from agentlightning.core.store import open_store

    store = open_store(args.db)
    try:
        if not store.revoke_token(args.name):
            print(f"error: no token named {args.name!r}", file=sys.stderr)
            return 1
    finally:
        store.close()
    print(f"revoked {args.name!r} (servers stop accepting it within ~1 s)")
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    from agentlightning.core.store import open_store

    store = open_store(args.db)
    try:
        for t in store.list_tokens():
            print(f"{t.name}\t{t.role}\t{'revoked' if t.revoked else 'active'}")
    finally:
        store.close()
    return 0

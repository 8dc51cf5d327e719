"""``agentlightning serve``: run the Lightning server."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the Lightning server (gRPC ingest, rollouts, resources)")
    p.add_argument("--db", default="agentlightning.db", help="SQLite file (default: ./agentlightning.db)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4747, help="port (default 4747; 0 = any free port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentlightning.core.server import serve

    serve(db=args.db, host=args.host, port=args.port)
    return 0

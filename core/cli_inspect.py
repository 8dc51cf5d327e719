"""``agentlightning rollouts`` and ``agentlightning spans``: read what the server stored."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from agentlightning.core import rollout_states as states
from agentlightning.core.exporter import DEFAULT_ENDPOINT
from agentlightning.core.span_tree import build_tree, format_tree


def _add_endpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=None, help=f"server address (default $AGENTLIGHTNING_ENDPOINT or {DEFAULT_ENDPOINT})")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollouts", help="list rollouts with status and reward")
    _add_endpoint(p)
    p.add_argument("--status", default="", help="only this status (queued, running, succeeded, failed, ...)")
    p.add_argument("--group", default="", help="only this group id")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_rollouts)

    p = sub.add_parser("spans", help="show the span tree of a rollout")
    _add_endpoint(p)
    p.add_argument("rollout_id")
    p.add_argument("--attempt", default="", help="only this attempt id")
    p.set_defaults(func=cmd_spans)


def _client(args: argparse.Namespace):
    from agentlightning.core.client import LightningClient

    return LightningClient.from_env(args.endpoint, timeout_s=10.0)


def _fail(exc: grpc.RpcError) -> int:
    print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
    return 1


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ns else "-"


def cmd_rollouts(args: argparse.Namespace) -> int:
    status = 0
    if args.status:
        key = f"ROLLOUT_STATUS_{args.status.upper()}"
        try:
            from agentlightning.v1 import rollouts_pb2

            status = rollouts_pb2.RolloutStatus.Value(key)
        except ValueError:
            print(f"error: unknown status {args.status!r}", file=sys.stderr)
            return 2
    try:
        with _client(args) as client:
            rollouts = client.list_rollouts(status=status, group_id=args.group, limit=args.limit)
    except grpc.RpcError as exc:
        return _fail(exc)
    if args.json:
        json.dump([MessageToDict(r, preserving_proto_field_name=True) for r in rollouts], sys.stdout, indent=2)
        print()
        return 0
    rows = [("ROLLOUT", "STATUS", "ATTEMPTS", "REWARD", "GROUP", "CREATED", "ERROR")]
    for r in rollouts:
        rows.append((r.rollout_id, states.name(r.status), f"{r.attempt_count}/{r.max_attempts}",
                     f"{r.final_reward:.3f}" if r.has_final_reward else "-", r.group_id or "-",
                     _time(r.created_unix_nano), (r.error or "")[:60]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
    if len(rows) == 1:
        print("(no rollouts)")
    return 0


def cmd_spans(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            spans = client.query_spans(args.rollout_id, args.attempt)
    except grpc.RpcError as exc:
        return _fail(exc)
    if args.json:
        out: list[dict[str, Any]] = []
        for s in spans:
            d = MessageToDict(s, preserving_proto_field_name=True)
            for key in ("trace_id", "span_id", "parent_span_id"):
                d[key] = getattr(s, key).hex()
            out.append(d)
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    if not spans:
        print(f"no spans stored for rollout {args.rollout_id!r}")
        return 1
    print(format_tree(build_tree(spans)))
    return 0

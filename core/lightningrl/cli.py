"""``agentlightning transitions ROLLOUT_ID`` and ``agentlightning export``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from agentlightning.core.lightningrl import diagnostics, export, loading
from agentlightning.core.lightningrl.config import CREDIT_MODES, NORMALIZERS, AirConfig, LightningRLConfig
from agentlightning.core.lightningrl.transitions import build_transitions
from agentlightning.core.lightningrl.types import RolloutTrace, Transition


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=None,
                   help="server address (default $AGENTLIGHTNING_ENDPOINT or 127.0.0.1:4747)")
    p.add_argument("--db", default=None, help="read a server's SQLite file directly instead of a server "
                   "(export then also finds live rollouts, which a server lists only by id)")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agents", default=None, help="regex of agent names to train, e.g. 'writer|rewriter'")
    p.add_argument("--credit", default="episode", choices=CREDIT_MODES)
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--normalizer", default="grpo", choices=NORMALIZERS)
    p.add_argument("--attempts", default="last", choices=("last", "all"))
    p.add_argument("--no-air", action="store_true", help="switch Automatic Intermediate Rewards off")
    p.add_argument("--reward-name", default=None, help="train on this reward dimension instead of the primary")
    p.add_argument("--include-failed", action="store_true", help="keep rollouts that did not succeed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transitions", help="show a rollout's RL transitions with their reward breakdown")
    p.add_argument("rollout_id")
    _add_source(p)
    _add_config(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--messages", action="store_true", help="include each call's messages")
    p.set_defaults(func=cmd_transitions)

    p = sub.add_parser("export", help="write transitions as jsonl, parquet or a Hugging Face dataset")
    _add_source(p)
    _add_config(p)
    p.add_argument("--format", default="jsonl", choices=export.FORMATS)
    p.add_argument("--out", required=True, help="output file (jsonl, parquet) or directory (hf)")
    p.add_argument("--group", default="", help="only this group id")
    p.add_argument("--rollout", action="append", default=None, help="only this rollout id (repeatable)")
    p.add_argument("--messages", action="store_true", help="also write each call's messages")
    p.set_defaults(func=cmd_export)


def config_from_args(args: argparse.Namespace) -> LightningRLConfig:
    return LightningRLConfig(
        agents=args.agents, credit=args.credit, gamma=args.gamma, normalizer=args.normalizer,
        attempts=args.attempts, air=AirConfig(enabled=not args.no_air), reward_name=args.reward_name,
        include_failed=args.include_failed, include_messages=bool(getattr(args, "messages", False)))


def _load(args: argparse.Namespace, rollout_ids: Optional[list[str]], group_id: str = "") -> list[RolloutTrace]:
    if args.db:
        from agentlightning.core.store.sqlite import SqliteStore

        if not os.path.exists(args.db):
            raise FileNotFoundError(f"no database at {args.db}")
        store = SqliteStore(args.db)
        try:
            return loading.load_from_store(store, rollout_ids, group_id)
        finally:
            store.close()
    from agentlightning.core.cli_inspect import _client

    with _client(args) as client:
        return loading.load_from_client(client, rollout_ids, group_id)


def _with_group(args: argparse.Namespace, rollout_id: str) -> list[RolloutTrace]:
    """The rollout plus the other rollouts of its group, so advantages are normalised as in training."""
    traces = _load(args, [rollout_id])
    group_id = traces[0].group_id if traces else ""
    if not group_id:
        return traces
    return [t for t in _load(args, None, group_id) if t.rollout_id != rollout_id] + traces


def _fail(exc: Exception) -> int:
    import grpc

    if isinstance(exc, grpc.RpcError):
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 1


def format_transition(t: Transition) -> str:
    b = t.breakdown
    head = (f"step {t.step_index + 1}/{t.step_count}  agent={t.agent_name or '-'}  span={t.span_id}  "
            f"tokens={len(t.prompt_token_ids)}+{len(t.response_token_ids)}"
            f"{' (retokenized)' if t.retokenized else ''}"
            f"{'  version=' + t.policy_version if t.policy_version else ''}")
    lines = [head, f"  reward {t.reward:+.4f}   advantage {t.advantage:+.4f}"]
    if b.final_reward is not None:
        lines.append(f"    final reward   {b.final_reward:+.4f}  ({b.final_source})")
    for name, value in b.step_rewards.items():
        lines.append(f"    step reward    {value:+.4f}  ({name})")
    for s in b.air_signals:
        lines.append(f"    AIR {s.name:<22} {s.value:+.4f}  {s.detail}")
    if b.air_total and not b.air_signals:
        lines.append(f"    AIR total      {b.air_total:+.4f}")
    return "\n".join(lines)


def cmd_transitions(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        traces = _with_group(args, args.rollout_id)
    except Exception as exc:
        return _fail(exc)
    batch = build_transitions(traces, config)
    mine = batch.for_rollout(args.rollout_id)
    reports = [r for r in batch.reports if r.rollout_id == args.rollout_id]
    if args.json:
        json.dump({"rollout_id": args.rollout_id,
                   "transitions": [t.to_dict(include_messages=args.messages) for t in mine],
                   "reports": [diagnostics.explain(r) for r in reports]}, sys.stdout, indent=2)
        print()
        return 0 if mine else 1
    for r in reports:
        print(diagnostics.explain(r))
    others = len({t.rollout_id for t in batch.transitions}) - (1 if mine else 0)
    if others:
        print(f"(advantages normalised with {others} other rollout(s) of the same group)")
    for t in mine:
        print()
        print(format_transition(t))
    return 0 if mine else 1


def cmd_export(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        traces = _load(args, args.rollout, args.group)
        batch = build_transitions(traces, config)
        n = export.write(batch.transitions, args.out, args.format, include_messages=args.messages)
    except Exception as exc:
        return _fail(exc)
    print(f"wrote {n} transitions from {len(traces)} rollouts to {args.out} ({args.format})")
    empty = batch.empty_reports()
    if empty:
        print(f"{len(empty)} rollout attempt(s) yielded no transitions:", file=sys.stderr)
        for r in empty[:20]:
            print(diagnostics.explain(r), file=sys.stderr)
    return 0

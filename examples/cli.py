"""``agentlightning demo calc|sql|rag``: train one of the paper's agents end to end and show before/after.

Registering imports nothing heavy; the example, torch and the framework load only when the command runs.
"""
from __future__ import annotations

import argparse
import json
import sys

DEMO_NAMES = ("calc", "sql", "rag")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="train one of the paper's example agents (calc, sql, rag) and show before/after",
        description="Starts the embedded Lightning server and a model server, generates a dataset in the "
                    "example's official format (or reads --data), evaluates the untrained model on a held-out "
                    "split, trains, evaluates again, prints a before/after table and writes a reward-curve PNG. "
                    "Defaults finish in about 15 minutes on 2 CPU cores.")
    p.add_argument("example", choices=DEMO_NAMES, help="calc (AutoGen, Calc-X), sql (LangGraph, Spider), "
                                                        "rag (OpenAI Agents SDK, MuSiQue)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the example's)")
    p.add_argument("--group-size", type=int, default=None, help="rollouts per task per step")
    p.add_argument("--tasks-per-step", type=int, default=None, help="tasks per training step")
    p.add_argument("--workers", type=int, default=None, help="runner processes (concurrent rollouts)")
    p.add_argument("--model", default="smollm2-135m-instruct",
                   help="registry name (smollm2-135m-instruct, tiny-random), local path or HF id")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the policy is served and trained (auto: CUDA when present)")
    p.add_argument("--vllm", default=None, metavar="VENV",
                   help="serve with vLLM from this virtual environment (GPU; trains LoRA adapters)")
    air = p.add_mutually_exclusive_group()
    air.add_argument("--air", dest="air", action="store_true", default=True,
                     help="Automatic Intermediate Rewards on (default)")
    air.add_argument("--no-air", dest="air", action="store_false", help="train on the final reward only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, metavar="PATH",
                   help="a real dataset in the example's official format instead of a generated one")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./demo-EXAMPLE)")
    p.add_argument("--n-train", type=int, default=None, help="training tasks to generate/use")
    p.add_argument("--n-test", type=int, default=None, help="held-out tasks to generate/use")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens per model call")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature of training rollouts "
                                                                   "(held-out evaluation is greedy)")
    p.add_argument("--eval-temperature", type=float, default=0.0, help="sampling temperature of the held-out "
                                                                       "evaluations (default 0: greedy)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the example's)")
    p.add_argument("--lora", action="store_true", default=None, help="train a LoRA adapter, not all weights")
    p.add_argument("--level", type=int, default=None, help="difficulty of generated problems (calc: 1-3)")
    warm = p.add_mutually_exclusive_group()
    warm.add_argument("--warmup", dest="warmup", action="store_true", default=None,
                      help="clone the example's scripted teacher (its tasks' worked solutions, played through the "
                           "agent) before RL (calc's default: SmolLM2-135M never calls a tool on its own)")
    warm.add_argument("--no-warmup", dest="warmup", action="store_false", help="start RL from the base model")
    p.add_argument("--warmup-tasks", type=int, default=None, help="demonstration tasks for the warm-up")
    p.add_argument("--warmup-epochs", type=int, default=None, help="passes over the demonstrations")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluations")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from agentlightning.examples.demo import DemoConfig, DemoError, run_demo
    except ModuleNotFoundError as exc:
        print(f"agentlightning demo needs the trainer's dependencies ({exc.name} is missing): "
              "pip install 'agentlightning[trainer]'", file=sys.stderr)
        return 2
    config = DemoConfig(
        example=args.example, steps=args.steps, group_size=args.group_size, tasks_per_step=args.tasks_per_step,
        workers=args.workers, model=args.model, device=args.device, vllm=args.vllm, air=args.air, seed=args.seed,
        data=args.data, out=args.out or f"demo-{args.example}", n_train=args.n_train, n_test=args.n_test,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        eval_temperature=args.eval_temperature, learning_rate=args.lr, lora=args.lora, warmup=args.warmup,
        warmup_tasks=args.warmup_tasks, warmup_epochs=args.warmup_epochs,
        evaluate=not args.no_eval, progress=not args.quiet,
        extra={"level": args.level} if args.level is not None else {})
    try:
        result = run_demo(config)
    except DemoError as exc:
        print(f"agentlightning demo: {exc}", file=sys.stderr)
        return 2
    if result.table:
        print(result.table)
    print(json.dumps({"out": config.out, "seconds": result.seconds, "curve": result.curve, "steps": len(result.rows),
                      "before": result.before.to_dict() if result.before else None, "warmup": result.warmup,
                      "warmed": result.warmed.to_dict() if result.warmed else None,
                      "after": result.after.to_dict() if result.after else None}))
    return 0

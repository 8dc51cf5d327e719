"""``agentlightning train``: the closed training loop from the command line.

    agentlightning train --agent my_agent:solve --data tasks.jsonl --model smollm2-135m-instruct \\
        --steps 20 --group-size 4 --workers 4

Run the same command again after a crash (same ``--run-dir``) and it resumes. Everything heavy
(torch, TRL) is imported only when the command runs, so ``agentlightning --help`` stays fast and
works without the trainer's dependencies.
"""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an agent's model: rollouts, LightningRL, TRL updates, hot reload",
                       description="Train the model behind an agent function with RL. Resumable: rerun with "
                                   "the same --run-dir after a crash.")
    p.add_argument("--agent", required=True, help="the agent function, module:function (gets the task input, "
                                                  "returns the reward)")
    p.add_argument("--data", required=True, help="JSONL file, one task input per line")
    p.add_argument("--model", default="smollm2-135m-instruct",
                   help="registry name, local path or HF id (default smollm2-135m-instruct)")
    p.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    p.add_argument("--group-size", type=int, default=4, help="rollouts per task per step (default 4)")
    p.add_argument("--tasks-per-step", type=int, default=None, help="tasks per step (default: all)")
    p.add_argument("--workers", type=int, default=2, help="runner processes (default 2)")
    p.add_argument("--run-dir", default="agentlightning-run", help="checkpoints, state, metrics (default "
                                                                   "./agentlightning-run)")
    p.add_argument("--run-id", default=None, help="name of a new run (default: random)")
    p.add_argument("--server", default=None, help="use a running Lightning server (host:port) instead of an "
                                                  "embedded one over run-dir/lightning.db")
    p.add_argument("--model-server", default=None, help="base URL of a running model server that accepts "
                                                        "POST /v1/load_version (default: serve in-process)")
    p.add_argument("--model-port", type=int, default=0, help="port of the in-process model server (0 = any)")
    p.add_argument("--served-model-name", default="policy")
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--rollout-timeout", type=float, default=60.0, help="heartbeat timeout of an attempt (s)")
    p.add_argument("--success-threshold", type=float, default=0.0, help="success = final reward above this")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar / step lines")
    u = p.add_argument_group("policy update (TRL)")
    u.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-5 full, 2e-4 LoRA)")
    u.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of all weights")
    u.add_argument("--lora-r", type=int, default=16)
    u.add_argument("--lora-alpha", type=int, default=32)
    u.add_argument("--beta", type=float, default=0.0, help="KL weight to the reference model (default 0)")
    u.add_argument("--epsilon", type=float, default=0.2, help="PPO clip range (default 0.2)")
    u.add_argument("--epochs", type=int, default=1, help="passes over each batch (default 1)")
    u.add_argument("--loss-type", default="dapo", help="TRL loss aggregation (default dapo)")
    u.add_argument("--micro-batch-size", type=int, default=8)
    u.add_argument("--micro-batch-tokens", type=int, default=2048,
                   help="and at most this many padded tokens per forward/backward (0: no cap; default 2048)")
    u.add_argument("--mini-batch-size", type=int, default=None, help="samples per optimizer step (default all)")
    u.add_argument("--max-length", type=int, default=None, help="truncate prompt+response to this many tokens")
    u.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    r = p.add_argument_group("LightningRL")
    r.add_argument("--agents", default=None, help="regex of agent names to train (default: all)")
    r.add_argument("--credit", default="episode", choices=("episode", "discounted", "per_step"))
    r.add_argument("--normalizer", default="grpo", choices=("grpo", "mean", "loo", "none"))
    r.add_argument("--no-air", action="store_true", help="turn Automatic Intermediate Rewards off")
    w = p.add_argument_group("warm-up (behaviour cloning on a teacher's demonstrations before RL)")
    w.add_argument("--warmup-teacher", default=None, metavar="URL",
                   help="base URL (.../v1) of an OpenAI-compatible teacher: the agent runs against it on "
                        "--warmup-tasks tasks and the policy is fine-tuned on its rewarded calls first")
    w.add_argument("--warmup-model", default="teacher", help="the model name sent to the teacher")
    w.add_argument("--warmup-tasks", type=int, default=16, help="demonstration tasks (default 16)")
    w.add_argument("--warmup-epochs", type=int, default=1, help="passes over the demonstrations (default 1)")
    w.add_argument("--warmup-min-reward", type=float, default=0.5,
                   help="keep a demonstration when its rollout's reward is above this (default 0.5)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from agentlightning.core.lightningrl.config import AirConfig, LightningRLConfig
    from agentlightning.trainer.loop_config import TrainConfig
    from agentlightning.trainer.update_config import UpdateConfig

    update = UpdateConfig(learning_rate=args.lr, lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                          beta=args.beta, epsilon=args.epsilon, epochs=args.epochs, loss_type=args.loss_type,
                          micro_batch_size=args.micro_batch_size, micro_batch_tokens=args.micro_batch_tokens or None,
                          mini_batch_size=args.mini_batch_size,
                          max_length=args.max_length, device=args.device, seed=args.seed)
    lightningrl = LightningRLConfig(agents=args.agents, credit=args.credit, normalizer=args.normalizer,
                                    air=AirConfig(enabled=not args.no_air))
    warmup = None
    if args.warmup_teacher:
        from agentlightning.trainer.warmup import WarmupConfig

        warmup = WarmupConfig(teacher_url=args.warmup_teacher, teacher_model=args.warmup_model,
                              tasks=args.warmup_tasks, epochs=args.warmup_epochs, min_reward=args.warmup_min_reward)
    return TrainConfig(agent=args.agent, data=args.data, model=args.model, steps=args.steps,
                       group_size=args.group_size, tasks_per_step=args.tasks_per_step, workers=args.workers,
                       run_dir=args.run_dir, run_id=args.run_id, server=args.server, model_server=args.model_server,
                       model_port=args.model_port, served_model_name=args.served_model_name,
                       max_attempts=args.max_attempts, rollout_timeout_s=args.rollout_timeout,
                       success_threshold=args.success_threshold, keep_checkpoints=args.keep_checkpoints,
                       seed=args.seed, progress=not args.no_progress, update=update, lightningrl=lightningrl,
                       warmup=warmup)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        from agentlightning.trainer.loop import TrainingLoop
    except ModuleNotFoundError as exc:
        raise SystemExit(f"agentlightning train needs the trainer's dependencies ({exc.name} is missing): "
                         "pip install 'agentlightning[trainer]'")
    rows = TrainingLoop(config).run()
    if rows:
        last = rows[-1]
        print(json.dumps({"run_dir": str(config.run_dir), "steps": len(rows), "version": last["new_version"],
                          "reward_mean": last.get("reward_mean"), "success_rate": last.get("success_rate")}))
    return 0

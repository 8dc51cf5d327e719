"""Samples/s of our TRL-based policy update vs a plain PyTorch policy-gradient step (the floor).

Both train the same model on the same batch (GRPO-shaped: ``--samples`` responses of
``--completion-len`` tokens after ``--prompt-len``-token prompts, random advantages), with the same
micro-batches (similar lengths together), AdamW, gradient clipping at 1.0 and a token-level loss:

* ``trl``:   :class:`agentlightning.trainer.update.PolicyUpdater` — TRL's GRPOTrainer loss (clipped
             ratio against recorded logprobs), its fused log-prob head, optimizer, accelerate;
* ``plain``: ``model(ids).logits`` -> log_softmax -> gather, ``-(A * logp)`` over response tokens,
             ``backward``, ``clip_grad_norm_``, ``AdamW.step`` — nothing else.

Updates alternate (plain, trl, plain, trl, ...) after one warm-up each, so load from other processes
on the machine hits both alike; the figure is the median wall time (best-of and process CPU time are
printed too: on a shared machine CPU time is the steadier comparison). Target: TRL at most 10% slower.

    python benchmarks/trainer.py                          # SmolLM2-135M, 32 samples, 64+32 tokens
    python benchmarks/trainer.py --model tiny-random --repeats 5
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # noqa: E402 - run from a checkout

from agentlightning.trainer.batch import collate, micro_batches, to_samples  # noqa: E402
from agentlightning.trainer.models import resolve_model  # noqa: E402
from agentlightning.trainer.update import PolicyUpdater  # noqa: E402
from agentlightning.trainer.update_config import UpdateConfig  # noqa: E402


def make_batch(n: int, prompt_len: int, completion_len: int, vocab: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = prompt_len + rng.randint(-prompt_len // 4, prompt_len // 4)
        c = completion_len - rng.randint(0, completion_len // 4)
        out.append(SimpleNamespace(
            prompt_token_ids=[rng.randrange(3, vocab) for _ in range(p)],
            response_token_ids=[rng.randrange(3, vocab) for _ in range(c)],
            response_logprobs=[-rng.uniform(0.5, 8.0) for _ in range(c)],
            advantage=rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 1.5)))
    return out


class PlainPG:
    """The floor: a hand-written policy-gradient step with nothing but torch."""

    def __init__(self, path: str, lr: float, micro_batch_size: int, device: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).train()
        self.pad = AutoTokenizer.from_pretrained(path).pad_token_id or 0
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.0,
                                           fused=device == "cuda" or None)
        self.micro_batch_size = micro_batch_size
        self.device = device

    def update(self, transitions) -> float:
        started = time.perf_counter()
        samples, _ = to_samples(transitions)
        batches = [collate(mb, self.pad, self.device) for mb in micro_batches(samples, self.micro_batch_size)]
        total_tokens = float(sum(int(b["n_tokens"]) for b in batches))
        for b in batches:
            ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
            mask = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
            t = b["completion_ids"].size(1)
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -t - 1:-1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, b["completion_ids"].unsqueeze(-1)).squeeze(-1)
            loss = -(b["advantages"].unsqueeze(1) * logp * b["completion_mask"]).sum() / total_tokens
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--completion-len", type=int, default=32)
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = str(resolve_model(args.model))
    config = UpdateConfig(learning_rate=args.lr, micro_batch_size=args.micro_batch_size, device=args.device,
                          skip_zero_advantage=False, save_optimizer=False)
    device = config.resolve_device()
    ours = PolicyUpdater(path, config, output_dir="/tmp/agentlightning-bench-trainer")
    plain = PlainPG(path, args.lr, args.micro_batch_size, device)
    batch = make_batch(args.samples, args.prompt_len, args.completion_len, len(ours.tokenizer))
    tokens = sum(len(t.response_token_ids) for t in batch)

    print("  .. warm-up", file=sys.stderr, flush=True)
    plain.update(batch)  # warm-up: allocator, kernels, optimizer state
    ours.update(batch)
    times: dict[str, list[float]] = {"plain": [], "trl": []}
    cpu: dict[str, list[float]] = {"plain": [], "trl": []}
    for _ in range(args.repeats):
        for name, run in (("plain", lambda: plain.update(batch)), ("trl", lambda: ours.update(batch).seconds)):
            c0 = time.process_time()
            times[name].append(run())
            cpu[name].append(time.process_time() - c0)
            print(f"  .. {name} {times[name][-1]:.2f}s wall, {cpu[name][-1]:.2f}s cpu", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["trl"] / med["plain"]
    print(f"model {args.model} on {device} ({torch.get_num_threads()} threads): {args.samples} samples, "
          f"{tokens} response tokens, micro-batch {args.micro_batch_size}, {args.repeats} timed updates each")
    for name in ("plain", "trl"):
        print(f"  {name:5s}  {args.samples / med[name]:8.2f} samples/s   {tokens / med[name]:9.1f} tokens/s   "
              f"median {med[name]:.3f}s  all {[round(x, 3) for x in times[name]]}")
    print(f"  trl / plain time: {ratio:.3f}  ({(ratio - 1) * 100:+.1f}%; target <= +10%)")
    best = {k: min(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"  best-of wall time: trl / plain {best['trl'] / best['plain']:.3f};  "
          f"median CPU time: trl / plain {cpu_med['trl'] / cpu_med['plain']:.3f} "
          f"(plain {cpu_med['plain']:.2f}s, trl {cpu_med['trl']:.2f}s; CPU time is less sensitive to other load)")
    print(json.dumps({"model": args.model, "device": device, "samples": args.samples, "tokens": tokens,
                      "best_time_ratio": best["trl"] / best["plain"],
                      "cpu_time_ratio": cpu_med["trl"] / cpu_med["plain"],
                      "plain_samples_per_s": args.samples / med["plain"],
                      "trl_samples_per_s": args.samples / med["trl"], "time_ratio": ratio}))


if __name__ == "__main__":
    main()

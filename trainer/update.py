"""One policy update from LightningRL transitions, on TRL's GRPO machinery.

Which TRL entry point, and why
------------------------------
TRL 1.16 offers three ways in; we subclass ``trl.GRPOTrainer`` and drive it one batch at a time:

* ``GRPOTrainer.train()`` as is samples its own completions (193 s for one SmolLM2 step on these
  CPUs, DESIGN.md). In Agent Lightning the samples already exist: the agents produced them
  against the model server, which recorded exact token ids and logprobs on the LLM spans.
* ``rollout_func`` only replaces the sampler inside that same loop: TRL still drives the data
  (prompts from a dataset), computes rewards with its reward functions and normalises advantages
  itself, so LightningRL's credit assignment and AIR would be thrown away.
* ``trl.experimental.async_grpo.AsyncGRPOTrainer`` does take external ``RolloutSample``s with an
  advantage and old logprobs, but it is built around a vLLM rollout worker and weight transfer,
  takes the model only as a hub/path string, and packs sequences with a tree-attention kernel
  (FlashAttention 3, fetched from the Hub with ``kernels``): no CPU, no offline use, no KL term.

So ``GRPOTrainer`` keeps everything that is TRL's job — model loading and the PEFT/LoRA wrap, the
fused log-prob head, ``_compute_loss`` (PPO-style clipped ratio, loss aggregations, KL to the
reference), the optimizer and scheduler (``create_optimizer``/``create_scheduler``), accelerate
(device placement, bf16 autocast, backward, gradient clipping) and ``training_step`` — and we
override only ``_prepare_inputs``: instead of generating, it receives batches built from our
transitions (``batch.py``) with ``advantages`` (LightningRL's) and ``old_per_token_logps`` (the
model server's) already filled. One ``update()`` call = one or more optimizer steps, driven like
``Trainer._inner_training_loop`` does (accumulate micro-batches, clip, step), without a dataloader,
so optimizer state persists across updates and nothing is re-created per step.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import torch

from agentlightning.trainer.batch import Sample, collate, micro_batches, to_samples
from agentlightning.trainer.checkpoints import CheckpointInfo, read_checkpoint, write_checkpoint
from agentlightning.trainer.update_config import UpdateConfig

logger = logging.getLogger("agentlightning.trainer.update")

# Metrics TRL's loss records per micro-batch; averaged into UpdateResult.trl_metrics.
_TRL_METRICS = ("entropy", "kl", "clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/high_mean")


@dataclass
class UpdateResult:
    """What one ``update()`` did."""

    samples: int = 0                  # samples trained on (after drops)
    epochs: int = 1
    tokens: int = 0                   # response tokens trained on (per epoch)
    optimizer_steps: int = 0
    seconds: float = 0.0
    loss: float = 0.0                 # mean loss of the optimizer steps of the last epoch
    grad_norm: float = 0.0            # of the last optimizer step, before clipping
    old_logps_recorded: int = 0       # samples whose ratio used the server's recorded logprobs
    logprob_drift: Optional[float] = None  # mean |logp_trainer - logp_server| before the update
    # Mean negative log-likelihood per response token of the samples without recorded logprobs, under the
    # policy as it stood when they were first scored (for a warm-up's demonstrations: the SFT loss).
    nll: Optional[float] = None
    dropped: dict[str, int] = field(default_factory=dict)
    trl_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        """Samples through forward+backward per second (each epoch counts)."""
        return self.samples * self.epochs / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "tokens": self.tokens, "optimizer_steps": self.optimizer_steps,
                "seconds": self.seconds, "samples_per_s": self.samples_per_s, "loss": self.loss,
                "grad_norm": self.grad_norm, "old_logps_recorded": self.old_logps_recorded,
                "logprob_drift": self.logprob_drift, "nll": self.nll, "dropped": dict(self.dropped),
                **self.trl_metrics}


def _trainer_class():
    """Build the GRPOTrainer subclass lazily, so importing this module does not import TRL."""
    from trl import GRPOTrainer

    class TransitionGRPOTrainer(GRPOTrainer):
        """GRPOTrainer fed with pre-built batches: no generation, no reward functions."""

        _old_fill: Optional[tuple] = None
        _drift: list = []
        _filled: list = []  # (sum of logps, tokens) of rows scored for want of recorded logprobs
        _measure_drift = False

        def _prepare_inputs(self, inputs):  # the batch is final: skip TRL's generate-and-score
            return inputs

        def _compute_loss(self, model, inputs):
            # Rows without recorded old logprobs get the current policy's (detached) on first use, so
            # their ratio is 1 now and, in later epochs, measured against the pre-update policy.
            self._old_fill = (inputs["old_per_token_logps"], inputs["old_logps_missing"], inputs["completion_mask"])
            try:
                return super()._compute_loss(model, inputs)
            finally:
                self._old_fill = None

        def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
            logps, entropies, aux = super()._get_per_token_logps_and_entropies(model, *args, **kwargs)
            pending, self._old_fill = self._old_fill, None
            if pending is not None:
                old, missing, mask = pending
                recorded = ~missing
                if self._measure_drift and recorded.any():
                    m = mask[recorded].to(logps.dtype)
                    diff = (logps.detach()[recorded].float() - old[recorded]).abs() * m
                    self._drift.append((float(diff.sum()), float(m.sum())))
                if missing.any():
                    filled = logps.detach()[missing]
                    m = mask[missing].to(filled.dtype)
                    self._filled.append((float((filled * m).sum()), float(m.sum())))
                    old[missing] = filled.to(old.dtype)
                    missing.zero_()
            return logps, entropies, aux

    return TransitionGRPOTrainer


def _rewards_come_from_lightningrl(**kwargs: Any) -> list[float]:
    """TRL insists on a reward source; ours is LightningRL, so TRL's reward path never runs."""
    raise RuntimeError("TransitionGRPOTrainer never scores completions itself")


def load_model(model: Union[str, os.PathLike, Any], device: str, dtype: Optional[torch.dtype] = None):
    """A causal LM from a path or registry name (``trainer.models.resolve_model``), or as given."""
    if not isinstance(model, (str, os.PathLike)):
        return model
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(str(model))
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)


def resolve_model_path(name: str) -> str:
    """A local directory for ``name``: the model registry's answer, else the name itself."""
    if os.path.isdir(name):
        return name
    try:
        from agentlightning.trainer.models import resolve_model
    except ImportError:
        return name
    resolved = resolve_model(name)
    return str(getattr(resolved, "path", resolved))


class PolicyUpdater:
    """Owns the policy being trained: ``update(transitions)``, ``save(dir, version)``, ``load(dir)``."""

    def __init__(self, model: Union[str, os.PathLike, Any], config: Optional[UpdateConfig] = None,
                 tokenizer: Any = None, output_dir: Union[str, os.PathLike] = "agentlightning-trainer") -> None:
        from datasets import Dataset
        from trl import GRPOConfig

        from agentlightning.trainer.models import load_tokenizer

        self.config = config or UpdateConfig()
        self.device = self.config.resolve_device()
        policy = load_model(model, self.device)
        self.base_model = str(getattr(policy.config, "_name_or_path", "") or "")
        if tokenizer is None:
            tokenizer = load_tokenizer(self.base_model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.output_dir = Path(output_dir)
        if self.config.beta and not self.config.lora and not os.path.isdir(self.base_model):
            # TRL builds the reference from the policy's path; a model built in memory gets one.
            self.base_model = str(self.output_dir / "reference")
            policy.save_pretrained(self.base_model)
            policy.config._name_or_path = self.base_model
        args = GRPOConfig(**self.config.to_grpo_kwargs(str(self.output_dir), max_steps=1_000_000))
        cls = _trainer_class()
        self.trainer = cls(model=policy, reward_funcs=[_rewards_come_from_lightningrl], args=args,
                           processing_class=tokenizer,
                           train_dataset=Dataset.from_dict({"prompt": [""]}),
                           peft_config=self.config.lora_config())
        # What Trainer.train() does before its first step: optimizer, scheduler, accelerate.prepare.
        self.model, _ = self.trainer._prepare_for_training(args.max_steps, None, None)
        self.steps_done = 0

    # -- the update ---------------------------------------------------------------------------
    def update(self, transitions: Iterable) -> UpdateResult:
        """One policy update from transitions (anything with the ``Transition`` fields)."""
        cfg = self.config
        started = time.perf_counter()
        samples, dropped = to_samples(transitions, cfg.max_length,
                                      skip_zero_advantage=cfg.skip_zero_advantage and cfg.beta == 0.0)
        result = UpdateResult(samples=len(samples), epochs=cfg.epochs, dropped=dropped,
                              old_logps_recorded=sum(s.old_logps is not None for s in samples))
        if not samples:
            result.seconds = time.perf_counter() - started
            return result
        trainer = self.trainer
        device = trainer.accelerator.device
        steps = self._optimizer_steps(samples)
        batches = [[collate(mb, self.tokenizer.pad_token_id, device)
                    for mb in micro_batches(chunk, cfg.micro_batch_size, cfg.micro_batch_tokens)] for chunk in steps]
        if trainer.beta != 0.0:
            for step_batches in batches:
                for mb in step_batches:
                    mb["ref_per_token_logps"] = self._reference_logps(mb)
        result.tokens = int(sum(int(mb["n_tokens"]) for step_batches in batches for mb in step_batches))
        trainer._drift = []
        trainer._filled = []
        trainer._metrics["train"].clear()
        self.model.train()
        losses: list[float] = []
        for epoch in range(cfg.epochs):
            losses = []
            for i, step_batches in enumerate(batches):
                trainer._measure_drift = epoch == 0 and i == 0  # before any weight moved
                losses.append(self._optimizer_step(step_batches, result))
        trainer._measure_drift = False
        result.loss = sum(losses) / len(losses) if losses else 0.0
        drift_sum = sum(d for d, _ in trainer._drift)
        drift_n = sum(n for _, n in trainer._drift)
        result.logprob_drift = drift_sum / drift_n if drift_n else None
        filled_n = sum(n for _, n in trainer._filled)
        result.nll = -sum(t for t, _ in trainer._filled) / filled_n if filled_n else None
        result.trl_metrics = {k: sum(v) / len(v) for k, v in trainer._metrics["train"].items()
                              if k in _TRL_METRICS and v}
        trainer._metrics["train"].clear()
        self.steps_done += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        result.seconds = time.perf_counter() - started
        return result

    def _optimizer_steps(self, samples: list[Sample]) -> list[list[Sample]]:
        size = self.config.mini_batch_size or len(samples)
        if size >= len(samples):
            return [samples]
        g = torch.Generator().manual_seed(self.config.seed + self.steps_done)
        order = torch.randperm(len(samples), generator=g).tolist()
        shuffled = [samples[i] for i in order]
        return [shuffled[i:i + size] for i in range(0, len(shuffled), size)]

    def _optimizer_step(self, micro: list[dict], result: UpdateResult) -> float:
        trainer = self.trainer
        trainer.current_gradient_accumulation_steps = len(micro)
        total_tokens = float(sum(int(mb["n_tokens"]) for mb in micro))
        loss_sum = 0.0
        for mb in micro:
            # TRL's token-level losses divide by num_items_in_batch * gas / steps_per_generation:
            # set so the divisor is the step's total response tokens.
            mb["num_items_in_batch"] = torch.tensor(total_tokens * trainer.args.steps_per_generation / len(micro),
                                                    device=mb["n_tokens"].device)
            loss = trainer.training_step(self.model, mb, None)  # already scaled for accumulation
            loss_sum += float(loss)
        if trainer.args.max_grad_norm and trainer.args.max_grad_norm > 0:
            grad_norm = trainer._clip_grad_norm(self.model)
            result.grad_norm = float(grad_norm) if grad_norm is not None else 0.0
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        self.model.zero_grad(set_to_none=True)
        trainer.state.global_step += 1
        result.optimizer_steps += 1
        return loss_sum

    @torch.no_grad()
    def _reference_logps(self, mb: dict) -> torch.Tensor:
        trainer = self.trainer
        input_ids = torch.cat([mb["prompt_ids"], mb["completion_ids"]], dim=1)
        mask = torch.cat([mb["prompt_mask"], mb["completion_mask"]], dim=1)
        keep = mb["completion_ids"].size(1)
        if trainer.ref_model is not None:
            logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.ref_model, input_ids, mask, keep)
            return logps
        from trl.trainer.utils import use_adapter

        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
            logps, _, _ = trainer._get_per_token_logps_and_entropies(self.model, input_ids, mask, keep)
        return logps

    # -- weights ------------------------------------------------------------------------------
    @property
    def unwrapped(self):
        return self.trainer.accelerator.unwrap_model(self.trainer.model)

    def save(self, directory: Union[str, os.PathLike], version: str, step: Optional[int] = None,
             extra: Optional[dict] = None) -> CheckpointInfo:
        """Write a checkpoint the model server can hot-load: the adapter (LoRA) or the full model."""
        kind = "lora" if self.config.lora else "full"
        info = CheckpointInfo(version=version, kind=kind, base_model=self.base_model,
                              step=self.steps_done if step is None else step, extra=dict(extra or {}))

        def write(tmp: Path) -> None:
            self.unwrapped.save_pretrained(tmp, safe_serialization=True)
            if kind == "full":
                self.tokenizer.save_pretrained(tmp)
            if self.config.save_optimizer:
                torch.save(self.trainer.optimizer.state_dict(), tmp / "optimizer.pt")
                torch.save(self.trainer.lr_scheduler.state_dict(), tmp / "scheduler.pt")

        return write_checkpoint(directory, info, write)

    def load(self, directory: Union[str, os.PathLike]) -> CheckpointInfo:
        """Resume from a checkpoint written by ``save``: weights, and optimizer state when present."""
        info = read_checkpoint(directory)
        if info is None:
            raise FileNotFoundError(f"{directory} is not a complete checkpoint")
        expected = "lora" if self.config.lora else "full"
        if info.kind != expected:
            raise ValueError(f"checkpoint {directory} is {info.kind!r}, this trainer is {expected!r}")
        from safetensors.torch import load_file

        path = Path(directory)
        if info.kind == "lora":
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.unwrapped, load_file(path / "adapter_model.safetensors"))
        else:
            state: dict[str, torch.Tensor] = {}
            for f in sorted(path.glob("*.safetensors")):
                state.update(load_file(f))
            missing, unexpected = self.unwrapped.load_state_dict(state, strict=False)
            tied = bool(getattr(self.unwrapped.config, "tie_word_embeddings", False))
            missing = [k for k in missing if not (tied and k.startswith("lm_head"))]
            if missing or unexpected:
                raise ValueError(f"checkpoint {directory} does not fit the model: missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
        if (path / "optimizer.pt").exists():
            device = self.trainer.accelerator.device
            self.trainer.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device))
            if (path / "scheduler.pt").exists():
                self.trainer.lr_scheduler.load_state_dict(torch.load(path / "scheduler.pt"))
        self.steps_done = info.step
        return info


def weights_fingerprint(model) -> float:
    """A cheap scalar that changes whenever trainable weights change (for tests and sanity checks)."""
    total = 0.0
    for p in model.parameters():
        if p.requires_grad:
            total += float(p.detach().float().pow(2).sum())
    return math.sqrt(total)

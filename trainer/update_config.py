"""Settings of one policy update (loss, optimizer, LoRA or full fine-tune, device).

A plain dataclass so a training config can embed it and a CLI can fill it; every field maps onto a
TRL ``GRPOConfig`` field or a PEFT ``LoraConfig`` field (``to_grpo_kwargs`` / ``lora_config``), and
anything not listed here can still be passed through ``trl_args``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo")


@dataclass
class UpdateConfig:
    """How one batch of transitions changes the policy.

    learning_rate:      AdamW step size; None picks 2e-5 for a full fine-tune, 2e-4 for LoRA.
    loss_type:          TRL's loss aggregation ("dapo", TRL's default, normalises over every
                        completion token of an optimizer step; "grpo" per sequence first).
    epsilon, epsilon_high: PPO clip range of the ratio new/old policy (epsilon_high None = epsilon).
                        The "old" policy is the logprobs the model server recorded when the
                        response was sampled; where a transition has none, the policy before
                        this update (ratio 1 on the first pass).
    beta:               weight of the KL penalty to the reference model (0 = no reference kept).
                        The reference is the starting model (with LoRA: the adapter disabled).
    epochs:             passes over the batch (PPO-style reuse; 1 = on-policy GRPO).
    mini_batch_size:    samples per optimizer step; None = the whole batch in one step.
    micro_batch_size:   samples per forward/backward (gradient accumulation inside a step).
    micro_batch_tokens: and at most this many padded tokens per forward/backward (None = no cap): bounds
                        activation memory when prompts are long; the gradient is the same either way.
                        Measured (SmolLM2-135M, CPU, 48 samples of 940 tokens, one update): 8 samples per
                        micro-batch peaked at 19.7 GB RSS in 378 s, 2 samples (this default's split) 7.0 GB
                        in 319 s.
    max_length:         truncate prompt (from the left) + response to this many tokens; None = no cap.
    skip_zero_advantage: drop samples whose advantage is exactly 0 when beta == 0 (they add no
                        gradient; a group where every rollout scored the same is all zeros).
    temperature:        logits are divided by this before log-softmax. It must match how the recorded
                        logprobs were computed so the ratio compares like with like: our CPU server
                        and vLLM (default) report raw logprobs (temperature 1) whatever the sampling
                        temperature, hence the default 1.0.
    lora:               train a LoRA adapter (checkpoints are adapters) instead of all weights.
    device:             "auto" (CUDA when present, else CPU), "cpu" or "cuda".
    bf16:               None = bf16 autocast on a GPU that supports it, never on CPU.
    trl_args:           extra ``GRPOConfig`` fields, applied last.
    """

    learning_rate: Optional[float] = None
    loss_type: str = "dapo"
    epsilon: float = 0.2
    epsilon_high: Optional[float] = None
    beta: float = 0.0
    importance_sampling_level: str = "token"
    epochs: int = 1
    mini_batch_size: Optional[int] = None
    micro_batch_size: int = 8
    micro_batch_tokens: Optional[int] = 2048
    max_length: Optional[int] = None
    skip_zero_advantage: bool = True
    temperature: float = 1.0
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    lr_scheduler_type: str = "constant"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: Union[str, list[str]] = "all-linear"
    device: str = "auto"
    bf16: Optional[bool] = None
    seed: int = 0
    save_optimizer: bool = True
    trl_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, not {self.loss_type!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {self.device!r}")
        if self.epochs < 1 or self.micro_batch_size < 1:
            raise ValueError("epochs and micro_batch_size must be at least 1")
        if self.micro_batch_tokens is not None and self.micro_batch_tokens < 1:
            raise ValueError("micro_batch_tokens must be at least 1 (or None for no cap)")
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise ValueError("mini_batch_size must be at least 1 (or None for the whole batch)")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")

    def with_(self, **changes: Any) -> "UpdateConfig":
        return replace(self, **changes)

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.lora else 2e-5

    def resolve_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolve_bf16(self, device: str) -> bool:
        if device != "cuda":
            return False
        if self.bf16 is not None:
            return self.bf16
        import torch

        return bool(torch.cuda.is_bf16_supported())

    def to_grpo_kwargs(self, output_dir: str, max_steps: int) -> dict[str, Any]:
        """Keyword arguments for ``trl.GRPOConfig`` (generation settings are unused: we never generate)."""
        device = self.resolve_device()
        kwargs: dict[str, Any] = dict(
            output_dir=output_dir, report_to="none", save_strategy="no", logging_strategy="no",
            use_cpu=device == "cpu", bf16=self.resolve_bf16(device), fp16=False,
            learning_rate=self.effective_learning_rate, weight_decay=self.weight_decay,
            lr_scheduler_type=self.lr_scheduler_type, max_grad_norm=self.max_grad_norm, max_steps=max_steps,
            loss_type=self.loss_type, epsilon=self.epsilon, epsilon_high=self.epsilon_high, beta=self.beta,
            importance_sampling_level=self.importance_sampling_level, temperature=self.temperature,
            # TRL's own sampler/generation sizes: unused (batches come from LightningRL) but validated.
            per_device_train_batch_size=2, num_generations=2, steps_per_generation=1,
            max_completion_length=self.max_length or 1024,
            activation_checkpointing=False, seed=self.seed, dataloader_num_workers=0,
            disable_tqdm=True, remove_unused_columns=False,
        )
        kwargs.update(self.trl_args)
        return kwargs

    def lora_config(self):
        """A ``peft.LoraConfig`` when ``lora`` is on, else None."""
        if not self.lora:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=self.lora_target_modules, task_type="CAUSAL_LM")

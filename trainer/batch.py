"""LightningRL transitions -> the tensors TRL's GRPO loss reads.

TRL's ``GRPOTrainer._compute_loss`` consumes a dict of ``prompt_ids``/``prompt_mask`` (left
padded), ``completion_ids``/``completion_mask`` (right padded), ``advantages`` and optionally
``old_per_token_logps`` / ``ref_per_token_logps``. This module builds exactly that from the token
ids and logprobs the model server recorded on each LLM span, so nothing is re-tokenized here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch


@dataclass
class Sample:
    """One transition reduced to what the loss needs."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    old_logps: Optional[list[float]]  # the sampler's logprob of each completion token, when recorded

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def to_samples(transitions: Iterable, max_length: Optional[int] = None,
               skip_zero_advantage: bool = False) -> tuple[list[Sample], dict[str, int]]:
    """Samples from LightningRL ``Transition`` objects, and counts of what was dropped and why.

    Over ``max_length``, the prompt loses tokens from its left end (the most recent context is
    kept); a response that does not fit keeps its first ``max_length - 1`` tokens (one prompt token
    always stays: the first response token is scored from it).
    Recorded logprobs are kept only when there is one per response token and all are finite.
    """
    samples: list[Sample] = []
    dropped = {"empty_response": 0, "empty_prompt": 0, "zero_advantage": 0, "non_finite_advantage": 0}
    for t in transitions:
        completion = list(t.response_token_ids)
        if not completion:
            dropped["empty_response"] += 1
            continue
        advantage = float(t.advantage)
        if not math.isfinite(advantage):
            dropped["non_finite_advantage"] += 1
            continue
        if skip_zero_advantage and advantage == 0.0:
            dropped["zero_advantage"] += 1
            continue
        prompt = list(t.prompt_token_ids)
        if not prompt:  # the first response token needs context to be scored
            dropped["empty_prompt"] += 1
            continue
        logps = t.response_logprobs
        old = [float(x) for x in logps] if logps is not None and len(logps) == len(completion) else None
        if old is not None and not all(math.isfinite(x) for x in old):
            old = None
        if max_length is not None and len(prompt) + len(completion) > max_length:
            completion = completion[:max(max_length - 1, 1)]
            old = old[:len(completion)] if old is not None else None
            keep = max(max_length - len(completion), 1)
            prompt = prompt[len(prompt) - keep:]
        samples.append(Sample(prompt, completion, advantage, old))
    return samples, dropped


def micro_batches(samples: Sequence[Sample], size: int, max_tokens: Optional[int] = None) -> list[list[Sample]]:
    """Split into groups of at most ``size`` samples, similar lengths together so little padding is computed.

    With ``max_tokens``, a group also stays within that many padded tokens (rows x (longest prompt +
    longest response)): activation memory grows with a micro-batch's tokens, and agent prompts vary
    from 200 to thousands of tokens (``UpdateConfig.micro_batch_tokens`` has the measurement). A sample
    longer than the budget goes alone."""
    ordered = sorted(samples, key=lambda s: s.length)
    groups: list[list[Sample]] = []
    group: list[Sample] = []
    longest_prompt = longest_completion = 0
    for s in ordered:
        prompt = max(longest_prompt, len(s.prompt_ids))
        completion = max(longest_completion, len(s.completion_ids))
        full = len(group) >= size or (max_tokens is not None and (len(group) + 1) * (prompt + completion) > max_tokens)
        if group and full:
            groups.append(group)
            group, prompt, completion = [], len(s.prompt_ids), len(s.completion_ids)
        group.append(s)
        longest_prompt, longest_completion = prompt, completion
    if group:
        groups.append(group)
    return groups


def collate(samples: Sequence[Sample], pad_id: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Pad one micro-batch into the inputs dict of ``GRPOTrainer._compute_loss``.

    Extra keys for our trainer: ``old_logps_missing`` (rows whose old logprobs were not recorded;
    filled with the current policy's logprobs on first use) and ``n_tokens``.
    """
    n = len(samples)
    p_len = max(len(s.prompt_ids) for s in samples)
    c_len = max(len(s.completion_ids) for s in samples)
    prompt_ids = torch.full((n, p_len), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((n, p_len), dtype=torch.long)
    completion_ids = torch.full((n, c_len), pad_id, dtype=torch.long)
    completion_mask = torch.zeros((n, c_len), dtype=torch.long)
    old = torch.zeros((n, c_len), dtype=torch.float32)
    missing = torch.zeros(n, dtype=torch.bool)
    for i, s in enumerate(samples):
        lp, lc = len(s.prompt_ids), len(s.completion_ids)
        if lp:
            prompt_ids[i, p_len - lp:] = torch.tensor(s.prompt_ids, dtype=torch.long)
            prompt_mask[i, p_len - lp:] = 1
        completion_ids[i, :lc] = torch.tensor(s.completion_ids, dtype=torch.long)
        completion_mask[i, :lc] = 1
        if s.old_logps is None:
            missing[i] = True
        else:
            old[i, :lc] = torch.tensor(s.old_logps, dtype=torch.float32)
    batch = {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "completion_ids": completion_ids, "completion_mask": completion_mask,
        "advantages": torch.tensor([s.advantage for s in samples], dtype=torch.float32),
        "old_per_token_logps": old, "old_logps_missing": missing,
        "n_tokens": completion_mask.sum(),
    }
    return {k: v.to(device) for k, v in batch.items()}

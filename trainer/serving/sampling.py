"""Per-request sampling for a batch of rows, and the log-probabilities reported with each token.

Every row has its own temperature, top-p and (optionally) seed. Sampling uses the exponential race
(``argmax(p / E)`` with ``E ~ Exp(1)`` is a draw from ``p``), so a seeded row draws its noise from its own
generator and stays reproducible whichever other rows share its batch.

Reported logprobs are ``log_softmax`` of the **raw** logits of the same forward pass that sampled the
token (temperature 1, before top-p truncation): the policy's own probability of the token, which is what a
trainer recomputes for its ratio (vLLM's default ``raw_logprobs`` means the same).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

GREEDY_BELOW = 1e-5  # temperatures at or below this are greedy (argmax)


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence is generated. ``stop`` strings end it (the text is cut before them, the tokens kept);
    ``stop_token_ids`` (plus the model's EOS ids unless ``ignore_eos``) end it with the token kept."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    seed: Optional[int] = None
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError("top_logprobs must be in [0, 20]")


@dataclass
class Draw:
    """What sampling produced for one row."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


def sample(logits: torch.Tensor, params: Sequence[SamplingParams],
           generators: Sequence[Optional[torch.Generator]], shared: torch.Generator) -> list[Draw]:
    """One token per row of ``logits`` ``[B, V]``; rows without their own generator use ``shared``."""
    logits = logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    temps = torch.tensor([p.temperature for p in params], dtype=logits.dtype, device=logits.device)
    greedy = temps <= GREEDY_BELOW
    tokens = logits.argmax(dim=-1)
    if not bool(greedy.all()):
        scaled = logits / temps.clamp(min=GREEDY_BELOW).unsqueeze(1)
        top_p = torch.tensor([p.top_p for p in params], dtype=logits.dtype, device=logits.device)
        if bool((top_p < 1).any()):
            scaled = _nucleus(scaled, top_p)
        probs = torch.softmax(scaled, dim=-1)
        noise = _exponential_noise(probs.shape, generators, shared, probs.device)
        sampled = (probs / noise).argmax(dim=-1)
        tokens = torch.where(greedy, tokens, sampled)
    chosen = logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1)
    want_top = max((p.top_logprobs for p in params), default=0)
    top_values = top_ids = None
    if want_top:
        top_values, top_ids = logprobs.topk(want_top, dim=-1)
    draws = []
    token_list, chosen_list = tokens.tolist(), chosen.tolist()
    for row, p in enumerate(params):
        top: list[tuple[int, float]] = []
        if p.top_logprobs and top_ids is not None:
            top = list(zip(top_ids[row, :p.top_logprobs].tolist(), top_values[row, :p.top_logprobs].tolist()))
        draws.append(Draw(token_list[row], chosen_list[row], top))
    return draws


def _nucleus(scaled: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask everything outside each row's smallest set of tokens whose probability reaches top_p."""
    sorted_logits, order = scaled.sort(dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass strictly before each token; the first token always stays
    sorted_logits = sorted_logits.masked_fill(before >= top_p.unsqueeze(1), float("-inf"))
    return torch.full_like(scaled, float("-inf")).scatter(1, order, sorted_logits)


def _exponential_noise(shape: torch.Size, generators: Sequence[Optional[torch.Generator]],
                       shared: torch.Generator, device: torch.device) -> torch.Tensor:
    noise = torch.empty(shape, device=device)
    own = [i for i, g in enumerate(generators) if g is not None]
    rest = [i for i, g in enumerate(generators) if g is None]
    if rest:
        noise[rest] = torch.empty((len(rest), shape[1]), device=device).exponential_(generator=shared)
    for i in own:
        noise[i] = torch.empty(shape[1], device=device).exponential_(generator=generators[i])
    return noise.clamp_(min=1e-30)

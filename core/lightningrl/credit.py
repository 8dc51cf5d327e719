"""Credit assignment and group normalisation, as pure functions over floats.

Per episode (one rollout attempt with T transitions of the trained agents):

- ``episode``:    reward_t = F + air_t. The paper's rule: every call gets the final reward F;
                  AIR only adds to the call whose signals fired.
- ``discounted``: r_t = air_t, plus F at the last call; reward_t = sum_k>=t gamma^(k-t) r_k.
- ``per_step``:   r_t = air_t + the rewards emitted after call t (and before the next),
                  plus F (if any) at the last call; then discounted returns as above.

Advantages are computed over *rollouts*: each episode is summarised by its score S_i (the mean
of its transitions' outcome returns: the returns above without AIR; F under ``episode`` credit), the
group statistics come from the S_i, and every transition gets ``outcome_t - baseline`` (divided by the
group std for ``grpo``). A rollout with many calls therefore does not pull the baseline more than one
with few.

AIR is a process reward, kept apart from the outcome: each transition's AIR return (its own AIR under
``episode`` credit, the discounted AIR of its call and the later ones otherwise) is compared with the
mean AIR return of the group's *calls whose own AIR signals fired* (the calls that ran tools), and the
difference is added to its advantage, never divided by the outcome's std; calls where no AIR signal
fired (e.g. the final answer) keep their AIR return as it is (0 under ``episode`` credit). With the
normaliser ``none`` nothing is centred (advantage = reward). Why not simpler (each measured on the calc
demo or shown by a test):

* folded into the rollout scores (this module's first version): a group that all succeeded pushed its
  answer calls down by half the tool call's AIR, and a small outcome std blew AIR up by 1/std (0.1 -> 3);
* added as it is, uncentred: every call whose tool ran got +0.15 even where every rollout of the group
  failed, which reinforced whichever wrong expression the policy favoured: in one seed the calc policy
  collapsed onto "-" for every problem (held-out success 0.67 -> 0.54).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence


def rewards(mode: str, gamma: float, final: Optional[float], air: Sequence[float],
            steps: Optional[Sequence[float]] = None) -> list[float]:
    """Credit-assigned reward for each transition of one episode."""
    n = len(air)
    if n == 0:
        return []
    if mode == "episode":
        f = final or 0.0
        return [f + a for a in air]
    if mode not in ("discounted", "per_step"):
        raise ValueError(f"unknown credit mode {mode!r}")
    r = list(air)
    if mode == "per_step" and steps:
        for i, s in enumerate(steps):
            r[i] += s
    if final is not None:
        r[-1] += final
    out = [0.0] * n
    running = 0.0
    for i in range(n - 1, -1, -1):
        running = r[i] + gamma * running
        out[i] = running
    return out


def group_stats(scores: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    n = len(scores)
    mean = math.fsum(scores) / n
    var = math.fsum((s - mean) ** 2 for s in scores) / n
    return mean, math.sqrt(var)


def shaped_advantages(outcomes: Sequence[Sequence[float]], air: Sequence[Sequence[float]],
                      fired: Sequence[Sequence[bool]], normalizer: str, std_eps: float = 1e-6) -> list[list[float]]:
    """Advantages for each episode of one group: its outcome returns normalised over the group, plus its AIR
    returns centred on the mean over the group's calls whose own AIR fired (see the module docstring)."""
    normalised = advantages(outcomes, normalizer, std_eps)
    baseline = 0.0
    if normalizer != "none":
        values = [s for shaping, flags in zip(air, fired) for s, f in zip(shaping, flags) if f]
        baseline = math.fsum(values) / len(values) if values else 0.0
    return [[a + s - (baseline if f else 0.0) for a, s, f in zip(adv, shaping, flags)]
            for adv, shaping, flags in zip(normalised, air, fired)]


def advantages(group: Sequence[Sequence[float]], normalizer: str, std_eps: float = 1e-6) -> list[list[float]]:
    """Advantages for each episode of one group, from its episodes' transition rewards."""
    if normalizer == "none":
        return [list(r) for r in group]
    scores = [math.fsum(r) / len(r) if r else 0.0 for r in group]
    if normalizer == "loo":
        n = len(scores)
        total = math.fsum(scores)
        out = []
        for r, s in zip(group, scores):
            baseline = (total - s) / (n - 1) if n > 1 else 0.0
            out.append([x - baseline for x in r])
        return out
    mean, std = group_stats(scores)
    if normalizer == "mean":
        return [[x - mean for x in r] for r in group]
    if normalizer == "grpo":
        scale = std if std > std_eps else 1.0  # a flat group is only centred, never blown up
        return [[(x - mean) / scale for x in r] for r in group]
    raise ValueError(f"unknown normalizer {normalizer!r}")

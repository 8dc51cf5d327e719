"""Reward for multi-hop QA: answer format + token F1 against the gold answer and its aliases.

Normalisation is MuSiQue's (the SQuAD one): lower-case, drop punctuation, drop the articles a/an/the,
collapse whitespace. Token F1 is the harmonic mean of token precision and recall after normalisation,
maximised over the answer and its ``answer_aliases``; exact match likewise.

The agent is told to end with a line ``Answer: <short answer>``. Reward (weights documented here):

    reward = FORMAT_WEIGHT * formatted + F1_WEIGHT * F1(answer, gold)     FORMAT_WEIGHT = 0.2, F1_WEIGHT = 0.8

* ``formatted`` is 1 when the reply has an answer line (the last ``Answer:`` in it, case-insensitive,
  markdown bold allowed) with a non-empty answer; the F1 is then computed on that answer alone.
* Without an answer line the F1 is computed on the whole reply: a right name buried in a sentence still
  earns part of the reward (precision suffers), so a small model that has not learnt the format yet
  gets a dense signal, and writing the format pays twice (the format term and a cleaner F1).

So: right answer in the right format 1.0; right answer alone without the format 0.8; the format with a
wrong answer 0.2; nothing 0.0. A rollout counts as a success above 0.6 (``SUCCESS_THRESHOLD``): a
formatted answer with F1 above 0.5, or an unformatted reply that is almost exactly the answer.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Iterable, Optional

FORMAT_WEIGHT = 0.2
F1_WEIGHT = 0.8
SUCCESS_THRESHOLD = 0.6

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_ANSWER_LINE = re.compile(r"^[ \t>*_#-]*answer[ \t*_]*[:：][ \t*_]*(.*?)[ \t*_]*$", re.IGNORECASE | re.MULTILINE)


def normalize_answer(text: str) -> str:
    """Lower-case, no punctuation, no articles, single spaces (SQuAD / MuSiQue)."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)  # both empty agree; one empty is a miss
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_f1(prediction: str, golds: Iterable[str]) -> float:
    return max((token_f1(prediction, g) for g in golds), default=0.0)


def best_exact_match(prediction: str, golds: Iterable[str]) -> float:
    return max((exact_match(prediction, g) for g in golds), default=0.0)


def extract_answer(reply: str) -> Optional[str]:
    """The text after the last ``Answer:`` line, or None when the reply has no (non-empty) answer line."""
    found = [m.group(1).strip() for m in _ANSWER_LINE.finditer(reply or "")]
    found = [a for a in found if a]
    return found[-1] if found else None


def gold_answers(task: dict[str, Any]) -> list[str]:
    return [str(task.get("answer", ""))] + [str(a) for a in task.get("answer_aliases") or ()]


def score(reply: Any, task: dict[str, Any]) -> dict[str, float]:
    """Every part of the reward, for reports: ``formatted``, ``f1``, ``em`` and the ``reward`` itself."""
    text = reply if isinstance(reply, str) else ("" if reply is None else str(reply))
    answer = extract_answer(text)
    formatted = answer is not None
    predicted = answer if formatted else text
    golds = gold_answers(task)
    f1 = best_f1(predicted, golds)
    return {"formatted": float(formatted), "f1": f1, "em": best_exact_match(predicted, golds),
            "reward": FORMAT_WEIGHT * float(formatted) + F1_WEIGHT * f1}


def reward(reply: Any, task: dict[str, Any]) -> float:
    """The final reward in [0, 1] (see the module docstring for the weights)."""
    return score(reply, task)["reward"]

"""Numeric match between the agent's reply and the gold result, with tolerant parsing.

The agent is told to end with a line ``Answer: N``. Parsing (documented, deliberately forgiving about
surface form, strict about the number):

* the answer line: the last ``answer`` followed by ``:``, ``=``, ``is`` or ``is:`` and a number,
  case-insensitive, markdown (``**Answer:** 12``) allowed; GSM8K's ``#### N`` counts as an answer line too;
* a number: optional sign, thousands separators (``1,234``), a currency sign before it, a percent sign or
  a trailing period after it, decimals (``2.50``), or a fraction ``a/b`` (read as its value);
* a match: equal within ``1e-6`` absolute or ``1e-4`` relative, or equal after rounding both to two
  decimals (so ``3.333`` matches ``10/3`` but ``3.3`` does not).

Reward: **1.0** when the answer line holds the right number; **0.5** when there is no answer line but the
reply's last number is right (the arithmetic is right, the format is not — a denser signal for a small
model that rarely hits the format at first); **0.0** otherwise. A rollout is a success when its reward is
above 0.5, i.e. only a right answer in the right format.
"""
from __future__ import annotations

import math
import re
from typing import Any, Optional

_NUMBER = r"(?<![\d.])[-+]?[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
_ANSWER = re.compile(r"(?:answer\s*(?:\*\*)?\s*(?:[:=]|is:?)|####)\s*(?:\*\*)?\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)
FORMAT_ONLY_REWARD = 0.5


def parse_number(text: Any) -> Optional[float]:
    """A number from ``text`` ("1,234", "$5", "12.", "50%", "3/4", 7); None when there is none."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(text) else None
    s = str(text).strip().rstrip(".").rstrip("%").strip()
    s = re.sub(r"[$€£,\s]", "", s)
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return float(num) / float(den) if float(den) != 0 else None
        value = float(s)
    except ValueError:
        match = _ANY_NUMBER.search(str(text))
        return parse_number(match.group(0)) if match and match.group(0) != str(text) else None
    return value if math.isfinite(value) else None


def extract_answer(reply: str) -> tuple[Optional[float], bool]:
    """(number, strict): the number on the last answer line (strict=True), else the reply's last number."""
    reply = reply or ""
    matches = _ANSWER.findall(reply)
    if matches:
        return parse_number(matches[-1]), True
    numbers = _ANY_NUMBER.findall(reply)
    return (parse_number(numbers[-1]) if numbers else None), False


def numbers_match(predicted: Optional[float], gold: Optional[float]) -> bool:
    if predicted is None or gold is None:
        return False
    if abs(predicted - gold) <= max(1e-6, 1e-4 * abs(gold)):
        return True
    return round(predicted, 2) == round(gold, 2)


def gold_value(task: dict[str, Any]) -> Optional[float]:
    """The task's gold number: ``result_float`` when present (Calc-X), else ``result`` parsed."""
    value = task.get("result_float")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return parse_number(task.get("result"))


def reward(prediction: Any, task: dict[str, Any]) -> float:
    """1.0 right number on the answer line, 0.5 right last number without one, else 0.0."""
    value, strict = extract_answer("" if prediction is None else str(prediction))
    if not numbers_match(value, gold_value(task)):
        return 0.0
    return 1.0 if strict else FORMAT_ONLY_REWARD

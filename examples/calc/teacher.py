"""The warm-up teacher for Calc-X: replays each task's worked solution (its calculator chain) to the agent.

SmolLM2-135M never calls a tool on its own, so the demo first shows it, through the real AutoGen agent,
what a calculator call looks like: the teacher answers the agent's first request with a ``calculator``
call whose expression comes from the task's Calc-X ``chain`` (several steps are folded into one
expression, since the agent makes one tool round), and the request that carries the calculator's output
with ``Answer: <output>``. It is served by :class:`agentlightning.testing.scripted_llm.ScriptedLLMServer`;
the training loop's warm-up clones what the policy sees in those traces (see
:mod:`agentlightning.trainer.warmup`).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional

from agentlightning.testing.scripted_llm import Reply, RequestView, ToolCall

_STEP = re.compile(r'<gadget id="calculator">(.*?)</gadget>\s*<output>(.*?)</output>', re.DOTALL)


def chain_steps(chain: str) -> list[tuple[str, str]]:
    """(expression, output) of each calculator step of a Calc-X chain."""
    return [(expr.strip(), out.strip()) for expr, out in _STEP.findall(chain or "")]


def one_expression(steps: list[tuple[str, str]]) -> Optional[str]:
    """The chain as a single expression: a later step's use of an earlier output becomes that step's
    parenthesised expression ("5 + 3" -> 8, "8 * 2" becomes "(5 + 3) * 2")."""
    if not steps:
        return None
    folded: list[tuple[str, str]] = []
    for expression, output in steps:
        for earlier, value in reversed(folded):
            pattern = r"(?<![\d.])" + re.escape(value) + r"(?![\d.])"
            if re.search(pattern, expression):
                expression = re.sub(pattern, lambda _m, e=earlier: f"({e})", expression, count=1)
                break
        folded.append((expression, output))
    return folded[-1][0]


def teacher_script(tasks: Iterable[dict[str, Any]]):
    """A ``ScriptedLLMServer`` script that plays the chain of whichever task the agent is asking about."""
    by_question = {str(t["question"]).strip(): t for t in tasks if t.get("chain")}

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        if view.last_is_tool_result:
            return Reply(content=f"Answer: {view.tool_results_since_user[-1].strip()}")
        task = by_question.get(view.last_user_text.strip())
        expression = one_expression(chain_steps(task["chain"])) if task else None
        if expression is None:
            raise LookupError(f"no worked solution for {view.last_user_text[:80]!r}")
        return Reply(tool_calls=[ToolCall("calculator", json.dumps({"expression": expression}))])

    return script

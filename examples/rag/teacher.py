"""The warm-up teacher for multi-hop RAG: walks each training task's hops through the real Agents SDK agent.

A 135M model hardly ever calls ``retrieve`` (1 first reply in 12 with the worked example, docs/demo-rag), so
RL has little to reinforce. The teacher shows it the path: for the n-th model call of a question it asks
``retrieve`` for the title of the paragraph the n-th hop reads (MuSiQue's ``question_decomposition``,
``hop_support_idx`` in the task; the supporting paragraphs in order when a record has no decomposition),
and once every hop is read it answers ``Answer: <gold answer>``. Served by
:class:`agentlightning.testing.scripted_llm.ScriptedLLMServer`; the training loop's warm-up clones the
researcher's calls (:mod:`agentlightning.trainer.warmup`).
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from agentlightning.testing.scripted_llm import Reply, RequestView, ToolCall


def hop_titles(task: dict[str, Any]) -> list[str]:
    """The titles of the paragraphs the task's hops read, in hop order."""
    titles = {p["idx"]: p["title"] for p in task["paragraphs"]}
    order = task.get("hop_support_idx") or task.get("supporting_idx") or []
    return [titles[i] for i in order if i in titles]


def teacher_script(tasks: Iterable[dict[str, Any]]):
    """A ``ScriptedLLMServer`` script that plays whichever training question the agent is asking about."""
    by_question = {str(t["question"]).strip(): t for t in tasks}

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        task = by_question.get(view.last_user_text.strip())
        if task is None:
            raise LookupError(f"no worked path for {view.last_user_text[:80]!r}")
        titles = hop_titles(task)
        done = len(view.tool_results_since_user)
        if done < len(titles):
            return Reply(tool_calls=[ToolCall("retrieve", json.dumps({"query": titles[done]}))])
        return Reply(f"Answer: {task['answer']}")

    return script

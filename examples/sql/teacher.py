"""The warm-up teacher for text-to-SQL: plays each training task's gold query through the real LangGraph agent.

The writer's request (schema + question, :func:`..prompts.writer_messages`) is answered with the task's
gold query, the checker's with ``CORRECT`` and, should a rewrite be asked for, the rewriter's with the gold
query again. The task is found by the schema and question the agent sent, so the same question on two
databases gets each database's query. Served by :class:`agentlightning.testing.scripted_llm.ScriptedLLMServer`;
the training loop's warm-up clones the writer's and rewriter's calls (the checker is not trained) into
the policy (:mod:`agentlightning.trainer.warmup`).
"""
from __future__ import annotations

from typing import Any, Iterable

from agentlightning.testing.scripted_llm import Reply, RequestView

_QUERY_LINE = "\nQuery: "  # the rewriter's request goes on after the question with the query to fix


def _key(schema: str, question: str) -> str:
    return f"{schema}\nQuestion: {question}"  # the writer's request text (prompts.writer_messages)


def gold_answer(query: str) -> str:
    """The gold query as the writer's few-shot turns answer: one statement ending with ';'."""
    return query.strip().rstrip(";").strip() + ";"


def teacher_script(tasks: Iterable[dict[str, Any]]):
    """A ``ScriptedLLMServer`` script that answers each role of the SQL graph for the training tasks."""
    # Here, not at the top: the prompts module needs LangChain, and ``examples.sql`` imports without it.
    from agentlightning.examples.sql.prompts import CHECKER, REWRITER, WRITER

    by_prompt = {_key(t["schema"], t["question"]): t for t in tasks if t.get("query")}

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        system = view.system
        if system.startswith(CHECKER):
            return Reply("CORRECT")
        text = view.last_user_text
        if system.startswith(REWRITER):
            text = text.split(_QUERY_LINE, 1)[0]
        elif not system.startswith(WRITER):
            raise LookupError(f"not a request of the SQL graph: {system[:80]!r}")
        task = by_prompt.get(text)
        if task is None:
            raise LookupError(f"no gold query for {text.rsplit('Question: ', 1)[-1][:80]!r}")
        return Reply(gold_answer(task["query"]))

    return script

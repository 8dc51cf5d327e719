"""Text-to-SQL with LangGraph: writer -> execute -> checker -> rewriter -> execute -> ... (bounded).

The graph is ordinary LangGraph code; Agent Lightning is the one ``callbacks`` entry in ``invoke``.
The integration names every LLM span after its graph node, so the writer's, checker's and rewriter's
calls are told apart and LightningRL can train ``writer|rewriter`` only (the checker stays fixed).

* writer:   question + schema -> SQL.
* execute:  runs the SQL read-only on the task's SQLite file through the ``execute_sql`` tool (so the
            trace has a TOOL span per execution: OK, ERROR or TIMEOUT, which AIR credits to the
            writer/rewriter call that wrote the query); a failure becomes ``error`` in the state.
* checker:  question + SQL + result (or error) -> ``CORRECT`` or ``WRONG`` (anything else counts as wrong).
            A query that failed is wrong whatever the checker says: SmolLM2-135M as checker answered
            CORRECT to all 18 probes (10 of them failed queries), so without this rule the rewriter
            would never run, and never be trained, with a small model.
* rewriter: question + schema + SQL + error/result + the checker's words -> new SQL, executed again.

Optional task keys: ``max_turns`` (rewrites, default 1), ``temperature`` (default 1.0; the demo
evaluates at 0) and ``max_tokens`` (per SQL-writing call; the checker gets at most ``CHECK_TOKENS``).
``max_turns`` bounds the rewrites. After the last rewrite the graph ends without asking the checker
(its verdict could not change anything), so a run makes at most ``2 * max_turns + 1`` model calls.
The final SQL is scored by execution match against the gold query (:mod:`.execution`).

Requests ask for ``logprobs`` and vLLM's ``return_tokens_as_token_ids`` so the model server's exact
completion tokens reach the trace (drop ``EXACT_TOKENS`` for a hosted API that rejects them).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Optional, TypedDict

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from agentlightning.examples.sql.execution import QueryError, execution_match, preview, run_query
from agentlightning.examples.sql.prompts import checker_messages, rewriter_messages, writer_messages
from agentlightning.integrations.langchain import LightningCallbackHandler

MAX_TURNS = 1
TEMPERATURE = 1.0
SQL_TOKENS = 96
CHECK_TOKENS = 16
EXACT_TOKENS: dict[str, Any] = {"logprobs": True, "include_response_headers": True,
                                "extra_body": {"return_tokens_as_token_ids": True}}


class SQLState(TypedDict, total=False):
    question: str
    schema: str
    db_path: str
    sql: str
    result: str  # a preview of the rows, when the query ran
    error: str  # the database's message, when it did not
    verdict: str  # "correct" | "wrong"
    feedback: str  # the checker's reply
    turn: int  # rewrites so far
    max_turns: int


_FENCE = re.compile(r"```(?:sql|sqlite)?\s*(.*?)(?:```|$)", re.IGNORECASE | re.DOTALL)
_START = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)


def extract_sql(text: str) -> str:
    """The query in a model reply: a fenced block if any, else from the first SELECT/WITH; one statement."""
    text = text or ""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start = _START.search(text)
    if start:
        text = text[start.start():]
    return text.split(";", 1)[0].strip()


def parse_verdict(text: str) -> str:
    """``correct`` only for a clear CORRECT (not "incorrect"/"not correct"); anything else is ``wrong``."""
    lowered = (text or "").lower()
    if re.search(r"\b(wrong|incorrect|not correct)\b", lowered):
        return "wrong"
    return "correct" if re.search(r"\bcorrect\b", lowered) else "wrong"


@tool
def execute_sql(query: str, db_path: str) -> str:
    """Run one SQLite query (read-only) and return a preview of the rows."""
    return preview(run_query(db_path, query))


def build_graph(writer_llm: Any, checker_llm: Any, rewriter_llm: Any):
    """The compiled graph; each node is named after its role (and so are its LLM spans)."""

    def writer(state: SQLState) -> dict:
        reply = writer_llm.invoke(writer_messages(state))
        return {"sql": extract_sql(reply.content), "turn": 0}

    def execute(state: SQLState) -> dict:
        try:
            return {"result": execute_sql.invoke({"query": state["sql"], "db_path": state["db_path"]}),
                    "error": ""}
        except QueryError as exc:
            return {"result": "", "error": str(exc)}

    def checker(state: SQLState) -> dict:
        reply = checker_llm.invoke(checker_messages(state))
        # A query that failed cannot answer the question, whatever the checker says.
        verdict = "wrong" if state.get("error") else parse_verdict(reply.content)
        return {"verdict": verdict, "feedback": reply.content.strip()[:200]}

    def rewriter(state: SQLState) -> dict:
        reply = rewriter_llm.invoke(rewriter_messages(state))
        return {"sql": extract_sql(reply.content), "turn": state.get("turn", 0) + 1}

    def after_execute(state: SQLState) -> str:
        return END if state.get("turn", 0) >= state.get("max_turns", MAX_TURNS) else "checker"

    def after_check(state: SQLState) -> str:
        return END if state.get("verdict") == "correct" else "rewriter"

    graph = StateGraph(SQLState)
    graph.add_node("writer", writer)
    graph.add_node("execute", execute)
    graph.add_node("checker", checker)
    graph.add_node("rewriter", rewriter)
    graph.add_edge(START, "writer")
    graph.add_edge("writer", "execute")
    graph.add_conditional_edges("execute", after_execute, ["checker", END])
    graph.add_conditional_edges("checker", after_check, ["rewriter", END])
    graph.add_edge("rewriter", "execute")
    return graph.compile()


@functools.lru_cache(maxsize=8)
def _graph_for(base_url: str, api_key: str, model: str, temperature: float, max_tokens: int):
    def llm(tokens: int, stop: Optional[list[str]]) -> ChatOpenAI:
        return ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=temperature,
                          max_tokens=tokens, stop=stop, max_retries=1, timeout=600, **EXACT_TOKENS)

    sql_llm = llm(max_tokens, [";"])
    return build_graph(sql_llm, llm(min(CHECK_TOKENS, max_tokens), ["\n"]), sql_llm)


def run_graph(task: dict, model: Any) -> SQLState:
    """One run of the graph on a task; ``model`` has ``base_url``, ``api_key`` and ``model``."""
    graph = _graph_for(model.base_url, model.api_key, model.model, float(task.get("temperature", TEMPERATURE)),
                       int(task.get("max_tokens", SQL_TOKENS)))
    state: SQLState = {"question": task["question"], "schema": task["schema"], "db_path": task["db_path"],
                       "max_turns": int(task.get("max_turns", MAX_TURNS))}
    return graph.invoke(state, config={"callbacks": [LightningCallbackHandler()]})  # Agent Lightning: one line


def solve(task: dict, model: Any = None) -> float:
    """The agent function for ``agentlightning train``: run the graph, return the execution-match reward."""
    if model is None:
        from agentlightning.trainer.endpoint import get_model

        model = get_model()
    final = run_graph(task, model)
    return execution_match(final.get("sql", ""), task["query"], task["db_path"])

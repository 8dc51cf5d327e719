"""What the scripted model answers in each section of ``overhead.py``; no framework imported here.

The scripts live apart from the sections so the model server can run in its own process (as a remote
model does) without importing the framework it serves. Each is stateless: it answers from what the
request contains, so the instrumented and plain runs of a section can share one server.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from agentlightning.testing.scripted_llm import Reply, RequestView, ToolCall, route_by_system, tool_then_answer

Script = Callable[[dict, str], Reply]

LANGCHAIN_ANSWER = "2 + 3 = 5, and 1 / 0 is undefined."
OPENAI_AGENTS_ANSWER = "2 + 3 = 5"
AUTOGEN_ANSWER = "2 + 3 = 5, and the other tool failed."
CREWAI_ANSWER = "Division by zero is undefined."


def _two_tools_then_answer(first: ToolCall, second: ToolCall, answer: str) -> Script:
    """One tool per reply: ``first``, then ``second``, then ``answer`` (3 LLM calls, 2 tool calls)."""
    def script(request: dict, api: str) -> Reply:
        done = len(RequestView(request, api).tool_results)
        if done == 0:
            return Reply(tool_calls=[first], prompt_tokens=40, completion_tokens=12)
        if done == 1:
            return Reply(tool_calls=[second], prompt_tokens=60, completion_tokens=12)
        return Reply(answer, prompt_tokens=80, completion_tokens=14)

    return script


# ReAct agent: add, then divide by zero, then answer.
langchain: Script = _two_tools_then_answer(ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("divide", '{"a": 1, "b": 0}'),
                                           LANGCHAIN_ANSWER)


def openai_agents(request: dict, api: str) -> Reply:
    """Three tool calls in one reply (ok, raises, invalid JSON), then the answer (2 LLM calls, 3 tools)."""
    if RequestView(request, api).last_is_tool_result:
        return Reply(OPENAI_AGENTS_ANSWER, prompt_tokens=80, completion_tokens=14)
    return Reply(tool_calls=[ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("explode", '{"reason": "x"}'),
                             ToolCall("add", '{"a": 1,')], prompt_tokens=40, completion_tokens=12,
                 prompt_token_ids=list(range(40)), token_ids=list(range(12)), logprobs=[-0.1] * 12)


# AutoGen: add, then a tool that fails, then answer.
autogen: Script = _two_tools_then_answer(ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("explode", '{"reason": "x"}'),
                                         AUTOGEN_ANSWER)


crewai: Script = route_by_system({  # two agents, each: tool call then answer (4 LLM calls, 2 tool calls)
    "Mathematician": tool_then_answer("add", '{"a": 2, "b": 3}', "The sum is 5.", prompt_tokens=40,
                                      completion_tokens=12),
    "Divider": tool_then_answer("divide", '{"a": 1, "b": 0}', CREWAI_ANSWER, prompt_tokens=60, completion_tokens=14),
})

SCRIPTS: dict[str, Script] = {"langchain": langchain, "openai_agents": openai_agents, "autogen": autogen,
                              "crewai": crewai}


def with_latency(script: Script, latency_s: float) -> Script:
    """The same script answering each request after ``latency_s`` (a model's thinking time)."""
    if latency_s <= 0:
        return script

    def delayed(request: dict, api: str) -> Reply:
        return dataclasses.replace(script(request, api), delay_s=latency_s)

    return delayed

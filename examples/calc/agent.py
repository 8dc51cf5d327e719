"""The Calc-X agent: an AutoGen ``AssistantAgent`` with a calculator tool, plus Agent Lightning in one line.

    from agentlightning.examples.calc.agent import solve
    reward = solve({"question": "Ana has 3 apples and gets 4 more. How many?", "result": "7"}, model)

Written the way AutoGen users write it: the model client points at whatever OpenAI-compatible endpoint
the trainer serves (``model.base_url``), the tool is a plain typed function, and the agent runs once per
problem with ``reflect_on_tool_use`` so it sees the calculator's output before it answers. The only
Agent Lightning line is ``instrument()`` below; the function's return value is the rollout's reward.

Task keys besides the Calc-X ones: ``temperature`` (sampling temperature; the demo's evaluation uses 0)
and ``max_tokens`` (per model call).
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

import agentlightning.integrations.autogen
from agentlightning.examples.calc.calculator import calculator
from agentlightning.examples.calc.reward import reward

agentlightning.integrations.autogen.instrument()  # <- the one line: trace every model call and tool run

AGENT_NAME = "solver"
SYSTEM_PROMPT = (
    "You solve math word problems. First call the calculator tool with the arithmetic expression. "
    "When you have the result, reply with one line: 'Answer: N'.\n"
    "Example: for 'Tom has 5 pens and buys 3 more. How many pens does he have?' call the calculator with "
    "{\"expression\": \"5 + 3\"}; it returns 8; then reply 'Answer: 8'.")
MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}
DEFAULT_MAX_TOKENS = 96


def make_model_client(model: Any, temperature: float = 1.0, max_tokens: int = DEFAULT_MAX_TOKENS,
                      seed: Optional[int] = None) -> OpenAIChatCompletionClient:
    """AutoGen's OpenAI client for ``model`` (anything with ``base_url``, ``model`` and ``api_key``, e.g.
    :class:`agentlightning.trainer.endpoint.ModelEndpoint`)."""
    create_args: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    if seed is not None:
        create_args["seed"] = seed
    return OpenAIChatCompletionClient(model=model.model, base_url=model.base_url, api_key=model.api_key,
                                      model_info=MODEL_INFO, max_retries=0, timeout=900, **create_args)


def make_agent(model_client: OpenAIChatCompletionClient) -> AssistantAgent:
    """The solver: one calculator round, then a reply written after seeing the calculator's output."""
    return AssistantAgent(AGENT_NAME, model_client=model_client, tools=[calculator], system_message=SYSTEM_PROMPT,
                          reflect_on_tool_use=True, max_tool_iterations=1)


async def answer(question: str, model: Any, **client_args: Any) -> str:
    """The agent's final reply text to one question."""
    model_client = make_model_client(model, **client_args)
    try:
        result = await make_agent(model_client).run(task=question)
    finally:
        await model_client.close()
    final = result.messages[-1] if result.messages else None
    content = getattr(final, "content", "")
    return content if isinstance(content, str) else str(content)


def solve(task: dict[str, Any], model: Any) -> float:
    """Run the agent on one Calc-X task and return its reward (see :mod:`.reward`)."""
    reply = asyncio.run(answer(task["question"], model, temperature=float(task.get("temperature", 1.0)),
                               max_tokens=int(task.get("max_tokens", DEFAULT_MAX_TOKENS))))
    return reward(reply, task)

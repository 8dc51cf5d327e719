"""The multi-hop RAG agent: an OpenAI Agents SDK ``Agent`` with a BM25 ``retrieve`` tool, plus Agent Lightning
in one line.

    from agentlightning.examples.rag.agent import solve
    reward = solve(task, model)   # task: a dict from agentlightning.examples.rag.data.load; model: ModelEndpoint

Written the way Agents SDK users write it: a function tool, an ``Agent`` whose model is an
``OpenAIChatCompletionsModel`` over an ``AsyncOpenAI`` client pointed at whatever OpenAI-compatible endpoint
the trainer serves (``model.base_url``; chat completions because that is what the CPU model server and vLLM
speak, so no global ``set_default_openai_api`` is needed), and ``Runner.run``. The retrieval index is the
task's own paragraphs (MuSiQue's distractor setting), built per question. Two process-wide lines:

* ``set_trace_processors([])`` drops the SDK's default trace exporter, which would send every trace to the
  vendor's dashboard whenever ``OPENAI_API_KEY`` is set: a locally served model's traces stay here;
* ``instrument()`` is Agent Lightning: our processor records the agent, each model call and each tool call
  as spans of the current rollout.

A model that misbehaves (too many turns, a reply the SDK cannot use) gets reward 0 — it is the policy's
fault, so it is a result to learn from, not a failed rollout to retry; a model server that cannot be
reached still fails the rollout. A 135M model hardly ever calls a tool from instructions alone, so the question
comes after one worked example (``DEMONSTRATION``, passed as chat history). Task keys besides MuSiQue's:
``temperature`` (the demo's evaluation uses 0), ``max_tokens`` per model call, ``top_k`` paragraphs per
search, ``max_turns``, ``few_shot`` (default true).
"""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

from agents import (
    Agent, FunctionTool, ModelSettings, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool,
    set_trace_processors,
)
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError
from openai import AsyncOpenAI

import agentlightning.integrations.openai_agents
from agentlightning.examples.rag.retrieval import BM25Index
from agentlightning.examples.rag.reward import reward

set_trace_processors([])  # traces stay on this machine: no export to the vendor's dashboard
agentlightning.integrations.openai_agents.instrument()  # <- the one line: trace the agent, its model and tools

AGENT_NAME = "researcher"
INSTRUCTIONS = (
    "You answer questions that need several facts. Use the retrieve tool to search the documents, one "
    "fact at a time: first search for the entity in the question, then search for what you found. "
    "When you know the answer, reply with a final line of the form 'Answer: <short answer>'.")
# One worked two-hop example placed before the question (as chat history: the model sees real tool calls and
# tool results rendered by its own chat template). Measured on SmolLM2-135M-Instruct at temperature 1: 0 of 60
# first replies called the tool with instructions alone (five wordings), 1 of 12 with this example.
DEMONSTRATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Where was the founder of Acme Works born?"},
    {"type": "function_call", "call_id": "example_1", "name": "retrieve", "arguments": '{"query": "Acme Works"}'},
    {"type": "function_call_output", "call_id": "example_1",
     "output": "[Acme Works] Acme Works is a mining company founded in 1950 by Lena Brandt. "
               "Its headquarters are in Tolvik."},
    {"type": "function_call", "call_id": "example_2", "name": "retrieve", "arguments": '{"query": "Lena Brandt"}'},
    {"type": "function_call_output", "call_id": "example_2",
     "output": "[Lena Brandt] Lena Brandt (born 1921 in Marsby) is a chemist and entrepreneur."},
    {"role": "assistant", "content": "Answer: Marsby"},
]
DEFAULT_MAX_TOKENS = 96
DEFAULT_TOP_K = 2
DEFAULT_MAX_TURNS = 4  # model calls: two searches and the answer, plus one spare


def make_retrieve_tool(paragraphs: Sequence[dict], top_k: int = DEFAULT_TOP_K) -> FunctionTool:
    """The ``retrieve`` function tool over one question's paragraphs."""
    index = BM25Index.from_paragraphs(paragraphs)

    @function_tool
    def retrieve(query: str) -> str:
        """Search the documents. Returns the best-matching paragraphs, each with its title.

        Args:
            query: what to look for, e.g. a name.
        """
        hits = index.search(query, top_k)
        if not hits:
            return "No document matches that query."
        return "\n\n".join(f"[{hit.title}] {hit.text}" for hit in hits)

    return retrieve


def make_agent(client: AsyncOpenAI, model_name: str, paragraphs: Sequence[dict], *, temperature: float = 1.0,
               max_tokens: int = DEFAULT_MAX_TOKENS, top_k: int = DEFAULT_TOP_K) -> Agent:
    return Agent(
        name=AGENT_NAME, instructions=INSTRUCTIONS, tools=[make_retrieve_tool(paragraphs, top_k)],
        model=OpenAIChatCompletionsModel(model=model_name, openai_client=client),
        model_settings=ModelSettings(temperature=temperature, max_tokens=max_tokens, include_usage=True))


def agent_input(question: str, few_shot: bool = True) -> Any:
    """What ``Runner.run`` gets: the question, after the worked example unless ``few_shot`` is off."""
    return [*DEMONSTRATION, {"role": "user", "content": question}] if few_shot else question


async def answer(task: dict[str, Any], model: Any, *, temperature: float = 1.0, max_tokens: int = DEFAULT_MAX_TOKENS,
                 top_k: int = DEFAULT_TOP_K, max_turns: int = DEFAULT_MAX_TURNS, few_shot: bool = True) -> str:
    """The agent's final reply to ``task["question"]`` ("" when the model misbehaved)."""
    async with AsyncOpenAI(base_url=model.base_url, api_key=model.api_key, max_retries=0, timeout=300) as client:
        agent = make_agent(client, model.model, task["paragraphs"], temperature=temperature, max_tokens=max_tokens,
                           top_k=top_k)
        config = RunConfig(workflow_name="musique-rag", tool_not_found_behavior="return_error_to_model")
        try:
            result = await Runner.run(agent, agent_input(task["question"], few_shot), max_turns=max_turns,
                                      run_config=config)
        except (MaxTurnsExceeded, ModelBehaviorError):
            return ""
    output = result.final_output
    return output if isinstance(output, str) else ("" if output is None else str(output))


def solve(task: dict[str, Any], model: Any) -> float:
    """Run the agent on one MuSiQue task and return its reward (see :mod:`.reward`)."""
    reply = asyncio.run(answer(task, model, temperature=float(task.get("temperature", 1.0)),
                               max_tokens=int(task.get("max_tokens", DEFAULT_MAX_TOKENS)),
                               top_k=int(task.get("top_k", DEFAULT_TOP_K)),
                               max_turns=int(task.get("max_turns", DEFAULT_MAX_TURNS)),
                               few_shot=bool(task.get("few_shot", True))))
    return reward(reply, task)

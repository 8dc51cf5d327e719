"""One real trace end to end: a LangGraph ReAct agent whose tool fails, recorded by the LangChain
integration, exported to the real server, read back with the client and turned into transitions.

The scripted model server returns exact completion tokens (vLLM-style ``token_id:N`` logprobs) and a
model version but no prompt ids, so prompts are retokenized from the recorded messages."""
from __future__ import annotations

import warnings

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402

from agentlightning.core import api  # noqa: E402
from agentlightning.core.lightningrl import LightningRLConfig, build_transitions, load_from_client  # noqa: E402
from agentlightning.integrations.langchain import LightningCallbackHandler  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent  # noqa: E402


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


PLAN = [ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("divide", '{"a": 1, "b": 0}'),
        ToolCall("add", '{"a": "two"}')]  # the last one does not match add's schema


def exact(reply: Reply, ids: list[int]) -> Reply:
    reply.tokens = [f"token_id:{i}" for i in ids]
    reply.logprobs = [-0.5] * len(ids)
    reply.model_version = "policy-v9"
    return reply


def script(request: dict, api_name: str) -> Reply:
    done = len(RequestView(request, api_name).tool_results)
    if done < len(PLAN):
        return exact(Reply(tool_calls=[PLAN[done]]), [100 + done, 200 + done])
    return exact(Reply("the answer is 5"), [7, 8, 9])


class WordTokenizer:
    """Stand-in for a Hugging Face tokenizer: same apply_chat_template contract, one id per word."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, tools=None):
        text = " ".join(f"<{m['role']}> {m['content'] or ''}" for m in messages)
        text += " <assistant>" if add_generation_prompt else ""
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]


def test_langgraph_agent_with_failing_tool_gives_expected_transitions(global_tracer, client):
    with ScriptedLLMServer(script) as server:
        llm = ChatOpenAI(model="scripted", base_url=server.base_url, api_key="dummy", logprobs=True,
                         include_response_headers=True, max_retries=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            agent = create_react_agent(llm, ToolNode([add, divide], handle_tool_errors=True),
                                       prompt="You are the researcher.")
        handler = LightningCallbackHandler(agent_name="researcher")
        errors_before = handler.errors  # the background worker is shared: count only this test's
        with api.rollout(group_id="lg-group") as rollout:
            out = agent.invoke({"messages": [("user", "What is 2+3?")]}, config={"callbacks": [handler]})
            api.emit_reward(1.0, name="correct")
    assert out["messages"][-1].content == "the answer is 5"
    assert handler.errors == errors_before
    assert global_tracer.sink.flush(10.0)

    traces = load_from_client(client, [rollout.rollout_id])
    tokenizer = WordTokenizer()
    # A single ReAct agent: the integration names its LLM calls after the graph node, "agent".
    batch = build_transitions(traces, LightningRLConfig(agents="agent", tokenizer=tokenizer, normalizer="none"))
    assert [list(t.response_token_ids) for t in batch] == [[100, 200], [101, 201], [102, 202], [7, 8, 9]]
    assert all(t.retokenized and t.policy_version == "policy-v9" for t in batch)
    assert all(list(t.response_logprobs) == [-0.5] * len(t.response_token_ids) for t in batch)
    assert all(t.group_id == "lg-group" and t.agent_name == "agent" for t in batch)
    # Prompts grow with the conversation; the last one holds every tool result.
    prompts = [list(t.prompt_token_ids) for t in batch]
    assert all(len(a) < len(b) for a, b in zip(prompts, prompts[1:]))
    assert prompts[0][:2] == [tokenizer.vocab["<system>"], tokenizer.vocab["You"]]

    airs = [t.breakdown.air for t in batch]
    assert airs == [
        {"tool_ok": 0.10, "args_valid": 0.05},                # add(2, 3)
        {"tool_error": -0.10, "args_valid": 0.05},            # divide by zero
        {"args_schema_mismatch": -0.10},  # add(a="two"): the tool's INVALID_ARGUMENTS is not counted twice
        {},
    ]
    mismatch = [s for s in batch.transitions[2].breakdown.air_signals if s.name == "args_schema_mismatch"][0]
    assert "missing required property 'b'" in mismatch.detail
    assert [round(t.reward, 10) for t in batch] == [1.15, 0.95, 0.9, 1.0]
    assert batch.reports[0].reasons == [] and batch.reports[0].llm_spans == 4

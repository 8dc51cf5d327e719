"""The scripted OpenAI-compatible server, checked with the real ``openai`` client (its own parsers)."""
from __future__ import annotations

import json

import openai
import pytest

from agentlightning.testing.scripted_llm import (
    MODEL_VERSION_HEADER, Reply, RequestView, ScriptedLLMServer, ToolCall, route_by_last_message,
    route_by_system, tool_then_answer,
)

TOOLS = [{"type": "function", "function": {"name": "add", "description": "add two numbers",
                                           "parameters": {"type": "object", "properties": {}}}}]


def client_for(server: ScriptedLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="dummy", max_retries=0, timeout=10)


def test_chat_non_streaming_tool_call_then_answer_with_usage() -> None:
    script = [Reply(tool_calls=[ToolCall("add", '{"a": 1, "b": 2}', id="call_x")], prompt_tokens=12,
                    completion_tokens=5),
              Reply("the sum is 3")]
    with ScriptedLLMServer(script) as server:
        client = client_for(server)
        first = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "1+2?"}],
                                               tools=TOOLS)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls[0].id == "call_x"
        assert choice.message.tool_calls[0].function.name == "add"
        assert json.loads(choice.message.tool_calls[0].function.arguments) == {"a": 1, "b": 2}
        assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (12, 5, 17)
        assert first.model == "m1"
        second = client.chat.completions.create(model="m1", messages=[
            {"role": "user", "content": "1+2?"},
            {"role": "assistant", "tool_calls": [{"id": "call_x", "type": "function",
                                                  "function": {"name": "add", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_x", "content": "3"}])
        assert second.choices[0].message.content == "the sum is 3"
        assert second.choices[0].finish_reason == "stop"
        # default usage = word counts: prompt "1+2?" + "3" = 2 words, completion 4 words
        assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (2, 4)
        assert len(server.requests) == 2 and server.requests[0]["tools"][0]["function"]["name"] == "add"
        with pytest.raises(openai.InternalServerError, match="exhausted after 2 replies"):
            client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "again"}])
        assert server.errors and "exhausted" in server.errors[0]


def test_chat_streaming_content_tool_deltas_and_usage_chunk() -> None:
    reply = Reply("let me add", tool_calls=[ToolCall("add", '{"a": 10, "b": 20, "note": "long args"}'),
                                            ToolCall("add", "not json{")],
                  prompt_tokens=9, completion_tokens=4)
    with ScriptedLLMServer([reply, reply]) as server:
        client = client_for(server)
        chunks = list(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, stream=True,
            stream_options={"include_usage": True}))
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 9
        assert chunks[-1].usage.completion_tokens == 4
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "let me add"
        # The SDK's own accumulator must rebuild both tool calls from the deltas.
        with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}],
                                            tools=TOOLS) as stream:
            for _ in stream:
                pass
            final = stream.get_final_completion()
        calls = final.choices[0].message.tool_calls
        assert [c.function.arguments for c in calls] == ['{"a": 10, "b": 20, "note": "long args"}', "not json{"]
        assert calls[0].id != calls[1].id
        assert final.choices[0].finish_reason == "tool_calls"


def test_chat_exact_token_extension_logprobs_and_model_version() -> None:
    reply = Reply("ab", prompt_token_ids=[1, 2, 3], token_ids=[7, 8], logprobs=[-0.5, -1.25], model_version="v3")
    with ScriptedLLMServer([reply, reply]) as server:
        client = client_for(server)
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}], logprobs=True)
        assert raw.headers[MODEL_VERSION_HEADER] == "v3"
        completion = raw.parse()
        choice = completion.choices[0]
        assert [t.logprob for t in choice.logprobs.content] == [-0.5, -1.25]
        assert choice.model_extra["token_ids"] == [7, 8]
        assert choice.model_extra["prompt_token_ids"] == [1, 2, 3]
        assert completion.model_extra["model_version"] == "v3"
        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                     stream=True, logprobs=True))
        finish = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
        assert finish.choices[0].model_extra["token_ids"] == [7, 8]
        assert [t.logprob for t in finish.choices[0].logprobs.content] == [-0.5, -1.25]


def test_responses_api_function_call_streaming_and_not() -> None:
    script = tool_then_answer("add", '{"a": 1}', lambda v: f"result={v.tool_results[-1]}",
                              prompt_tokens=6, completion_tokens=3)
    fn_tool = [{"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}},
                "strict": False}]
    with ScriptedLLMServer(script) as server:
        client = client_for(server)
        first = client.responses.create(model="m", input="add", instructions="You are calc", tools=fn_tool)
        call = first.output[0]
        assert call.type == "function_call" and call.name == "add" and call.arguments == '{"a": 1}'
        assert (first.usage.input_tokens, first.usage.output_tokens) == (6, 3)
        follow_up = [{"role": "user", "content": "add"},
                     {"type": "function_call", "call_id": call.call_id, "name": "add", "arguments": '{"a": 1}'},
                     {"type": "function_call_output", "call_id": call.call_id, "output": "42"}]
        second = client.responses.create(model="m", input=follow_up, tools=fn_tool)
        assert second.output_text == "result=42"
        # Streaming through the SDK's accumulator (what the Agents SDK consumes).
        with client.responses.stream(model="m", input="add", tools=fn_tool) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.function_call_arguments.delta" in kinds
        assert final.output[0].type == "function_call" and final.output[0].arguments == '{"a": 1}'
        assert final.usage.output_tokens == 3
        with client.responses.stream(model="m", input=follow_up) as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == "result=42" == final.output_text


def test_models_endpoint_and_routing_helpers() -> None:
    script = route_by_system({
        "researcher": route_by_last_message(on_user=Reply(tool_calls=[ToolCall("search", '{"q": "x"}')]),
                                            on_tool_result=Reply("found")),
        "writer": [Reply("draft 1"), Reply("draft 2")],
    })
    with ScriptedLLMServer(script) as server:
        client = client_for(server)
        assert [m.id for m in client.models.list()] == ["scripted"]

        def ask(system: str, *extra: dict) -> openai.types.chat.ChatCompletion:
            return client.chat.completions.create(model="m", messages=[
                {"role": "system", "content": system}, {"role": "user", "content": "go"}, *extra])

        assert ask("You are the Researcher").choices[0].message.tool_calls[0].function.name == "search"
        assert ask("You are the researcher", {"role": "tool", "tool_call_id": "c", "content": "r"}) \
            .choices[0].message.content == "found"
        assert ask("You are the writer").choices[0].message.content == "draft 1"
        assert ask("You are the writer").choices[0].message.content == "draft 2"
        with pytest.raises(openai.InternalServerError, match="no route matched"):
            ask("You are nobody")


def test_request_view_reads_both_apis() -> None:
    chat = RequestView({"messages": [{"role": "system", "content": [{"type": "text", "text": "sys"}]},
                                     {"role": "user", "content": "q"},
                                     {"role": "tool", "content": "out"}],
                        "tools": TOOLS}, "chat")
    assert (chat.system, chat.last_user_text, chat.tool_results, chat.tool_names) == ("sys", "q", ["out"], ["add"])
    assert chat.last_is_tool_result and chat.contains("OUT")
    resp = RequestView({"instructions": "be brief", "input": [
        {"role": "user", "content": "q"}, {"type": "function_call_output", "call_id": "c", "output": "5"}]},
        "responses")
    assert resp.system == "be brief" and resp.last_is_tool_result and resp.tool_results_since_user == ["5"]


def test_error_replies_and_cycle() -> None:
    with ScriptedLLMServer([Reply(http_status=503, error_message="busy"), Reply("ok")], cycle=True) as server:
        client = client_for(server)
        with pytest.raises(openai.APIStatusError, match="busy"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]) \
            .choices[0].message.content == "ok"
        with pytest.raises(openai.APIStatusError):  # cycled back to the 503
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])

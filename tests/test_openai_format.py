"""core/openai_format.py: the OpenAI-wire helpers the four integrations share."""
from __future__ import annotations

import subprocess
import sys

import pytest

from agentlightning.core.kinds import TokenProvenance
from agentlightning.core.openai_format import (
    MAX_TEXT, dumps, extend_ints, logprob_entries, logprob_values, set_exact_tokens, token_ids_from_logprobs)
from agentlightning.testing.openai_wire import Reply, chat_completion
from agentlightning.v1 import spans_pb2


class _Odd:
    def __str__(self) -> str:
        return "odd"


def test_dumps_keeps_unicode_and_stringifies_unknown_leaves():
    assert dumps({"city": "Zürich", "n": 1}) == '{"city": "Zürich", "n": 1}'
    assert dumps({"x": _Odd()}) == '{"x": "odd"}'


def test_dumps_falls_back_to_str_when_json_cannot_encode():
    loop: list = []
    loop.append(loop)
    assert dumps(loop) == "[[...]]"
    assert dumps(float("nan")) == "NaN"


def test_max_text_is_the_documented_cap():
    assert MAX_TEXT == 256 * 1024


@pytest.mark.parametrize("values, expected", [
    ([1, 2, 3], [1, 2, 3]),
    ([1, "2", 3.0], [1, 2, 3]),  # the slow path converts
    ((4, 5), [4, 5]),
])
def test_extend_ints(values, expected):
    llm = spans_pb2.LlmPayload()
    extend_ints(llm.completion_token_ids, values)
    assert list(llm.completion_token_ids) == expected  # a failed fast path appended nothing: no duplicates


def test_extend_ints_raises_on_non_numbers():
    llm = spans_pb2.LlmPayload()
    with pytest.raises(ValueError):
        extend_ints(llm.prompt_token_ids, [1, "x"])


def test_logprob_entries_shapes():
    entries = [{"token": "a", "logprob": -0.5}]
    assert logprob_entries({"content": entries, "refusal": None}) is entries
    assert logprob_entries(entries) is entries
    assert logprob_entries({"refusal": None}) is None
    assert logprob_entries(None) is None
    assert logprob_entries("not logprobs") is None


def test_logprob_values():
    assert logprob_values([{"logprob": -0.5}, {"logprob": 0}]) == [-0.5, 0]
    assert logprob_values([-0.25, -1.0]) == [-0.25, -1.0]  # bare numbers
    assert logprob_values([{"logprob": -0.5}, {"token": "b"}]) is None  # one missing: none at all
    assert logprob_values([{"logprob": "x"}]) is None
    assert logprob_values([]) is None
    assert logprob_values(None) is None


def test_token_ids_from_logprobs():
    assert token_ids_from_logprobs([{"token": "token_id:7"}, {"token": "token_id:42"}]) == [7, 42]
    assert token_ids_from_logprobs([{"token": "token_id:7"}, {"token": "hello"}]) is None
    assert token_ids_from_logprobs([{"token": "token_id:x"}]) is None
    assert token_ids_from_logprobs([{"logprob": -1.0}]) is None
    assert token_ids_from_logprobs([]) == []


def test_set_exact_tokens_full():
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, [1, 2], [3, 4], [-0.5, -1], "v7")
    assert list(llm.prompt_token_ids) == [1, 2]
    assert list(llm.completion_token_ids) == [3, 4]
    assert list(llm.completion_logprobs) == [-0.5, -1.0]
    assert llm.token_provenance == TokenProvenance.EXACT
    assert llm.policy_version == "v7"


def test_set_exact_tokens_drops_logprobs_that_do_not_match_the_ids():
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, None, [3, 4], [-0.5])
    assert list(llm.completion_token_ids) == [3, 4]
    assert list(llm.completion_logprobs) == []
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, None, None, [-0.5])  # no ids: logprobs alone are not written
    assert list(llm.completion_logprobs) == []


def test_set_exact_tokens_prompt_only_is_exact_and_nothing_is_not():
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, [1], None)
    assert llm.token_provenance == TokenProvenance.EXACT
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, [], [], None, "")
    assert llm.token_provenance == spans_pb2.TOKEN_PROVENANCE_UNSPECIFIED
    assert llm.policy_version == ""
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, None, None, None, 3)
    assert llm.policy_version == "3"


def test_reads_what_the_scripted_server_emits():
    """The wire format our servers send, read the way an integration reads a chat completion choice."""
    body = chat_completion(Reply(content="hi there", prompt_token_ids=[10, 11], token_ids=[5, 6],
                                 logprobs=[-0.1, -0.2], model_version="policy-3"), {"messages": []}, 1)
    choice = body["choices"][0]
    entries = logprob_entries(choice["logprobs"])
    llm = spans_pb2.LlmPayload()
    set_exact_tokens(llm, choice["prompt_token_ids"], choice["token_ids"], logprob_values(entries),
                     body["model_version"])
    assert list(llm.prompt_token_ids) == [10, 11]
    assert list(llm.completion_token_ids) == [5, 6]
    assert list(llm.completion_logprobs) == pytest.approx([-0.1, -0.2])
    assert llm.token_provenance == TokenProvenance.EXACT
    assert llm.policy_version == "policy-3"


def test_vllm_token_id_rendering_round_trips():
    body = chat_completion(Reply(content="a b", logprobs=[-0.1, -0.2], tokens=["token_id:8", "token_id:9"]),
                           {"messages": []}, 1)
    assert token_ids_from_logprobs(logprob_entries(body["choices"][0]["logprobs"])) == [8, 9]


def test_imports_no_framework_and_no_torch():
    code = ("import sys, agentlightning.core.openai_format\n"
            "bad = [m for m in ('torch', 'langchain_core', 'autogen_core', 'crewai', 'agents', 'openai')"
            " if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_exact_tokens_are_mirrored_into_each_message():
    from agentlightning.core.openai_format import mirror_exact_tokens_into_messages

    body = {"model_version": "v7", "prompt_token_ids": [1, 2],
            "choices": [{"message": {"role": "assistant", "content": "hi"}, "token_ids": [5, 6],
                         "logprobs": {"content": [{"token": "h", "logprob": -0.1}, {"token": "i", "logprob": -0.2}]}},
                        {"message": {"role": "assistant", "content": "yo"}, "token_ids": [7], "logprobs": None}]}
    out = mirror_exact_tokens_into_messages(body)
    first, second = (c["message"] for c in out["choices"])
    assert first == {"role": "assistant", "content": "hi", "token_ids": [5, 6], "prompt_token_ids": [1, 2],
                     "model_version": "v7", "token_logprobs": [-0.1, -0.2]}
    assert second["token_ids"] == [7] and "token_logprobs" not in second

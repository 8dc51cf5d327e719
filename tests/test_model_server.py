"""The CPU model server through the real OpenAI client: tools, streaming, exact tokens, batching, hot reload.

The model is the tiny random Llama (built in code), taught two replies in a few Adam steps
(tests/tiny_policy.py) so tool calls and plain answers come out of the real generation path.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from agentlightning.trainer.serving import MODEL_VERSION_HEADER, ModelServer  # noqa: E402
from agentlightning.trainer.tiny import build_tiny_model  # noqa: E402
from tiny_policy import PLAIN_MESSAGES, PLAIN_REPLY, TOOL_MESSAGES, TOOLS, train_tiny_policy  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Two shared cores: a second intra-op thread only adds contention (measured 10x slower under load).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = build_tiny_model(root / "base")
    return SimpleNamespace(base=base, trained=train_tiny_policy(base, root / "trained", steps=40))


@pytest.fixture(scope="module")
def server(model_dirs):
    with ModelServer(str(model_dirs.trained), served_model_name="tiny", batch_wait_s=0.05) as srv:
        yield srv


@pytest.fixture
def llm(server):
    return openai.OpenAI(base_url=server.base_url, api_key="dummy", max_retries=0)


def _template_ids(tokenizer, messages, tools=None):
    out = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=True)
    return list(out if isinstance(out, list) else out["input_ids"])


def _teacher_forced_logprobs(model, prompt_ids, completion_ids):
    with torch.no_grad():
        logits = model(torch.tensor([list(prompt_ids) + list(completion_ids)])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    start = len(prompt_ids) - 1
    return [logp[start + i, token].item() for i, token in enumerate(completion_ids)]


def _extra(obj, key):
    return (obj.model_extra or {}).get(key)


# -- tools, tokens, logprobs ----------------------------------------------------------------------
def test_chat_with_tools_returns_parsed_tool_call_and_exact_prompt_ids(server, llm):
    response = llm.chat.completions.create(model="tiny", messages=TOOL_MESSAGES, tools=TOOLS, temperature=0,
                                           max_tokens=64)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "add"
    assert json.loads(call.function.arguments) == {"a": 1, "b": 2}

    prompt_ids = _extra(response, "prompt_token_ids")
    assert prompt_ids == _template_ids(server.tokenizer, TOOL_MESSAGES, TOOLS)
    assert prompt_ids == _extra(choice, "prompt_token_ids")
    assert '"name": "add"' in server.tokenizer.decode(prompt_ids)  # the tools reached the prompt
    token_ids = _extra(choice, "token_ids")
    assert token_ids[-1] == server.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert server.tokenizer.decode(token_ids, skip_special_tokens=True).startswith("<tool_call>")
    assert _extra(response, "model_version") == "v0"
    assert response.usage.prompt_tokens == len(prompt_ids)
    assert response.usage.completion_tokens == len(token_ids)


def test_plain_answer_token_ids_decode_to_content_with_true_logprobs(server, llm):
    raw = llm.chat.completions.with_raw_response.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0,
                                                        max_tokens=32)
    assert raw.headers[MODEL_VERSION_HEADER] == "v0"
    response = raw.parse()
    choice = response.choices[0]
    assert choice.message.content == PLAIN_REPLY and choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    token_ids = _extra(choice, "token_ids")
    assert server.tokenizer.decode(token_ids, skip_special_tokens=True) == choice.message.content
    assert _extra(response, "prompt_token_ids") == _template_ids(server.tokenizer, PLAIN_MESSAGES)

    logprobs = [entry.logprob for entry in choice.logprobs.content]
    assert len(logprobs) == len(token_ids)
    assert all(math.isfinite(lp) and lp <= 0 for lp in logprobs)
    expected = _teacher_forced_logprobs(server.base_model, _extra(response, "prompt_token_ids"), token_ids)
    assert logprobs == pytest.approx(expected, abs=1e-4)
    assert b"".join(bytes(e.bytes) for e in choice.logprobs.content).decode() == PLAIN_REPLY + "<|im_end|>"


def test_sampled_choices_decode_to_content_and_seed_reproduces(server, llm):
    request = dict(model="tiny", messages=[{"role": "user", "content": "Say anything."}], temperature=1.0,
                   top_p=0.95, max_tokens=12, n=3, seed=7, logprobs=True, top_logprobs=2,
                   extra_body={"ignore_eos": True})
    first = llm.chat.completions.create(**request)
    again = llm.chat.completions.create(**request)
    assert len(first.choices) == 3 and first.usage.completion_tokens == 36
    for choice, repeat in zip(first.choices, again.choices):
        ids = _extra(choice, "token_ids")
        assert len(ids) == 12 and choice.finish_reason == "length"
        assert server.tokenizer.decode(ids, skip_special_tokens=True) == choice.message.content
        assert ids == _extra(repeat, "token_ids")  # same seed, same draws (whatever else shares the batch)
        for entry in choice.logprobs.content:
            assert math.isfinite(entry.logprob) and entry.logprob <= 0
            assert len(entry.top_logprobs) == 2 and entry.top_logprobs[0].logprob >= entry.logprob - 1e-6
    assert len({tuple(_extra(c, "token_ids")) for c in first.choices}) > 1  # seed + i per choice


def test_stop_strings_cut_content_and_max_tokens_reports_length(llm):
    stopped = llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=32,
                                          stop=["is"])
    assert stopped.choices[0].message.content == "The answer "
    assert stopped.choices[0].finish_reason == "stop"
    short = llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=2)
    assert short.choices[0].finish_reason == "length"
    assert len(_extra(short.choices[0], "token_ids")) == 2


# -- streaming ------------------------------------------------------------------------------------
def test_streaming_matches_the_non_streamed_answer(server, llm):
    whole = llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=32)
    chunks = list(llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=32,
                                              stream=True, stream_options={"include_usage": True}))
    assert _extra(chunks[0], "model_version") == "v0"
    assert _extra(chunks[0], "prompt_token_ids") == _extra(whole, "prompt_token_ids")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content == PLAIN_REPLY
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really incremental
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0].choices[0]
    assert final.finish_reason == "stop"
    assert _extra(final, "token_ids") == _extra(whole.choices[0], "token_ids")
    assert [e.logprob for e in final.logprobs.content] == pytest.approx(
        [e.logprob for e in whole.choices[0].logprobs.content], abs=1e-5)
    assert chunks[-1].usage.completion_tokens == len(_extra(final, "token_ids"))


def test_streamed_tool_call_arrives_as_tool_call_deltas(llm):
    chunks = list(llm.chat.completions.create(model="tiny", messages=TOOL_MESSAGES, tools=TOOLS, temperature=0,
                                              max_tokens=64, stream=True))
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)  # no raw <tool_call> text leaks
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [("add", {"a": 1, "b": 2})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# -- batching -------------------------------------------------------------------------------------
def test_concurrent_requests_share_batches_without_changing_answers(model_dirs):
    count, length = 8, 24
    requests = [dict(model="tiny", messages=[{"role": "user", "content": "Count to " + "one " * i}],
                     temperature=0, max_tokens=length, extra_body={"ignore_eos": True}) for i in range(count)]
    barrier = threading.Barrier(count)
    # A wide gathering window: on loaded shared cores the eight requests may take a while to arrive.
    with ModelServer(str(model_dirs.trained), batch_wait_s=0.3) as srv:
        llm = openai.OpenAI(base_url=srv.base_url, api_key="dummy", max_retries=0)

        def call(request):
            barrier.wait()
            return llm.chat.completions.create(**request)

        with ThreadPoolExecutor(count) as pool:
            together = list(pool.map(call, requests))
        stats = srv.stats()
        assert stats["batches"] < count and stats["prefills"] < count, stats  # fewer batches than requests
        assert stats["decode_steps"] < count * (length - 1), stats  # one at a time needs count * (length - 1)
        assert stats["max_rows"] >= 2 and stats["sequences"] == count
        for request, answer in zip(requests, together):  # batching changes nothing a request gets
            alone = llm.chat.completions.create(**request)
            assert _extra(answer.choices[0], "token_ids") == _extra(alone.choices[0], "token_ids")


# -- hot reload -----------------------------------------------------------------------------------
def test_hot_reload_while_requests_are_in_flight(model_dirs):
    from transformers import AutoModelForCausalLM

    v0 = AutoModelForCausalLM.from_pretrained(str(model_dirs.base)).eval()
    v1 = AutoModelForCausalLM.from_pretrained(str(model_dirs.trained)).eval()
    with ModelServer(str(model_dirs.base), served_model_name="tiny", batch_wait_s=0.05) as srv:
        llm = openai.OpenAI(base_url=srv.base_url, api_key="dummy", max_retries=0)
        request = dict(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=600,
                       extra_body={"ignore_eos": True})
        streams, started = {}, [threading.Event() for _ in range(3)]

        def consume(i):
            chunks, last_at = [], 0.0
            for chunk in llm.chat.completions.create(**request, stream=True):
                chunks.append(chunk)
                last_at = time.monotonic()
                started[i].set()
            streams[i] = (chunks, last_at)

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        assert all(e.wait(60) for e in started)
        reply = httpx.post(srv.url + "/v1/load_version", json={"path": str(model_dirs.trained), "version": "v1"},
                           timeout=60)
        reloaded_at = time.monotonic()
        assert reply.status_code == 200 and reply.json()["version"] == "v1" and reply.json()["previous"] == "v0"
        fresh = llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, temperature=0, max_tokens=32)
        for t in threads:
            t.join(120)

        assert _extra(fresh, "model_version") == "v1" and fresh.choices[0].message.content == PLAIN_REPLY
        models = httpx.get(srv.url + "/v1/models").json()["data"][0]
        assert models["version"] == "v1" and models["id"] == "tiny"
        prompt = _extra(fresh, "prompt_token_ids")
        for chunks, last_at in streams.values():
            assert last_at > reloaded_at  # still generating when v1 went live
            assert _extra(chunks[0], "model_version") == "v0"
            final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0].choices[0]
            ids, logprobs = _extra(final, "token_ids"), [e.logprob for e in final.logprobs.content]
            assert len(ids) == 600
            # every token came from v0's weights, none from v1's
            assert logprobs == pytest.approx(_teacher_forced_logprobs(v0, prompt, ids), abs=1e-3)
            assert logprobs != pytest.approx(_teacher_forced_logprobs(v1, prompt, ids), abs=1e-3)


def test_lora_adapter_loads_through_the_vllm_route(model_dirs, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dirs.base)).eval()
    torch.manual_seed(1)
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dirs.base)),
                             LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                        init_lora_weights=False))
    adapted.save_pretrained(str(tmp_path / "adapter"))
    merged = adapted.merge_and_unload().eval()
    with ModelServer(str(model_dirs.base), served_model_name="tiny") as srv:
        reply = httpx.post(srv.url + "/v1/load_lora_adapter",
                           json={"lora_name": "lora-1", "lora_path": str(tmp_path / "adapter")}, timeout=60)
        assert reply.status_code == 200 and reply.json()["version"] == "lora-1"
        llm = openai.OpenAI(base_url=srv.base_url, api_key="dummy", max_retries=0)
        answer = llm.chat.completions.create(model="lora-1", messages=PLAIN_MESSAGES, temperature=0, max_tokens=16,
                                             extra_body={"ignore_eos": True})
        assert _extra(answer, "model_version") == "lora-1"
        prompt, ids = _extra(answer, "prompt_token_ids"), _extra(answer.choices[0], "token_ids")
        logprobs = [e.logprob for e in answer.choices[0].logprobs.content]
        assert logprobs == pytest.approx(_teacher_forced_logprobs(merged, prompt, ids), abs=1e-4)
        assert logprobs != pytest.approx(_teacher_forced_logprobs(base, prompt, ids), abs=1e-3)
        # the base object that later adapters apply to is untouched
        for name, tensor in base.state_dict().items():
            assert torch.equal(tensor, srv.base_model.state_dict()[name]), name


def test_python_api_loads_modules_and_state_dicts(model_dirs):
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(str(model_dirs.trained))
    with ModelServer(str(model_dirs.base)) as srv:
        llm = openai.OpenAI(base_url=srv.base_url, api_key="dummy", max_retries=0)
        assert srv.load_version(trained) == "v1"  # default names count up
        with torch.no_grad():
            trained.model.embed_tokens.weight.zero_()  # the server serves a copy, not the trainer's object
        assert llm.chat.completions.create(model="t", messages=PLAIN_MESSAGES, temperature=0,
                                           max_tokens=32).choices[0].message.content == PLAIN_REPLY
        state = AutoModelForCausalLM.from_pretrained(str(model_dirs.base)).state_dict()
        assert srv.load_version(state, version="back-to-base") == "back-to-base"
        again = llm.chat.completions.create(model="t", messages=PLAIN_MESSAGES, temperature=0, max_tokens=8)
        assert _extra(again, "model_version") == "back-to-base" and again.choices[0].message.content != PLAIN_REPLY
        bad = httpx.post(srv.url + "/v1/load_version", json={"path": "/nonexistent/adapter"}, timeout=30)
        assert bad.status_code == 400 and "nonexistent" in bad.json()["error"]["message"]
        assert srv.version == "back-to-base"


# -- errors, health, CLI --------------------------------------------------------------------------
def test_bad_requests_get_openai_errors_and_the_server_stays_up(server, llm):
    with pytest.raises(openai.BadRequestError):
        llm.chat.completions.create(model="tiny", messages=[], max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="at most"):
        llm.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 5000}])
    with pytest.raises(openai.BadRequestError, match="top_p"):
        llm.chat.completions.create(model="tiny", messages=PLAIN_MESSAGES, top_p=0)
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["version"] == "v0" and health["stats"]["errors"] == 0
    assert llm.models.list().data[0].id == "tiny"


def test_serve_model_command_serves_requests(model_dirs):
    proc = subprocess.Popen([sys.executable, "-m", "agentlightning.core.cli", "serve-model", "--model",
                             str(model_dirs.trained), "--port", "0", "--threads", "1", "--version", "cli-0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving" in line, proc.stderr.read() if proc.poll() is not None else line
        base_url = line.rsplit(" at ", 1)[1].strip()
        llm = openai.OpenAI(base_url=base_url, api_key="dummy", max_retries=0)
        answer = llm.chat.completions.create(model="x", messages=PLAIN_MESSAGES, temperature=0, max_tokens=32)
        assert answer.choices[0].message.content == PLAIN_REPLY
        assert _extra(answer, "model_version") == "cli-0"
    finally:
        proc.terminate()
        proc.wait(30)

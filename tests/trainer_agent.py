"""A tiny plain-Python agent for the training-loop tests (imported by runner processes by name).

It asks the served policy one question through the real ``openai`` client, records the call as an
LLM span with the exact token ids, logprobs and model version the model server returned, and
scores the answer with a deterministic function of its tokens (any reward with spread will do on
a random model). ``$TRAINER_TEST_LOG`` (optional) gets one line per rollout run, so a test can
prove which rollouts were (re)done; ``task["sleep"]`` slows a rollout down.
"""
from __future__ import annotations

import os
import time

from agentlightning.core import api
from agentlightning.core.context import current_rollout
from agentlightning.core.kinds import SpanKind, TokenProvenance


def solve(task, model):
    from openai import OpenAI

    rollout = current_rollout()
    log = os.environ.get("TRAINER_TEST_LOG")
    if log and rollout is not None:
        with open(log, "a") as f:
            f.write(f"{rollout.rollout_id} {rollout.attempt_id} start\n")
    client = OpenAI(base_url=model.base_url, api_key=model.api_key, max_retries=0, timeout=120)
    messages = [{"role": "user", "content": task["question"]}]
    with api.get_tracer().span("chat", SpanKind.LLM, agent_name="solver") as span:
        response = client.chat.completions.create(model=model.model, messages=messages, max_tokens=6,
                                                  temperature=1.0)
        choice = response.choices[0]
        extra = choice.model_extra or {}
        llm = span.proto.llm
        for m in messages:
            llm.request_messages.add(role=m["role"], content=m["content"])
        llm.response_messages.add(role="assistant", content=choice.message.content or "")
        llm.prompt_token_ids.extend(extra.get("prompt_token_ids") or response.model_extra["prompt_token_ids"])
        llm.completion_token_ids.extend(extra["token_ids"])
        llm.completion_logprobs.extend(entry.logprob for entry in choice.logprobs.content)
        llm.policy_version = str(response.model_extra.get("model_version") or "")
        llm.token_provenance = TokenProvenance.EXACT
        llm.usage.input_tokens = response.usage.prompt_tokens
        llm.usage.output_tokens = response.usage.completion_tokens
    time.sleep(float(task.get("sleep", 0.0)))
    if log and rollout is not None:
        with open(log, "a") as f:
            f.write(f"{rollout.rollout_id} {rollout.attempt_id} end\n")
    ids = list(extra["token_ids"])
    return (sum(ids) % 7) / 6.0

"""Multi-hop RAG with the OpenAI Agents SDK over MuSiQue-format data (the paper's RAG agent, made small).

* :mod:`.agent` — ``solve(task, model)``: an ``agents.Agent`` with a BM25 ``retrieve`` tool answers the
  question; Agent Lightning is one line (``instrument()``); returns the reward.
* :mod:`.data` — ``load(path)``: MuSiQue JSONL (a file or a directory of them) -> task inputs.
* :mod:`.generate` — ``generate(out_dir, n_train, n_test, seed)``: 2-hop (optionally 3-hop) questions over a
  synthetic knowledge base, written in MuSiQue's format.
* :mod:`.reward` — format (``Answer: ...``) 0.2 + token F1 0.8, MuSiQue/SQuAD normalisation.
* :mod:`.retrieval` — the BM25 index.
* :mod:`.teacher` — the warm-up teacher: retrieves each hop's paragraph by title, then gives the gold answer.

Importing this package does not import the Agents SDK (the demo reads ``EXAMPLE`` without it).
"""
from __future__ import annotations

from agentlightning.examples.base import Example
from agentlightning.examples.rag.data import load
from agentlightning.examples.rag.generate import generate
from agentlightning.examples.rag.reward import SUCCESS_THRESHOLD, reward
from agentlightning.examples.rag.teacher import teacher_script

EXAMPLE = Example(
    name="rag",
    agent="agentlightning.examples.rag.agent:solve",
    train_agents="researcher",
    generate=generate,
    load=load,
    reward=reward,
    description="Multi-hop QA (MuSiQue format): an OpenAI Agents SDK agent searches a BM25 index of the "
                "question's paragraphs and answers; reward = 0.2 format + 0.8 token F1.",
    success_threshold=SUCCESS_THRESHOLD,
    # SmolLM2-135M on 2 CPU cores: a rollout is up to 4 model calls (two searches, the answer, a spare) with
    # prompts of ~500-800 tokens (the worked example included), so fewer steps than a single-call agent; 8
    # workers keep the CPU server's batches full. top_k / max_turns are task keys the agent reads.
    # The warm-up is opt-in (``--warmup``): measured, it lifts held-out reward 0.00 -> 0.85, but every warmed-up
    # rollout then makes 3 calls with ~900-token prompts, and the run took 33 min (10.6 GB peak; docs/demo-rag),
    # past the ~15 minutes a demo default aims at.
    defaults={"steps": 6, "group_size": 4, "tasks_per_step": 4, "n_train": 64, "n_test": 16, "workers": 8,
              "max_new_tokens": 64, "temperature": 1.0, "learning_rate": 2e-5, "top_k": 2, "max_turns": 4,
              "warmup": False, "warmup_tasks": 16, "warmup_epochs": 2},
    teacher=teacher_script,
)

__all__ = ["EXAMPLE"]

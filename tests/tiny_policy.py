"""Test helper: teach the tiny random model two fixed replies, so server tests can check real behaviour.

A few hundred Adam steps on two sequences (well under two seconds) make the tiny model answer a tools
prompt with a ``<tool_call>`` block and a plain prompt with a short sentence, both ending in ``<|im_end|>``.
The server then has to produce, parse and report them through its real generation path.
"""
from __future__ import annotations

from pathlib import Path

TOOLS = [{"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}]
TOOL_MESSAGES = [{"role": "user", "content": "Add 1 and 2."}]
TOOL_REPLY = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
PLAIN_MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]
PLAIN_REPLY = "The answer is 5."


def train_tiny_policy(base_dir: Path, out_dir: Path, steps: int = 150) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    rows = []
    for messages, tools, reply in ((TOOL_MESSAGES, TOOLS, TOOL_REPLY), (PLAIN_MESSAGES, None, PLAIN_REPLY)):
        prompt = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True,
                                               tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply + "<|im_end|>", add_special_tokens=False)["input_ids"]
        rows.append((prompt_ids, reply_ids))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    torch.manual_seed(0)
    for _ in range(steps):
        optimizer.zero_grad()
        for prompt_ids, reply_ids in rows:
            ids = torch.tensor([prompt_ids + reply_ids])
            labels = torch.tensor([[-100] * len(prompt_ids) + reply_ids])
            model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir

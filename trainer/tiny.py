"""A tiny random Llama and a tokenizer trained in code: a real transformers model for fast tests, no hub.

The tokenizer is a byte-level BPE (so any text round-trips) trained on a few lines written here, with
SmolLM2's special tokens at SmolLM2's ids (``<|endoftext|>``=0, ``<|im_start|>``=1, ``<|im_end|>``=2) and
the ChatML tools template, so everything that works on the tiny model is shaped like SmolLM2.
Building takes well under a second; loading the saved directory is faster still.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from agentlightning.trainer.chat_template import chatml_tools_template

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY_SYSTEM = "You are a helpful assistant."

_CORPUS = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n",
    "<|im_start|>assistant\nThe answer is 5.<|im_end|>\n",
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n",
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n</tools>\n",
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call>",
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
    '<tool_response>\n3\n</tool_response>',
    '{"type": "function", "function": {"name": "calculator", "description": "Evaluate an arithmetic '
    'expression.", "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, '
    '"required": ["expression"]}}}',
    "Answer: 42. The quick brown fox jumps over the lazy dog. Hello, world! How are you today?",
    "Question: Tom has 7 apples and gives away 3. How many are left? Answer: 4",
    "SELECT name FROM users WHERE age > 30 ORDER BY name; search the documents and answer the question.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 + - * / = ( ) [ ] { } : ; , . ! ? ' \"",
]


def build_tokenizer(vocab_size: int = 512):
    """A ``PreTrainedTokenizerFast`` trained here (byte-level BPE, ChatML special tokens, tools template)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>", additional_special_tokens=[], clean_up_tokenization_spaces=False)
    tokenizer.chat_template = chatml_tools_template(TINY_SYSTEM)
    return tokenizer


def build_tiny_model(out_dir: Union[str, os.PathLike], *, seed: int = 0, hidden_size: int = 64,
                     layers: int = 2, vocab_size: int = 512) -> Path:
    """Write a tiny random Llama + tokenizer to ``out_dir`` and return it (loadable by ``from_pretrained``)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|im_end|>"],
        # Larger than the usual 0.02 so logits are peaked: greedy outputs do not hinge on float noise.
        initializer_range=0.2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out

"""The lenient tool-call parser the model server applies to generated text (no torch needed)."""
from __future__ import annotations

import json
import sys

from agentlightning.trainer.serving.toolcalls import parse_tool_calls, partial_suffix

NAMES = ["add", "search"]


def _pairs(calls):
    return [(c.name, c.arguments) for c in calls]


def test_tagged_calls_anywhere_become_tool_calls_and_the_rest_is_content():
    text = ('Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
            '<tool_call>{"name": "search", "arguments": {"q": "x"}}</tool_call>')
    content, calls = parse_tool_calls(text, NAMES)
    assert content == "Let me add."
    assert _pairs(calls) == [("add", '{"a": 1, "b": 2}'), ("search", '{"q": "x"}')]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)


def test_unclosed_final_block_and_alternative_keys_are_accepted():
    content, calls = parse_tool_calls('<tool_call>\n{"name": "add", "parameters": {"a": 1}}', NAMES)
    assert content is None and _pairs(calls) == [("add", '{"a": 1}')]
    _, calls = parse_tool_calls('<tool_call>{"function": {"name": "add", "arguments": "{\\"a\\": 3}"}}'
                                '</tool_call>', NAMES)
    assert _pairs(calls) == [("add", '{"a": 3}')]  # string arguments pass through as sent
    _, calls = parse_tool_calls("<tool_call>{'name': 'add', 'arguments': {'a': 1}}</tool_call>", NAMES)
    assert _pairs(calls) == [("add", '{"a": 1}')]  # python-literal dicts


def test_broken_json_with_a_readable_name_keeps_the_raw_arguments():
    content, calls = parse_tool_calls('<tool_call>{"name": "add", "arguments": {"a": 1, "b": }}</tool_call>',
                                      NAMES)
    assert content is None
    assert _pairs(calls) == [("add", '{"a": 1, "b": }')]
    try:
        json.loads(calls[0].arguments)
        raise AssertionError("arguments should stay invalid JSON")
    except ValueError:
        pass


def test_bare_json_counts_only_for_offered_tools():
    _, calls = parse_tool_calls('{"name": "add", "arguments": {"a": 1}}', NAMES)
    assert _pairs(calls) == [("add", '{"a": 1}')]
    _, calls = parse_tool_calls('```json\n[{"name": "add", "arguments": {}}, {"name": "search", '
                                '"arguments": {"q": "y"}}]\n```', NAMES)
    assert _pairs(calls) == [("add", "{}"), ("search", '{"q": "y"}')]
    text = '{"name": "unknown", "arguments": {}}'
    assert parse_tool_calls(text, NAMES) == (text, [])
    assert parse_tool_calls('{"name": "add", "arguments": {}}', []) == ('{"name": "add", "arguments": {}}', [])


def test_prose_and_unparseable_blocks_stay_content():
    assert parse_tool_calls("The answer is 5.", NAMES) == ("The answer is 5.", [])
    text = "<tool_call>no json and no name</tool_call>"
    assert parse_tool_calls(text, NAMES) == (text, [])



def test_doubled_braces_are_prose_not_a_crash():
    """``{{...}}`` reads as a Python set holding a dict (TypeError in literal_eval): the server must not fail."""
    text = '<tool_call>{{"name": "add", "arguments": {"a": 1}}}</tool_call>'
    content, calls = parse_tool_calls(text, NAMES)
    assert content is None and _pairs(calls) == [("add", '{"a": 1}}')]  # the name is readable: raw arguments kept

def test_partial_marker_suffix():
    assert partial_suffix("hello <tool_", "<tool_call>") == 6
    assert partial_suffix("hello", "<tool_call>") == 0
    assert partial_suffix("<", "<tool_call>") == 1


def test_parser_imports_without_torch():
    import subprocess

    code = ("import sys; from agentlightning.trainer.serving.toolcalls import parse_tool_calls; "
            "from agentlightning.trainer.serving import parse_tool_calls as p; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

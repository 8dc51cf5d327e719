"""Automatic Intermediate Rewards: documented contributions, no double counting, switch off."""
from __future__ import annotations

import math

from agentlightning.core.lightningrl import AirConfig, AirWeights, LightningRLConfig, RolloutTrace, build_transitions
from agentlightning.core.lightningrl import schema_check
from agentlightning.core.lightningrl.air import check_arguments
from agentlightning.core.lightningrl.trace_builder import TraceBuilder
from agentlightning.v1 import spans_pb2

CALC = {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"],
        "additionalProperties": False}


def one_call(arguments: str, outcome: int, *, with_tool_span: bool = True, tools=None,
             final: float = 1.0, **llm) -> RolloutTrace:
    b = TraceBuilder("air")
    root = b.agent("writer")
    b.llm([1, 2], [3], parent=root, tool_calls=[("c1", "calc", arguments)],
          tools={"calc": CALC} if tools is None else tools, **llm)
    if with_tool_span:
        b.tool("calc", call_id="c1", arguments=arguments, outcome=outcome, parent=root,
               error="ZeroDivisionError: division by zero" if outcome == spans_pb2.TOOL_OUTCOME_ERROR else None)
    b.llm([1, 2, 3, 4], [5], parent=root)
    return RolloutTrace("air", b.spans, group_id="g", final_reward=final)


def first(trace: RolloutTrace, config: LightningRLConfig | None = None):
    return build_transitions([trace], config or LightningRLConfig(normalizer="none")).transitions[0]


def test_documented_default_weights():
    w = AirWeights()
    assert (w.tool_ok, w.tool_error, w.tool_invalid_arguments, w.tool_timeout, w.tool_not_found) == (
        0.10, -0.10, -0.20, -0.05, -0.20)
    assert (w.args_valid, w.args_invalid_json, w.args_schema_mismatch) == (0.05, -0.20, -0.10)
    assert (w.json_output_valid, w.json_output_invalid) == (0.05, -0.20)
    for name in w.as_dict():  # every weight is documented in the docstring table
        assert name in AirWeights.__doc__


def test_failing_tool_gives_the_documented_negative_contribution():
    t = first(one_call('{"expr": "1/0"}', spans_pb2.TOOL_OUTCOME_ERROR))
    assert t.breakdown.air == {"tool_error": -0.10, "args_valid": 0.05}
    assert math.isclose(t.breakdown.air_total, -0.05)
    assert math.isclose(t.reward, 1.0 - 0.05)
    error = [s for s in t.breakdown.air_signals if s.name == "tool_error"][0]
    assert error.detail == "calc c1: ZeroDivisionError: division by zero"


def test_invalid_json_arguments_penalised_once():
    t = first(one_call('{"expr": 1/0', spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS))
    # The tool also said INVALID_ARGUMENTS; the more specific check replaces it, never adds to it.
    assert t.breakdown.air == {"args_invalid_json": -0.20}
    assert math.isclose(t.reward, 0.8)
    # Graded from the model's response even when no tool span was recorded.
    t = first(one_call('not json', 0, with_tool_span=False))
    assert t.breakdown.air == {"args_invalid_json": -0.20}


def test_schema_mismatch_and_not_found_and_timeout():
    t = first(one_call('{"expr": 42}', spans_pb2.TOOL_OUTCOME_OK))
    assert t.breakdown.air == {"tool_ok": 0.10, "args_schema_mismatch": -0.10}
    assert "$.expr: expected string, got integer" in t.breakdown.air_signals[1].detail
    t = first(one_call('{"expr": "1", "extra": 1}', spans_pb2.TOOL_OUTCOME_OK, with_tool_span=False))
    assert t.breakdown.air == {"args_schema_mismatch": -0.10}
    t = first(one_call('{"expr": "1"}', 0, with_tool_span=False, tools={"other": {}}))
    assert t.breakdown.air == {"tool_not_found": -0.20}
    t = first(one_call('{"expr": "1"}', spans_pb2.TOOL_OUTCOME_TIMEOUT))
    assert t.breakdown.air == {"tool_timeout": -0.05, "args_valid": 0.05}
    # Tool says its arguments were invalid although they parse and match: tool's word, no args_valid.
    t = first(one_call('{"expr": "1"}', spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS))
    assert t.breakdown.air == {"tool_invalid_arguments": -0.20}


def test_switching_air_off_removes_every_contribution():
    trace = one_call('{"expr": 1/0', spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS)
    t = first(trace, LightningRLConfig(normalizer="none", air=AirConfig(enabled=False)))
    assert t.breakdown.air == {} and t.breakdown.air_signals == [] and t.breakdown.air_total == 0.0
    assert t.reward == 1.0


def test_custom_weights_and_clip():
    weights = AirWeights(tool_error=-1.0, args_valid=0.0)
    trace = one_call('{"expr": "1/0"}', spans_pb2.TOOL_OUTCOME_ERROR)
    t = first(trace, LightningRLConfig(normalizer="none", air=AirConfig(weights=weights)))
    assert t.breakdown.air == {"tool_error": -1.0, "args_valid": 0.0} and t.reward == 0.0
    t = first(trace, LightningRLConfig(normalizer="none", air=AirConfig(weights=weights, clip=0.3)))
    assert math.isclose(t.breakdown.air_total, -0.3) and math.isclose(t.reward, 0.7)


def test_json_output_checked_only_when_requested():
    b = TraceBuilder("js")
    root = b.agent("writer")
    b.llm([1], [2], parent=root, content='{"answer": 4}', response_format="json_object")
    b.llm([1], [3], parent=root, content='answer: 4', response_format="json_schema")
    b.llm([1], [4], parent=root, content='answer: 4')
    batch = build_transitions([RolloutTrace("js", b.spans, final_reward=0.0)], LightningRLConfig(normalizer="none"))
    assert [t.breakdown.air for t in batch] == [
        {"json_output_valid": 0.05}, {"json_output_invalid": -0.20}, {}]


def test_air_under_discounted_credit_flows_back():
    trace = one_call('{"expr": "1/0"}', spans_pb2.TOOL_OUTCOME_ERROR, final=1.0)
    batch = build_transitions([trace], LightningRLConfig(normalizer="none", credit="discounted", gamma=0.5))
    # r = [-0.05, 1.0] -> returns [-0.05 + 0.5, 1.0]
    assert [round(t.reward, 12) for t in batch] == [0.45, 1.0]


def test_schema_checker_subset():
    check = schema_check.check
    assert check({"a": 1}, {"type": "object", "required": ["a"]}) is None
    assert check({}, {"type": "object", "required": ["a"]}) == "$: missing required property 'a'"
    assert check({"a": "x"}, {"properties": {"a": {"enum": ["y", "z"]}}}) == "$.a: 'x' is not one of ['y', 'z']"
    assert check([1, "2"], {"type": "array", "items": {"type": "integer"}}) == "$[1]: expected integer, got string"
    assert check(True, {"type": "number"}) == "$: expected number, got boolean"
    assert check(2.0, {"type": "integer"}) is None
    assert check(None, {"type": ["string", "null"]}) is None
    assert check(5, {"type": "integer", "maximum": 3}) == "$: 5 is above the maximum 3"
    assert check("x", {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}) is not None
    assert check({"a": {"b": 1}}, {"properties": {"a": {"properties": {"b": {"type": "string"}}}}}) == (
        "$.a.b: expected string, got integer")
    assert check({"x": 1}, "not a schema") is None
    assert check_arguments("", "") == ("", "")
    assert check_arguments("[1]", "")[0] == "args_invalid_json"
    assert check_arguments('{"a": 1}', "{broken")[0] == "args_valid"  # unreadable schema never penalises

"""Credit assignment and group normalisation on hand-built span trees, with exact expected values."""
from __future__ import annotations

import math

import pytest

from agentlightning.core.lightningrl import AirConfig, LightningRLConfig, RolloutTrace, build_transitions
from agentlightning.core.lightningrl import credit
from agentlightning.core.lightningrl.trace_builder import TraceBuilder

NO_AIR = AirConfig(enabled=False)


def episode(rollout_id: str, calls: int, final: float | None, group: str = "g") -> RolloutTrace:
    b = TraceBuilder(rollout_id)
    root = b.agent("writer")
    for i in range(calls):
        b.llm([1, 2, 3], [10 + i], parent=root)
    return RolloutTrace(rollout_id, b.spans, group_id=group, final_reward=final)


def group_of_three() -> list[RolloutTrace]:
    # r1: 2 calls reward 1; r2: 1 call reward 0; r3: 3 calls reward 0.5
    return [episode("r1", 2, 1.0), episode("r2", 1, 0.0), episode("r3", 3, 0.5)]


def by_rollout(batch) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for t in batch:
        out.setdefault(t.rollout_id, []).append((t.reward, t.advantage))
    return out


def close(got, expected, tol: float = 1e-12) -> bool:
    """Element-wise equality within ``tol`` for (nested) lists/tuples/dicts of floats."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            close(got[k], expected[k], tol) for k in expected)
    if isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(close(g, e, tol) for g, e in zip(got, expected))
    return math.isclose(got, expected, rel_tol=0, abs_tol=tol)


def test_episode_credit_grpo_normalises_over_rollouts_not_calls():
    batch = build_transitions(group_of_three(), LightningRLConfig(air=NO_AIR))
    got = by_rollout(batch)
    std = math.sqrt(1 / 6)  # scores 1, 0, 0.5: mean 0.5, population std sqrt(1/6)
    assert close(got["r1"], [(1.0, 0.5 / std)] * 2)
    assert close(got["r2"], [(0.0, -0.5 / std)])
    # Weighted by calls the mean would be 3.5/6 and r3 would get a negative advantage; per rollout it is 0.
    assert close(got["r3"], [(0.5, 0.0)] * 3)
    assert [t.step_index for t in batch if t.rollout_id == "r3"] == [0, 1, 2]
    assert {t.step_count for t in batch if t.rollout_id == "r3"} == {3}


def test_episode_credit_mean_normaliser_has_no_std_division():
    got = by_rollout(build_transitions(group_of_three(), LightningRLConfig(air=NO_AIR, normalizer="mean")))
    assert close(got["r1"], [(1.0, 0.5)] * 2)
    assert close(got["r2"], [(0.0, -0.5)])
    assert close(got["r3"], [(0.5, 0.0)] * 3)


def test_episode_credit_leave_one_out_baseline():
    got = by_rollout(build_transitions(group_of_three(), LightningRLConfig(air=NO_AIR, normalizer="loo")))
    assert close(got["r1"], [(1.0, 1.0 - 0.25)] * 2)   # baseline mean(0, 0.5)
    assert close(got["r2"], [(0.0, 0.0 - 0.75)])       # baseline mean(1, 0.5)
    assert close(got["r3"], [(0.5, 0.5 - 0.5)] * 3)    # baseline mean(1, 0)


def test_no_normaliser_advantage_is_the_reward():
    got = by_rollout(build_transitions(group_of_three(), LightningRLConfig(air=NO_AIR, normalizer="none")))
    assert close(got["r1"], [(1.0, 1.0)] * 2)
    assert close(got["r3"], [(0.5, 0.5)] * 3)


def test_discounted_credit_returns_and_group_baseline():
    cfg = LightningRLConfig(air=NO_AIR, credit="discounted", gamma=0.5, normalizer="mean")
    got = by_rollout(build_transitions(group_of_three(), cfg))
    # returns: r1 [0.5, 1]; r2 [0]; r3 [0.125, 0.25, 0.5]; scores 0.75, 0, 0.875/3
    mean = (0.75 + 0.0 + 0.875 / 3) / 3
    assert close(got["r1"], [(0.5, 0.5 - mean), (1.0, 1.0 - mean)])
    assert close(got["r2"], [(0.0, -mean)])
    assert close(got["r3"], [(0.125, 0.125 - mean), (0.25, 0.25 - mean), (0.5, 0.5 - mean)])


def per_step_trace(final: float | None = 1.0) -> RolloutTrace:
    b = TraceBuilder("p1")
    root = b.agent("writer")
    b.llm([1], [2], parent=root)
    b.reward(0.3, "progress", parent=root)
    b.llm([1], [3], parent=root)
    b.llm([1], [4], parent=root)
    b.reward(0.2, "progress", parent=root)
    return RolloutTrace("p1", b.spans, group_id="p", final_reward=final)


def test_per_step_credit_attaches_rewards_to_the_preceding_call():
    cfg = LightningRLConfig(air=NO_AIR, credit="per_step", gamma=1.0, normalizer="none")
    batch = build_transitions([per_step_trace()], cfg)
    # step rewards r = [0.3, 0, 0.2 + final 1.0] -> returns [1.5, 1.2, 1.2]
    assert close([t.reward for t in batch], [1.5, 1.2, 1.2])
    assert [t.breakdown.step_rewards for t in batch] == [{"progress": 0.3}, {}, {"progress": 0.2}]
    assert close([t.breakdown.step_reward for t in batch], [0.3, 0.0, 0.2])

    cfg = cfg.with_(gamma=0.5)
    batch = build_transitions([per_step_trace()], cfg)
    assert close([t.reward for t in batch], [0.3 + 0.5 * 0.6, 0.6, 1.2])


def test_per_step_without_final_reward_uses_step_rewards_only():
    cfg = LightningRLConfig(air=NO_AIR, credit="per_step", normalizer="none")
    batch = build_transitions([per_step_trace(final=None)], cfg)
    assert close([t.reward for t in batch], [0.5, 0.2, 0.2])
    assert batch.transitions[0].breakdown.final_reward is None


def test_final_reward_from_spans_when_the_rollout_has_none():
    b = TraceBuilder("s1")
    root = b.agent("writer")
    b.llm([1], [2], parent=root)
    b.reward(0.25, "format", primary=False, parent=root)
    b.reward(0.7, "correct", parent=root)
    batch = build_transitions([RolloutTrace("s1", b.spans)], LightningRLConfig(air=NO_AIR))
    t = batch.transitions[0]
    assert t.reward == 0.7 and t.breakdown.final_source == "span:correct"
    assert t.breakdown.dimensions == {"format": 0.25, "correct": 0.7}
    # Choosing another dimension by name.
    batch = build_transitions([RolloutTrace("s1", b.spans)], LightningRLConfig(air=NO_AIR, reward_name="format"))
    assert batch.transitions[0].reward == 0.25
    # The queue's final reward wins over spans.
    batch = build_transitions([RolloutTrace("s1", b.spans, final_reward=-1.0)], LightningRLConfig(air=NO_AIR))
    assert batch.transitions[0].reward == -1.0 and batch.transitions[0].breakdown.final_source == "rollout"


def test_ungrouped_rollouts_share_a_batch_group_or_stand_alone():
    traces = [episode("a", 1, 1.0, group=""), episode("b", 1, 0.0, group="")]
    got = by_rollout(build_transitions(traces, LightningRLConfig(air=NO_AIR, normalizer="mean")))
    assert close(got, {"a": [(1.0, 0.5)], "b": [(0.0, -0.5)]})
    got = by_rollout(build_transitions(traces, LightningRLConfig(air=NO_AIR, normalizer="mean", ungrouped="self")))
    assert close(got, {"a": [(1.0, 0.0)], "b": [(0.0, 0.0)]})


def test_task_id_groups_when_no_group_id():
    traces = [episode("a", 1, 1.0, group=""), episode("b", 1, 0.0, group=""), episode("c", 1, 5.0, group="")]
    traces[0].task_id = traces[1].task_id = "t1"
    traces[2].task_id = "t2"
    got = by_rollout(build_transitions(traces, LightningRLConfig(air=NO_AIR, normalizer="mean")))
    assert close(got["a"], [(1.0, 0.5)]) and close(got["b"], [(0.0, -0.5)])
    assert close(got["c"], [(5.0, 0.0)])


def test_flat_group_is_centred_not_divided():
    traces = [episode("a", 1, 1.0), episode("b", 2, 1.0)]
    got = by_rollout(build_transitions(traces, LightningRLConfig(air=NO_AIR)))
    assert close(got, {"a": [(1.0, 0.0)], "b": [(1.0, 0.0)] * 2})


def test_credit_functions_directly():
    assert close(credit.rewards("episode", 1.0, 2.0, [0.1, -0.1]), [2.1, 1.9])
    assert close(credit.rewards("discounted", 0.9, 1.0, [0.0, 0.0, 0.0]), [0.81, 0.9, 1.0])
    assert close(credit.rewards("per_step", 1.0, None, [0.0, 0.0], [1.0, 0.0]), [1.0, 0.0])
    assert close(credit.advantages([[2.0], [0.0]], "grpo"), [[1.0], [-1.0]])
    assert close(credit.advantages([[3.0]], "loo"), [[3.0]])
    with pytest.raises(ValueError):
        credit.rewards("bogus", 1.0, 1.0, [0.0])
    with pytest.raises(ValueError):
        LightningRLConfig(credit="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LightningRLConfig(agents="(")


def tool_episode(rollout_id: str, final: float, outcome: int, group: str = "t") -> RolloutTrace:
    """A calc-style rollout: a tool call (tool span with ``outcome``), then the answer."""

    b = TraceBuilder(rollout_id)
    root = b.agent("solver")
    schema = {"type": "object", "properties": {"expression": {"type": "string"}}}
    b.llm([1, 2], [3], parent=root, tool_calls=[("c1", "calculator", '{"expression": "1+1"}')],
          tools={"calculator": schema})
    b.tool("calculator", call_id="c1", arguments='{"expression": "1+1"}', outcome=outcome, parent=root)
    b.llm([1, 2, 3], [4], parent=root, content="Answer: 2")
    return RolloutTrace(rollout_id, b.spans, group_id=group, final_reward=final)


def test_air_in_a_uniform_group_pushes_nothing():
    """All rollouts succeeded with tool calls that ran: rewards show AIR (+0.15), advantages are 0 everywhere:
    the answers are not pushed down (first fault), and in a group that all *failed* the tool calls that ran
    are not reinforced either (uncentred AIR did that, and the calc policy collapsed onto one operator)."""
    from agentlightning.v1 import spans_pb2

    ok = spans_pb2.TOOL_OUTCOME_OK
    for final in (1.0, 0.0):
        traces = [tool_episode(f"r{i}", final, ok) for i in range(4)]
        got = by_rollout(build_transitions(traces, LightningRLConfig()))
        for rows in got.values():
            assert close(rows, [(final + 0.15, 0.0), (final, 0.0)])


def test_air_is_centred_on_the_tool_calls_and_not_divided_by_a_small_outcome_std():
    """Outcomes 1, 1, 1, 0.9 (std 0.043): the outcome part is normalised; AIR (+0.15 for the three tool calls
    that ran, -0.05 for the one that failed: tool_error -0.1 + args_valid +0.05) is centred on its mean over
    the tool calls (0.1) and added as it is: +0.05 / -0.15, not divided by 0.043. Answers get no AIR."""
    from agentlightning.v1 import spans_pb2

    ok, err = spans_pb2.TOOL_OUTCOME_OK, spans_pb2.TOOL_OUTCOME_ERROR
    traces = [tool_episode("a", 1.0, ok), tool_episode("b", 1.0, ok), tool_episode("c", 1.0, ok),
              tool_episode("d", 0.9, err)]
    got = by_rollout(build_transitions(traces, LightningRLConfig()))
    mean, std = credit.group_stats([1.0, 1.0, 1.0, 0.9])
    up, down = (1.0 - mean) / std, (0.9 - mean) / std
    assert close(got["a"], [(1.15, up + 0.05), (1.0, up)], tol=1e-9)
    assert close(got["d"], [(0.85, down - 0.15), (0.9, down)], tol=1e-9)
    assert max(abs(a) for rows in got.values() for _, a in rows) < 2.0
    # normaliser "none": the advantage is the reward, AIR included, nothing centred
    plain = by_rollout(build_transitions(traces, LightningRLConfig(normalizer="none")))
    assert close(plain["d"], [(0.85, 0.85), (0.9, 0.9)], tol=1e-9)


def test_discounted_credit_with_air():
    from agentlightning.v1 import spans_pb2

    traces = [tool_episode("a", 1.0, spans_pb2.TOOL_OUTCOME_OK), tool_episode("b", 0.0, spans_pb2.TOOL_OUTCOME_ERROR)]
    got = by_rollout(build_transitions(traces, LightningRLConfig(credit="discounted", gamma=0.5, normalizer="mean")))
    # outcome returns a [0.5, 1], b [0, 0]: scores 0.75 and 0, mean 0.375; AIR a +0.15, b -0.05 on the tool
    # calls, centred on their mean 0.05
    assert close(got["a"], [(0.65, 0.5 - 0.375 + 0.10), (1.0, 1.0 - 0.375)], tol=1e-9)
    assert close(got["b"], [(-0.05, -0.375 - 0.10), (0.0, -0.375)], tol=1e-9)
    assert close(credit.shaped_advantages([[1.0], [0.0]], [[0.1], [0.0]], [[True], [False]], "grpo"),
                 [[1.0], [-1.0]])
    assert close(credit.shaped_advantages([[1.0], [0.0]], [[0.1], [-0.1]], [[True], [True]], "grpo"),
                 [[1.1], [-1.1]])
    assert close(credit.shaped_advantages([[1.0]], [[0.1]], [[True]], "none"), [[1.1]])

"""Which LLM calls become transitions, in which order: agent patterns, orphans, parallel tool calls,
clock skew, retried attempts, retokenization and the diagnostics when nothing comes out."""
from __future__ import annotations

import pytest

from agentlightning.core import span_tree
from agentlightning.core.lightningrl import (
    AirConfig,
    LightningRLConfig,
    RolloutTrace,
    build_transitions,
    explain,
    summary,
)
from agentlightning.core.lightningrl.trace_builder import TraceBuilder
from agentlightning.v1 import rollouts_pb2, spans_pb2

NO_AIR = AirConfig(enabled=False)


def two_agent_trace() -> RolloutTrace:
    b = TraceBuilder("ma")
    root = b.agent("orchestrator", name="graph")
    writer = b.agent("writer", parent=root)
    b.llm([1], [11], parent=writer)                # inherits agent "writer" from its parent span
    checker = b.agent("checker", parent=root)
    b.llm([2], [12], parent=checker)
    rewriter = b.agent("rewriter", parent=root)
    b.llm([3], [13], parent=rewriter, agent="rewriter")
    b.llm([4], [14], parent=checker)                # a second checker call
    b.reward(1.0, parent=root)
    return RolloutTrace("ma", b.spans, group_id="g")


def test_agent_pattern_selects_writer_and_rewriter_not_checker():
    batch = build_transitions([two_agent_trace()], LightningRLConfig(agents="writer|rewriter", air=NO_AIR))
    assert [(t.agent_name, list(t.response_token_ids), t.step_index) for t in batch] == [
        ("writer", [11], 0), ("rewriter", [13], 1)]
    report = batch.reports[0]
    assert report.llm_spans == 4 and report.selected == 2
    assert report.agents_seen == ["writer", "checker", "rewriter"]
    # fullmatch: "writer" alone does not take "rewriter".
    batch = build_transitions([two_agent_trace()], LightningRLConfig(agents="writer", air=NO_AIR))
    assert [t.agent_name for t in batch] == ["writer"]
    # No pattern: every agent.
    assert len(build_transitions([two_agent_trace()], LightningRLConfig(air=NO_AIR))) == 4


def test_no_match_is_explained():
    batch = build_transitions([two_agent_trace()], LightningRLConfig(agents="planner", air=NO_AIR))
    assert len(batch) == 0
    (report,) = batch.empty_reports()
    assert report.reasons == [
        "no LLM span matched the agent pattern 'planner' (agents seen: 'writer', 'checker', 'rewriter')"]
    assert "no LLM span matched the agent pattern 'planner'" in explain(report)
    assert summary(batch).startswith("0 transitions from 0 of 1 rollout attempts")


def test_orphans_still_yield_transitions_in_order():
    b = TraceBuilder("orph")
    root = b.agent("writer")
    b.llm([1], [11], parent=root)
    b.llm([2], [12], agent="writer", parent_id=b"\xff" * 8)   # parent never stored
    b.reward(1.0, parent_id=b"\xee" * 8)                     # reward whose parent was lost too
    batch = build_transitions([RolloutTrace("orph", b.spans)], LightningRLConfig(air=NO_AIR))
    assert [list(t.response_token_ids) for t in batch] == [[11], [12]]
    assert batch.reports[0].orphans == 2
    assert all(t.reward == 1.0 for t in batch)


def test_parent_cycle_does_not_lose_spans():
    b = TraceBuilder("cyc")
    a = b.agent("writer")
    c = b.llm([1], [2], agent="writer", parent=a)
    a.parent_span_id = c.span_id  # corrupt: a <-> c
    order, _, orphans = span_tree.ordered(b.spans)
    assert len(order) == 2 and orphans == 1
    roots = span_tree.build_tree(b.spans)
    assert sum(1 for _ in span_tree.walk(roots)) == 2


def test_ordered_matches_build_tree_walk():
    t = two_agent_trace()
    spans = list(reversed(t.spans))
    fast, _, _ = span_tree.ordered(spans)
    slow = [n.span for n in span_tree.walk(span_tree.build_tree(spans))]
    assert [s.span_id for s in fast] == [s.span_id for s in slow]


def test_clock_skew_within_a_producer_follows_sequence_numbers():
    b = TraceBuilder("skew")
    root = b.agent("writer")
    first = b.llm([1], [11], parent=root)
    second = b.llm([2], [12], parent=root)
    # The clock stepped backwards between the calls: the second starts "before" the first.
    second.start_time_unix_nano = first.start_time_unix_nano - 5_000_000_000
    b.reward(1.0, parent=root)
    batch = build_transitions([RolloutTrace("skew", b.spans)], LightningRLConfig(air=NO_AIR))
    assert [list(t.response_token_ids) for t in batch] == [[11], [12]]


def test_two_producers_interleave_by_time_each_by_its_sequence():
    a = TraceBuilder("mp", producer_id="A")
    root = a.agent("writer")
    a1 = a.llm([1], [1], parent=root)
    a2 = a.llm([1], [2], parent=root)
    b = TraceBuilder("mp", producer_id="B")
    b._ids = iter(range(1000, 2000))  # distinct span ids from producer A
    b1 = b.llm([1], [3], agent="writer", parent=root)
    a1.start_time_unix_nano, b1.start_time_unix_nano, a2.start_time_unix_nano = 100, 200, 300
    spans = a.spans + b.spans
    order, _, _ = span_tree.ordered(spans)
    assert [s.llm.completion_token_ids[0] for s in order if s.kind == spans_pb2.SPAN_KIND_LLM] == [1, 3, 2]
    # A's clock steps back: its sequence still puts a1 before a2 in A's slots.
    a2.start_time_unix_nano = 50
    order, _, _ = span_tree.ordered(spans)
    assert [s.llm.completion_token_ids[0] for s in order if s.kind == spans_pb2.SPAN_KIND_LLM] == [1, 2, 3]


def test_parallel_tool_calls_attach_to_the_call_that_requested_them():
    b = TraceBuilder("par")
    root = b.agent("writer")
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    b.llm([1], [11], parent=root, tool_calls=[("c1", "search", '{"q": "a"}'), ("c2", "search", '{"q": "b"}')],
          tools={"search": schema})
    # Run in parallel: c2 finishes first and starts first; both under the agent, not the LLM span.
    t2 = b.tool("search", call_id="c2", arguments='{"q": "b"}', outcome=spans_pb2.TOOL_OUTCOME_ERROR,
                parent=root, error="backend down")
    t1 = b.tool("search", call_id="c1", arguments='{"q": "a"}', parent=root)
    t1.start_time_unix_nano, t2.start_time_unix_nano = t2.start_time_unix_nano, t1.start_time_unix_nano
    b.llm([2], [12], parent=root)
    b.reward(1.0, parent=root)
    batch = build_transitions([RolloutTrace("par", b.spans)], LightningRLConfig())
    first, second = batch.transitions
    assert first.breakdown.air == {"tool_ok": 0.1, "tool_error": -0.1, "args_valid": 0.1}
    assert sorted(s.detail for s in first.breakdown.air_signals if s.name.startswith("tool_")) == [
        "search c1", "search c2: backend down"]
    assert second.breakdown.air == {} and second.reward == 1.0
    assert first.reward == 1.0 + 0.1


def test_tool_without_call_id_goes_to_the_call_before_it():
    b = TraceBuilder("nocall")
    root = b.agent("writer")
    b.llm([1], [11], parent=root)
    b.llm([2], [12], parent=root)
    b.tool("lookup", call_id="", arguments="", outcome=spans_pb2.TOOL_OUTCOME_TIMEOUT, parent=root)
    b.reward(0.0, parent=root)
    batch = build_transitions([RolloutTrace("nocall", b.spans)], LightningRLConfig())
    assert [t.breakdown.air for t in batch] == [{}, {"tool_timeout": -0.05}]


def retried_trace() -> RolloutTrace:
    first = TraceBuilder("retry", attempt_id="retry:1")
    root = first.agent("writer")
    first.llm([1], [11], parent=root)
    first.llm([1], [12], parent=root)
    second = TraceBuilder("retry", attempt_id="retry:2", start_ns=1_800_000_000_000_000_000)
    root2 = second.agent("writer")
    second.llm([1], [21], parent=root2)
    rollout = rollouts_pb2.Rollout(rollout_id="retry", group_id="g", status=rollouts_pb2.ROLLOUT_STATUS_SUCCEEDED,
                                   has_final_reward=True, final_reward=1.0, current_attempt_id="retry:2",
                                   attempt_count=2)
    return RolloutTrace.from_rollout(rollout, first.spans + second.spans)


def test_retried_rollout_only_final_attempt_counts():
    batch = build_transitions([retried_trace()], LightningRLConfig(air=NO_AIR))
    assert [(t.attempt_id, list(t.response_token_ids), t.reward) for t in batch] == [("retry:2", [21], 1.0)]
    assert batch.reports[0].attempts == 2
    # Without the queue's record the highest attempt number wins.
    trace = retried_trace()
    trace.final_attempt_id = ""
    assert [t.attempt_id for t in build_transitions([trace], LightningRLConfig(air=NO_AIR))] == ["retry:2"]


def test_retried_rollout_all_attempts_when_configured():
    cfg = LightningRLConfig(air=NO_AIR, attempts="all")
    batch = build_transitions([retried_trace()], cfg)
    # The first attempt has no reward of its own: it is reported, not trained on.
    assert [t.attempt_id for t in batch] == ["retry:2"]
    early = [r for r in batch.reports if r.attempt_id == "retry:1"][0]
    assert early.reasons and "earlier attempt" in early.reasons[0]
    trace = retried_trace()
    extra = TraceBuilder("retry", attempt_id="retry:1", start_ns=1_750_000_000_000_000_000)
    extra._ids = iter(range(5000, 6000))
    extra.reward(-1.0, name="crash")
    trace.spans = list(trace.spans) + extra.spans
    batch = build_transitions([trace], cfg.with_(normalizer="none"))
    assert [(t.attempt_id, t.reward) for t in batch] == [("retry:1", -1.0), ("retry:1", -1.0), ("retry:2", 1.0)]


def test_failed_and_running_rollouts_are_explained():
    trace = retried_trace()
    trace.status = rollouts_pb2.ROLLOUT_STATUS_FAILED
    trace.error = "attempt 2/2: boom"
    batch = build_transitions([trace], LightningRLConfig(air=NO_AIR))
    assert batch.reports[0].reasons == ["rollout did not succeed (status failed: attempt 2/2: boom)"]
    assert len(build_transitions([trace], LightningRLConfig(air=NO_AIR, include_failed=True))) == 1
    trace.status = rollouts_pb2.ROLLOUT_STATUS_RUNNING
    trace.error = ""
    assert build_transitions([trace]).reports[0].reasons == ["rollout still running (status running)"]


def test_missing_reward_and_missing_tokens_are_explained():
    b = TraceBuilder("nr")
    root = b.agent("writer")
    b.llm([1], [2], parent=root)
    b.reward(0.5, "style", primary=False, parent=root)
    batch = build_transitions([RolloutTrace("nr", b.spans)])
    assert batch.reports[0].reasons == [
        "no reward: REWARD spans found (style) but none is primary; emit one with primary=True or set reward_name"]
    b = TraceBuilder("nt")
    root = b.agent("writer")
    b.llm(content="hello", messages=[("user", "hi")], parent=root)
    batch = build_transitions([RolloutTrace("nt", b.spans, final_reward=1.0)])
    assert batch.reports[0].reasons == [
        "1 LLM call(s) have no token ids and no tokenizer was given "
        "(record token ids from the model server, or pass a tokenizer)"]
    assert build_transitions([RolloutTrace("empty", [])]).reports[0].reasons == ["no spans stored for this rollout"]
    b = TraceBuilder("nollm")
    b.agent("writer")
    assert build_transitions([RolloutTrace("nollm", b.spans, final_reward=1.0)]).reports[0].reasons == [
        "no LLM spans in the trace (1 spans of other kinds)"]
    b = TraceBuilder("norew")
    b.llm([1], [2], agent="writer")
    assert build_transitions([RolloutTrace("norew", b.spans)]).reports[0].reasons == [
        "no reward: no REWARD span and no final reward on completion"]


class WordTokenizer:
    """A stand-in for a Hugging Face tokenizer: the same apply_chat_template contract, words as ids."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def _encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, tools=None):
        text = " ".join(f"<{m['role']}> {m['content']} </s>" for m in messages)
        if tools:
            text = "<tools> " + " ".join(t["function"]["name"] for t in tools) + " " + text
        if add_generation_prompt:
            text += " <assistant>"
        return {"input_ids": self._encode(text)}  # like a BatchEncoding


def test_retokenized_from_messages_when_token_ids_are_missing():
    b = TraceBuilder("rt")
    root = b.agent("writer")
    b.llm(content="four", messages=[("user", "two plus two")], parent=root)
    b.llm([5, 6], [7], parent=root)  # exact ids are kept as they are
    tok = WordTokenizer()
    batch = build_transitions([RolloutTrace("rt", b.spans, final_reward=1.0)],
                              LightningRLConfig(tokenizer=tok, include_messages=True))
    first, second = batch.transitions
    assert first.retokenized and not second.retokenized
    v = tok.vocab
    assert list(first.prompt_token_ids) == [v["<user>"], v["two"], v["plus"], v["two"], v["</s>"], v["<assistant>"]]
    # The response is what the template adds after the generation prompt: the reply and its end marker.
    assert list(first.response_token_ids) == [v["four"], v["</s>"]]
    assert first.response_logprobs is None
    assert first.prompt_messages == [{"role": "user", "content": "two plus two"}]
    assert first.response_messages == [{"role": "assistant", "content": "four"}]
    assert list(second.prompt_token_ids) == [5, 6]


def test_retokenized_response_ends_at_the_end_of_turn_token():
    """ChatML writes a newline after ``<|im_end|>``; the model stops at ``<|im_end|>`` (its eos), so the
    retokenized response does too."""

    class ChatMLWords(WordTokenizer):
        def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, tools=None):
            text = " ".join(f"<im_start> {m['role']} {m['content']} <im_end> \\n" for m in messages)
            return {"input_ids": self._encode(text + (" <im_start> assistant" if add_generation_prompt else ""))}

    tok = ChatMLWords()
    tok.eos_token_id = tok._encode("<im_end>")[0]
    b = TraceBuilder("eos")
    b.llm(content="four", messages=[("user", "two plus two")], parent=b.agent("writer"))
    (t,) = build_transitions([RolloutTrace("eos", b.spans, final_reward=1.0)], LightningRLConfig(tokenizer=tok))
    v = tok.vocab
    assert list(t.response_token_ids) == [v["four"], v["<im_end>"]]
    assert list(t.prompt_token_ids)[-2:] == [v["<im_start>"], v["assistant"]]


def test_exact_response_with_retokenized_prompt_keeps_logprobs():
    b = TraceBuilder("half")
    root = b.agent("writer")
    call = b.llm((), [41, 42], parent=root, logprobs=[-0.1, -0.2], messages=[("user", "hi there")],
                 tool_calls=[("c1", "calc", "{}")])  # a tool-call reply: no text to retokenize
    assert not call.llm.prompt_token_ids
    tok = WordTokenizer()
    (t,) = build_transitions([RolloutTrace("half", b.spans, final_reward=1.0)],
                             LightningRLConfig(tokenizer=tok)).transitions
    assert t.retokenized and list(t.response_token_ids) == [41, 42]
    assert list(t.response_logprobs) == pytest.approx([-0.1, -0.2])
    assert list(t.prompt_token_ids) == [tok.vocab[w] for w in ("<user>", "hi", "there", "</s>", "<assistant>")]
    # Without a tokenizer the call cannot be used, and the report says so.
    batch = build_transitions([RolloutTrace("half", b.spans, final_reward=1.0)])
    assert len(batch) == 0 and "no token ids and no tokenizer" in batch.reports[0].reasons[0]

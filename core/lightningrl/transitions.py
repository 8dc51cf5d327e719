"""Traces -> transitions: the entry point of LightningRL.

``build_transitions(traces, config)`` takes each rollout's stored spans, orders them as the span
tree does (parents before children, siblings by start time, one producer's spans by its sequence
number so clock skew cannot reorder them), keeps the final attempt of a retried rollout, picks the
LLM calls of the agents being trained, attaches tool spans (by call id, else to the call before
them) and rewards, and hands the episodes to credit assignment and group normalisation.
Pure: no I/O, no framework; the loaders live in ``loading.py``.
"""
from __future__ import annotations

import contextlib
import gc
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

from agentlightning.core import rollout_states as states
from agentlightning.core import span_tree
from agentlightning.core.lightningrl import credit, diagnostics
from agentlightning.core.lightningrl.air import air_for_call, tool_calls_of, weight_table
from agentlightning.core.lightningrl.config import LightningRLConfig
from agentlightning.core.lightningrl.retokenize import as_retokenizer, message_dict, retokenize_call
from agentlightning.core.lightningrl.types import (
    RewardBreakdown,
    RolloutReport,
    RolloutTrace,
    Transition,
    TransitionBatch,
)
from agentlightning.v1 import spans_pb2

LLM = spans_pb2.SPAN_KIND_LLM
TOOL = spans_pb2.SPAN_KIND_TOOL
REWARD = spans_pb2.SPAN_KIND_REWARD
_RETOKENIZED = spans_pb2.TOKEN_PROVENANCE_RETOKENIZED
_STATUS_ERROR = spans_pb2.STATUS_CODE_ERROR
_FAILED = frozenset({states.FAILED, states.TIMED_OUT, states.CANCELLED})
_UNFINISHED = frozenset({states.QUEUED, states.RUNNING})
GROUP_ATTRIBUTE = "agentlightning.group_id"
TASK_ATTRIBUTE = "agentlightning.task_id"
_ATTEMPT_NUMBER = re.compile(r":(\d+)$")


@dataclass
class _Episode:
    """One rollout attempt on its way to transitions (before credit)."""

    report: RolloutReport
    group_key: str
    transitions: list[Transition] = field(default_factory=list)
    air: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    final: Optional[float] = None


def build_transitions(traces: Iterable[RolloutTrace], config: Optional[LightningRLConfig] = None
                      ) -> TransitionBatch:
    """Transitions of every trace, with credit assigned and advantages normalised per group."""
    config = config or LightningRLConfig()
    matcher = config.agent_matcher()
    retokenizer = as_retokenizer(config.tokenizer)
    table = weight_table(config.air)
    episodes: list[_Episode] = []
    reports: list[RolloutReport] = []
    with paused_gc():
        for trace in traces:
            for episode in extract_episodes(trace, config, matcher, retokenizer, table):
                reports.append(episode.report)
                if episode.transitions:
                    episodes.append(episode)
        assign_credit(episodes, config)
        transitions = [t for e in episodes for t in e.transitions]
    return TransitionBatch(transitions, reports)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects: its repeated
    full passes over the growing heap otherwise cost a third of the time. Reference counting still
    frees everything; the collector resumes (and catches up) afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def assign_credit(episodes: list[_Episode], config: LightningRLConfig) -> None:
    groups: dict[str, list[_Episode]] = {}
    for e in episodes:
        rewards = credit.rewards(config.credit, config.gamma, e.final, e.air, e.steps)
        for t, r in zip(e.transitions, rewards):
            t.reward = r
        groups.setdefault(e.group_key, []).append(e)
    for members in groups.values():
        advs = credit.advantages([[t.reward for t in e.transitions] for e in members],
                                 config.normalizer, config.std_eps)
        for e, a in zip(members, advs):
            for t, value in zip(e.transitions, a):
                t.advantage = value


def _attempt_rank(attempt_id: str, spans: list[spans_pb2.Span]) -> tuple[int, int]:
    m = _ATTEMPT_NUMBER.search(attempt_id)
    return (int(m.group(1)) if m else 0, max(s.start_time_unix_nano for s in spans))


def _split_attempts(trace: RolloutTrace, config: LightningRLConfig) -> tuple[list[tuple[str, list]], int]:
    """[(attempt_id, spans)] to turn into episodes (final attempt last), and how many attempts exist."""
    by_attempt: dict[str, list[spans_pb2.Span]] = {}
    for s in trace.spans:
        bucket = by_attempt.get(s.attempt_id)
        if bucket is None:
            by_attempt[s.attempt_id] = [s]
        else:
            bucket.append(s)
    if len(by_attempt) <= 1:
        return list(by_attempt.items()), len(by_attempt)
    loose = by_attempt.pop("", [])  # spans with no attempt (e.g. feedback attached later)
    if trace.final_attempt_id in by_attempt:
        final_id = trace.final_attempt_id
    else:
        final_id = max(by_attempt, key=lambda a: _attempt_rank(a, by_attempt[a]))
    final = (final_id, by_attempt.pop(final_id) + loose)
    if config.attempts == "last":
        return [final], len(by_attempt) + 1
    earlier = sorted(by_attempt.items(), key=lambda item: _attempt_rank(*item))
    return earlier + [final], len(earlier) + 1


def _group_key(trace: RolloutTrace, config: LightningRLConfig, attempt_id: str) -> tuple[str, str, str]:
    group_id, task_id = trace.group_id, trace.task_id
    if not group_id and not task_id:
        for s in trace.spans:
            attrs = s.attributes
            if attrs and (GROUP_ATTRIBUTE in attrs or TASK_ATTRIBUTE in attrs):
                if GROUP_ATTRIBUTE in attrs:
                    group_id = attrs[GROUP_ATTRIBUTE].string_value
                if TASK_ATTRIBUTE in attrs:
                    task_id = attrs[TASK_ATTRIBUTE].string_value
                break
    if group_id:
        key = "g:" + group_id
    elif task_id:
        key = "t:" + task_id
    else:
        key = "" if config.ungrouped == "batch" else f"r:{trace.rollout_id}:{attempt_id}"
    return group_id, task_id, key


def extract_episodes(trace: RolloutTrace, config: LightningRLConfig,
                     matcher: Optional[Callable[[str], bool]] = None,
                     retokenizer: Optional[Callable] = None,
                     table: Optional[dict[str, float]] = None) -> list[_Episode]:
    """The episodes of one trace (one, or one per attempt), each with a report saying what happened."""
    matcher = matcher or config.agent_matcher()
    status_name = states.name(trace.status) if trace.status else ""
    if trace.status in _UNFINISHED or (trace.status in _FAILED and not config.include_failed):
        report = RolloutReport(trace.rollout_id, status=status_name, spans=len(trace.spans))
        why = "still running" if trace.status in _UNFINISHED else "did not succeed"
        detail = f": {trace.error}" if trace.error else ""
        report.reasons.append(f"rollout {why} (status {status_name}{detail})")
        return [_Episode(report, "")]
    if not trace.spans:
        report = RolloutReport(trace.rollout_id, status=status_name)
        report.reasons.append("no spans stored for this rollout")
        return [_Episode(report, "")]
    attempts, n_attempts = _split_attempts(trace, config)
    out = []
    for i, (attempt_id, spans) in enumerate(attempts):
        is_final = i == len(attempts) - 1
        episode = _episode(trace, attempt_id, spans, is_final, config, matcher, retokenizer, table)
        episode.report.status = status_name
        episode.report.attempts = n_attempts
        out.append(episode)
    return out


def _agent_of(span: spans_pb2.Span, by_id: dict[bytes, spans_pb2.Span], cache: dict[bytes, str]) -> str:
    """The span's agent name, else its nearest ancestor's (integrations often name only the agent span)."""
    name = span.agent_name
    if name:
        return name
    parent_id = span.parent_span_id
    hit = cache.get(parent_id)
    if hit is not None:
        return hit
    parent = by_id.get(parent_id)
    depth = 0
    while parent is not None and depth < 256:
        name = parent.agent_name
        if name:
            break
        parent = by_id.get(parent.parent_span_id)
        depth += 1
    cache[parent_id] = name
    return name


def _episode(trace: RolloutTrace, attempt_id: str, spans: list[spans_pb2.Span], is_final: bool,
             config: LightningRLConfig, matcher: Callable[[str], bool],
             retokenizer: Optional[Callable], table: Optional[dict[str, float]] = None) -> _Episode:
    order, by_id, orphans = span_tree.ordered(spans)
    group_id, task_id, group_key = _group_key(trace, config, attempt_id)
    report = RolloutReport(trace.rollout_id, attempt_id, spans=len(order), orphans=orphans)
    episode = _Episode(report, group_key)

    calls: list[spans_pb2.Span] = []
    tools: list[tuple[int, spans_pb2.Span]] = []    # (index of the call before it, span)
    rewards: list[tuple[int, spans_pb2.Span]] = []
    for s in order:
        kind = s.kind
        if kind == LLM:
            calls.append(s)
        elif kind == TOOL:
            tools.append((len(calls) - 1, s))
        elif kind == REWARD:
            rewards.append((len(calls) - 1, s))
    report.llm_spans = len(calls)

    # Which calls are trained, and their agents.
    agents_seen: dict[str, None] = {}
    selected: list[tuple[int, str]] = []
    cache: dict[bytes, str] = {}
    for i, s in enumerate(calls):
        agent = _agent_of(s, by_id, cache)
        agents_seen[agent] = None
        if matcher(agent):
            selected.append((i, agent))
    report.agents_seen = list(agents_seen)
    report.selected = len(selected)

    final, final_source, step_of = _rewards(trace, rewards, is_final, config)
    report.final_reward, report.final_source = final, final_source

    # Tool spans belong to the call that requested them (call id), else to the call before them.
    air_config = config.air
    use_air = air_config.enabled
    tools_of: dict[int, list[spans_pb2.Span]] = {}
    calls_of: list[Optional[list[tuple[str, str, str]]]] = [None] * len(calls)
    if tools and use_air and selected:
        call_of_id: dict[str, int] = {}
        for i, s in enumerate(calls):
            requested = calls_of[i] = tool_calls_of(s)
            for call_id, _, _ in requested:
                if call_id:
                    call_of_id[call_id] = i
        for before, t in tools:
            call_id = t.tool.call_id
            owner = call_of_id.get(call_id, before) if call_id else before
            if owner >= 0:
                bucket = tools_of.get(owner)
                if bucket is None:
                    tools_of[owner] = [t]
                else:
                    bucket.append(t)
    if use_air and table is None:
        table = weight_table(air_config)

    # The transitions.
    dimensions = {s.reward.name: s.reward.value for _, s in rewards}
    no_tokens = failed = retok_failed = 0
    transitions, air_values, call_index = episode.transitions, episode.air, []
    rollout_id = trace.rollout_id
    include_messages = config.include_messages
    for i, agent in selected:
        s = calls[i]
        llm = s.llm
        prompt_ids = llm.prompt_token_ids
        response_ids = llm.completion_token_ids
        if prompt_ids and response_ids:
            retokenized = llm.token_provenance == _RETOKENIZED
            logprobs = llm.completion_logprobs or None
        elif s.status.code == _STATUS_ERROR and not llm.response_messages:
            failed += 1
            continue
        elif retokenizer is not None:
            try:
                new_prompt, new_response = retokenize_call(retokenizer, llm, response=not response_ids)
            except Exception as exc:  # a template that cannot render this call: skip it, say so
                retok_failed += 1
                report.skipped.append(f"span {s.span_id.hex()}: retokenizing failed: {exc}")
                continue
            retokenized = True
            if response_ids:  # exact sampled tokens (e.g. from logprobs) but no prompt ids: keep them
                prompt_ids, logprobs = new_prompt, llm.completion_logprobs or None
            else:
                prompt_ids, response_ids, logprobs = new_prompt, new_response, None
        else:
            no_tokens += 1
            continue
        if use_air:
            air_total, signals = air_for_call(s, tools_of.get(i, ()), air_config, tool_calls=calls_of[i],
                                              table=table)
            air_by_name: dict[str, float] = {}
            for sig in signals:
                air_by_name[sig.name] = air_by_name.get(sig.name, 0.0) + sig.value
        else:
            air_total, signals, air_by_name = 0.0, [], {}
        breakdown = RewardBreakdown(final, final_source, air_total, air_by_name, signals, {}, air_total, dimensions)
        t = Transition(rollout_id, attempt_id, group_id, task_id, agent, len(transitions), 0, s.span_id.hex(),
                       prompt_ids, response_ids, logprobs, llm.policy_version, retokenized, breakdown)
        if include_messages:
            t.prompt_messages = [message_dict(m) for m in llm.request_messages]
            t.response_messages = [message_dict(m) for m in llm.response_messages]
        transitions.append(t)
        air_values.append(air_total)
        call_index.append(i)
    if no_tokens:
        report.skipped.append(f"{no_tokens} LLM call(s) have no token ids and no tokenizer was given")
    if failed:
        report.skipped.append(f"{failed} LLM call(s) failed before producing a response")

    n = len(transitions)
    episode.steps = _attach_steps(transitions, call_index, step_of)
    for t in transitions:
        t.step_count = n
    episode.final = final
    if not transitions:
        report.reasons.extend(diagnostics.no_transition_reasons(report, config, no_tokens, failed, retok_failed))
    if final is None and not step_of and selected:
        transitions.clear()
        episode.air.clear()
        episode.steps.clear()
        report.reasons.append(diagnostics.no_reward_reason(rewards, config, is_final))
    report.transitions = len(transitions)
    return episode


def _rewards(trace: RolloutTrace, rewards: list[tuple[int, spans_pb2.Span]], is_final: bool,
             config: LightningRLConfig) -> tuple[Optional[float], str, list[tuple[int, str, float]]]:
    """(final reward, where it came from, step rewards as (call before it, name, value))."""
    if config.reward_name is not None:
        eligible = [(i, s) for i, s in rewards if s.reward.name == config.reward_name]
    else:
        eligible = [(i, s) for i, s in rewards if s.reward.primary]
    final: Optional[float] = None
    source = ""
    chosen = None
    if is_final and trace.final_reward is not None:
        final, source = trace.final_reward, "rollout"
    else:
        named = [item for item in eligible if item[1].reward.name == config.final_reward_name]
        if named:
            chosen = named[-1]
        elif eligible and config.credit != "per_step":
            chosen = eligible[-1]
        if chosen is not None:
            final, source = chosen[1].reward.value, f"span:{chosen[1].reward.name}"
    steps: list[tuple[int, str, float]] = []
    if config.credit == "per_step":
        for item in eligible:
            if item is not chosen and item[1].reward.name != config.final_reward_name:
                steps.append((item[0], item[1].reward.name, item[1].reward.value))
    return final, source, steps


def _attach_steps(transitions: list[Transition], call_index: list[int],
                  step_of: list[tuple[int, str, float]]) -> list[float]:
    """Each step reward goes to the last trained call at or before the call preceding it
    (rewards before any trained call go to the first one). Also records it in the breakdown."""
    steps = [0.0] * len(transitions)
    if not transitions or not step_of:
        return steps
    for before, name, value in step_of:
        target = 0
        for j, i in enumerate(call_index):
            if i <= before:
                target = j
            else:
                break
        steps[target] += value
        breakdown = transitions[target].breakdown
        breakdown.step_rewards[name] = breakdown.step_rewards.get(name, 0.0) + value
        breakdown.step_reward += value
    return steps

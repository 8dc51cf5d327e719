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
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Sequence

from agentlightning.core import rollout_states as states
from agentlightning.core import span_tree
from agentlightning.core.lightningrl import attempts, credit, diagnostics
from agentlightning.core.lightningrl.air import ToolRun, call_air, requested_calls, tool_run, weight_table
from agentlightning.core.lightningrl.attempts import GROUP_ATTRIBUTE, TASK_ATTRIBUTE  # noqa: F401 (re-exported)
from agentlightning.core.lightningrl.config import LightningRLConfig
from agentlightning.core.lightningrl.retokenize import as_retokenizer, message_dict, retokenize_call
from agentlightning.core.lightningrl.reward_spans import RewardSpan, attach_steps, final_and_steps, reward_span
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
    frees everything.

    On the way out the new objects go straight to the oldest generation (``freeze`` + ``unfreeze``
    moves the young generations there without scanning them): they are the batch the caller keeps,
    and scanning all of them as "young" (once in generation 0, again in 1) cost ~0.2 s per 100k
    spans for nothing. They are still scanned, and any cycle among them freed, by the next full
    collection. The young generations are collected on the way in (small, ~1 ms), so what gets
    promoted is only what was built here. Skipped when the application froze objects itself
    (``unfreeze`` would undo that)."""
    was_enabled = gc.isenabled()
    promote = was_enabled and gc.get_freeze_count() == 0
    if promote:
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if promote:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def assign_credit(episodes: list[_Episode], config: LightningRLConfig) -> None:
    """reward = outcome return + AIR return; advantage = the outcome's, normalised per group, + AIR's, centred
    on the group's calls whose AIR fired (``credit`` says why)."""
    groups: dict[str, list[tuple[_Episode, list[float], list[float]]]] = {}
    mode, gamma = config.credit, config.gamma
    for e in episodes:
        no_air = [0.0] * len(e.air)
        outcome = credit.rewards(mode, gamma, e.final, no_air, e.steps)
        shaping = credit.rewards(mode, gamma, None, e.air) if any(e.air) else no_air
        for t, o, s in zip(e.transitions, outcome, shaping):
            t.reward = o + s
        groups.setdefault(e.group_key, []).append((e, outcome, shaping))
    for members in groups.values():
        fired = [[bool(t.breakdown.air_signals) for t in e.transitions] for e, _, _ in members]
        advs = credit.shaped_advantages([o for _, o, _ in members], [s for _, _, s in members], fired,
                                        config.normalizer, config.std_eps)
        for (e, _, _), a in zip(members, advs):
            for t, value in zip(e.transitions, a):
                t.advantage = value


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
    split, n_attempts = attempts.split_attempts(trace, config)
    out = []
    for i, (attempt_id, spans) in enumerate(split):
        is_final = i == len(split) - 1
        episode = _episode(trace, attempt_id, spans, is_final, config, matcher, retokenizer, table)
        episode.report.status = status_name
        episode.report.attempts = n_attempts
        out.append(episode)
    return out


def _agent_of(span: spans_pb2.Span, by_id: dict[bytes, spans_pb2.Span], cache: dict[bytes, str]) -> str:
    """The nearest ancestor's agent name, for a span that names none (integrations often name only
    the agent span)."""
    parent_id = span.parent_span_id
    hit = cache.get(parent_id)
    if hit is not None:
        return hit
    name = ""
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


def _classify(order: list[spans_pb2.Span]) -> tuple[list[spans_pb2.Span], list[tuple[int, spans_pb2.Span]],
                                                    list[RewardSpan]]:
    """LLM calls in tree order; TOOL and REWARD spans with the index of the call before them."""
    calls: list[spans_pb2.Span] = []
    tools: list[tuple[int, spans_pb2.Span]] = []
    rewards: list[RewardSpan] = []
    for s in order:
        kind = s.kind
        if kind == LLM:
            calls.append(s)
        elif kind == TOOL:
            tools.append((len(calls) - 1, s))
        elif kind == REWARD:
            rewards.append(reward_span(len(calls) - 1, s))
    return calls, tools, rewards


def _tools_by_call(calls: list[spans_pb2.Span], tools: list[tuple[int, spans_pb2.Span]]
                   ) -> tuple[list[spans_pb2.LlmPayload], list[list[tuple[str, str, str]]], dict[int, list[ToolRun]]]:
    """Every call's payload and requested tool calls, and the tool runs of each call: a TOOL span
    belongs to the call that requested it (by call id), else to the call before it."""
    llms = [s.llm for s in calls]
    requested = [requested_calls(llm) for llm in llms]
    call_of_id: dict[str, int] = {}
    for i, calls_of_i in enumerate(requested):
        for call_id, _, _ in calls_of_i:
            if call_id:
                call_of_id[call_id] = i
    runs_of: dict[int, list[ToolRun]] = {}
    for before, t in tools:
        run = tool_run(t)
        call_id = run[2]
        owner = call_of_id.get(call_id, before) if call_id else before
        if owner >= 0:
            bucket = runs_of.get(owner)
            if bucket is None:
                runs_of[owner] = [run]
            else:
                bucket.append(run)
    return llms, requested, runs_of


def _episode(trace: RolloutTrace, attempt_id: str, spans: Sequence[spans_pb2.Span], is_final: bool,
             config: LightningRLConfig, matcher: Callable[[str], bool],
             retokenizer: Optional[Callable], table: Optional[dict[str, float]] = None) -> _Episode:
    order, by_id, orphans = span_tree.ordered(spans)
    group_id, task_id, group_key = attempts.group_key(trace, config, attempt_id)
    report = RolloutReport(trace.rollout_id, attempt_id, spans=len(order), orphans=orphans)
    episode = _Episode(report, group_key)
    calls, tools, rewards = _classify(order)
    report.llm_spans = len(calls)

    # Which calls are trained, and their agents.
    agents_seen: dict[str, None] = {}
    selected: list[tuple[int, str]] = []
    cache: dict[bytes, str] = {}
    for i, s in enumerate(calls):
        agent = s.agent_name or _agent_of(s, by_id, cache)
        agents_seen[agent] = None
        if matcher(agent):
            selected.append((i, agent))
    report.agents_seen = list(agents_seen)
    report.selected = len(selected)

    final, final_source, step_of = final_and_steps(trace, rewards, is_final, config)
    report.final_reward, report.final_source = final, final_source

    air_config = config.air
    use_air = air_config.enabled
    if use_air and selected:
        llms, requested, runs_of = _tools_by_call(calls, tools)
        if table is None:
            table = weight_table(air_config)
    else:
        llms, requested, runs_of = [s.llm for s in calls], [], {}
    clip = air_config.clip

    # The transitions.
    dimensions = {r.name: r.value for r in rewards}
    no_tokens = failed = retok_failed = 0
    transitions, air_values, call_index = episode.transitions, episode.air, []
    rollout_id = trace.rollout_id
    include_messages = config.include_messages
    for i, agent in selected:
        llm = llms[i]
        prompt_ids = llm.prompt_token_ids
        response_ids = llm.completion_token_ids
        if prompt_ids and response_ids:
            retokenized = llm.token_provenance == _RETOKENIZED
            logprobs = llm.completion_logprobs or None
        elif calls[i].status.code == _STATUS_ERROR and not llm.response_messages:
            failed += 1
            continue
        elif retokenizer is not None:
            try:
                new_prompt, new_response = retokenize_call(retokenizer, llm, response=not response_ids)
            except Exception as exc:  # a template that cannot render this call: skip it, say so
                retok_failed += 1
                report.skipped.append(f"span {calls[i].span_id.hex()}: retokenizing failed: {exc}")
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
            air_total, signals, air_by_name = call_air(llm, requested[i], runs_of.get(i, ()), table, clip)
        else:
            air_total, signals, air_by_name = 0.0, [], {}
        breakdown = RewardBreakdown(final, final_source, air_total, air_by_name, signals, {}, air_total, dimensions)
        t = Transition(rollout_id, attempt_id, group_id, task_id, agent, len(transitions), 0,
                       calls[i].span_id.hex(), prompt_ids, response_ids, logprobs, llm.policy_version, retokenized,
                       breakdown)
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
    episode.steps = attach_steps(transitions, call_index, step_of)
    for t in transitions:
        t.step_count = n
    episode.final = final
    if not transitions:
        report.reasons.extend(diagnostics.no_transition_reasons(report, config, no_tokens, failed, retok_failed))
    if final is None and not step_of and selected:
        transitions.clear()
        episode.air.clear()
        episode.steps.clear()
        report.reasons.append(diagnostics.no_reward_reason([(r.before, r.span) for r in rewards], config, is_final))
    report.transitions = len(transitions)
    return episode

"""The tool-usage half of the CrewAI listener: tool started / finished / error and the tool failures
CrewAI reports without running a tool (unparseable arguments, unknown tool), which become TOOL spans
of their own unless a tool's end turns out to own them. Kept apart from ``listener`` (registration,
crew / task / agent / LLM events) because matching tool runs to the model's requested calls is the
part with the most bookkeeping (``calls.ToolCallBook``)."""
from __future__ import annotations

import logging
from typing import Any, Callable

from crewai.events.types.tool_usage_events import ToolUsageErrorEvent

from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan
from agentlightning.integrations.crewai import mapping
from agentlightning.integrations.crewai.calls import ToolCallBook
from agentlightning.integrations.crewai.linker import SpanLinker

logger = logging.getLogger("agentlightning.integrations.crewai")


def agent_keys(event: Any) -> tuple:
    """Fallback parents for an LLM/tool event whose scope never showed: its agent run, else its task."""
    keys = []
    if event.agent_id:
        keys.append(("agent", event.agent_id, event.task_id))
    if event.task_id:
        keys.append(("task", event.task_id))
    return tuple(keys)


class ToolEventHandlers:
    """Mixed into ``AgentLightningListener``, which provides the span plumbing declared here."""

    linker: SpanLinker
    calls: ToolCallBook
    _start: Callable[..., None]
    _end: Callable[..., None]

    def _on_tool_start(self, source: Any, event: Any) -> None:
        try:
            scope = event.parent_event_id

            def fill(span: ActiveSpan) -> None:
                requested = self.calls.take_requested(scope, event.tool_name, event.tool_args)
                mapping.fill_tool_start(span.proto.tool, event, requested)
                if event.run_attempts:
                    span.set_attribute("crewai.tool.run_attempts", int(event.run_attempts))

            self._start(event, event.tool_name or "tool", SpanKind.TOOL, event.agent_role,
                        fallback=agent_keys(event), fill=fill)
        except Exception:
            logger.debug("tool start not recorded", exc_info=True)

    def _on_tool_end(self, source: Any, event: Any) -> None:
        try:
            failure_event = self.calls.tool_ended(event.event_id)
            if failure_event is not None:  # it waited as a possible call of its own: it was not
                self.linker.discard(failure_event.event_id)
            scope = event.parent_event_id
            is_error = isinstance(event, ToolUsageErrorEvent)

            def fill(span: ActiveSpan) -> None:
                tool = span.proto.tool
                if not tool.call_id:  # the LLM's completion was handled after our start
                    requested = self.calls.take_requested(scope, event.tool_name, event.tool_args)
                    if requested is not None:
                        mapping.fill_tool_start(tool, event, requested)
                if is_error:
                    tool.outcome = mapping.error_outcome(event.error)
                    tool.error_message = str(event.error)[:8192]
                    span.record_error(event.error if isinstance(event.error, BaseException) else str(event.error))
                    return
                tool.result = mapping.text_of(event.output)
                if event.from_cache:
                    span.set_attribute("crewai.tool.from_cache", True)
                failure = event.failure
                if failure is None:
                    tool.outcome = ToolOutcome.OK
                else:
                    tool.outcome = mapping.failure_outcome(failure)
                    tool.error_message = mapping.failure_message(failure)
                    span.record_error(tool.error_message, error_type=mapping.failure_reason(failure))

            self._end(event, fill)
        except Exception:
            logger.debug("tool end not recorded", exc_info=True)

    def _on_tool_failure(self, source: Any, event: Any) -> None:
        """A failure reported without a tool run (unparseable arguments, unknown tool) is a TOOL span of
        its own. One that follows a tool's end event is already that span's outcome. Which it is depends on
        an event another handler may not have seen yet, so the span is opened now (in order) and either
        discarded when that tool end shows up, or ended when its scope closes."""
        try:
            if self.calls.follows_tool_end(event.previous_event_id or ""):  # usual: its end came first
                return
            failure = event.failure
            scope = event.parent_event_id

            def fill(span: ActiveSpan) -> None:
                requested = self.calls.take_requested(scope, event.tool_name, event.tool_args)
                mapping.fill_tool_start(span.proto.tool, event, requested)
                if requested is not None:  # the model's raw string, not CrewAI's echo of it
                    span.proto.tool.arguments_valid = mapping.raw_arguments(requested[2])[1]
                tool = span.proto.tool
                tool.outcome = mapping.failure_outcome(failure)
                tool.error_message = mapping.failure_message(failure)
                span.record_error(tool.error_message, error_type=mapping.failure_reason(failure))

            self._start(event, event.tool_name or "tool", SpanKind.TOOL, event.agent_role,
                        fallback=agent_keys(event), fill=fill)
            if not self.calls.add_failure(event):
                self.linker.discard(event.event_id)
        except Exception:
            logger.debug("tool failure not recorded", exc_info=True)

    def _on_scope_end(self, scope_id: str) -> None:
        """A scope closed: end its tool-failure spans that had no tool run; forget its unanswered calls."""
        for event in self.calls.close_scope(scope_id):
            self.linker.end(event.event_id, None, mapping.time_ns(event.timestamp))

    def _flush_failures(self) -> None:
        for event in self.calls.close_all_failures():
            self.linker.end(event.event_id, None, mapping.time_ns(event.timestamp))

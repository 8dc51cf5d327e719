"""Readable Python enums mirroring the schema's (``SpanKind.LLM`` rather than ``SPAN_KIND_LLM``)."""
from __future__ import annotations

import enum

from agentlightning.v1 import spans_pb2


class SpanKind(enum.IntEnum):
    AGENT = spans_pb2.SPAN_KIND_AGENT
    LLM = spans_pb2.SPAN_KIND_LLM
    TOOL = spans_pb2.SPAN_KIND_TOOL
    RETRIEVER = spans_pb2.SPAN_KIND_RETRIEVER
    CHAIN = spans_pb2.SPAN_KIND_CHAIN
    REWARD = spans_pb2.SPAN_KIND_REWARD
    OTHER = spans_pb2.SPAN_KIND_OTHER


class ToolOutcome(enum.IntEnum):
    OK = spans_pb2.TOOL_OUTCOME_OK
    ERROR = spans_pb2.TOOL_OUTCOME_ERROR
    INVALID_ARGUMENTS = spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS
    TIMEOUT = spans_pb2.TOOL_OUTCOME_TIMEOUT
    NOT_FOUND = spans_pb2.TOOL_OUTCOME_NOT_FOUND


class RewardSource(enum.IntEnum):
    ENVIRONMENT = spans_pb2.REWARD_SOURCE_ENVIRONMENT
    USER = spans_pb2.REWARD_SOURCE_USER
    AIR = spans_pb2.REWARD_SOURCE_AIR
    MODEL = spans_pb2.REWARD_SOURCE_MODEL


class TokenProvenance(enum.IntEnum):
    EXACT = spans_pb2.TOKEN_PROVENANCE_EXACT
    RETOKENIZED = spans_pb2.TOKEN_PROVENANCE_RETOKENIZED

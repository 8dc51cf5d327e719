"""TraceService: Export with per-span partial success, and span queries."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import grpc
from google.protobuf.message import DecodeError

from agentlightning.core.auth import current_principal
from agentlightning.core.server.group_commit import GroupCommitter
from agentlightning.core.store import SpanRecord, Store, StoreUnavailable
from agentlightning.core.validation import validated_record
from agentlightning.core.wire import WireError, split_export_request
from agentlightning.v1 import spans_pb2, traces_pb2

logger = logging.getLogger("agentlightning.server")

REJECTED = traces_pb2.SPAN_RESULT_CODE_REJECTED
DUPLICATE = traces_pb2.SPAN_RESULT_CODE_DUPLICATE


def _parse_spans(raw: bytes, chunks: list[bytes]) -> Sequence[Optional[spans_pb2.Span]]:
    """Every span of the request from one parse (cheaper than one parse per span); where the request
    does not parse as a whole, ``None`` per span, so each is parsed alone and only bad ones rejected."""
    try:
        spans = traces_pb2.ExportRequest.FromString(raw).spans
    except (DecodeError, ValueError):
        return [None] * len(chunks)
    if len(spans) != len(chunks):  # cannot happen for well-formed framing; never trust a mismatch
        return [None] * len(chunks)
    return spans


class TraceService:
    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self.store = store
        self.committer = committer
        # With auth on, spans of a queued rollout may be written only by the token holding that attempt.
        self.require_ownership = False

    def export(self, raw: bytes, context: grpc.ServicerContext) -> traces_pb2.ExportResponse:
        """Validate span by span (one bad span never sinks the batch), store the valid ones durably,
        and answer only then. The request is parsed once; if it does not parse as a whole, each span is
        parsed alone so that only the bad ones are rejected."""
        try:
            chunks = list(split_export_request(raw))
        except WireError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ExportRequest is not valid protobuf: {exc}")
        response = traces_pb2.ExportResponse()
        records: list[SpanRecord] = []
        positions: list[int] = []
        for index, (chunk, span) in enumerate(zip(chunks, _parse_spans(raw, chunks))):
            if span is None:
                try:
                    span = spans_pb2.Span.FromString(chunk)
                except (DecodeError, ValueError) as exc:
                    response.results.add(index=index, code=REJECTED,
                                         reason=f"span {index}: not a valid Span message ({exc})")
                    continue
            checked = validated_record(span, chunk)
            if isinstance(checked, str):
                response.results.add(index=index, span_id=span.span_id, code=REJECTED,
                                     reason=f"span {index} ({span.span_id.hex() or 'no id'}): {checked}")
                continue
            records.append(checked)
            positions.append(index)
        if self.require_ownership and records:
            records, positions = self._check_ownership(records, positions, response)
        try:
            inserted = self.committer.submit(records)
        except StoreUnavailable as exc:
            logger.error("store unavailable: %s", exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable, retry later: {exc}")
        response.rejected = len(response.results)
        if all(inserted):
            response.accepted = len(records)
        else:
            for index, record, new in zip(positions, records, inserted):
                if new:
                    response.accepted += 1
                else:
                    response.duplicates += 1
                    response.results.add(index=index, span_id=record.span_id, code=DUPLICATE,
                                         reason="already stored")
        if response.rejected:
            logger.info("export: %d accepted, %d duplicate, %d rejected", response.accepted,
                        response.duplicates, response.rejected)
        return response

    def _check_ownership(self, records: list[SpanRecord], positions: list[int],
                         response: traces_pb2.ExportResponse) -> tuple[list[SpanRecord], list[int]]:
        principal = current_principal()
        if principal.role == "admin":
            return records, positions
        owners = self.store.attempt_owners([r.rollout_id for r in records])
        kept, kept_positions = [], []
        for record, index in zip(records, positions):
            attempts = owners.get(record.rollout_id)
            if attempts is not None and attempts.get(record.attempt_id) != principal.name:
                response.results.add(
                    index=index, span_id=record.span_id, code=REJECTED,
                    reason=(f"span {index} ({record.span_id.hex()}): rollout {record.rollout_id!r} attempt "
                            f"{record.attempt_id!r} is not held by token {principal.name!r}"))
                continue
            kept.append(record)
            kept_positions.append(index)
        return kept, kept_positions

    def query_spans(self, request: traces_pb2.QuerySpansRequest,
                    context: grpc.ServicerContext) -> traces_pb2.QuerySpansResponse:
        if not request.rollout_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rollout_id is required")
        return traces_pb2.QuerySpansResponse(spans=self.store.get_spans(request.rollout_id, request.attempt_id))

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler("agentlightning.v1.TraceService", {
            "Export": grpc.unary_unary_rpc_method_handler(
                self.export, request_deserializer=None,
                response_serializer=traces_pb2.ExportResponse.SerializeToString),
            "QuerySpans": grpc.unary_unary_rpc_method_handler(
                self.query_spans, request_deserializer=traces_pb2.QuerySpansRequest.FromString,
                response_serializer=traces_pb2.QuerySpansResponse.SerializeToString),
        })

"""OTLP/gRPC trace receiver: agents already instrumented with OpenTelemetry send to us unchanged.

``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on the server's own port. Spans are
mapped (core/server/otlp_mapping.py), validated and stored exactly like our own Export: durable
before the answer, deduplicated by (trace_id, span_id). Spans we cannot take are counted in
``partial_success.rejected_spans`` with a message naming them, as the OTLP spec asks; the rest of
the request is kept. Registered only when the ``opentelemetry-proto`` package (the ``otlp`` extra)
is importable.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import grpc
from google.protobuf.message import DecodeError

from agentlightning.core.server.otlp_mapping import attributes, inherit_agent_names, map_span
from agentlightning.core.server.trace_service import TraceService
from agentlightning.core.store import SpanRecord, StoreUnavailable
from agentlightning.core.validation import validate_span
from agentlightning.v1 import spans_pb2, traces_pb2

logger = logging.getLogger("agentlightning.server")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
MAX_MESSAGES = 10  # rejection reasons quoted in error_message


class OtlpReceiver:
    def __init__(self, traces: TraceService, pb: Any) -> None:
        self.traces = traces
        self.pb = pb  # opentelemetry.proto.collector.trace.v1.trace_service_pb2

    def export(self, raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            request = self.pb.ExportTraceServiceRequest.FromString(raw)
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ExportTraceServiceRequest is not valid protobuf: {exc}")
        errors: list[str] = []
        mapped: list[spans_pb2.Span] = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for otel in scope_spans.spans:
                    try:
                        mapped.append(map_span(otel, resource, scope_spans.scope.name))
                    except Exception as exc:  # a mapping bug must not sink the request
                        logger.debug("cannot map OTLP span %s", otel.span_id.hex(), exc_info=True)
                        errors.append(f"span {otel.span_id.hex() or '?'}: cannot be mapped ({type(exc).__name__})")
        inherit_agent_names(mapped)
        records: list[SpanRecord] = []
        for span in mapped:
            problem = validate_span(span)
            if problem:
                errors.append(f"span {span.span_id.hex() or '?'} ({span.name!r}): {problem}")
            else:
                records.append(SpanRecord.from_span(span))
        if self.traces.require_ownership and records:
            refused = traces_pb2.ExportResponse()
            records, _ = self.traces._check_ownership(records, list(range(len(records))), refused)
            errors.extend(r.reason for r in refused.results)
        try:
            self.traces.committer.submit(records)
        except StoreUnavailable as exc:
            logger.error("store unavailable: %s", exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable, retry later: {exc}")
        response = self.pb.ExportTraceServiceResponse()
        if errors:
            response.partial_success.rejected_spans = len(errors)
            more = f" (and {len(errors) - MAX_MESSAGES} more)" if len(errors) > MAX_MESSAGES else ""
            response.partial_success.error_message = "; ".join(errors[:MAX_MESSAGES]) + more
            logger.info("OTLP export: %d stored, %d rejected", len(records), len(errors))
        return response


def otlp_handler(traces: TraceService) -> Optional[grpc.GenericRpcHandler]:
    """The OTLP trace service, or None when opentelemetry-proto is not installed."""
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError:
        return None
    receiver = OtlpReceiver(traces, trace_service_pb2)
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(
            receiver.export, request_deserializer=None,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString),
    })

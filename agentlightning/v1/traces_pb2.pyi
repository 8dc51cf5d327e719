from agentlightning.v1 import spans_pb2 as _spans_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpanResultCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_RESULT_CODE_UNSPECIFIED: _ClassVar[SpanResultCode]
    SPAN_RESULT_CODE_ACCEPTED: _ClassVar[SpanResultCode]
    SPAN_RESULT_CODE_DUPLICATE: _ClassVar[SpanResultCode]
    SPAN_RESULT_CODE_REJECTED: _ClassVar[SpanResultCode]
SPAN_RESULT_CODE_UNSPECIFIED: SpanResultCode
SPAN_RESULT_CODE_ACCEPTED: SpanResultCode
SPAN_RESULT_CODE_DUPLICATE: SpanResultCode
SPAN_RESULT_CODE_REJECTED: SpanResultCode

class ExportRequest(_message.Message):
    __slots__ = ("spans",)
    SPANS_FIELD_NUMBER: _ClassVar[int]
    spans: _containers.RepeatedCompositeFieldContainer[_spans_pb2.Span]
    def __init__(self, spans: _Optional[_Iterable[_Union[_spans_pb2.Span, _Mapping]]] = ...) -> None: ...

class SpanResult(_message.Message):
    __slots__ = ("index", "span_id", "code", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    span_id: bytes
    code: SpanResultCode
    reason: str
    def __init__(self, index: _Optional[int] = ..., span_id: _Optional[bytes] = ..., code: _Optional[_Union[SpanResultCode, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "results")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: int
    results: _containers.RepeatedCompositeFieldContainer[SpanResult]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., results: _Optional[_Iterable[_Union[SpanResult, _Mapping]]] = ...) -> None: ...

class QuerySpansRequest(_message.Message):
    __slots__ = ("rollout_id", "attempt_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    attempt_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., attempt_id: _Optional[str] = ...) -> None: ...

class QuerySpansResponse(_message.Message):
    __slots__ = ("spans",)
    SPANS_FIELD_NUMBER: _ClassVar[int]
    spans: _containers.RepeatedCompositeFieldContainer[_spans_pb2.Span]
    def __init__(self, spans: _Optional[_Iterable[_Union[_spans_pb2.Span, _Mapping]]] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SchemaVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCHEMA_VERSION_UNSPECIFIED: _ClassVar[SchemaVersion]
    SCHEMA_VERSION_1: _ClassVar[SchemaVersion]

class SpanKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_KIND_UNSPECIFIED: _ClassVar[SpanKind]
    SPAN_KIND_AGENT: _ClassVar[SpanKind]
    SPAN_KIND_LLM: _ClassVar[SpanKind]
    SPAN_KIND_TOOL: _ClassVar[SpanKind]
    SPAN_KIND_RETRIEVER: _ClassVar[SpanKind]
    SPAN_KIND_CHAIN: _ClassVar[SpanKind]
    SPAN_KIND_REWARD: _ClassVar[SpanKind]
    SPAN_KIND_OTHER: _ClassVar[SpanKind]

class StatusCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_CODE_UNSET: _ClassVar[StatusCode]
    STATUS_CODE_OK: _ClassVar[StatusCode]
    STATUS_CODE_ERROR: _ClassVar[StatusCode]

class TokenProvenance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_PROVENANCE_UNSPECIFIED: _ClassVar[TokenProvenance]
    TOKEN_PROVENANCE_EXACT: _ClassVar[TokenProvenance]
    TOKEN_PROVENANCE_RETOKENIZED: _ClassVar[TokenProvenance]

class ToolOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_OUTCOME_UNSPECIFIED: _ClassVar[ToolOutcome]
    TOOL_OUTCOME_OK: _ClassVar[ToolOutcome]
    TOOL_OUTCOME_ERROR: _ClassVar[ToolOutcome]
    TOOL_OUTCOME_INVALID_ARGUMENTS: _ClassVar[ToolOutcome]
    TOOL_OUTCOME_TIMEOUT: _ClassVar[ToolOutcome]
    TOOL_OUTCOME_NOT_FOUND: _ClassVar[ToolOutcome]

class RewardSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REWARD_SOURCE_UNSPECIFIED: _ClassVar[RewardSource]
    REWARD_SOURCE_ENVIRONMENT: _ClassVar[RewardSource]
    REWARD_SOURCE_USER: _ClassVar[RewardSource]
    REWARD_SOURCE_AIR: _ClassVar[RewardSource]
    REWARD_SOURCE_MODEL: _ClassVar[RewardSource]
SCHEMA_VERSION_UNSPECIFIED: SchemaVersion
SCHEMA_VERSION_1: SchemaVersion
SPAN_KIND_UNSPECIFIED: SpanKind
SPAN_KIND_AGENT: SpanKind
SPAN_KIND_LLM: SpanKind
SPAN_KIND_TOOL: SpanKind
SPAN_KIND_RETRIEVER: SpanKind
SPAN_KIND_CHAIN: SpanKind
SPAN_KIND_REWARD: SpanKind
SPAN_KIND_OTHER: SpanKind
STATUS_CODE_UNSET: StatusCode
STATUS_CODE_OK: StatusCode
STATUS_CODE_ERROR: StatusCode
TOKEN_PROVENANCE_UNSPECIFIED: TokenProvenance
TOKEN_PROVENANCE_EXACT: TokenProvenance
TOKEN_PROVENANCE_RETOKENIZED: TokenProvenance
TOOL_OUTCOME_UNSPECIFIED: ToolOutcome
TOOL_OUTCOME_OK: ToolOutcome
TOOL_OUTCOME_ERROR: ToolOutcome
TOOL_OUTCOME_INVALID_ARGUMENTS: ToolOutcome
TOOL_OUTCOME_TIMEOUT: ToolOutcome
TOOL_OUTCOME_NOT_FOUND: ToolOutcome
REWARD_SOURCE_UNSPECIFIED: RewardSource
REWARD_SOURCE_ENVIRONMENT: RewardSource
REWARD_SOURCE_USER: RewardSource
REWARD_SOURCE_AIR: RewardSource
REWARD_SOURCE_MODEL: RewardSource

class Status(_message.Message):
    __slots__ = ("code", "error_type", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: StatusCode
    error_type: str
    message: str
    def __init__(self, code: _Optional[_Union[StatusCode, str]] = ..., error_type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("string_value", "bool_value", "int_value", "double_value", "bytes_value", "list_value", "map_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    bool_value: bool
    int_value: int
    double_value: float
    bytes_value: bytes
    list_value: AttributeList
    map_value: AttributeMap
    def __init__(self, string_value: _Optional[str] = ..., bool_value: bool = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bytes_value: _Optional[bytes] = ..., list_value: _Optional[_Union[AttributeList, _Mapping]] = ..., map_value: _Optional[_Union[AttributeMap, _Mapping]] = ...) -> None: ...

class AttributeList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[AttributeValue]
    def __init__(self, values: _Optional[_Iterable[_Union[AttributeValue, _Mapping]]] = ...) -> None: ...

class AttributeMap(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.MessageMap[str, AttributeValue]
    def __init__(self, values: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class ToolCallRequest(_message.Message):
    __slots__ = ("id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCallRequest]
    tool_call_id: str
    name: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCallRequest, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ToolDefinition(_message.Message):
    __slots__ = ("name", "description", "parameters_json_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json_schema: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json_schema: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_p", "max_tokens", "stop", "seed", "n")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    n: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., n: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "total_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class LlmPayload(_message.Message):
    __slots__ = ("operation", "request_model", "response_model", "response_id", "request_messages", "response_messages", "tools", "sampling", "usage", "finish_reasons", "streamed", "response_format", "prompt_token_ids", "completion_token_ids", "completion_logprobs", "token_provenance", "policy_version")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_MODEL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASONS_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    operation: str
    request_model: str
    response_model: str
    response_id: str
    request_messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    response_messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    tools: _containers.RepeatedCompositeFieldContainer[ToolDefinition]
    sampling: SamplingParams
    usage: Usage
    finish_reasons: _containers.RepeatedScalarFieldContainer[str]
    streamed: bool
    response_format: str
    prompt_token_ids: _containers.RepeatedScalarFieldContainer[int]
    completion_token_ids: _containers.RepeatedScalarFieldContainer[int]
    completion_logprobs: _containers.RepeatedScalarFieldContainer[float]
    token_provenance: TokenProvenance
    policy_version: str
    def __init__(self, operation: _Optional[str] = ..., request_model: _Optional[str] = ..., response_model: _Optional[str] = ..., response_id: _Optional[str] = ..., request_messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., response_messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., tools: _Optional[_Iterable[_Union[ToolDefinition, _Mapping]]] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., finish_reasons: _Optional[_Iterable[str]] = ..., streamed: bool = ..., response_format: _Optional[str] = ..., prompt_token_ids: _Optional[_Iterable[int]] = ..., completion_token_ids: _Optional[_Iterable[int]] = ..., completion_logprobs: _Optional[_Iterable[float]] = ..., token_provenance: _Optional[_Union[TokenProvenance, str]] = ..., policy_version: _Optional[str] = ...) -> None: ...

class ToolPayload(_message.Message):
    __slots__ = ("name", "call_id", "arguments", "arguments_valid", "result", "outcome", "error_message", "parameters_json_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_VALID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    call_id: str
    arguments: str
    arguments_valid: bool
    result: str
    outcome: ToolOutcome
    error_message: str
    parameters_json_schema: str
    def __init__(self, name: _Optional[str] = ..., call_id: _Optional[str] = ..., arguments: _Optional[str] = ..., arguments_valid: bool = ..., result: _Optional[str] = ..., outcome: _Optional[_Union[ToolOutcome, str]] = ..., error_message: _Optional[str] = ..., parameters_json_schema: _Optional[str] = ...) -> None: ...

class RewardPayload(_message.Message):
    __slots__ = ("name", "value", "source", "label", "primary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    source: RewardSource
    label: str
    primary: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., source: _Optional[_Union[RewardSource, str]] = ..., label: _Optional[str] = ..., primary: bool = ...) -> None: ...

class RetrievedDocument(_message.Message):
    __slots__ = ("id", "content", "score")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    id: str
    content: str
    score: float
    def __init__(self, id: _Optional[str] = ..., content: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class RetrieverPayload(_message.Message):
    __slots__ = ("query", "documents")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    query: str
    documents: _containers.RepeatedCompositeFieldContainer[RetrievedDocument]
    def __init__(self, query: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[RetrievedDocument, _Mapping]]] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("schema_version", "trace_id", "span_id", "parent_span_id", "rollout_id", "attempt_id", "producer_id", "sequence", "name", "kind", "agent_name", "start_time_unix_nano", "end_time_unix_nano", "status", "attributes", "llm", "tool", "reward", "retriever")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    END_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_FIELD_NUMBER: _ClassVar[int]
    schema_version: SchemaVersion
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    rollout_id: str
    attempt_id: str
    producer_id: str
    sequence: int
    name: str
    kind: SpanKind
    agent_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status: Status
    attributes: _containers.MessageMap[str, AttributeValue]
    llm: LlmPayload
    tool: ToolPayload
    reward: RewardPayload
    retriever: RetrieverPayload
    def __init__(self, schema_version: _Optional[_Union[SchemaVersion, str]] = ..., trace_id: _Optional[bytes] = ..., span_id: _Optional[bytes] = ..., parent_span_id: _Optional[bytes] = ..., rollout_id: _Optional[str] = ..., attempt_id: _Optional[str] = ..., producer_id: _Optional[str] = ..., sequence: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[SpanKind, str]] = ..., agent_name: _Optional[str] = ..., start_time_unix_nano: _Optional[int] = ..., end_time_unix_nano: _Optional[int] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., llm: _Optional[_Union[LlmPayload, _Mapping]] = ..., tool: _Optional[_Union[ToolPayload, _Mapping]] = ..., reward: _Optional[_Union[RewardPayload, _Mapping]] = ..., retriever: _Optional[_Union[RetrieverPayload, _Mapping]] = ...) -> None: ...

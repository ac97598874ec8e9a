from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchyard_sdk._proto.google_rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TriggerRequest(_message.Message):
    __slots__ = ("function_id", "payload", "void", "enqueue", "publish", "timeout_ms")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VOID_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    payload: _struct_pb2.Value
    void: VoidAction
    enqueue: EnqueueAction
    publish: PublishAction
    timeout_ms: int
    def __init__(self, function_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., void: _Optional[_Union[VoidAction, _Mapping]] = ..., enqueue: _Optional[_Union[EnqueueAction, _Mapping]] = ..., publish: _Optional[_Union[PublishAction, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class VoidAction(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnqueueAction(_message.Message):
    __slots__ = ("queue", "delay_ms", "not_before", "idempotency_key", "priority")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    queue: str
    delay_ms: int
    not_before: _timestamp_pb2.Timestamp
    idempotency_key: str
    priority: int
    def __init__(self, queue: _Optional[str] = ..., delay_ms: _Optional[int] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class PublishAction(_message.Message):
    __slots__ = ("topic", "delay_ms", "not_before", "idempotency_key")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    topic: str
    delay_ms: int
    not_before: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, topic: _Optional[str] = ..., delay_ms: _Optional[int] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class TriggerResponse(_message.Message):
    __slots__ = ("result", "receipt", "accepted", "published")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    receipt: EnqueueReceipt
    accepted: VoidAccepted
    published: PublishReceipt
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., receipt: _Optional[_Union[EnqueueReceipt, _Mapping]] = ..., accepted: _Optional[_Union[VoidAccepted, _Mapping]] = ..., published: _Optional[_Union[PublishReceipt, _Mapping]] = ...) -> None: ...

class EnqueueReceipt(_message.Message):
    __slots__ = ("message_receipt_id", "duplicate")
    MESSAGE_RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message_receipt_id: str
    duplicate: bool
    def __init__(self, message_receipt_id: _Optional[str] = ..., duplicate: bool = ...) -> None: ...

class VoidAccepted(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PublishReceipt(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[SubscriberReceipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[SubscriberReceipt, _Mapping]]] = ...) -> None: ...

class SubscriberReceipt(_message.Message):
    __slots__ = ("function_id", "queue", "message_receipt_id", "duplicate")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    queue: str
    message_receipt_id: str
    duplicate: bool
    def __init__(self, function_id: _Optional[str] = ..., queue: _Optional[str] = ..., message_receipt_id: _Optional[str] = ..., duplicate: bool = ...) -> None: ...

class EnqueueBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[EnqueueItem]
    def __init__(self, items: _Optional[_Iterable[_Union[EnqueueItem, _Mapping]]] = ...) -> None: ...

class EnqueueItem(_message.Message):
    __slots__ = ("function_id", "payload", "queue", "delay_ms", "not_before", "idempotency_key", "priority")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    payload: _struct_pb2.Value
    queue: str
    delay_ms: int
    not_before: _timestamp_pb2.Timestamp
    idempotency_key: str
    priority: int
    def __init__(self, function_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., queue: _Optional[str] = ..., delay_ms: _Optional[int] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class EnqueueBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EnqueueResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EnqueueResult, _Mapping]]] = ...) -> None: ...

class EnqueueResult(_message.Message):
    __slots__ = ("receipt", "error")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    receipt: EnqueueReceipt
    error: _status_pb2.Status
    def __init__(self, receipt: _Optional[_Union[EnqueueReceipt, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "register_function", "unregister_function", "result", "results", "progress")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    register_function: RegisterFunction
    unregister_function: UnregisterFunction
    result: InvocationResult
    results: ResultBatch
    progress: Progress
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., register_function: _Optional[_Union[RegisterFunction, _Mapping]] = ..., unregister_function: _Optional[_Union[UnregisterFunction, _Mapping]] = ..., result: _Optional[_Union[InvocationResult, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("invocation_id", "progress")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    progress: JobProgress
    def __init__(self, invocation_id: _Optional[str] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("value", "detail")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    value: float
    detail: _struct_pb2.Value
    def __init__(self, value: _Optional[float] = ..., detail: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[InvocationResult]
    def __init__(self, results: _Optional[_Iterable[_Union[InvocationResult, _Mapping]]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("worker_name", "sdk_name", "sdk_version", "max_in_flight", "batches")
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    SDK_NAME_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    worker_name: str
    sdk_name: str
    sdk_version: str
    max_in_flight: int
    batches: bool
    def __init__(self, worker_name: _Optional[str] = ..., sdk_name: _Optional[str] = ..., sdk_version: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., batches: bool = ...) -> None: ...

class RegisterFunction(_message.Message):
    __slots__ = ("function_id", "description")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    description: str
    def __init__(self, function_id: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class UnregisterFunction(_message.Message):
    __slots__ = ("function_id",)
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    def __init__(self, function_id: _Optional[str] = ...) -> None: ...

class InvocationResult(_message.Message):
    __slots__ = ("invocation_id", "value", "error")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    value: _struct_pb2.Value
    error: FunctionError
    def __init__(self, invocation_id: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[FunctionError, _Mapping]] = ...) -> None: ...

class FunctionError(_message.Message):
    __slots__ = ("message", "code", "stack", "non_retryable")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    NON_RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    message: str
    code: str
    stack: str
    non_retryable: bool
    def __init__(self, message: _Optional[str] = ..., code: _Optional[str] = ..., stack: _Optional[str] = ..., non_retryable: bool = ...) -> None: ...

class EngineMessage(_message.Message):
    __slots__ = ("welcome", "invoke", "cancel", "registered", "invokes", "refused")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    INVOKE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    INVOKES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    invoke: Invoke
    cancel: Cancel
    registered: Registered
    invokes: InvokeBatch
    refused: RegistrationRefused
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., invoke: _Optional[_Union[Invoke, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., registered: _Optional[_Union[Registered, _Mapping]] = ..., invokes: _Optional[_Union[InvokeBatch, _Mapping]] = ..., refused: _Optional[_Union[RegistrationRefused, _Mapping]] = ...) -> None: ...

class InvokeBatch(_message.Message):
    __slots__ = ("invokes",)
    INVOKES_FIELD_NUMBER: _ClassVar[int]
    invokes: _containers.RepeatedCompositeFieldContainer[Invoke]
    def __init__(self, invokes: _Optional[_Iterable[_Union[Invoke, _Mapping]]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("worker_id", "max_in_flight")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    max_in_flight: int
    def __init__(self, worker_id: _Optional[str] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class Invoke(_message.Message):
    __slots__ = ("invocation_id", "function_id", "payload", "delivery")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    function_id: str
    payload: _struct_pb2.Value
    delivery: Delivery
    def __init__(self, invocation_id: _Optional[str] = ..., function_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("queue", "message_receipt_id", "attempt", "max_attempts", "enqueued_at", "group", "topic")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    queue: str
    message_receipt_id: str
    attempt: int
    max_attempts: int
    enqueued_at: _timestamp_pb2.Timestamp
    group: str
    topic: str
    def __init__(self, queue: _Optional[str] = ..., message_receipt_id: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., enqueued_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., group: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("function_id",)
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    def __init__(self, function_id: _Optional[str] = ...) -> None: ...

class RegistrationRefused(_message.Message):
    __slots__ = ("function_id", "status")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    status: _status_pb2.Status
    def __init__(self, function_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("invocation_id", "reason")
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    invocation_id: str
    reason: str
    def __init__(self, invocation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

"""Typed errors: every failed engine call surfaces as a ``SwitchyardError`` subclass.

Invariant: ``error.reason`` is the engine's stable reason (``"QUEUE_NOT_FOUND"``, …) and
``error.message`` (= ``str(error)``) always reads ``REASON: text``. For an engine error the
message is the engine's status message verbatim, reason prefix included, and ``details`` is
its ``google.rpc.ErrorInfo`` metadata, as in the Rust and Node SDKs. The reason comes from
that ErrorInfo (in the ``grpc-status-details-bin`` trailer) when present, else from the
status message prefix (an UPPER_SNAKE word before ``": "``), else it is the gRPC status code
name (e.g. ``"UNAVAILABLE"`` from the transport), and then the message gets that prefix.
Errors the SDK raises itself (``INVALID_URL``, ``INVALID_ARGUMENT``, ``UNAVAILABLE`` for an
unreachable engine) have the same form. The subclass is chosen from the reason alone. A
``google.rpc.Status`` carried in a response (an ``EnqueueBatch`` item's failure) maps the
same way (``from_rpc_status``), so it raises what the same failure of a call would.

``wait_for_result`` raises three errors of its own in the same form, with reasons no engine
call answers: ``JOB_DEAD`` (``JobDeadError``: the job was dead-lettered; ``details`` and
``last_error`` carry its last error), ``JOB_CANCELLED`` (``JobCancelledError``) and
``TIMEOUT`` (``SwitchyardTimeoutError``: not finished in time); each carries the ``job`` as
last seen.

``NonRetryableError`` is the odd one out: not a failed call but what a *handler* raises to
say its job will never succeed (the engine dead-letters it at once, whatever budget is left).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc

from ._proto.google_rpc import error_details_pb2, status_pb2

if TYPE_CHECKING:
    from .jobs import Job

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
_REASON_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*): ?(.*)\Z", re.S)


class SwitchyardError(Exception):
    """An engine call failed.

    Attributes:
        reason: stable reason string, e.g. ``"QUEUE_NOT_FOUND"``.
        message: ``"REASON: text"``: the engine's status message verbatim (also ``str(e)``).
        code: the gRPC status code of the failed call.
        details: the ErrorInfo metadata (for ``FUNCTION_FAILED``: ``message``, ``code``,
            ``stack`` of the worker's error); empty when the engine sent none.

    A `message` given without its ``REASON:`` prefix gets it. `job`: for the errors of
    ``wait_for_result`` (``JOB_DEAD``, ``JOB_CANCELLED``, ``TIMEOUT``), the job as last seen;
    else None.
    """

    def __init__(self, reason: str, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
                 details: Mapping[str, str] | None = None, job: Job | None = None) -> None:
        if not message.startswith(f"{reason}:"):
            message = f"{reason}: {message}"
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code
        self.details: dict[str, str] = dict(details or {})
        self.job = job

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.message, self.code, self.details, self.job))


class QueueNotFoundError(SwitchyardError):
    """Enqueue or a Queues call named a queue absent from ``queue_configs``."""


class TopicNotFoundError(SwitchyardError):
    """A publish named a topic absent from ``topic_configs``."""


class MissingGroupFieldError(SwitchyardError):
    """A fifo queue's payload lacks its ``message_group_field`` (or it is null / not scalar)."""


class FunctionNotFoundError(SwitchyardError):
    """A sync or void call named a function no connected worker has registered."""


class _WorkerErrorDetails:
    """``error_message`` / ``error_code`` / ``stack``: a worker's error, read from ``details``."""

    details: dict[str, str]

    @property
    def error_message(self) -> str:
        """The worker's error message (for Python workers: ``str(exc)``)."""
        return self.details.get("message", "")

    @property
    def error_code(self) -> str:
        """The worker's error code (for Python workers: the exception class name)."""
        return self.details.get("code", "")

    @property
    def stack(self) -> str:
        """The worker's stack trace, as reported by its SDK."""
        return self.details.get("stack", "")


class FunctionFailedError(_WorkerErrorDetails, SwitchyardError):
    """A sync call's handler raised. ``message`` is the engine's
    (``FUNCTION_FAILED: function 'f' failed: card declined``); ``error_message``,
    ``error_code`` and ``stack`` are the worker's."""


class SwitchyardTimeoutError(SwitchyardError):
    """A sync call was not answered within its timeout (reason ``TIMEOUT``), or
    ``wait_for_result``'s job had not finished by its ``timeout_ms`` (reason ``TIMEOUT``,
    ``details`` ``queue``, ``message_receipt_id``, ``state``; ``job`` as last seen)."""


class JobNotFoundError(SwitchyardError):
    """``get_job`` / ``cancel_job`` / ``wait_for_result`` named a job the queue does not have
    (reason ``JOB_NOT_FOUND``): it never existed, or it completed or was cancelled and is no
    longer kept (the queue's ``result_retention_ms``). ``details``: ``queue``,
    ``message_receipt_id``."""


class JobDeadError(_WorkerErrorDetails, SwitchyardError):
    """``wait_for_result``: the job was dead-lettered (reason ``JOB_DEAD``). ``details``:
    ``queue``, ``message_receipt_id`` and its last error's ``message``, ``code``, ``stack``
    (also as ``error_message``, ``error_code``, ``stack``); ``job`` is the dead job."""


class JobCancelledError(SwitchyardError):
    """``wait_for_result``: the job was cancelled (reason ``JOB_CANCELLED``). ``details``:
    ``queue``, ``message_receipt_id``; ``job`` is the cancelled job."""


class PayloadTooLargeError(SwitchyardError):
    """The payload exceeds the engine's ``max_payload_bytes``."""


class InvalidArgumentError(SwitchyardError, ValueError):
    """Malformed request, e.g. an empty function id; also the enqueue options' reasons
    ``CONFLICTING_DELAY`` (both ``delay_ms`` and ``not_before``) and
    ``INVALID_IDEMPOTENCY_KEY`` (a key over 256 bytes), ``INVALID_PRIORITY`` (a priority
    outside 0–9) and ``PRIORITY_ON_FIFO_QUEUE`` (a priority on a fifo queue).

    Also a ``ValueError``: the SDK raises it itself, before any RPC, for requests it can
    already tell are malformed (an empty ``function_id``), with the engine's reason so that
    callers see the same ``INVALID_ARGUMENT`` as in the other SDKs."""


class UnavailableError(SwitchyardError):
    """The engine cannot be reached, is shutting down, or its store failed."""


class InvalidUrlError(SwitchyardError, ValueError):
    """The engine URL is not one this SDK can use (raised at construction, before any I/O).

    Also a ``ValueError``."""


class UnauthenticatedError(SwitchyardError):
    """The engine wants a token and got none (reason ``TOKEN_MISSING``) or one it does not
    know (``TOKEN_INVALID``); gRPC status ``UNAUTHENTICATED``. Pass ``token=`` or set
    ``$SWITCHYARD_TOKEN``."""


class PermissionDeniedError(SwitchyardError):
    """The token is known but may not do this (reason ``PERMISSION_DENIED``): a role it
    lacks, or a queue or function outside its globs. ``details["token"]`` is the token's
    name (never its secret); ``details`` also names what was refused (``role``, ``queue``
    or ``function``)."""


_BY_REASON: dict[str, type[SwitchyardError]] = {
    "QUEUE_NOT_FOUND": QueueNotFoundError,
    "TOPIC_NOT_FOUND": TopicNotFoundError,
    "MISSING_GROUP_FIELD": MissingGroupFieldError,
    "FUNCTION_NOT_FOUND": FunctionNotFoundError,
    "FUNCTION_FAILED": FunctionFailedError,
    "TIMEOUT": SwitchyardTimeoutError,
    "DEADLINE_EXCEEDED": SwitchyardTimeoutError,  # client-side deadline, no reason sent
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    # Malformed enqueue options: an InvalidArgumentError whose reason says which.
    "CONFLICTING_DELAY": InvalidArgumentError,
    "INVALID_IDEMPOTENCY_KEY": InvalidArgumentError,
    "INVALID_PRIORITY": InvalidArgumentError,
    "PRIORITY_ON_FIFO_QUEUE": InvalidArgumentError,
    "JOB_NOT_FOUND": JobNotFoundError,
    # wait_for_result's own outcomes (no engine call answers these)
    "JOB_DEAD": JobDeadError,
    "JOB_CANCELLED": JobCancelledError,
    "UNAVAILABLE": UnavailableError,
    "INVALID_URL": InvalidUrlError,
    "TOKEN_MISSING": UnauthenticatedError,
    "TOKEN_INVALID": UnauthenticatedError,
    "UNAUTHENTICATED": UnauthenticatedError,  # status code name, when no reason was sent
    "PERMISSION_DENIED": PermissionDeniedError,
}


class NonRetryableError(Exception):
    """Raise it from a handler when its job can never succeed (a malformed card number, a
    deleted account): the engine dead-letters the job at once with this error, whatever
    retry budget is left (``FunctionError.non_retryable``). The error's code is the class
    name — ``"NonRetryableError"``, or a subclass's own name — unless `code` is given.
    A sync call's caller sees it as any failure (``FunctionFailedError``).

    Not a ``SwitchyardError``: nothing failed in a call to the engine."""

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_non_retryable, (type(self), str(self), self.code))


def _rebuild_non_retryable(cls: type[NonRetryableError], message: str, code: str) -> NonRetryableError:
    return cls(message, code=code)


def error_class(reason: str) -> type[SwitchyardError]:
    """The subclass for a reason (``SwitchyardError`` itself for an unknown reason)."""
    return _BY_REASON.get(reason, SwitchyardError)


def _error_info(trailers: Any) -> error_details_pb2.ErrorInfo | None:
    for key, value in trailers or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            return _status_error_info(status_pb2.Status.FromString(value))
        except Exception:  # a malformed trailer is not worth failing over
            return None
    return None


def _status_error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    for any_msg in status.details:
        if any_msg.type_url == ERROR_INFO_TYPE:
            return error_details_pb2.ErrorInfo.FromString(any_msg.value)
    return None


def from_status(code: grpc.StatusCode, status_message: str, trailers: Any) -> SwitchyardError:
    """Build the typed error for a failed call from its code, message and trailers."""
    return _from_parts(code, status_message, _error_info(trailers))


def _from_parts(code: grpc.StatusCode, status_message: str,
                info: error_details_pb2.ErrorInfo | None) -> SwitchyardError:
    message = status_message or ""
    details: dict[str, str] = {}
    if info is not None and info.reason:
        reason = info.reason
        details = dict(info.metadata)
    else:
        prefix = _REASON_PREFIX.match(message)
        reason = prefix.group(1) if prefix else code.name
    return error_class(reason)(reason, message, code, details)


_CODES: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def from_rpc_status(status: status_pb2.Status) -> SwitchyardError:
    """The typed error for a ``google.rpc.Status`` carried in a response (an
    ``EnqueueBatch`` item's failure): the same error a call failing with that status —
    code, message, ErrorInfo — raises."""
    try:
        info = _status_error_info(status)
    except Exception:  # as for a malformed trailer
        info = None
    return _from_parts(_CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.message, info)


def from_rpc_error(err: grpc.RpcError) -> SwitchyardError:
    """Translate a grpc error (sync or aio) into a ``SwitchyardError``."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    return from_status(code or grpc.StatusCode.UNKNOWN, message or "", trailers)

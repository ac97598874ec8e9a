"""What a worker sends back for an invocation: its result (a value or an error) and the
batching of consecutive results into one ``results`` message.

Invariant: a handler's outcome becomes exactly one ``InvocationResult``: its value encoded
as JSON (refused values raise, the caller turns that into an error result), or its
exception as ``FunctionError {message, code, stack, non_retryable}`` — code = the exception
class name (a ``NonRetryableError``'s own ``code``), ``non_retryable`` set only for a
``NonRetryableError``. ``coalesce`` keeps the order of what it is given.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import Any, Union

from ._json import Encoder, fill_value
from ._proto.v1 import engine_pb2
from .errors import NonRetryableError

_WorkerMessage = engine_pb2.WorkerMessage
_InvocationResult = engine_pb2.InvocationResult

Outgoing = Union[engine_pb2.WorkerMessage, engine_pb2.InvocationResult, None]
"""What the writer sends: a message, a result (batched with its neighbours), or None
(half-close)."""


def value_outcome(invocation_id: str, value: Any, default: Encoder | None = None
                  ) -> engine_pb2.InvocationResult:
    """The result for a handler that returned `value` (filled in place: no copies).
    Raises TypeError for a value that is not JSON, InvalidArgumentError for a number
    JSON cannot carry exactly."""
    result = _InvocationResult(invocation_id=invocation_id)
    fill_value(result.value, value, default)
    return result


def error_outcome(invocation_id: str, exc: BaseException) -> engine_pb2.InvocationResult:
    """The result for a handler that raised: code = exception class name (a
    ``NonRetryableError``'s ``code``), ``non_retryable`` for a ``NonRetryableError``."""
    permanent = isinstance(exc, NonRetryableError)
    return _InvocationResult(
        invocation_id=invocation_id,
        error=engine_pb2.FunctionError(
            message=str(exc),
            code=exc.code if isinstance(exc, NonRetryableError) else type(exc).__name__,
            stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            non_retryable=permanent,
        ),
    )


def error_result(invocation_id: str, exc: BaseException) -> engine_pb2.WorkerMessage:
    """The ``result`` message for a handler that raised."""
    return _WorkerMessage(result=error_outcome(invocation_id, exc))


def coalesce(items: Iterable[Outgoing], batch: bool = True) -> list[engine_pb2.WorkerMessage | None]:
    """Turn queued items into the messages to write, in order: each run of consecutive
    results becomes one ``results`` batch (a run of one stays a plain ``result``); with
    `batch` False every result is a plain ``result``."""
    out: list[engine_pb2.WorkerMessage | None] = []
    run: list[engine_pb2.InvocationResult] = []
    for item in items:
        if type(item) is _InvocationResult:
            if batch:
                run.append(item)
            else:
                out.append(_WorkerMessage(result=item))
            continue
        if run:
            out.append(_results_message(run))
            run = []
        out.append(item)  # type: ignore[arg-type]  # a WorkerMessage or None
    if run:
        out.append(_results_message(run))
    return out


def _results_message(run: list[engine_pb2.InvocationResult]) -> engine_pb2.WorkerMessage:
    if len(run) == 1:
        return _WorkerMessage(result=run[0])
    msg = _WorkerMessage()
    msg.results.results.extend(run)  # one copy (nesting constructors would copy twice)
    return msg

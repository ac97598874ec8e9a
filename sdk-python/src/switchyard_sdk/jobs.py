"""One job by its receipt: the ``Job`` view of ``Queues/GetJob``, the ``CancelJob`` answer,
and the wait-for-result poll.

Invariant: a ``Job`` is a frozen, plain-data copy of the engine's ``JobInfo`` (snake_case
fields, JSON values as Python values, timestamps as aware UTC ``datetime`` or ``None``); the
SDK never infers a state — ``state`` is the engine's word. ``wait_for_result`` ends in
exactly one way per call: the result of a ``completed`` job, ``JobDeadError`` (``dead``),
``JobCancelledError`` (``cancelled``), ``SwitchyardTimeoutError`` (reason ``TIMEOUT``, not
finished by the deadline) or the engine's own error (``JobNotFoundError``, …) unchanged.

The poll, step by step:
1. ``GetJob``; a finished state ends the wait as above.
2. Otherwise, if the deadline has passed, raise ``TIMEOUT``; else sleep the next delay of
   ``poll_delays()`` (50 ms, doubling, at most 1 s), cut short at the deadline, and go to 1.
   So the last look is at the deadline, never after it by more than one ``GetJob``, and
   each ``GetJob`` gets the time left plus ``LOOK_SLACK_S`` (at most 30 s) as its own
   deadline, so an engine that stops answering cannot hold the wait much past its timeout.

Not done: server push. A result is only readable while the queue keeps it
(``result_retention_ms``; the engine's default 0 deletes a completed job at once, so a
wait on such a queue ends in ``JOB_NOT_FOUND`` once the job completes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import grpc

from ._json import to_python
from ._proto.v1 import engine_pb2, queues_pb2
from .errors import JobCancelledError, JobDeadError, SwitchyardTimeoutError
from .queues import FunctionErrorInfo, function_error_from_proto, timestamp_to_datetime

JobState = Literal["ready", "waiting", "delayed", "in_flight", "retrying", "completed", "dead",
                   "cancelled"]
"""The engine's state words: ``ready`` (due, waiting for a worker slot), ``waiting`` (fifo:
behind an earlier job of its group), ``delayed`` (not yet due), ``in_flight``, ``retrying``
(an attempt failed; the next is due at ``due_at``), and the finished ``completed``, ``dead``
(in the DLQ) and ``cancelled``."""

FINISHED_STATES: frozenset[str] = frozenset({"completed", "dead", "cancelled"})

CancelOutcome = Literal["cancelled", "cancelling", "already_cancelled", "already_finished"]
"""``cancelled``: it was ready, waiting or delayed and will never run; ``cancelling``: it is
in flight, its worker is told and it ends cancelled; ``already_cancelled``: an earlier cancel
did it (or is doing it); ``already_finished``: it had completed or been dead-lettered."""

DEFAULT_WAIT_TIMEOUT_MS = 30_000
LOOK_SLACK_S = 5.0
MAX_LOOK_S = 30.0
FIRST_POLL_S = 0.05
MAX_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A handler's latest progress report: a number it chose and/or a small JSON value."""

    value: float | None = None
    detail: Any = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job as ``get_job`` sees it. ``result`` is the handler's value once ``completed``
    (else None); ``last_error`` the last failed attempt's error (None if none failed);
    ``due_at`` is set while ``delayed`` / ``retrying``, ``finished_at`` once finished,
    ``expires_at`` while a finished job is kept; ``cancel_requested``: a cancel reached it
    in flight and it ends ``cancelled`` when its attempt stops."""

    message_receipt_id: str
    queue: str
    function_id: str
    state: JobState
    attempts: int
    max_attempts: int
    last_error: FunctionErrorInfo | None
    payload: Any
    group: str | None
    priority: int
    enqueued_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    result: Any
    progress: JobProgress | None
    cancel_requested: bool
    # Set for a topic subscriber's job: its topic; else None.
    topic: str | None

    @property
    def finished(self) -> bool:
        """True once ``completed``, ``dead`` or ``cancelled``: the state no longer changes."""
        return self.state in FINISHED_STATES


@dataclass(frozen=True, slots=True)
class CancelResult:
    """``cancel_job``'s answer: what the cancel did, and the job after it."""

    outcome: CancelOutcome
    job: Job


def progress_from_proto(p: engine_pb2.JobProgress) -> JobProgress:
    return JobProgress(value=p.value if p.HasField("value") else None,
                       detail=to_python(p.detail) if p.HasField("detail") else None)


def job_from_proto(j: queues_pb2.JobInfo) -> Job:
    return Job(
        message_receipt_id=j.message_receipt_id,
        queue=j.queue,
        function_id=j.function_id,
        state=cast(JobState, j.state),
        attempts=j.attempts,
        max_attempts=j.max_attempts,
        last_error=function_error_from_proto(j.last_error) if j.HasField("last_error") else None,
        payload=to_python(j.payload),
        group=j.group or None,
        priority=j.priority,
        enqueued_at=timestamp_to_datetime(j.enqueued_at, j.HasField("enqueued_at")),
        due_at=timestamp_to_datetime(j.due_at, j.HasField("due_at")),
        finished_at=timestamp_to_datetime(j.finished_at, j.HasField("finished_at")),
        expires_at=timestamp_to_datetime(j.expires_at, j.HasField("expires_at")),
        result=to_python(j.result) if j.HasField("result") else None,
        progress=progress_from_proto(j.progress) if j.HasField("progress") else None,
        cancel_requested=j.cancel_requested,
        topic=j.topic or None,
    )


def cancel_result_from_proto(r: queues_pb2.CancelJobResponse) -> CancelResult:
    return CancelResult(outcome=cast(CancelOutcome, r.outcome), job=job_from_proto(r.job))


def poll_delays() -> Iterator[float]:
    """The waits between two looks, in seconds: 0.05, 0.1, 0.2, 0.4, 0.8, then 1.0 for ever."""
    delay = FIRST_POLL_S
    while True:
        yield delay
        delay = min(delay * 2, MAX_POLL_S)


def check_timeout_ms(timeout_ms: object) -> int:
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ValueError(f"timeout_ms must be a positive int of milliseconds, got {timeout_ms!r}")
    return timeout_ms


async def wait_for_result(get_job: Callable[[float], Awaitable[Job]], queue: str,
                          message_receipt_id: str, timeout_ms: int, *, clock: Callable[[], float],
                          sleep: Callable[[float], Awaitable[Any]]) -> Any:
    """Poll `get_job` (called with its call's deadline in seconds) until the job finishes
    (see the module doc); `clock` (seconds, monotonic) and `sleep` are the loop's, injected
    so that tests step time themselves."""
    deadline = clock() + timeout_ms / 1000
    delays = poll_delays()
    while True:
        job = await get_job(min(max(deadline - clock(), 0.0) + LOOK_SLACK_S, MAX_LOOK_S))
        if job.state == "completed":
            return job.result
        if job.state == "dead":
            raise _dead(job)
        if job.state == "cancelled":
            raise JobCancelledError(
                "JOB_CANCELLED", f"JOB_CANCELLED: job '{job.message_receipt_id}' of queue '{job.queue}' "
                "was cancelled", grpc.StatusCode.CANCELLED, _ids(job), job)
        remaining = deadline - clock()
        if remaining <= 0:
            raise SwitchyardTimeoutError(
                "TIMEOUT", f"TIMEOUT: job '{message_receipt_id}' of queue '{queue}' did not finish "
                f"within {timeout_ms} ms (it is {job.state})", grpc.StatusCode.DEADLINE_EXCEEDED,
                {**_ids(job), "state": job.state}, job)
        await sleep(min(next(delays), remaining))


def _ids(job: Job) -> dict[str, str]:
    return {"queue": job.queue, "message_receipt_id": job.message_receipt_id}


def _dead(job: Job) -> JobDeadError:
    error = job.last_error
    details = _ids(job)
    # the same text as the Rust and Node SDKs'
    text = f"JOB_DEAD: job '{job.message_receipt_id}' of queue '{job.queue}' was dead-lettered"
    if error is not None:
        details.update(message=error.message, code=error.code, stack=error.stack)
        text += f" after {job.attempts} attempt(s): {error.code}: {error.message}"
    return JobDeadError("JOB_DEAD", text, grpc.StatusCode.FAILED_PRECONDITION, details, job)

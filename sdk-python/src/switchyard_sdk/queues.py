"""Plain-data views of the ``Queues`` service answers (queue stats and dead letters).

Invariant: these dataclasses are frozen copies of the proto answers with snake_case
fields, JSON payloads as Python values and timestamps as aware UTC ``datetime`` (``None``
when unset); they hold no reference to gRPC objects, so they pickle and compare plainly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from google.protobuf import timestamp_pb2

from ._json import to_python
from ._proto.v1 import engine_pb2, queues_pb2


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The effective configuration of a queue, defaults applied."""

    max_retries: int
    backoff_ms: int
    concurrency: int
    type: str
    message_group_field: str
    timeout_ms: int
    max_backoff_ms: int | None
    jitter: bool
    # How long an idempotency key is remembered (the engine's default is 300000).
    dedup_window_ms: int = 0
    # Set for a topic subscriber's queue ("<topic>/<function_id>"): its topic; else None.
    topic: str | None = None
    # How long completed and cancelled jobs are kept for get_job (0: completed jobs are
    # deleted at once, cancelled ones kept 60 s).
    result_retention_ms: int = 0
    # The queue's rate limit, if it has one.
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `per_second` attempts start per second, up to `burst` at once (a
    ``per_minute`` limit in the config reads as its ``per_second`` equivalent)."""

    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Gauges (ready, delayed, in_flight, dead) and counters since the store was created."""

    ready: int
    delayed: int
    in_flight: int
    dead: int
    enqueued: int
    completed: int
    failed: int
    dead_lettered: int


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    config: QueueConfig
    stats: QueueStats


@dataclass(frozen=True, slots=True)
class FunctionErrorInfo:
    """A worker's error as the engine stored it: message, code (e.g. "ValueError"), stack;
    `non_retryable`: the handler raised ``NonRetryableError`` (no retry was made)."""

    message: str
    code: str
    stack: str
    non_retryable: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_receipt_id: str
    queue: str
    function_id: str
    payload: Any
    group: str
    attempts: int
    last_error: FunctionErrorInfo
    enqueued_at: datetime | None
    dead_lettered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One page of a queue's DLQ; ``next_page_token`` is ``""`` on the last page."""

    entries: list[DeadLetter]
    next_page_token: str


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp, present: bool = True) -> datetime | None:
    if not present:
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def queue_info_from_proto(q: queues_pb2.QueueInfo) -> QueueInfo:
    c, s = q.config, q.stats
    return QueueInfo(
        name=q.name,
        config=QueueConfig(
            max_retries=c.max_retries, backoff_ms=c.backoff_ms, concurrency=c.concurrency,
            type=c.type, message_group_field=c.message_group_field, timeout_ms=c.timeout_ms,
            max_backoff_ms=c.max_backoff_ms if c.HasField("max_backoff_ms") else None,
            jitter=c.jitter, dedup_window_ms=c.dedup_window_ms, topic=c.topic or None,
            result_retention_ms=c.result_retention_ms,
            rate_limit=RateLimit(per_second=c.rate_limit.per_second, burst=c.rate_limit.burst)
            if c.HasField("rate_limit") else None,
        ),
        stats=QueueStats(
            ready=s.ready, delayed=s.delayed, in_flight=s.in_flight, dead=s.dead,
            enqueued=s.enqueued, completed=s.completed, failed=s.failed,
            dead_lettered=s.dead_lettered,
        ),
    )


def function_error_from_proto(e: engine_pb2.FunctionError) -> FunctionErrorInfo:
    return FunctionErrorInfo(message=e.message, code=e.code, stack=e.stack,
                             non_retryable=e.non_retryable)


def dead_letter_from_proto(d: queues_pb2.DeadLetter) -> DeadLetter:
    return DeadLetter(
        message_receipt_id=d.message_receipt_id,
        queue=d.queue,
        function_id=d.function_id,
        payload=to_python(d.payload),
        group=d.group,
        attempts=d.attempts,
        last_error=function_error_from_proto(d.last_error),
        enqueued_at=timestamp_to_datetime(d.enqueued_at, d.HasField("enqueued_at")),
        dead_lettered_at=timestamp_to_datetime(d.dead_lettered_at, d.HasField("dead_lettered_at")),
    )


def dead_letter_page_from_proto(r: queues_pb2.ListDeadLettersResponse) -> DeadLetterPage:
    return DeadLetterPage(entries=[dead_letter_from_proto(d) for d in r.entries],
                          next_page_token=r.next_page_token)

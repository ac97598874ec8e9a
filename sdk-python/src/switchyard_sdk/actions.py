"""What a trigger does with its call: the actions of ``TriggerRequest``, and the enqueue
options they carry.

Invariant: an action is an immutable value, checked when it is built (a naive
``not_before``, a negative ``delay_ms`` or a non-str key never reach the engine);
``None`` (no action) means a synchronous call. ``TriggerAction.Enqueue(queue="payment")``
and ``TriggerAction.Void()`` mirror the ``enqueue`` / ``void`` arms of the proto oneof.
What only the engine can judge (``delay_ms`` together with ``not_before``:
``CONFLICTING_DELAY``; a key over 256 bytes: ``INVALID_IDEMPOTENCY_KEY``; a ``priority``
above 9: ``INVALID_PRIORITY``; any priority on a fifo queue: ``PRIORITY_ON_FIFO_QUEUE``) is
left to the engine, so every SDK answers it with the engine's own error. A negative
priority cannot be sent at all (the field is unsigned), so it is refused here with the
engine's reason, ``INVALID_PRIORITY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Union

import grpc
from google.protobuf import timestamp_pb2

from .errors import InvalidArgumentError


def fill_options(msg: Any, delay_ms: int | None, not_before: datetime | None,
                 idempotency_key: str | None, priority: int | None = None) -> None:
    """Set checked options on an ``EnqueueAction``/``EnqueueItem``/``PublishAction`` message
    (`priority`: the first two only; a publish takes none)."""
    if priority is not None:
        msg.priority = priority
    if delay_ms is not None:
        msg.delay_ms = delay_ms
    if not_before is not None:
        msg.not_before.CopyFrom(datetime_to_timestamp(not_before))
    if idempotency_key:
        msg.idempotency_key = idempotency_key


def check_options(delay_ms: object, not_before: object, idempotency_key: object) -> None:
    """Raise ``TypeError``/``ValueError`` for options that are malformed in themselves."""
    if delay_ms is not None:
        if not isinstance(delay_ms, int) or isinstance(delay_ms, bool):
            raise TypeError(f"delay_ms must be an int of milliseconds, got {type(delay_ms).__name__}")
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, got {delay_ms}")
    if not_before is not None:
        if not isinstance(not_before, datetime):
            raise TypeError(f"not_before must be a datetime, got {type(not_before).__name__}")
        if not_before.tzinfo is None or not_before.utcoffset() is None:
            raise ValueError("not_before must be timezone-aware (e.g. datetime.now(timezone.utc) + "
                             "timedelta(minutes=10)); a naive datetime has no single instant")
    if idempotency_key is not None and not isinstance(idempotency_key, str):
        raise TypeError(f"idempotency_key must be a str, got {type(idempotency_key).__name__}")


def check_priority(priority: object) -> None:
    """Refuse a priority that is not an int (``TypeError``) or is negative
    (``InvalidArgumentError``, reason ``INVALID_PRIORITY``, as the engine says for > 9)."""
    if priority is None:
        return
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"priority must be an int from 0 to 9, got {type(priority).__name__}")
    if priority < 0:
        raise InvalidArgumentError(
            "INVALID_PRIORITY",
            f"INVALID_PRIORITY: priority {priority} is out of range: 0 (default, lowest) to 9 (highest)",
            grpc.StatusCode.INVALID_ARGUMENT, {"priority": str(priority), "max": "9"})


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def datetime_to_timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime as a protobuf Timestamp (microsecond precision, as datetime),
    computed here so that it does not depend on how a protobuf release's
    ``Timestamp.FromDatetime`` treats time zones."""
    delta = when - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86_400 + delta.seconds,
                                   nanos=delta.microseconds * 1000)


@dataclass(frozen=True, slots=True)
class EnqueueAction:
    """Durably enqueue the call to a queue declared in ``queue_configs``, with options."""

    queue: str
    # The job is delayed until the engine's now + delay_ms (at most one of delay_ms and
    # not_before).
    delay_ms: int | None = None
    # The job is delayed until this instant (timezone-aware; one in the past runs now).
    not_before: datetime | None = None
    # A repeat within the queue's dedup_window_ms creates no job and answers the first
    # job's receipt with duplicate true. None or "" = no key.
    idempotency_key: str | None = None
    # 0 (the engine's default, lowest) to 9: a ready job of higher priority starts before
    # any of lower priority; equal priorities in enqueue order. Standard queues only.
    priority: int | None = None

    def __post_init__(self) -> None:
        check_options(self.delay_ms, self.not_before, self.idempotency_key)
        check_priority(self.priority)

    def fill(self, msg: Any) -> None:
        """Set this action's options on an ``EnqueueAction``/``EnqueueItem`` message."""
        fill_options(msg, self.delay_ms, self.not_before, self.idempotency_key, self.priority)


@dataclass(frozen=True, slots=True)
class VoidAction:
    """Fire and forget: accepted once a worker for the function is connected."""


Action = Union[EnqueueAction, VoidAction]


class TriggerAction:
    """Constructors for trigger actions (the names match the other SDKs)."""

    @staticmethod
    def Enqueue(options: Mapping[str, Any] | None = None, *, queue: str | None = None,  # noqa: N802
                delay_ms: int | None = None, not_before: datetime | None = None,
                idempotency_key: str | None = None, priority: int | None = None) -> EnqueueAction:
        """``TriggerAction.Enqueue(queue="payment", delay_ms=60_000, idempotency_key="ord_1")``
        (or ``Enqueue({"queue": "payment", "delay_ms": 60_000})``); ``priority=9`` on a
        standard queue starts the job before ready jobs of lower priority."""
        if options is not None:
            unknown = set(options) - {"queue", "delay_ms", "not_before", "idempotency_key", "priority"}
            if unknown:
                raise ValueError(f"unknown enqueue options: {', '.join(sorted(unknown))}")
            queue = queue if queue is not None else options.get("queue")
            delay_ms = delay_ms if delay_ms is not None else options.get("delay_ms")
            not_before = not_before if not_before is not None else options.get("not_before")
            if idempotency_key is None:
                idempotency_key = options.get("idempotency_key")
            priority = priority if priority is not None else options.get("priority")
        if not queue:
            raise ValueError("TriggerAction.Enqueue needs a queue name")
        return EnqueueAction(queue, delay_ms, not_before, idempotency_key, priority)

    @staticmethod
    def Void() -> VoidAction:  # noqa: N802
        """Fire-and-forget action."""
        return VoidAction()

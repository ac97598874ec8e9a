"""The per-invocation context handed to a handler as its optional second argument.

Invariant: a Context describes exactly one invocation and never changes, except that
``cancelled`` flips to True (once) when the engine sends ``cancel`` for it, and
``progress`` is the latest report the handler made with ``set_progress``. Fields that
only queued jobs have (queue, message_receipt_id, group, enqueued_at, topic) are ``None`` for
synchronous and void calls, whose attempt and max_attempts are both 1. Attempts are the
engine's count: the SDK only reports what the delivery says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._json import to_value
from .jobs import JobProgress


@dataclass(slots=True)
class Context:
    """What a handler may know about the invocation it is serving."""

    function_id: str
    invocation_id: str
    attempt: int = 1
    max_attempts: int = 1
    queue: str | None = None
    message_receipt_id: str | None = None
    group: str | None = None
    enqueued_at: datetime | None = None
    # For a topic subscriber's job: the topic it was published to; else None.
    topic: str | None = None
    worker_id: str = ""
    cancelled: bool = field(default=False, compare=False)
    # The latest report of set_progress (None before the first).
    progress: JobProgress | None = field(default=None, compare=False)
    # Sends a report to the engine (set by the worker for queued jobs only).
    _reporter: Callable[[float | None, Any], None] | None = field(default=None, repr=False, compare=False)

    @property
    def is_queued(self) -> bool:
        """True for a job delivered from a queue (it has a receipt id)."""
        return self.message_receipt_id is not None

    def set_progress(self, value: float | None = None, detail: Any = None) -> None:
        """Report the job's progress: a number you choose (e.g. percent done) and/or a small
        JSON value (at most 4 KiB encoded). ``get_job`` shows the latest report while the
        job runs; each report replaces the previous one whole. Cheap to call often: the SDK
        sends only the latest of a burst and the engine stores at most one every 500 ms.
        For a synchronous or void call (no job) it only updates ``ctx.progress``.
        Callable from ``def`` and ``async def`` handlers alike; raises ``TypeError`` for a
        `value` that is not a number or a `detail` that is not JSON, ``ValueError`` for a
        NaN or infinite `value`."""
        if value is not None:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"progress value must be a number, got {type(value).__name__}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"progress value must be finite, got {value}")
        if self._reporter is not None:
            self._reporter(value, detail)  # encodes detail (raises for non-JSON)
        elif detail is not None:
            to_value(detail)  # the same check without a worker
        self.progress = JobProgress(value=value, detail=detail)

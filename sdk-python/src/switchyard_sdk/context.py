"""The per-invocation context handed to a handler as its optional second argument.

Invariant: a Context describes exactly one invocation and never changes, except that
``cancelled`` flips to True (once) when the engine sends ``cancel`` for it. Fields that
only queued jobs have (queue, message_receipt_id, group, enqueued_at, topic) are ``None`` for
synchronous and void calls, whose attempt and max_attempts are both 1. Attempts are the
engine's count: the SDK only reports what the delivery says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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

    @property
    def is_queued(self) -> bool:
        """True for a job delivered from a queue (it has a receipt id)."""
        return self.message_receipt_id is not None

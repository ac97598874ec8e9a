"""What a trigger does with its call: the three actions of ``TriggerRequest``.

Invariant: an action is an immutable value; ``None`` (no action) means a synchronous call.
``TriggerAction.Enqueue(queue="payment")`` and ``TriggerAction.Void()`` mirror the
``enqueue`` / ``void`` arms of the proto oneof.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class EnqueueAction:
    """Durably enqueue the call to a queue declared in ``queue_configs``."""

    queue: str


@dataclass(frozen=True, slots=True)
class VoidAction:
    """Fire and forget: accepted once a worker for the function is connected."""


Action = Union[EnqueueAction, VoidAction]


class TriggerAction:
    """Constructors for trigger actions (the names match the other SDKs)."""

    @staticmethod
    def Enqueue(options: Mapping[str, str] | None = None, *, queue: str | None = None) -> EnqueueAction:  # noqa: N802
        """``TriggerAction.Enqueue(queue="payment")`` (or ``Enqueue({"queue": "payment"})``)."""
        if queue is None and options is not None:
            queue = options.get("queue")
        if not queue:
            raise ValueError("TriggerAction.Enqueue needs a queue name")
        return EnqueueAction(queue=queue)

    @staticmethod
    def Void() -> VoidAction:  # noqa: N802
        """Fire-and-forget action."""
        return VoidAction()

"""Switchyard Python SDK: run functions as a worker and trigger them as a caller.

Invariant: this package is a thin client of the gRPC contract in ``proto/switchyard/v1``;
retries, attempt counting, FIFO order and dead-lettering are the engine's job, never the
SDK's.

Map of the package:
- ``worker``   — ``register_worker`` / ``Worker``: the public API (calls + lifecycle)
- ``_stream``  — the ``Engine.Connect`` session: hello, register, invoke → result, reconnect
- ``_batcher`` — coalesces concurrent enqueues into ``Engine.EnqueueBatch`` calls
- ``_handler`` — adapts ``def``/``async def`` handlers with ``(payload)``/``(payload, ctx)``
- ``_loop``    — the private event-loop thread that owns all gRPC objects
- ``context``  — ``Context`` handed to handlers (attempt, queue, receipt id, …)
- ``actions``  — ``TriggerAction.Enqueue`` / ``TriggerAction.Void``
- ``errors``   — ``SwitchyardError`` and one subclass per engine reason
- ``queues``   — dataclasses for the Queues service answers
- ``_json``    — JSON ⇄ ``google.protobuf.Value``
- ``_proto``   — generated stubs (``scripts/gen_stubs.py``), never edited by hand
"""

from ._version import __version__
from .actions import Action, EnqueueAction, TriggerAction, VoidAction
from .context import Context
from .errors import (FunctionFailedError, FunctionNotFoundError, InvalidArgumentError,
                     MissingGroupFieldError, PayloadTooLargeError, QueueNotFoundError,
                     SwitchyardError, SwitchyardTimeoutError, UnavailableError)
from .queues import (DeadLetter, DeadLetterPage, FunctionErrorInfo, QueueConfig, QueueInfo,
                     QueueStats)
from .worker import EnqueueReceipt, TriggerRequest, Worker, register_worker

__all__ = [
    "__version__",
    "register_worker", "Worker", "TriggerRequest", "EnqueueReceipt",
    "TriggerAction", "Action", "EnqueueAction", "VoidAction",
    "Context",
    "SwitchyardError", "QueueNotFoundError", "MissingGroupFieldError", "FunctionNotFoundError",
    "FunctionFailedError", "SwitchyardTimeoutError", "PayloadTooLargeError",
    "InvalidArgumentError", "UnavailableError",
    "QueueInfo", "QueueConfig", "QueueStats", "DeadLetter", "DeadLetterPage", "FunctionErrorInfo",
]

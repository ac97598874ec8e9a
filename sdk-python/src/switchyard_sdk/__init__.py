"""Switchyard Python SDK: run functions as a worker and trigger them as a caller.

Invariant: this package is a thin client of the gRPC contract in ``proto/switchyard/v1``;
retries, attempt counting, FIFO order and dead-lettering are the engine's job, never the
SDK's.

Map of the package:
- ``client``   — ``connect`` / ``Client``: calls and Queues calls, never a worker
- ``worker``   — ``register_worker`` / ``Worker``: a Client that serves functions (lifecycle,
  hooks, fail-fast)
- ``_stream``  — the ``Engine.Connect`` session: hello, register, invoke → result, reconnect
  with jitter (``_backoff``), connection and job logs
- ``_results`` — a handler's outcome as its ``InvocationResult`` (``NonRetryableError``
  included), and results batching
- ``_progress`` — ``ctx.set_progress`` reports on their way to the stream (latest wins)
- ``_channel`` — the URL grammar, the channel, transport-failure causes
- ``_security`` — ``token`` and ``tls`` (``TlsOptions``): bearer header, TLS credentials
- ``_batcher`` — coalesces concurrent enqueues into ``Engine.EnqueueBatch`` calls
- ``_handler`` — adapts ``def``/``async def`` handlers with ``(payload)``/``(payload, ctx)``
- ``_loop``    — the loop that owns all gRPC objects: the app's, or a private thread
- ``context``  — ``Context`` handed to handlers (attempt, queue, receipt id, …, ``set_progress``)
- ``jobs``     — ``Job`` (``get_job``), ``CancelResult`` (``cancel_job``), the
  ``wait_for_result`` poll
- ``typed``    — ``Function[P, R]``: typed handlers and calls
- ``actions``  — ``TriggerAction.Enqueue`` (with its options) / ``TriggerAction.Void``
- ``receipts`` — ``EnqueueReceipt`` / ``PublishReceipt``: what an enqueue and a publish answer
- ``errors``   — ``SwitchyardError`` and one subclass per engine reason; ``NonRetryableError``
- ``queues``   — dataclasses for the Queues service answers
- ``_json``    — JSON ⇄ ``google.protobuf.Value`` (exact or refused; ``default=`` encoders)
- ``_proto``   — generated stubs (``scripts/gen_stubs.py``), never edited by hand
"""

from ._version import __version__
from ._json import Encoder, json_default
from .actions import Action, EnqueueAction, TriggerAction, VoidAction
from .client import Client, TriggerRequest, connect
from .context import Context
from .errors import (FunctionFailedError, FunctionNotFoundError, InvalidArgumentError,
                     InvalidUrlError, JobCancelledError, JobDeadError, JobNotFoundError,
                     MissingGroupFieldError, NonRetryableError, PayloadTooLargeError,
                     PermissionDeniedError, QueueNotFoundError, SwitchyardError,
                     SwitchyardTimeoutError, TopicNotFoundError, UnauthenticatedError,
                     UnavailableError)
from .jobs import CancelOutcome, CancelResult, Job, JobProgress, JobState
from ._security import TlsOptions
from .receipts import EnqueueReceipt, PublishReceipt, SubscriberReceipt
from .queues import (DeadLetter, DeadLetterPage, FunctionErrorInfo, QueueConfig, QueueInfo,
                     QueueStats, RateLimit)
from .typed import Function
from .worker import Hook, Worker, register_worker, register_worker_async

__all__ = [
    "__version__",
    "register_worker", "register_worker_async", "Worker", "Hook",
    "connect", "Client", "TriggerRequest", "EnqueueReceipt", "PublishReceipt", "SubscriberReceipt",
    "Function",
    "Encoder", "json_default",
    "TriggerAction", "Action", "EnqueueAction", "VoidAction",
    "Context",
    "SwitchyardError", "QueueNotFoundError", "TopicNotFoundError", "MissingGroupFieldError",
    "FunctionNotFoundError",
    "FunctionFailedError", "SwitchyardTimeoutError", "PayloadTooLargeError",
    "InvalidArgumentError", "UnavailableError", "InvalidUrlError",
    "UnauthenticatedError", "PermissionDeniedError", "TlsOptions",
    "JobNotFoundError", "JobDeadError", "JobCancelledError", "NonRetryableError",
    "QueueInfo", "QueueConfig", "QueueStats", "RateLimit", "DeadLetter", "DeadLetterPage",
    "FunctionErrorInfo",
    "Job", "JobState", "JobProgress", "CancelResult", "CancelOutcome",
]

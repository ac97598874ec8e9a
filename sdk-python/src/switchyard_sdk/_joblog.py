"""One log line per job event, with the engine's field names — never the payload.

Invariant: every job a worker starts is logged once when it starts (DEBUG) and once when it
ends: DEBUG for ``outcome: completed | cancelled``, WARN with the exception's traceback
(``exc_info``) and its message for ``outcome: failed``. Fields (``extra=``, so they are
``LogRecord`` attributes): ``queue``, ``function_id``, ``message_receipt_id``, ``attempt``,
``outcome``, ``duration_ms``, ``error_code`` (the exception class name, as sent to the
engine); the queue fields are None for a direct (sync or void) call. DEBUG lines cost one
``isEnabledFor`` check when DEBUG is off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ._proto.v1 import engine_pb2

log = logging.getLogger(__name__)


def _job_fields(inv: engine_pb2.Invoke, outcome: str | None, started: float | None,
                error_code: str | None = None) -> dict[str, Any]:
    """The engine's job-event fields for `inv` (queue fields None for a direct call)."""
    queued = inv.HasField("delivery")
    d = inv.delivery
    fields: dict[str, Any] = {
        "queue": d.queue if queued else None, "function_id": inv.function_id,
        "message_receipt_id": d.message_receipt_id if queued else None,
        "attempt": (d.attempt or 1) if queued else 1}
    if outcome is not None:
        fields["outcome"] = outcome
    if started is not None:
        fields["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    if error_code is not None:
        fields["error_code"] = error_code
    return fields


def log_job_start(inv: engine_pb2.Invoke) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("job started: %s", inv.function_id, extra=_job_fields(inv, None, None))


def log_job_end(inv: engine_pb2.Invoke, started: float, exc: BaseException | None,
                cancelled: bool = False) -> None:
    """One line per finished job: WARN with the traceback for a failure, else DEBUG."""
    if exc is not None:
        code = type(exc).__name__
        fields = _job_fields(inv, "failed", started, code)
        where = f" (queue {fields['queue']}, attempt {fields['attempt']})" if fields["queue"] else ""
        log.warning("job failed: %s%s: %s: %s", inv.function_id, where, code, exc,
                    exc_info=(type(exc), exc, exc.__traceback__), extra=fields)
    elif log.isEnabledFor(logging.DEBUG):
        outcome = "cancelled" if cancelled else "completed"
        log.debug("job %s: %s", outcome, inv.function_id, extra=_job_fields(inv, outcome, started))

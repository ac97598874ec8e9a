"""A running handler's progress reports (``ctx.set_progress``) on their way to the engine as
``WorkerMessage.progress``.

Invariant: the latest report of an invocation is the one that goes out. A report made while
an earlier one of the same invocation is still waiting for the event loop replaces it, so a
handler reporting in a tight loop costs one message per loop turn, never a timer's delay;
a report after its invocation ended (answered, cancelled, or its stream gone) is dropped —
the engine would ignore it.

Protocol:
1. On the handler's thread (a pool thread for a ``def`` handler, the loop for an
   ``async def``): encode the report (a non-JSON ``detail`` raises there, at the call site),
   store it as the latest and, if none was waiting, schedule a flush on the session's loop.
2. On the loop: take the latest and queue it on the session's writer, in order with the
   invocation's other messages — a ``def`` handler's report goes out before its result.

Not done here: the engine's throttle (one store write per job per 500 ms) and its 4 KiB
limit on ``detail`` (larger reports are dropped by the engine, with a warning).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ._json import Encoder, fill_value
from ._proto.v1 import engine_pb2

if TYPE_CHECKING:
    from ._stream import _Session


class ProgressReporter:
    """Sends one invocation's progress reports; called as ``reporter(value, detail)``."""

    __slots__ = ("_session", "_invocation_id", "_default", "_lock", "_latest")

    def __init__(self, session: _Session, invocation_id: str, default: Encoder | None) -> None:
        self._session = session
        self._invocation_id = invocation_id
        self._default = default
        self._lock = threading.Lock()
        self._latest: engine_pb2.JobProgress | None = None  # waiting for a flush

    def __call__(self, value: float | None, detail: Any) -> None:
        report = engine_pb2.JobProgress()
        if value is not None:
            report.value = value
        if detail is not None:
            fill_value(report.detail, detail, self._default)
        with self._lock:
            flush_pending = self._latest is not None
            self._latest = report
        if flush_pending:
            return
        loop = self._session.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if running is loop:
                loop.call_soon(self._flush)
            else:
                loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop is closed: the worker is gone
            pass

    def _flush(self) -> None:
        with self._lock:
            report, self._latest = self._latest, None
        session = self._session
        if report is None or not session.live or self._invocation_id not in session.jobs:
            return
        session.send(engine_pb2.WorkerMessage(
            progress=engine_pb2.Progress(invocation_id=self._invocation_id, progress=report)))

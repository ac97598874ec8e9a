"""Calls from other event loops to the SDK's loop, crossing threads in batches.

Invariant: calls and answers cross between threads only in batches, one
``call_soon_threadsafe`` per batch: the calls a caller's loop makes before its next turn
go to the SDK loop together, in the order they were made, and the answers ready on the
SDK loop in one of its turns go back together, one batch per caller loop. Batching
changes the cost, not the result: each call still runs as a task of its own, in a copy
of its caller's context (contextvars), and gets its own result, exception or
cancellation. A batch being filled is touched only by the thread of the loop that fills
it, so no lock is needed.

Why: each ``call_soon_threadsafe`` writes to the target loop's self-pipe and wakes its
thread. One per call each way (``run_coroutine_threadsafe`` + ``wrap_future``) cost
about 80 µs per call, most of what an asyncio producer spent per enqueue.

Protocol:

1. ``run`` (on the caller's loop) adds the call to that loop's outgoing batch; the first
   call of a batch schedules ``_send`` with ``call_soon``, so the tasks already runnable
   join before the batch leaves.
2. ``_start`` (on the SDK loop) runs each call of the batch as a task, in order.
3. A finished task's call joins the answers of its caller loop; the first answer of an
   SDK turn schedules ``_answer``, which sends each caller loop its answers.
4. ``_settle`` (on the caller's loop) copies each task's outcome to its caller's future.

Cancellation: cancelling the caller's await cancels the call's task on the SDK loop,
with one crossing of its own, as before. That crossing leaves the caller's thread after
the call's batch did, so the task exists when it arrives; if the task has not taken its
first step yet, its coroutine never runs. A caller loop closed before its answers come
back loses them; the SDK loop never waits on a caller loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Loop = asyncio.AbstractEventLoop


class _Call(Generic[T]):
    """One call: made on the `caller` loop, run on the SDK loop."""

    __slots__ = ("coro", "context", "caller", "answer", "task")

    def __init__(self, coro: Coroutine[Any, Any, T], caller: Loop) -> None:
        self.coro = coro
        self.context = contextvars.copy_context()
        self.caller = caller
        self.answer: asyncio.Future[T] = caller.create_future()
        self.task: asyncio.Task[T] | None = None  # set on the SDK loop when started


class Crossing:
    """Runs coroutines on `loop` (the SDK loop) for callers on other event loops."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        # caller loop -> calls made since its last ``_send`` (filled on that loop only)
        self._outgoing: dict[Loop, list[_Call[Any]]] = {}
        # caller loop -> calls finished since the last ``_answer`` (SDK loop only)
        self._answers: dict[Loop, list[_Call[Any]]] = {}

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the SDK loop from the running loop (not the SDK loop)."""
        caller = asyncio.get_running_loop()
        call = _Call(coro, caller)
        batch = self._outgoing.get(caller)
        if batch is None:
            batch = self._outgoing[caller] = []
            caller.call_soon(self._send, caller)
        batch.append(call)
        try:
            return await call.answer
        except asyncio.CancelledError:
            self._cancel(call)
            raise

    # ---- on the caller's loop ----------------------------------------------------------

    def _send(self, caller: Loop) -> None:
        calls = self._outgoing.pop(caller)
        try:
            self._loop.call_soon_threadsafe(self._start, calls)
        except RuntimeError as exc:  # the SDK loop is closed
            for call in calls:
                call.coro.close()
                if not call.answer.done():
                    call.answer.set_exception(RuntimeError(*exc.args))

    def _cancel(self, call: _Call[Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(_cancel_task, call)
        except RuntimeError:  # the SDK loop is closed: nothing runs there any more
            pass

    # ---- on the SDK loop ---------------------------------------------------------------

    def _start(self, calls: list[_Call[Any]]) -> None:
        for call in calls:
            # (``create_task(context=…)`` needs Python 3.11)
            call.task = call.context.run(self._loop.create_task, call.coro)
            call.task.add_done_callback(functools.partial(self._finished, call))

    def _finished(self, call: _Call[Any], task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            task.exception()  # marks it retrieved: its caller may be gone, see _answer
        batch = self._answers.get(call.caller)
        if batch is None:
            if not self._answers:
                self._loop.call_soon(self._answer)
            batch = self._answers[call.caller] = []
        batch.append(call)

    def _answer(self) -> None:
        answers, self._answers = self._answers, {}
        for caller, calls in answers.items():
            try:
                caller.call_soon_threadsafe(_settle, calls)
            except RuntimeError:  # the caller's loop is closed: no one awaits these
                pass


def _cancel_task(call: _Call[Any]) -> None:
    """On the SDK loop, after the call's batch (see the module doc)."""
    assert call.task is not None
    call.task.cancel()


def _settle(calls: list[_Call[Any]]) -> None:
    """On the caller's loop: each call's future gets its task's outcome."""
    for call in calls:
        answer, task = call.answer, call.task
        assert task is not None and task.done()
        if answer.done():  # the caller gave up (cancelled)
            continue
        if task.cancelled():
            answer.cancel()
        elif (error := task.exception()) is not None:
            answer.set_exception(error)
        else:
            answer.set_result(task.result())

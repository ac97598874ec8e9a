"""The event loop a Client or Worker lives on: its own (``LoopThread``) or the app's.

Invariant: every gRPC object of a Client (channel, stubs, the Connect stream) is created
and used only on its loop, because grpc.aio objects are bound to the loop that made
them. Other threads reach it only through ``submit`` / ``run`` / ``call_soon``, and
other event loops through ``run_async`` (batched, see ``_crossing``), so a Client works
the same from plain threads and from any asyncio code.

Two hosts, one interface:
- ``LoopThread``: a private loop in a daemon thread, for a Client made outside any
  running loop (the blocking API's home).
- ``AppLoop``: the application's running loop, for a Client made inside it; async
  handlers then run on that loop, next to the application's own tasks, locks and pools.
  Nothing is started or stopped: the loop is the application's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, Union

from ._crossing import Crossing

T = TypeVar("T")


_BLOCKING_IN_LOOP = ("blocking Switchyard call made from inside the event loop that serves "
                     "this client; use the *_async variant (e.g. await trigger_async(...))")


def _quiet_poller_wakeups(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Older grpcio releases print a harmless ``BlockingIOError`` from
    ``PollerCompletionQueue._handle_events`` when several loops share its notification
    socket (grpc/grpc#25364): two Clients, or a Client and the app's loop. Drop those;
    hand everything else to the default handler."""
    if isinstance(context.get("exception"), BlockingIOError) and \
            "PollerCompletionQueue" in repr(context.get("handle")):
        return
    loop.default_exception_handler(context)


class _Host:
    """What both hosts share: calls into `loop`, whose thread is `_thread`."""

    loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _crossing: Crossing

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop from any thread; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and block the calling thread for its result (from the
        loop's own thread this would deadlock, so it raises)."""
        if self.in_loop_thread or self.loop.is_closed():
            coro.close()
            raise RuntimeError(_BLOCKING_IN_LOOP if self.in_loop_thread else
                               "the event loop this Switchyard client lives on is closed")
        return self.submit(coro).result(timeout)

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` from any event loop (including this one); calls from other loops
        cross to this one in batches (see ``_crossing``)."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await self._crossing.run(coro)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)


class LoopThread(_Host):
    """Owns one event loop in one thread; started in the constructor."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet_poller_wakeups)
        self._crossing = Crossing(self.loop)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop (blocking until done) and return its result."""
        async def call() -> T:
            return fn()
        return self.run(call())

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (cancelling leftover tasks) and join the thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread:
            self._thread.join(timeout)


class AppLoop(_Host):
    """The application's running event loop, borrowed (never started or stopped here)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = threading.current_thread()
        self._crossing = Crossing(loop)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` now: the constructor runs on the loop's thread."""
        return fn()

    def stop(self, timeout: float = 5.0) -> None:
        """Nothing to stop: the loop is the application's."""


Host = Union[LoopThread, AppLoop]


def host_for(name: str) -> Host:
    """The app's loop when called inside a running one, else a new private loop thread."""
    try:
        return AppLoop(asyncio.get_running_loop())
    except RuntimeError:
        return LoopThread(name)

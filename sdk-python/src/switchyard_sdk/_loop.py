"""A private asyncio event loop running in a daemon thread.

Invariant: every gRPC object of a Worker (channel, stubs, the Connect stream) is created
and used only on this loop, because grpc.aio objects are bound to the loop that made
them. Other threads reach it only through ``submit`` / ``run`` / ``call_soon``, and
other event loops through ``run_async`` (batched, see ``_crossing``), so a Worker works
the same from plain threads and from any asyncio code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._crossing import Crossing

T = TypeVar("T")


class LoopThread:
    """Owns one event loop in one thread; started in the constructor."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
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

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop from any thread; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and block the calling thread for its result."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("blocking Switchyard call made from inside a handler's event "
                               "loop; use the *_async variant (e.g. await trigger_async(...))")
        return self.submit(coro).result(timeout)

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` from any event loop (including this one); calls from other loops
        cross to this one in batches (see ``_crossing``)."""
        if self.in_loop_thread:
            return await coro
        return await self._crossing.run(coro)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (cancelling leftover tasks) and join the thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread:
            self._thread.join(timeout)

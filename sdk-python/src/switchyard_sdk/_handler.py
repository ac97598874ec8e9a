"""Adapts a user handler to one calling convention: ``await call(payload, ctx)``.

Invariant: whatever the user registered — ``def`` or ``async def``, taking ``(payload)``
or ``(payload, ctx)`` — the adapted handler is awaited on the SDK's event loop, and a
``def`` handler runs on the worker's thread pool so it never blocks that loop.
The shape is decided once, at registration, from ``inspect.signature``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from .context import Context

Handler = Callable[..., Any]
"""``(payload) -> value`` or ``(payload, ctx) -> value``; sync or async."""


def _wants_context(fn: Handler) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume (payload)
        return False
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    if positional == 0:
        raise TypeError(f"handler {fn!r} must accept the payload as its first argument")
    return positional >= 2


def _is_async(fn: Handler) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class AdaptedHandler:
    """A registered handler in the single shape the stream dispatcher calls."""

    __slots__ = ("fn", "is_async", "wants_context")

    def __init__(self, fn: Handler) -> None:
        if not callable(fn):
            raise TypeError(f"handler must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.is_async = _is_async(fn)
        self.wants_context = _wants_context(fn)

    def call(self, payload: Any, ctx: Context, executor: Executor) -> Awaitable[Any]:
        """Start the handler; the result is awaited on the running loop."""
        args = (payload, ctx) if self.wants_context else (payload,)
        if self.is_async:
            return self._call_async(args)
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(executor, self.fn, *args)

    async def _call_async(self, args: tuple[Any, ...]) -> Any:
        result = self.fn(*args)
        if inspect.isawaitable(result):
            return await result
        return result

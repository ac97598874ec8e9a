"""``Worker``: a ``Client`` that also serves functions over one ``Engine.Connect`` stream.

Invariant: a Worker lives on one event loop (see ``_loop``): the application's running
loop when it is made inside one — async handlers and hooks then run on that loop, beside
the application's own tasks, locks and pools — else a private loop thread that the
blocking API uses. Sync handlers run in a thread pool of ``max_in_flight`` threads, so
neither kind can stall the stream.

Lifecycle:
1. ``register_worker`` (or ``await register_worker_async``) checks the URL and returns; it
   connects nothing until the worker has something to serve: the first
   ``register_function``, ``run``/``run_async`` or ``wait_connected`` starts the stream, so a
   process that only calls the engine never registers as a worker. With ``fail_fast`` it
   connects at once and raises ``UnavailableError`` if the first attempt fails.
2. Before the first connection attempt the ``on_startup`` hooks run, once; a failing hook
   stops the worker from connecting (logged at ERROR, raised by ``run``/``fail_fast``).
3. The stream connects, reconnects with jittered backoff and logs why it could not
   (``_stream``).
4. ``shutdown`` drains (unregister → finish in-flight work up to ``grace`` → close), then
   runs the ``on_shutdown`` hooks once (only if the startup hooks ran), then closes the
   channel; it is idempotent. ``run`` blocks until SIGINT/SIGTERM and then shuts down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, Union

from ._handler import AdaptedHandler, Handler
from ._json import Encoder
from ._loop import AppLoop
from ._security import Tls
from ._stream import WorkerStream
from .client import Client
from .typed import Function

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Handler)

Hook = Callable[[], Union[None, Awaitable[None]]]
"""A startup or shutdown hook: ``def`` (run on the handler thread pool) or ``async def``
(awaited on the worker's loop); no arguments."""


def _hooks(hooks: Hook | Iterable[Hook] | None) -> list[Hook]:
    if hooks is None:
        return []
    if callable(hooks):
        return [hooks]
    listed = list(hooks)
    for hook in listed:
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    return listed


class Worker(Client):
    """A connection to a Switchyard engine: a worker that is also a caller.

    Create it with :func:`register_worker` (or :func:`register_worker_async`).
    """

    def __init__(self, url: str | None = None, *, max_in_flight: int = 64,
                 worker_name: str | None = None, shutdown_grace: float = 30.0,
                 fail_fast: bool = False, on_startup: Hook | Iterable[Hook] | None = None,
                 on_shutdown: Hook | Iterable[Hook] | None = None,
                 default: Encoder | None = None, token: str | None = None,
                 tls: Tls | None = None) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.max_in_flight = max_in_flight
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.shutdown_grace = shutdown_grace
        self.fail_fast = fail_fast
        self._on_startup = _hooks(on_startup)
        self._on_shutdown = _hooks(on_shutdown)
        self._started_up = False  # every startup hook ran
        self._close_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_in_flight, thread_name_prefix="switchyard-handler")
        self._runner: asyncio.Task[None] | None = None
        super().__init__(url, token=token, tls=tls, default=default,
                         _name=f"switchyard-{self.worker_name}")

    def _open(self) -> None:
        super()._open()
        self._stream = WorkerStream(self._channel, url=self.url, worker_name=self.worker_name,
                                    max_in_flight=self.max_in_flight, executor=self._executor,
                                    fail_fast=self.fail_fast, default=self.default)

    def __repr__(self) -> str:
        return f"Worker(url={self.url!r}, worker_name={self.worker_name!r})"

    # ---- the stream --------------------------------------------------------------------

    def _start(self) -> None:
        """Start the stream (once, from any thread); it connects after the startup hooks."""
        if self._runner is None and not self._closed:
            self._loop.call_soon(self._start_on_loop)

    def _start_on_loop(self) -> None:
        if self._runner is None and not self._closed:
            self._runner = self._loop.loop.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            for hook in self._on_startup:
                await self._run_hook(hook)
        except Exception as exc:
            log.error("switchyard_sdk: a startup hook failed; the worker will not connect: %r", exc,
                      exc_info=True)
            if not self._stream.first_attempt.done():
                self._stream.first_attempt.set_result(exc)
            return
        self._started_up = True
        await self._stream.run()

    async def _run_hook(self, hook: Hook) -> None:
        if inspect.iscoroutinefunction(hook):
            await hook()
            return
        result = await asyncio.get_running_loop().run_in_executor(self._executor, hook)
        if inspect.isawaitable(result):
            await result

    async def _first_attempt(self) -> None:
        """On the loop: wait for the first connection attempt; raise its failure."""
        failure = await asyncio.shield(self._stream.first_attempt)
        if failure is not None:
            raise failure

    # ---- functions ---------------------------------------------------------------------

    def register_function(self, function_id: str, handler: Handler, *, description: str = "") -> None:
        """Serve `function_id` with `handler` (``def`` or ``async def``, ``(payload)`` or
        ``(payload, ctx)``). May be called at any time; re-registering replaces the handler.
        The first registration starts the worker's stream."""
        if not function_id:
            raise ValueError("function_id must be non-empty")
        adapted = AdaptedHandler(handler)
        self._check_open()
        self._loop.call_soon(self._stream.register, function_id, adapted, description)
        self._start()

    def serve(self, function: Function[Any, Any]) -> None:
        """Serve a typed :class:`Function` (built with its handler): the handler gets the
        payload as its declared type, and its result is sent as JSON."""
        self.register_function(function.id, function.adapted(), description=function.description)

    def function(self, function_id: str, *, description: str = "") -> Callable[[F], F]:
        """Decorator form: ``@sy.function("orders::process-payment")``."""
        def decorate(fn: F) -> F:
            self.register_function(function_id, fn, description=description)
            return fn
        return decorate

    def unregister_function(self, function_id: str) -> None:
        self._check_open()
        self._loop.call_soon(self._stream.unregister, function_id)

    @property
    def worker_id(self) -> str:
        """The id the engine gave this worker in its last ``welcome`` ("" before that)."""
        return self._stream.worker_id

    @property
    def connected(self) -> bool:
        return self._stream.welcomed.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Start the stream if needed and block until the engine has welcomed this worker;
        False on timeout."""
        self._start()
        return self._stream.welcomed.wait(timeout)

    async def wait_connected_async(self, timeout: float | None = None) -> bool:
        self._start()
        try:
            await asyncio.wait_for(self._loop.run_async(self._stream.wait_welcomed()), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def wait_registered(self, function_id: str, timeout: float | None = None) -> bool:
        """Block until the engine has applied `function_id`'s registration (callers can
        reach it and invocations may arrive); False on timeout. If the engine refused it,
        raise the refusal: ``PermissionDeniedError`` for a function outside the token's
        ``functions`` (the message names the function), else the typed error of its reason."""
        try:
            self._loop.run(asyncio.wait_for(self._stream.wait_registered(function_id), timeout))
            return True
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
            return False

    async def wait_registered_async(self, function_id: str, timeout: float | None = None) -> bool:
        """``wait_registered`` for asyncio programs (raises the refusal likewise)."""
        try:
            await self._loop.run_async(asyncio.wait_for(self._stream.wait_registered(function_id), timeout))
            return True
        except asyncio.TimeoutError:
            return False

    # ---- lifecycle ---------------------------------------------------------------------

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then drain in-flight work and close. Raises a
        startup hook's exception (the worker then never connected). With ``fail_fast``, a
        registration the engine refuses stops the worker and is raised
        (``PermissionDeniedError`` naming the function, or the typed error of its reason)."""
        if isinstance(self._loop, AppLoop) and self._loop.in_loop_thread:
            raise RuntimeError("this worker lives on the running event loop: use await run_async()")
        self._start()
        stop = threading.Event()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(0.25) and not self._closed and not self._startup_failed() \
                    and not self._refused():
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.shutdown()
        self._raise_startup_failure()

    async def run_async(self) -> None:
        """``run`` for asyncio programs (signals are handled on the running loop). A worker
        made inside this loop runs its async handlers here."""
        self._start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            while not stop.is_set() and not self._closed and not self._startup_failed() \
                    and not self._refused():
                try:
                    await asyncio.wait_for(stop.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.shutdown_async()
        self._raise_startup_failure()

    def _startup_failed(self) -> bool:
        first = self._stream.first_attempt
        return first.done() and isinstance(first.result(), Exception) and not self._started_up

    def _refused(self) -> bool:
        return self.fail_fast and self._stream.refusal is not None

    def _raise_startup_failure(self) -> None:
        if self._startup_failed():
            raise self._stream.first_attempt.result()  # type: ignore[misc]
        if self._refused():
            raise self._stream.refusal  # type: ignore[misc]

    def shutdown(self, grace: float | None = None) -> None:
        """Drain and close: unregister every function, let in-flight handlers finish (up
        to `grace` seconds, default ``shutdown_grace``), run the shutdown hooks, then close
        the stream. Idempotent."""
        super().shutdown(grace)

    async def shutdown_async(self, grace: float | None = None) -> None:
        await super().shutdown_async(grace)

    def _close_timeout(self, grace: float | None) -> float:
        return (self.shutdown_grace if grace is None else grace) + 10

    def _begin_close(self) -> bool:
        with self._close_lock:
            return super()._begin_close()

    async def _close(self, grace: float | None) -> None:
        await self._stream.close(self.shutdown_grace if grace is None else grace)
        if self._runner is not None:
            self._runner.cancel()
        if self._started_up:
            for hook in self._on_shutdown:
                try:
                    await self._run_hook(hook)
                except Exception as exc:
                    log.error("switchyard_sdk: a shutdown hook failed: %r", exc, exc_info=True)
        await super()._close(grace)

    def _finish_close(self) -> None:
        super()._finish_close()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def register_worker(url: str | None = None, *, max_in_flight: int = 64, worker_name: str | None = None,
                    shutdown_grace: float = 30.0, fail_fast: bool = False,
                    on_startup: Hook | Iterable[Hook] | None = None,
                    on_shutdown: Hook | Iterable[Hook] | None = None,
                    default: Encoder | None = None, token: str | None = None,
                    tls: Tls | None = None) -> Worker:
    """A worker for the engine at `url` (``http://HOST:PORT`` or ``HOST:PORT``, or
    ``https://HOST:PORT`` for TLS; None: ``$SWITCHYARD_URL``, else
    ``http://127.0.0.1:49134``). `token` (None: ``$SWITCHYARD_TOKEN``) and `tls`
    (:class:`TlsOptions`) as for :func:`connect`.

    Returns at once; the connection is made (and remade after failures, each logged at
    WARN) in the background once there is something to serve. With `fail_fast` it
    connects now and raises ``UnavailableError`` if that fails (inside a running loop,
    use ``await register_worker_async(..., fail_fast=True)``). Called inside a running
    event loop, the worker lives on that loop. The worker can trigger functions and use
    the Queues calls right away.
    """
    if fail_fast and _loop_running():
        raise RuntimeError("register_worker(fail_fast=True) would block the running event loop: "
                           "use await register_worker_async(..., fail_fast=True)")
    worker = Worker(url, max_in_flight=max_in_flight, worker_name=worker_name,
                    shutdown_grace=shutdown_grace, fail_fast=fail_fast, on_startup=on_startup,
                    on_shutdown=on_shutdown, default=default, token=token, tls=tls)
    if fail_fast:
        worker._start()
        try:
            worker._loop.run(worker._first_attempt())
        except BaseException:
            worker.shutdown(grace=0)
            raise
    return worker


async def register_worker_async(url: str | None = None, *, max_in_flight: int = 64,
                                worker_name: str | None = None, shutdown_grace: float = 30.0,
                                fail_fast: bool = False,
                                on_startup: Hook | Iterable[Hook] | None = None,
                                on_shutdown: Hook | Iterable[Hook] | None = None,
                                default: Encoder | None = None, token: str | None = None,
                                tls: Tls | None = None) -> Worker:
    """``register_worker`` for asyncio programs: the worker lives on the running loop, so
    async handlers and hooks run there; with `fail_fast` it returns once connected, or
    raises ``UnavailableError``."""
    asyncio.get_running_loop()  # RuntimeError outside a running loop, as asyncio says
    worker = Worker(url, max_in_flight=max_in_flight, worker_name=worker_name,
                    shutdown_grace=shutdown_grace, fail_fast=fail_fast, on_startup=on_startup,
                    on_shutdown=on_shutdown, default=default, token=token, tls=tls)
    if fail_fast:
        worker._start()
        try:
            await worker._first_attempt()
        except BaseException:
            await worker.shutdown_async(grace=0)
            raise
    return worker

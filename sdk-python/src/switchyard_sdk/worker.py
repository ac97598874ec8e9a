"""The public ``Worker``: registers functions, serves invocations, and calls the engine.

Invariant: a Worker owns one private event loop thread (see ``_loop``); every gRPC call
and the worker stream run there. The blocking API (``trigger``, ``list_queues``, …)
submits to that loop and waits; the ``*_async`` API awaits the same coroutines from the
caller's loop. Sync handlers run in a thread pool of ``max_in_flight`` threads, async
handlers on the private loop — so neither kind can stall the stream.

Lifecycle: ``register_worker`` connects in the background and keeps reconnecting;
``shutdown`` drains (unregister → finish in-flight work up to ``grace`` → close) and is
idempotent; ``run`` blocks until SIGINT/SIGTERM and then shuts down.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import signal
import socket
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypedDict, TypeVar

import grpc

from ._batcher import Enqueue, EnqueueBatcher
from ._channel import open_channel
from ._handler import AdaptedHandler, Handler
from ._json import fill_value, to_python
from ._loop import LoopThread
from ._proto.v1 import engine_pb2, engine_pb2_grpc, queues_pb2, queues_pb2_grpc
from ._stream import WorkerStream
from .actions import Action, EnqueueAction, VoidAction
from .errors import InvalidArgumentError, from_rpc_error
from .queues import (DeadLetterPage, QueueInfo, dead_letter_page_from_proto,
                     queue_info_from_proto)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Handler)
T = TypeVar("T")

DEFAULT_SYNC_TIMEOUT_MS = 30_000
# Deadline slack over the engine's own sync timeout, so the engine's TIMEOUT wins.
_DEADLINE_SLACK_S = 5.0
_CALL_TIMEOUT_S = 30.0


class _TriggerRequired(TypedDict):
    function_id: str


class TriggerRequest(_TriggerRequired, total=False):
    """``{"function_id": …, "payload": …, "action": TriggerAction…, "timeout_ms": …}``."""

    payload: Any
    action: Action | None
    timeout_ms: int


class EnqueueReceipt(TypedDict):
    messageReceiptId: str


def _build_request(request: TriggerRequest | Mapping[str, Any]
                   ) -> tuple[engine_pb2.TriggerRequest | Enqueue, float]:
    """Validate and convert a trigger dict; returns (request, gRPC deadline in s). The
    request is an ``Enqueue`` for the batcher when it is an enqueue (see ``_batcher``), else
    the ``TriggerRequest`` to send as is."""
    unknown = set(request) - {"function_id", "payload", "action", "timeout_ms"}
    if unknown:
        raise ValueError(f"unknown trigger keys: {', '.join(sorted(unknown))}")
    function_id = request.get("function_id")
    if not isinstance(function_id, str) or not function_id.strip():
        # The engine's answer to this request, given without a round trip.
        raise InvalidArgumentError("INVALID_ARGUMENT", "function_id is required",
                                   grpc.StatusCode.INVALID_ARGUMENT)
    action = request.get("action")
    if action is not None and not isinstance(action, (EnqueueAction, VoidAction)):
        raise TypeError("action must be TriggerAction.Enqueue(queue=...), TriggerAction.Void() or None")
    timeout_ms = request.get("timeout_ms")
    if timeout_ms is not None:
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
            raise ValueError("timeout_ms must be a positive int")
    if isinstance(action, EnqueueAction):
        # timeout_ms bounds sync calls only (the engine ignores it on an enqueue), so an
        # enqueue that sets it is coalesced like any other, as in the Rust and Node SDKs.
        item = engine_pb2.EnqueueItem(function_id=function_id, queue=action.queue)
        fill_value(item.payload, request.get("payload"))
        return Enqueue(item), _CALL_TIMEOUT_S
    req = engine_pb2.TriggerRequest(function_id=function_id)
    fill_value(req.payload, request.get("payload"))
    deadline = _CALL_TIMEOUT_S
    if isinstance(action, VoidAction):
        req.void.SetInParent()
    if timeout_ms is not None:
        req.timeout_ms = timeout_ms
    if action is None:
        deadline = (timeout_ms or DEFAULT_SYNC_TIMEOUT_MS) / 1000 + _DEADLINE_SLACK_S
    return req, deadline


class Worker:
    """A connection to a Switchyard engine: a worker that is also a caller.

    Create it with :func:`register_worker`.
    """

    def __init__(self, url: str, *, max_in_flight: int = 64, worker_name: str | None = None,
                 shutdown_grace: float = 30.0) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.url = url
        self.max_in_flight = max_in_flight
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.shutdown_grace = shutdown_grace
        self._closed = False
        self._close_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_in_flight, thread_name_prefix="switchyard-handler")
        self._loop = LoopThread(f"switchyard-{self.worker_name}")
        self._loop.run(self._open())
        self._runner = self._loop.submit(self._stream.run())
        _live_workers.add(self)

    async def _open(self) -> None:
        self._channel = open_channel(self.url)
        self._engine: Any = engine_pb2_grpc.EngineStub(self._channel)
        self._queues: Any = queues_pb2_grpc.QueuesStub(self._channel)
        self._batcher = EnqueueBatcher(self._channel, self._engine)
        self._stream = WorkerStream(self._channel, worker_name=self.worker_name,
                                    max_in_flight=self.max_in_flight, executor=self._executor)

    def __repr__(self) -> str:
        return f"Worker(url={self.url!r}, worker_name={self.worker_name!r})"

    # ---- functions ---------------------------------------------------------------------

    def register_function(self, function_id: str, handler: Handler, *, description: str = "") -> None:
        """Serve `function_id` with `handler` (``def`` or ``async def``, ``(payload)`` or
        ``(payload, ctx)``). May be called at any time; re-registering replaces the handler."""
        if not function_id:
            raise ValueError("function_id must be non-empty")
        adapted = AdaptedHandler(handler)
        self._check_open()
        self._loop.call_soon(self._stream.register, function_id, adapted, description)

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
        """Block until the engine has welcomed this worker; False on timeout."""
        return self._stream.welcomed.wait(timeout)

    async def wait_connected_async(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._loop.run_async(self._stream.wait_welcomed()), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def wait_registered(self, function_id: str, timeout: float | None = None) -> bool:
        """Block until the engine has applied `function_id`'s registration (callers can
        reach it and invocations may arrive); False on timeout."""
        try:
            self._loop.run(asyncio.wait_for(self._stream.wait_registered(function_id), timeout))
            return True
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
            return False

    async def wait_registered_async(self, function_id: str, timeout: float | None = None) -> bool:
        try:
            await self._loop.run_async(asyncio.wait_for(self._stream.wait_registered(function_id), timeout))
            return True
        except asyncio.TimeoutError:
            return False

    # ---- calls -------------------------------------------------------------------------

    def trigger(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Call a function: sync (no action) returns its value, enqueue returns
        ``{"messageReceiptId": …}``, void returns None. Raises ``SwitchyardError``."""
        req, deadline = _build_request(request)
        return self._call(self._trigger(req, deadline))

    async def trigger_async(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """``trigger`` for asyncio code."""
        req, deadline = _build_request(request)
        return await self._call_async(self._trigger(req, deadline))

    async def _trigger(self, req: engine_pb2.TriggerRequest | Enqueue, deadline: float) -> Any:
        if isinstance(req, Enqueue):
            receipt_id = await self._batcher.enqueue(req, deadline)
            return EnqueueReceipt(messageReceiptId=receipt_id)
        resp: engine_pb2.TriggerResponse = await self._engine.Trigger(req, timeout=deadline)
        outcome = resp.WhichOneof("outcome")
        if outcome == "receipt":
            return EnqueueReceipt(messageReceiptId=resp.receipt.message_receipt_id)
        if outcome == "result":
            return to_python(resp.result)
        return None

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its effective config and stats."""
        return self._call(self._list_queues())

    async def list_queues_async(self) -> list[QueueInfo]:
        return await self._call_async(self._list_queues())

    async def _list_queues(self) -> list[QueueInfo]:
        resp: queues_pb2.ListQueuesResponse = await self._queues.ListQueues(
            queues_pb2.ListQueuesRequest(), timeout=_CALL_TIMEOUT_S)
        return [queue_info_from_proto(q) for q in resp.queues]

    def list_dead_letters(self, queue: str, *, page_size: int = 0, page_token: str = "") -> DeadLetterPage:
        """One page of `queue`'s dead letters (engine default page size when 0)."""
        return self._call(self._list_dead_letters(queue, page_size, page_token))

    async def list_dead_letters_async(self, queue: str, *, page_size: int = 0,
                                      page_token: str = "") -> DeadLetterPage:
        return await self._call_async(self._list_dead_letters(queue, page_size, page_token))

    async def _list_dead_letters(self, queue: str, page_size: int, page_token: str) -> DeadLetterPage:
        resp: queues_pb2.ListDeadLettersResponse = await self._queues.ListDeadLetters(
            queues_pb2.ListDeadLettersRequest(queue=queue, page_size=page_size, page_token=page_token),
            timeout=_CALL_TIMEOUT_S)
        return dead_letter_page_from_proto(resp)

    def redrive_dead_letters(self, queue: str, ids: list[str] | None = None) -> int:
        """Move dead letters (all when `ids` is None or empty) back to `queue` with a fresh
        retry budget; returns how many moved."""
        return self._call(self._redrive(queue, ids))

    async def redrive_dead_letters_async(self, queue: str, ids: list[str] | None = None) -> int:
        return await self._call_async(self._redrive(queue, ids))

    async def _redrive(self, queue: str, ids: list[str] | None) -> int:
        resp: queues_pb2.RedriveDeadLettersResponse = await self._queues.RedriveDeadLetters(
            queues_pb2.RedriveDeadLettersRequest(queue=queue, ids=ids or []), timeout=_CALL_TIMEOUT_S)
        return resp.count

    def discard_dead_letters(self, queue: str, ids: list[str] | None = None) -> int:
        """Delete dead letters (all when `ids` is None or empty); returns how many."""
        return self._call(self._discard(queue, ids))

    async def discard_dead_letters_async(self, queue: str, ids: list[str] | None = None) -> int:
        return await self._call_async(self._discard(queue, ids))

    async def _discard(self, queue: str, ids: list[str] | None) -> int:
        resp: queues_pb2.DiscardDeadLettersResponse = await self._queues.DiscardDeadLetters(
            queues_pb2.DiscardDeadLettersRequest(queue=queue, ids=ids or []), timeout=_CALL_TIMEOUT_S)
        return resp.count

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        try:
            return self._loop.run(coro)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def _call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        try:
            return await self._loop.run_async(coro)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def _check_open(self, coro: Coroutine[Any, Any, Any] | None = None) -> None:
        if self._closed:
            if coro is not None:
                coro.close()
            raise RuntimeError("this Switchyard worker has been shut down")

    # ---- lifecycle ---------------------------------------------------------------------

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then drain in-flight work and close."""
        stop = threading.Event()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(0.25) and not self._closed:
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.shutdown()

    async def run_async(self) -> None:
        """``run`` for asyncio programs (signals are handled on the running loop)."""
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
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.shutdown_async()

    def shutdown(self, grace: float | None = None) -> None:
        """Drain and close: unregister every function, let in-flight handlers finish (up
        to `grace` seconds, default ``shutdown_grace``), then close the stream. Idempotent."""
        if not self._begin_close():
            return
        grace_s = self.shutdown_grace if grace is None else grace
        try:
            self._loop.run(self._close(grace_s), timeout=grace_s + 10)
        except concurrent.futures.TimeoutError:
            log.warning("switchyard: shutdown did not finish in time")
        finally:
            self._finish_close()

    async def shutdown_async(self, grace: float | None = None) -> None:
        if not self._begin_close():
            return
        grace_s = self.shutdown_grace if grace is None else grace
        try:
            await asyncio.wait_for(self._loop.run_async(self._close(grace_s)), grace_s + 10)
        except asyncio.TimeoutError:
            log.warning("switchyard: shutdown did not finish in time")
        finally:
            self._finish_close()

    def _begin_close(self) -> bool:
        with self._close_lock:
            if self._closed:
                return False
            self._closed = True
            return True

    async def _close(self, grace_s: float) -> None:
        await self._stream.close(grace_s)
        self._runner.cancel()
        await self._channel.close()

    def _finish_close(self) -> None:
        self._loop.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        _live_workers.discard(self)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown_async()


def register_worker(url: str, *, max_in_flight: int = 64, worker_name: str | None = None,
                    shutdown_grace: float = 30.0) -> Worker:
    """Connect a worker to the engine at `url` (e.g. ``"http://127.0.0.1:49134"``).

    Returns at once; the connection is made (and remade after failures) in the
    background. The worker can trigger functions and use the Queues calls right away.
    """
    return Worker(url, max_in_flight=max_in_flight, worker_name=worker_name,
                  shutdown_grace=shutdown_grace)


_live_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_leftover_workers() -> None:
    """A worker never shut down is closed quickly at exit, so grpc does not die mid-call."""
    for worker in list(_live_workers):
        try:
            worker.shutdown(grace=1.0)
        except Exception:  # exiting anyway
            pass

"""The worker side of ``Engine.Connect``: one live stream, re-established until closed.

Invariant: at most one session (one Connect call) is live at a time, and a result is
written only on the session that received its invocation — a result that outlives its
stream is dropped, because the engine has already failed that attempt and will retry it.
Everything here runs on the Worker's private event loop.

Protocol, per session:
1. Open ``Connect``; send one ``register_function`` per registered function, then
   ``hello`` (name, SDK, max_in_flight). The engine acknowledges each registration with
   ``registered`` and answers the hello with ``welcome``; registrations sent before the
   hello are live once the welcome arrives, so a welcomed worker is fully registered.
   A function registered later is live once its ``registered`` arrives.
2. For each ``invoke``: start the handler as a task (sync handlers in the thread pool);
   when it finishes send exactly one ``result`` (value, or error {message, code, stack}).
3. For each ``cancel``: mark the context cancelled and cancel the task; no result is sent.
4. When the stream ends or fails: cancel the session's handler tasks and reconnect after
   a backoff that starts at 100 ms and doubles up to 5 s (reset once welcomed).

Close (drain): send ``unregister_function`` for every function so no new work arrives,
keep answering what is in flight until the grace period ends, then half-close the stream
and wait briefly for the engine to end it.

Not done: the SDK never counts attempts or retries a failed handler itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from concurrent.futures import Executor
from typing import Any

import grpc

from ._handler import AdaptedHandler
from ._json import to_python, to_value
from ._proto.v1 import engine_pb2, engine_pb2_grpc
from .context import Context
from ._version import __version__
from .queues import timestamp_to_datetime

log = logging.getLogger("switchyard")

INITIAL_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
SDK_NAME = "switchyard-python"


def error_result(invocation_id: str, exc: BaseException) -> engine_pb2.WorkerMessage:
    """The ``result`` for a handler that raised: code = exception class name."""
    return engine_pb2.WorkerMessage(result=engine_pb2.InvocationResult(
        invocation_id=invocation_id,
        error=engine_pb2.FunctionError(
            message=str(exc),
            code=type(exc).__name__,
            stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ),
    ))


class _Session:
    """One Connect call: its outgoing queue, writer task and in-flight handler tasks."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.outbox: asyncio.Queue[engine_pb2.WorkerMessage | None] = asyncio.Queue()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.contexts: dict[str, Context] = {}
        self.live = True
        self.welcomed = False
        self.registered: set[str] = set()  # acknowledged by the engine on this session
        self.writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, msg: engine_pb2.WorkerMessage | None) -> None:
        if self.live:
            self.outbox.put_nowait(msg)

    async def _write_loop(self) -> None:
        write = self.call.write
        get = self.outbox.get
        while True:
            msg = await get()
            if msg is None:
                await self.call.done_writing()
                return
            await write(msg)


class WorkerStream:
    """Keeps a worker registered with the engine for as long as it is not closed."""

    def __init__(self, channel: grpc.aio.Channel, *, worker_name: str, max_in_flight: int,
                 executor: Executor) -> None:
        self._stub: Any = engine_pb2_grpc.EngineStub(channel)
        self._worker_name = worker_name
        self._max_in_flight = max_in_flight
        self._executor = executor
        self._functions: dict[str, tuple[AdaptedHandler, str]] = {}
        self._session: _Session | None = None
        self._closing = asyncio.Event()
        self.worker_id = ""
        self.welcomed = threading.Event()  # set while a welcomed session is live
        self._welcomed_async = asyncio.Event()
        self._registered_waiters: dict[str, list[asyncio.Future[None]]] = {}

    # ---- registration (loop thread) -------------------------------------------------

    def register(self, function_id: str, handler: AdaptedHandler, description: str) -> None:
        self._functions[function_id] = (handler, description)
        if self._session is not None:
            self._session.send(self._register_msg(function_id, description))

    def unregister(self, function_id: str) -> None:
        if self._session is not None:
            self._session.registered.discard(function_id)
        if self._functions.pop(function_id, None) is not None and self._session is not None:
            self._session.send(engine_pb2.WorkerMessage(
                unregister_function=engine_pb2.UnregisterFunction(function_id=function_id)))

    @staticmethod
    def _register_msg(function_id: str, description: str) -> engine_pb2.WorkerMessage:
        return engine_pb2.WorkerMessage(register_function=engine_pb2.RegisterFunction(
            function_id=function_id, description=description))

    async def wait_welcomed(self) -> None:
        await self._welcomed_async.wait()

    async def wait_registered(self, function_id: str) -> None:
        """Return once the engine has applied `function_id`'s registration."""
        session = self._session
        if session is not None and function_id in session.registered:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._registered_waiters.setdefault(function_id, []).append(fut)
        try:
            await fut
        finally:
            waiters = self._registered_waiters.get(function_id, [])
            if fut in waiters:
                waiters.remove(fut)

    def _mark_registered(self, session: _Session, function_id: str) -> None:
        if function_id not in self._functions:
            return  # unregistered meanwhile
        session.registered.add(function_id)
        for fut in self._registered_waiters.pop(function_id, []):
            if not fut.done():
                fut.set_result(None)

    # ---- connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns once closed."""
        backoff = INITIAL_BACKOFF_S
        while not self._closing.is_set():
            welcomed = False
            try:
                welcomed = await self._serve_once()
            except grpc.aio.AioRpcError as err:
                if not self._closing.is_set():
                    log.debug("switchyard stream failed: %s %s", err.code().name, err.details())
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the reconnect loop die
                log.exception("switchyard worker stream crashed; reconnecting")
            if self._closing.is_set():
                return
            if welcomed:
                backoff = INITIAL_BACKOFF_S
            try:
                await asyncio.wait_for(self._closing.wait(), backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _serve_once(self) -> bool:
        call = self._stub.Connect()
        session = _Session(call)
        self._session = session
        for function_id, (_, description) in self._functions.items():
            session.send(self._register_msg(function_id, description))
        session.send(engine_pb2.WorkerMessage(hello=engine_pb2.Hello(
            worker_name=self._worker_name, sdk_name=SDK_NAME, sdk_version=__version__,
            max_in_flight=self._max_in_flight)))
        before_hello = list(self._functions)
        try:
            await self._read_loop(session, before_hello)
        finally:
            self._end_session(session)
        return session.welcomed

    async def _read_loop(self, session: _Session, before_hello: list[str]) -> None:
        read = session.call.read
        writer = session.writer
        while True:
            msg = await read()
            if msg is grpc.aio.EOF:
                return
            kind = msg.WhichOneof("kind")
            if kind == "invoke":
                self._start_invocation(session, msg.invoke)
            elif kind == "cancel":
                self._cancel_invocation(session, msg.cancel)
            elif kind == "registered":
                self._mark_registered(session, msg.registered.function_id)
            elif kind == "welcome":
                session.welcomed = True
                self.worker_id = msg.welcome.worker_id
                for function_id in before_hello:
                    self._mark_registered(session, function_id)
                self.welcomed.set()
                self._welcomed_async.set()
                log.info("switchyard worker %s connected", self.worker_id)
            if writer.done() and not writer.cancelled():
                failure = writer.exception()
                if failure is not None:
                    raise failure

    def _end_session(self, session: _Session) -> None:
        session.live = False
        if self._session is session:
            self._session = None
        self.welcomed.clear()
        self._welcomed_async.clear()
        for task in list(session.tasks.values()):
            task.cancel()
        session.writer.cancel()
        session.call.cancel()

    # ---- invocations -----------------------------------------------------------------

    def _start_invocation(self, session: _Session, inv: engine_pb2.Invoke) -> None:
        entry = self._functions.get(inv.function_id)
        if entry is None:  # unregistered while the invoke was on the wire
            session.send(error_result(inv.invocation_id, LookupError(
                f"function '{inv.function_id}' is not registered on this worker")))
            return
        ctx = Context(function_id=inv.function_id, invocation_id=inv.invocation_id,
                      worker_id=self.worker_id)
        if inv.HasField("delivery"):
            d = inv.delivery
            ctx.attempt = d.attempt or 1
            ctx.max_attempts = d.max_attempts or 1
            ctx.queue = d.queue
            ctx.message_receipt_id = d.message_receipt_id
            ctx.group = d.group or None
            ctx.enqueued_at = timestamp_to_datetime(d.enqueued_at, d.HasField("enqueued_at"))
        task = asyncio.get_running_loop().create_task(self._invoke(session, entry[0], inv, ctx))
        session.tasks[inv.invocation_id] = task
        session.contexts[inv.invocation_id] = ctx

    async def _invoke(self, session: _Session, handler: AdaptedHandler,
                      inv: engine_pb2.Invoke, ctx: Context) -> None:
        invocation_id = inv.invocation_id
        try:
            try:
                result = await handler.call(to_python(inv.payload), ctx, self._executor)
                if asyncio.iscoroutine(result):  # a def handler that returned a coroutine
                    result = await result
                msg = engine_pb2.WorkerMessage(result=engine_pb2.InvocationResult(
                    invocation_id=invocation_id, value=to_value(result)))
            except asyncio.CancelledError:
                return  # engine cancelled it or the stream ended: no result is expected
            except Exception as exc:
                msg = error_result(invocation_id, exc)
            session.send(msg)
        finally:
            session.tasks.pop(invocation_id, None)
            session.contexts.pop(invocation_id, None)

    def _cancel_invocation(self, session: _Session, cancel: engine_pb2.Cancel) -> None:
        ctx = session.contexts.get(cancel.invocation_id)
        if ctx is not None:
            ctx.cancelled = True
        task = session.tasks.get(cancel.invocation_id)
        if task is not None:
            log.debug("invocation %s cancelled: %s", cancel.invocation_id, cancel.reason)
            task.cancel()

    # ---- drain -----------------------------------------------------------------------

    async def close(self, grace_s: float) -> None:
        """Stop taking work, finish in-flight handlers (up to `grace_s`), end the stream."""
        self._closing.set()
        session = self._session
        if session is None or not session.live:
            return
        for function_id in list(self._functions):
            session.send(engine_pb2.WorkerMessage(
                unregister_function=engine_pb2.UnregisterFunction(function_id=function_id)))
        deadline = time.monotonic() + grace_s
        while session.tasks and session.live:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("switchyard: %d handler(s) still running after the grace period",
                            len(session.tasks))
                break
            await asyncio.wait(list(session.tasks.values()), timeout=remaining)
        if session.live:
            session.send(None)  # half-close once the queued results are written
            try:
                await asyncio.wait_for(asyncio.shield(session.writer), 2.0)
                await asyncio.wait_for(self._drain_reads(session), 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, grpc.aio.AioRpcError):
                pass
        self._end_session(session)

    @staticmethod
    async def _drain_reads(session: _Session) -> None:
        """After half-closing, wait for the engine to end the stream."""
        while session.live:
            await asyncio.sleep(0.01)

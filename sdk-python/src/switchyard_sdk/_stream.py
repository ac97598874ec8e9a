"""The worker side of ``Engine.Connect``: one live stream, re-established until closed.

Invariant: at most one session (one Connect call) is live at a time, and every invocation
gets exactly one result, written only on the session that received it — a result that
outlives its stream is dropped, because the engine has already failed that attempt and
will retry it; an invocation the engine cancelled is answered by none.
Everything here runs on the Worker's event loop (see ``_loop``), except sync handlers (and
the building of their results) on the thread pool.

Protocol, per session:
1. Open ``Connect``; send one ``register_function`` per registered function, then
   ``hello`` (name, SDK, max_in_flight, ``batches=True``). The engine acknowledges each
   registration it applies with ``registered`` and answers the hello with ``welcome``. A
   function is live once its ``registered`` arrives — before the welcome for those sent
   before the hello — and never when the engine refused it (a worker token outside its
   ``functions`` globs: refused without an answer), so a welcome alone proves nothing
   about registrations.
2. For each ``invoke``, and for each invocation of an ``invokes`` batch alike: start the
   handler (async handlers as a task on this loop, eagerly on Python 3.12+; sync handlers
   straight on the thread pool, which hands the finished result back in bulk); when it
   finishes queue exactly one result (value, or error {message, code, stack,
   non_retryable}: ``_results``). A queued job's ``ctx.set_progress`` queues ``progress``
   messages meanwhile (the latest of a burst: ``_progress``).
3. For each ``cancel``: mark the context cancelled, forget the invocation and cancel its
   task; no result is sent (a sync handler's late result is dropped).
4. The writer sends queued messages in order. Results queued while a write is pending
   or within one event-loop turn go out together as one ``results`` batch (a lone result
   as ``result``); nothing waits on a timer to fill a batch. Batching starts only once
   the engine has sent an ``invokes`` batch (so it is an engine that reads ``results``);
   until then every result is its own ``result``.
5. When the stream ends or fails: cancel the session's handler tasks, log a WARN naming
   the URL, the cause (``_channel.classify``) and the delay, and reconnect after a delay
   with full jitter (``_backoff``; the count restarts once welcomed). A session not
   welcomed within ``WELCOME_TIMEOUT_S`` fails as ``timed_out``. With ``fail_fast`` the
   first attempt's failure ends ``run`` instead (``first_attempt`` carries it: an
   ``UnavailableError``, or the engine's ``UnauthenticatedError`` / ``PermissionDeniedError``
   when it refused the token; a refused token is retried like any failure otherwise,
   since the engine's config may change).

Logging (``logging.getLogger("switchyard_sdk._stream")``, fields in ``extra=``): WARN per
failed connection attempt (``url``, ``cause``, ``retry_in_ms``), INFO once connected; one
line per job start and end (``_joblog``).

Close (drain): send ``unregister_function`` for every function so no new work arrives,
keep answering what is in flight until the grace period ends, then half-close the stream
and wait briefly for the engine to end it.

Not done: the SDK never counts attempts or retries a failed handler itself.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

import grpc

from ._backoff import delay_ms
from ._channel import CAUSE_TEXT, classify, unreachable
from ._handler import AdaptedHandler
from ._joblog import log_job_end, log_job_start
from ._json import Encoder, to_python
from ._progress import ProgressReporter
from ._proto.v1 import engine_pb2, engine_pb2_grpc
from ._results import Outgoing, coalesce, error_outcome, value_outcome
from .context import Context
from .errors import SwitchyardError, from_rpc_error, from_rpc_status
from ._version import __version__
from .queues import timestamp_to_datetime

log = logging.getLogger(__name__)

WELCOME_TIMEOUT_S = 10.0
SDK_NAME = "switchyard-python"

_InvocationResult = engine_pb2.InvocationResult

# Python 3.12+: run an invocation's first step inside its task at creation, so a handler
# that never suspends finishes without a trip through the loop. Only our own invocation
# tasks are eager; the loop's task factory (used by user code) is left alone.
_eager_task: Callable[..., asyncio.Task[None]] | None = getattr(asyncio, "eager_task_factory", None)


class _Job:
    """One invocation in flight: its invoke, start time (monotonic), context (None when
    the handler takes none) and, for an async handler that has suspended, its task."""

    __slots__ = ("inv", "started", "ctx", "task")

    def __init__(self, inv: engine_pb2.Invoke, ctx: Context | None) -> None:
        self.inv = inv
        self.started = time.monotonic()
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None


class _Session:
    """One Connect call: its outgoing queue, writer task and in-flight invocations."""

    def __init__(self, call: Any, default: Encoder | None) -> None:
        self.call = call
        self.default = default  # the Worker's encoder for results
        self.loop = asyncio.get_running_loop()
        self.pending: list[Outgoing] = []    # queued, not yet taken by the writer
        self._wakeup: asyncio.Future[None] | None = None  # set while the writer is idle
        self.jobs: dict[str, _Job] = {}       # in flight, answerable on this session
        self._idle: asyncio.Future[None] | None = None    # close() waiting for no jobs
        # finished sync jobs, handed over from pool threads: (invocation id, outcome)
        self.finished: collections.deque[tuple[str, Any]] = collections.deque()
        self._finished_scheduled = False
        # Results go out batched only once the engine has sent an ``invokes`` batch: an
        # engine from before batches would drop a ``results`` message unread.
        self.batch_results = False
        self.live = True
        self.welcomed = False
        self.registered: set[str] = set()  # acknowledged by the engine on this session
        # refused by the engine on this session (``refused``), with the typed error
        self.refused: dict[str, SwitchyardError] = {}
        self.writer = self.loop.create_task(self._write_loop())

    def send(self, msg: Outgoing) -> None:
        """Queue a message (or a result, or None = half-close) for the writer."""
        if self.live:
            self.pending.append(msg)
            wakeup = self._wakeup
            if wakeup is not None and not wakeup.done():
                wakeup.set_result(None)

    def finish(self, invocation_id: str, result: engine_pb2.InvocationResult | None) -> None:
        """An invocation is over: queue its result (None: cancelled, nothing to send)
        unless it has been cancelled or its session has ended meanwhile."""
        if self.jobs.pop(invocation_id, None) is None:
            return
        if result is not None:
            self.send(result)
        if not self.jobs:
            self.wake_idle()

    def wake_idle(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def wait_idle(self, timeout: float) -> None:
        """Return once no invocation is in flight (or after `timeout`)."""
        if not self.jobs:
            return
        self._idle = self.loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._idle), timeout)
        finally:
            self._idle = None

    # ---- sync jobs: pool thread -> loop ---------------------------------------------

    def finished_in_thread(self, invocation_id: str, outcome: Any) -> None:
        """Called on a pool thread; one loop wake-up serves every job finished meanwhile."""
        self.finished.append((invocation_id, outcome))
        if not self._finished_scheduled:
            self._finished_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._take_finished)
            except RuntimeError:  # the loop is closed: the worker is gone
                pass

    def _take_finished(self) -> None:
        self._finished_scheduled = False  # before popping: a later append re-schedules
        finished = self.finished
        while finished:
            invocation_id, outcome = finished.popleft()
            if type(outcome) is _InvocationResult:
                self.finish(invocation_id, outcome)
            elif (job := self.jobs.get(invocation_id)) is not None:  # a def handler returned a coroutine
                job.task = self.loop.create_task(self._await_returned(job, outcome))
            else:  # cancelled meanwhile: its coroutine is never run
                outcome.close()

    async def _await_returned(self, job: _Job, coro: Coroutine[Any, Any, Any]) -> None:
        invocation_id = job.inv.invocation_id
        result: engine_pb2.InvocationResult | None
        try:
            result = value_outcome(invocation_id, await coro, self.default)
            log_job_end(job.inv, job.started, None)
        except asyncio.CancelledError:
            result = None
        except Exception as exc:
            result = error_outcome(invocation_id, exc)
            log_job_end(job.inv, job.started, exc)
        self.finish(invocation_id, result)

    # ---- writer ----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        write = self.call.write
        loop = self.loop
        while True:
            if not self.pending:
                self._wakeup = loop.create_future()
                try:
                    await self._wakeup
                finally:
                    self._wakeup = None
                continue
            items, self.pending = self.pending, []
            for msg in coalesce(items, self.batch_results):
                if msg is None:
                    await self.call.done_writing()
                    return
                await write(msg)


class WorkerStream:
    """Keeps a worker registered with the engine for as long as it is not closed."""

    def __init__(self, channel: grpc.aio.Channel, *, url: str, worker_name: str, max_in_flight: int,
                 executor: Executor, fail_fast: bool = False, rng: random.Random | None = None,
                 default: Encoder | None = None) -> None:
        self._stub: Any = engine_pb2_grpc.EngineStub(channel)
        self._default = default
        self._url = url
        self._fail_fast = fail_fast
        self._rng = rng or random.Random()
        # The first attempt's outcome: None once welcomed, else the UnavailableError.
        self.first_attempt: asyncio.Future[BaseException | None] = \
            asyncio.get_running_loop().create_future()
        self._worker_name = worker_name
        self._max_in_flight = max_in_flight
        self._executor = executor
        self._functions: dict[str, tuple[AdaptedHandler, str]] = {}
        self._session: _Session | None = None
        self._last_session: _Session | None = None  # the latest, live or not
        self._closing = asyncio.Event()
        self.worker_id = ""
        self.welcomed = threading.Event()  # set while a welcomed session is live
        self._welcomed_async = asyncio.Event()
        self._registered_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # the first registration the engine refused (with ``fail_fast``, ``run`` raises it)
        self.refusal: SwitchyardError | None = None

    # ---- registration (loop thread) -------------------------------------------------

    def register(self, function_id: str, handler: AdaptedHandler, description: str) -> None:
        self._functions[function_id] = (handler, description)
        if self._session is not None:
            self._session.refused.pop(function_id, None)
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
        """Return once the engine has applied `function_id`'s registration; raise its
        refusal (the typed error of its reason, e.g. ``PermissionDeniedError``)."""
        session = self._session
        if session is not None and function_id in session.registered:
            return
        if session is not None and function_id in session.refused:
            raise session.refused[function_id]
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
        session.refused.pop(function_id, None)
        session.registered.add(function_id)
        for fut in self._registered_waiters.pop(function_id, []):
            if not fut.done():
                fut.set_result(None)

    def _mark_refused(self, session: _Session, refused: engine_pb2.RegistrationRefused) -> None:
        """The engine did not register a function: no work for it arrives here; logged at
        ERROR; its waiters get the typed error."""
        function_id = refused.function_id
        error = from_rpc_status(refused.status)
        error.details.setdefault("function_id", function_id)
        log.error("the engine refused to register function %r: %s", function_id, error,
                  extra={"function_id": function_id, "reason": error.reason})
        if function_id not in self._functions:
            return  # unregistered meanwhile
        session.registered.discard(function_id)
        session.refused[function_id] = error
        if self.refusal is None:
            self.refusal = error
        for fut in self._registered_waiters.pop(function_id, []):
            if not fut.done():
                fut.set_exception(error)

    # ---- connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with jittered backoff; returns once closed (or, with
        ``fail_fast``, after a failed first attempt)."""
        failures = 0  # consecutive failed attempts
        while not self._closing.is_set():
            session: _Session | None = None
            self._last_session = None
            refused: SwitchyardError | None = None  # the engine's own "no" (token, rights)
            try:
                session = await self._serve_once()
                cause, text = self._ended(session)
            except grpc.aio.AioRpcError as err:
                session = self._last_session
                cause, text = self._failed(session, err)
                if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    refused = from_rpc_error(err)
            except asyncio.TimeoutError:
                session = self._last_session
                cause, text = "timed_out", f"no welcome within {WELCOME_TIMEOUT_S:g} s"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the reconnect loop die
                log.exception("switchyard_sdk worker stream crashed; reconnecting")
                session = self._last_session
                cause, text = "other", f"the worker stream crashed: {exc!r}"
            if self._closing.is_set():
                return
            welcomed = session is not None and session.welcomed
            failures = 1 if welcomed else failures + 1
            if not self.first_attempt.done():
                self.first_attempt.set_result(refused or unreachable(self._url, text))
                if self._fail_fast:
                    return
            wait = delay_ms(failures, self._rng)
            log.warning("cannot reach the Switchyard engine at %s: %s; retrying in %d ms",
                        self._url, text, wait, extra={"url": self._url, "cause": cause, "retry_in_ms": wait})
            try:
                await asyncio.wait_for(self._closing.wait(), wait / 1000)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _ended(session: _Session) -> tuple[str, str]:
        """(cause, text) of a stream the engine ended cleanly."""
        if session.welcomed:
            return "connection_lost", CAUSE_TEXT["connection_lost"]
        return "other", "the engine ended the stream before welcoming this worker"

    @staticmethod
    def _failed(session: _Session | None, err: grpc.aio.AioRpcError) -> tuple[str, str]:
        """(cause, text) of a stream that failed with `err`."""
        detail = err.details() or err.code().name
        log.debug("switchyard_sdk stream failed: %s %s", err.code().name, detail)
        if session is not None and session.welcomed:
            return "connection_lost", CAUSE_TEXT["connection_lost"]
        if err.code() != grpc.StatusCode.UNAVAILABLE or detail.startswith("UNAVAILABLE:"):
            return "other", detail  # the engine answered, with an error
        return classify(detail)

    async def _serve_once(self) -> _Session:
        call = self._stub.Connect()
        # Write nothing before the engine's response headers: an engine that refuses the
        # stream (a missing or unknown token) answers trailers-only, and a write racing that
        # answer makes grpcio replace the engine's status with "INTERNAL: Internal error from
        # Core" (grpc/grpc#36066), so the refusal would read as an unreachable engine.
        try:
            await asyncio.wait_for(call.initial_metadata(), WELCOME_TIMEOUT_S)
        except asyncio.TimeoutError:
            call.cancel()
            raise
        session = _Session(call, self._default)
        self._session = self._last_session = session
        for function_id, (_, description) in self._functions.items():
            session.send(self._register_msg(function_id, description))
        session.send(engine_pb2.WorkerMessage(hello=engine_pb2.Hello(
            worker_name=self._worker_name, sdk_name=SDK_NAME, sdk_version=__version__,
            max_in_flight=self._max_in_flight, batches=True)))
        try:
            await self._read_loop(session)
        finally:
            self._end_session(session)
        return session

    async def _read_loop(self, session: _Session) -> None:
        read = session.call.read
        writer = session.writer
        start = self._start_invocation
        welcome_by = session.loop.time() + WELCOME_TIMEOUT_S
        while True:
            if session.welcomed:
                msg = await read()
            else:
                msg = await asyncio.wait_for(read(), max(welcome_by - session.loop.time(), 0.001))
            if msg is grpc.aio.EOF:
                return
            kind = msg.WhichOneof("kind")
            if kind == "invokes":
                session.batch_results = True
                for inv in msg.invokes.invokes:
                    start(session, inv)
            elif kind == "invoke":
                start(session, msg.invoke)
            elif kind == "cancel":
                self._cancel_invocation(session, msg.cancel)
            elif kind == "registered":
                self._mark_registered(session, msg.registered.function_id)
            elif kind == "refused":
                self._mark_refused(session, msg.refused)
            elif kind == "welcome":
                session.welcomed = True
                self.worker_id = msg.welcome.worker_id
                self.welcomed.set()
                self._welcomed_async.set()
                if not self.first_attempt.done():
                    self.first_attempt.set_result(None)
                log.info("connected to the Switchyard engine at %s", self._url,
                         extra={"url": self._url, "worker_id": self.worker_id})
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
        jobs = list(session.jobs.values())
        session.jobs.clear()  # whatever still finishes is answered by none
        session.wake_idle()
        for job in jobs:
            if job.task is not None:
                job.task.cancel()
        session.writer.cancel()
        session.call.cancel()

    # ---- invocations -----------------------------------------------------------------

    def _start_invocation(self, session: _Session, inv: engine_pb2.Invoke) -> None:
        invocation_id = inv.invocation_id
        entry = self._functions.get(inv.function_id)
        if entry is None:  # unregistered while the invoke was on the wire
            session.send(error_outcome(invocation_id, LookupError(
                f"function '{inv.function_id}' is not registered on this worker")))
            return
        handler = entry[0]
        ctx: Context | None = None
        if handler.wants_context:  # a handler that cannot see it gets none built
            ctx = Context(function_id=inv.function_id, invocation_id=invocation_id,
                          worker_id=self.worker_id)
            if inv.HasField("delivery"):
                d = inv.delivery
                ctx.attempt = d.attempt or 1
                ctx.max_attempts = d.max_attempts or 1
                ctx.queue = d.queue
                ctx.message_receipt_id = d.message_receipt_id
                ctx.group = d.group or None
                ctx.topic = d.topic or None
                ctx.enqueued_at = timestamp_to_datetime(d.enqueued_at, d.HasField("enqueued_at"))
                # progress is kept per queued job: a sync or void call's would be ignored
                ctx._reporter = ProgressReporter(session, invocation_id, session.default)
        job = _Job(inv, ctx)
        session.jobs[invocation_id] = job  # before the handler starts: it may finish at once
        log_job_start(inv)
        if not handler.is_async:
            self._executor.submit(_run_sync, session, handler.fn, job)
            return
        coro = self._invoke(session, handler.fn, job)
        if _eager_task is not None:
            task = _eager_task(session.loop, coro)
            if task.done():
                return
        else:
            task = session.loop.create_task(coro)
        job.task = task

    @staticmethod
    async def _invoke(session: _Session, fn: Callable[..., Any], job: _Job) -> None:
        """Run an async handler; queue its one result (none when cancelled)."""
        inv, ctx = job.inv, job.ctx
        invocation_id = inv.invocation_id
        result: engine_pb2.InvocationResult | None
        try:
            value = fn(to_python(inv.payload), ctx) if ctx is not None else fn(to_python(inv.payload))
            if inspect.isawaitable(value):
                value = await value
            result = value_outcome(invocation_id, value, session.default)
            log_job_end(inv, job.started, None)
        except asyncio.CancelledError:
            result = None  # engine cancelled it or the stream ended: no result is expected
        except Exception as exc:
            result = error_outcome(invocation_id, exc)
            log_job_end(inv, job.started, exc)
        session.finish(invocation_id, result)

    def _cancel_invocation(self, session: _Session, cancel: engine_pb2.Cancel) -> None:
        job = session.jobs.pop(cancel.invocation_id, None)
        if job is None:
            return
        log.debug("invocation %s cancelled: %s", cancel.invocation_id, cancel.reason)
        log_job_end(job.inv, job.started, None, cancelled=True)
        if job.ctx is not None:
            job.ctx.cancelled = True
        if job.task is not None:
            job.task.cancel()

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
        try:
            await session.wait_idle(grace_s)
        except asyncio.TimeoutError:
            log.warning("switchyard: %d handler(s) still running after the grace period",
                        len(session.jobs))
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


def _run_sync(session: _Session, fn: Callable[..., Any], job: _Job) -> None:
    """A sync handler, on a pool thread: build its result here, hand it to the loop."""
    inv, ctx = job.inv, job.ctx
    invocation_id = inv.invocation_id
    outcome: Any
    try:
        value = fn(to_python(inv.payload), ctx) if ctx is not None else fn(to_python(inv.payload))
        if asyncio.iscoroutine(value):  # a def handler that returned a coroutine
            outcome = value  # awaited on the loop
        else:
            outcome = value_outcome(invocation_id, value, session.default)
            log_job_end(inv, job.started, None)
    except Exception as exc:
        outcome = error_outcome(invocation_id, exc)
        log_job_end(inv, job.started, exc)
    session.finished_in_thread(invocation_id, outcome)

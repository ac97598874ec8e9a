"""Enqueue coalescing: concurrent enqueues share ``Engine.EnqueueBatch`` calls.

Invariant: every enqueue gets exactly the answer a single ``Trigger`` enqueue would have
given — its receipt (id and ``duplicate`` flag; each item carries its own enqueue
options), or its own typed ``SwitchyardError`` (an item the engine refuses fails alone; a
call that fails as a whole fails each of its items with that call's error). Batching
changes the cost, not the result.

Protocol (all on the Worker's private loop, see ``_loop``):

1. ``enqueue`` appends the item to the pending list and, unless one is already
   scheduled, schedules a cut with ``call_soon`` — so the tasks already runnable (e.g.
   producers woken by the same answer) run once and join before the batch is cut.
2. A cut sends batches while fewer than ``MAX_IN_FLIGHT`` calls are on the wire, each of
   at most ``MAX_ITEMS`` items or about ``MAX_BYTES``; what arrives meanwhile waits for a
   free slot and rides in the next batch. A lone producer thus sees no added latency
   beyond one loop turn, and many producers pay one round trip per batch, not per job.
3. The answer's results are matched to items by position; a freed slot schedules the
   next cut.

Items are encoded to ``EnqueueItem`` wire bytes once, by the caller (outside this loop
for callers on other threads or loops), and a request is those bytes framed as field 1
of ``EnqueueBatchRequest``: no request message tree is built or copied.

Deadlines: an enqueue's gRPC deadline is the SDK's call deadline (30 s) counted from
when ``enqueue`` was called, as if it had left at once; a batch's call deadline is the
earliest of its items', and an item whose deadline passed while it waited for a slot
fails with ``DEADLINE_EXCEEDED`` without being sent. ``timeout_ms`` bounds sync calls only
(the engine ignores it on an enqueue), so an enqueue that sets it comes here like any
other, as in the Rust and Node SDKs.

Fallback: an engine that answers ``UNIMPLEMENTED`` to ``EnqueueBatch`` (one from before
the call existed) gets that batch, and every later enqueue of this batcher (one per
channel), as one ``Trigger`` each.

Not done: cancelling an item once its batch is on the wire (the call carries other
callers' items); like a cancelled ``Trigger`` whose request already left, the job may
or may not be stored. An item cancelled before its batch is cut is not sent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc

from ._proto.v1 import engine_pb2
from .errors import SwitchyardError, SwitchyardTimeoutError, from_rpc_error, from_rpc_status

# Two, not more (as in the Rust SDK): fewer, larger batches cost client and engine less
# per job, while a second batch still overlaps the first's round trip.
MAX_IN_FLIGHT = 2
MAX_ITEMS = 1024
MAX_BYTES = 1024 * 1024

ENQUEUE_BATCH_METHOD = "/switchyard.v1.Engine/EnqueueBatch"


class Enqueue:
    """One enqueue, encoded when made (by the caller, on the caller's thread)."""

    __slots__ = ("item", "frame")

    def __init__(self, item: engine_pb2.EnqueueItem) -> None:
        self.item = item
        body = item.SerializeToString()
        # One ``items`` entry of an EnqueueBatchRequest: field 1, length-delimited.
        self.frame = b"\x0a" + _varint(len(body)) + body


@dataclass(slots=True)
class _Pending:
    request: Enqueue
    deadline: float  # loop time
    answer: asyncio.Future[engine_pb2.EnqueueReceipt]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _identity(b: bytes) -> bytes:
    return b


def deadline_exceeded() -> SwitchyardError:
    """What a Trigger whose client deadline passed raises."""
    return SwitchyardTimeoutError("DEADLINE_EXCEEDED", "Deadline Exceeded",
                                  grpc.StatusCode.DEADLINE_EXCEEDED)


class EnqueueBatcher:
    """Coalesces the enqueues of one channel. Create and use it on that channel's loop."""

    def __init__(self, channel: grpc.aio.Channel, engine: Any,
                 to_error: Callable[[grpc.RpcError], SwitchyardError] = from_rpc_error) -> None:
        self._engine = engine  # the EngineStub, for Trigger (fallback)
        self._to_error = to_error  # a failed call's error, as the Client raises it
        # EnqueueBatch with the request already encoded (see the module doc).
        self.enqueue_batch: Any = channel.unary_unary(
            ENQUEUE_BATCH_METHOD, request_serializer=_identity,
            response_deserializer=engine_pb2.EnqueueBatchResponse.FromString)
        self._loop = asyncio.get_running_loop()
        self._pending: deque[_Pending] = deque()
        self._in_flight = 0
        self._cut_scheduled = False
        self._batch_supported = True
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def enqueue(self, request: Enqueue, timeout: float) -> engine_pb2.EnqueueReceipt:
        """Enqueue; returns the receipt (id and duplicate flag), or raises the ``SwitchyardError`` a Trigger
        enqueue would have raised. ``timeout`` is the call deadline in seconds."""
        if not self._batch_supported:
            return await self._trigger(request.item, timeout)
        answer: asyncio.Future[engine_pb2.EnqueueReceipt] = self._loop.create_future()
        self._pending.append(_Pending(request, self._loop.time() + timeout, answer))
        self._schedule_cut()
        return await answer

    def _schedule_cut(self) -> None:
        if not self._cut_scheduled and self._pending and self._in_flight < MAX_IN_FLIGHT:
            self._cut_scheduled = True
            self._loop.call_soon(self._cut)

    def _cut(self) -> None:
        self._cut_scheduled = False
        if not self._batch_supported:  # found out while these waited
            while self._pending:
                p = self._pending.popleft()
                if not p.answer.done():
                    self._spawn(self._fall_back(p))
            return
        now = self._loop.time()
        while self._pending and self._in_flight < MAX_IN_FLIGHT:
            batch: list[_Pending] = []
            size = 0
            while self._pending and len(batch) < MAX_ITEMS:
                p = self._pending[0]
                if batch and size + len(p.request.frame) > MAX_BYTES:
                    break
                self._pending.popleft()
                if p.answer.done():  # cancelled while waiting: never sent
                    continue
                if p.deadline <= now:
                    p.answer.set_exception(deadline_exceeded())
                    continue
                batch.append(p)
                size += len(p.request.frame)
            if batch:
                self._in_flight += 1
                self._spawn(self._send(batch))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            await self._answer(batch)
        finally:
            self._in_flight -= 1
            self._schedule_cut()

    async def _answer(self, batch: list[_Pending]) -> None:
        timeout = min(p.deadline for p in batch) - self._loop.time()
        try:
            resp: engine_pb2.EnqueueBatchResponse = await self.enqueue_batch(
                b"".join(p.request.frame for p in batch), timeout=max(timeout, 0.001))
        except grpc.RpcError as err:
            if from_rpc_error(err).code == grpc.StatusCode.UNIMPLEMENTED:
                self._batch_supported = False  # remembered: this engine has no EnqueueBatch
            if not self._batch_supported:  # (also when another batch just found out)
                await asyncio.gather(*(self._fall_back(p) for p in batch))
                return
            for p in batch:
                _settle(p.answer, error=self._to_error(err))  # one instance per caller
            return
        except BaseException as exc:  # cancelled (shutdown) or a bug: no caller waits forever
            for p in batch:
                _settle(p.answer, error=exc)
            raise
        results = resp.results
        for i, p in enumerate(batch):
            if i >= len(results):
                _settle(p.answer, error=SwitchyardError(
                    "UNAVAILABLE", "the engine answered fewer results than items",
                    grpc.StatusCode.UNAVAILABLE))
                continue
            result = results[i]
            if result.WhichOneof("outcome") == "receipt":
                _settle(p.answer, receipt=result.receipt)
            else:
                _settle(p.answer, error=from_rpc_status(result.error))

    async def _fall_back(self, p: _Pending) -> None:
        try:
            receipt = await self._trigger(p.request.item, max(p.deadline - self._loop.time(), 0.001))
        except grpc.RpcError as err:
            _settle(p.answer, error=self._to_error(err))
        except Exception as exc:
            _settle(p.answer, error=exc)
        else:
            _settle(p.answer, receipt=receipt)

    async def _trigger(self, item: engine_pb2.EnqueueItem, timeout: float) -> engine_pb2.EnqueueReceipt:
        req = engine_pb2.TriggerRequest(function_id=item.function_id)
        req.payload.CopyFrom(item.payload)
        req.enqueue.queue = item.queue
        # The item's options, as the same fields of the action.
        if item.HasField("delay_ms"):
            req.enqueue.delay_ms = item.delay_ms
        if item.HasField("not_before"):
            req.enqueue.not_before.CopyFrom(item.not_before)
        req.enqueue.idempotency_key = item.idempotency_key
        if item.HasField("priority"):
            req.enqueue.priority = item.priority
        resp: engine_pb2.TriggerResponse = await self._engine.Trigger(req, timeout=timeout)
        return resp.receipt


def _settle(answer: asyncio.Future[engine_pb2.EnqueueReceipt], *,
            receipt: engine_pb2.EnqueueReceipt | None = None,
            error: BaseException | None = None) -> None:
    if answer.done():  # the caller gave up (cancelled)
        return
    if isinstance(error, asyncio.CancelledError):
        answer.cancel()
    elif error is not None:
        answer.set_exception(error)
    else:
        assert receipt is not None
        answer.set_result(receipt)

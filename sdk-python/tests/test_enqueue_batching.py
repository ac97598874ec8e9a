"""Enqueue coalescing (``_batcher``): concurrent enqueues share ``EnqueueBatch`` calls and
each still gets the answer a lone ``Trigger`` enqueue would have given.

Unit tests drive an ``EnqueueBatcher`` against a fake call (order, per-item errors,
in-flight limit, deadlines, the UNIMPLEMENTED fallback); live tests run bursts through
a worker on the real engine, counting the ``EnqueueBatch`` calls the worker makes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from _helpers import collect_deliveries, fake_engine, wait_until
from conftest import DEFAULT_CONFIG, Engine
from switchyard_sdk import (MissingGroupFieldError, PayloadTooLargeError, QueueNotFoundError,
                        SwitchyardError, SwitchyardTimeoutError, TriggerAction, UnavailableError,
                        Worker)
from switchyard_sdk import register_worker
from switchyard_sdk._batcher import MAX_IN_FLIGHT, Enqueue, EnqueueBatcher
from switchyard_sdk._json import to_python, to_value
from switchyard_sdk._proto.google_rpc import error_details_pb2, status_pb2
from switchyard_sdk._proto.v1 import engine_pb2, engine_pb2_grpc
from switchyard_sdk.errors import from_rpc_status, from_status

# ---- unit: the batcher against a fake EnqueueBatch ------------------------------------


def _enqueue(n: int, queue: str = "default") -> Enqueue:
    item = engine_pb2.EnqueueItem(function_id="f", queue=queue, payload=to_value({"n": n}))
    return Enqueue(item)


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def _not_found(queue: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="QUEUE_NOT_FOUND", domain="switchyard",
                                       metadata={"queue": queue})
    detail = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo",
                         value=info.SerializeToString())
    return status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0],
                             message=f"QUEUE_NOT_FOUND: queue '{queue}' is not defined",
                             details=[detail])


class FakeEngine:
    """Answers EnqueueBatch like the engine (queue "nope" is unknown), one call at a time
    once ``release`` is set; records each call's items and timeout."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[engine_pb2.EnqueueItem], float]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.batch_error: grpc.aio.AioRpcError | None = None
        self.triggers: list[engine_pb2.TriggerRequest] = []

    def unary_unary(self, method: str, **_: Any) -> Callable[..., Awaitable[Any]]:
        assert method == "/switchyard.v1.Engine/EnqueueBatch"
        return self.enqueue_batch

    async def enqueue_batch(self, request: bytes, timeout: float) -> engine_pb2.EnqueueBatchResponse:
        items = list(engine_pb2.EnqueueBatchRequest.FromString(request).items)
        self.calls.append((items, timeout))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if self.batch_error is not None:
                raise self.batch_error
            resp = engine_pb2.EnqueueBatchResponse()
            for item in items:
                if item.queue == "nope":
                    resp.results.add().error.CopyFrom(_not_found(item.queue))
                else:
                    resp.results.add().receipt.message_receipt_id = f"r{to_python(item.payload)['n']}"
            return resp
        finally:
            self.in_flight -= 1

    async def Trigger(self, req: engine_pb2.TriggerRequest, timeout: float) -> engine_pb2.TriggerResponse:  # noqa: N802
        self.triggers.append(req)
        if req.enqueue.queue == "nope":
            raise _rpc_error(grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND: queue 'nope' is not defined")
        return engine_pb2.TriggerResponse(
            receipt=engine_pb2.EnqueueReceipt(message_receipt_id=f"t{to_python(req.payload)['n']}"))


def _id(answer: Any) -> Any:
    """The receipt id of a batcher answer (an error stays what it is)."""
    return answer.message_receipt_id if isinstance(answer, engine_pb2.EnqueueReceipt) else answer


def _ids(answers: list[Any]) -> list[Any]:
    return [_id(a) for a in answers]


async def _turns(n: int = 5) -> None:
    """Let the loop run `n` turns (enough for an enqueue to be cut and sent)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def _gather(batcher: EnqueueBatcher, requests: list[Enqueue], timeout: float = 30.0) -> list[Any]:
    return await asyncio.gather(*(batcher.enqueue(r, timeout) for r in requests), return_exceptions=True)


def test_each_enqueue_gets_its_own_answer_in_order() -> None:
    async def main() -> None:
        fake = FakeEngine()
        batcher = EnqueueBatcher(fake, fake)  # type: ignore[arg-type]
        queues = ["nope" if n % 4 == 1 else "default" for n in range(50)]
        answers = await _gather(batcher, [_enqueue(n, q) for n, q in enumerate(queues)])
        for n, (queue, answer) in enumerate(zip(queues, answers)):
            if queue == "nope":
                assert isinstance(answer, QueueNotFoundError), (n, answer)
                assert answer.code == grpc.StatusCode.NOT_FOUND and answer.details == {"queue": "nope"}
            else:
                assert _id(answer) == f"r{n}"
        assert sum(len(items) for items, _ in fake.calls) == 50
        assert len(fake.calls) < 50
    asyncio.run(main())


def test_at_most_two_calls_in_flight_and_the_rest_ride_in_the_next_batch() -> None:
    async def main() -> None:
        fake = FakeEngine()
        fake.release.clear()
        batcher = EnqueueBatcher(fake, fake)  # type: ignore[arg-type]
        first = [asyncio.ensure_future(batcher.enqueue(_enqueue(0), 30))]
        await _turns()  # a lone enqueue leaves at once, alone
        assert [len(items) for items, _ in fake.calls] == [1]
        first.append(asyncio.ensure_future(batcher.enqueue(_enqueue(1), 30)))
        await _turns()
        rest = asyncio.ensure_future(_gather(batcher, [_enqueue(n) for n in range(2, 300)]))
        await _turns()
        assert [len(items) for items, _ in fake.calls] == [1, 1]  # both slots busy: they wait
        fake.release.set()
        assert _ids(await asyncio.gather(*first)) == ["r0", "r1"]
        assert _ids(await rest) == [f"r{n}" for n in range(2, 300)]
        assert fake.max_in_flight == MAX_IN_FLIGHT
        assert [len(items) for items, _ in fake.calls] == [1, 1, 298]
    asyncio.run(main())


def test_a_failed_call_fails_each_of_its_items_with_that_error() -> None:
    async def main() -> None:
        fake = FakeEngine()
        fake.batch_error = _rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")
        batcher = EnqueueBatcher(fake, fake)  # type: ignore[arg-type]
        answers = await _gather(batcher, [_enqueue(n) for n in range(10)])
        assert all(isinstance(a, UnavailableError) and a.message == "UNAVAILABLE: connection refused"
                   for a in answers)
        assert len({id(a) for a in answers}) == 10  # each caller its own exception object
        assert fake.triggers == []
    asyncio.run(main())


def test_unimplemented_falls_back_to_one_trigger_each_and_is_remembered() -> None:
    async def main() -> None:
        fake = FakeEngine()
        fake.batch_error = _rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        fake.release.clear()
        batcher = EnqueueBatcher(fake, fake)  # type: ignore[arg-type]
        first = []
        for n in range(MAX_IN_FLIGHT):
            first.append(asyncio.ensure_future(batcher.enqueue(_enqueue(n), 30)))
            await _turns()
        answers = asyncio.ensure_future(
            _gather(batcher, [_enqueue(n, "nope" if n == 3 else "default") for n in range(2, 10)]))
        await _turns()
        assert len(fake.calls) == MAX_IN_FLIGHT
        fake.release.set()  # both fail UNIMPLEMENTED; the items waiting meanwhile go as Triggers
        answers = [*await asyncio.gather(*first), *await answers]
        assert len(fake.calls) == MAX_IN_FLIGHT
        assert isinstance(answers[3], QueueNotFoundError)
        assert [_id(a) for n, a in enumerate(answers) if n != 3] == [f"t{n}" for n in range(10) if n != 3]
        calls = len(fake.calls)
        assert _id(await batcher.enqueue(_enqueue(42), 30)) == "t42"
        assert len(fake.calls) == calls  # not asked again
        # The fallback Trigger carries the item's enqueue options.
        item = engine_pb2.EnqueueItem(function_id="f", queue="default", payload=to_value({"n": 43}),
                                      delay_ms=0, idempotency_key="k", priority=0)
        item.not_before.seconds = 1_900_000_000
        assert _id(await batcher.enqueue(Enqueue(item), 30)) == "t43"
        sent = fake.triggers[-1].enqueue
        assert sent.HasField("delay_ms") and sent.delay_ms == 0 and sent.idempotency_key == "k"
        assert sent.HasField("priority") and sent.priority == 0
        assert not fake.triggers[-2].enqueue.HasField("priority")  # none given, none sent
        assert sent.not_before.seconds == 1_900_000_000
        assert len(fake.triggers) == 12
    asyncio.run(main())


def test_a_batch_call_deadline_is_its_earliest_items_and_expired_items_are_not_sent() -> None:
    async def main() -> None:
        fake = FakeEngine()
        fake.release.clear()
        batcher = EnqueueBatcher(fake, fake)  # type: ignore[arg-type]
        blockers = []
        for n in range(MAX_IN_FLIGHT):
            blockers.append(asyncio.ensure_future(batcher.enqueue(_enqueue(n), 30)))
            await _turns()
        assert len(fake.calls) == MAX_IN_FLIGHT
        short = asyncio.ensure_future(batcher.enqueue(_enqueue(10), 0.05))
        longer = asyncio.ensure_future(batcher.enqueue(_enqueue(11), 20))
        await asyncio.sleep(0.1)  # `short` expires while both slots are busy
        fake.release.set()
        assert _ids(await asyncio.gather(*blockers)) == ["r0", "r1"]
        with pytest.raises(SwitchyardTimeoutError) as info:
            await short
        assert info.value.reason == "DEADLINE_EXCEEDED"
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert _id(await longer) == "r11"
        items, timeout = fake.calls[-1]
        assert [to_python(i.payload)["n"] for i in items] == [11]
        assert 19 < timeout <= 20

        mixed = await _gather(batcher, [_enqueue(20), _enqueue(21)], timeout=5)
        assert _ids(mixed) == ["r20", "r21"] and 4 < fake.calls[-1][1] <= 5
    asyncio.run(main())


def test_item_status_maps_like_a_failed_call() -> None:
    status = _not_found("paymnet")
    via_item = from_rpc_status(status)
    via_call = from_status(grpc.StatusCode.NOT_FOUND, status.message,
                           (("grpc-status-details-bin", status.SerializeToString()),))
    assert type(via_item) is type(via_call) is QueueNotFoundError
    assert (via_item.reason, via_item.message, via_item.code, via_item.details) == \
        (via_call.reason, via_call.message, via_call.code, via_call.details)


# ---- live: bursts through a worker on the real engine --------------------------------

SMALL_PAYLOAD_CONFIG = DEFAULT_CONFIG + "max_payload_bytes: 4096\n"


@pytest.fixture
def engine_config() -> str:
    return SMALL_PAYLOAD_CONFIG


def _count_batches(w: Worker) -> list[int]:
    """Wrap the worker's EnqueueBatch call; returns the list of each call's item count."""
    sizes: list[int] = []
    batcher = w._batcher
    call = batcher.enqueue_batch

    def counting(request: bytes, **kwargs: Any) -> Any:
        sizes.append(len(engine_pb2.EnqueueBatchRequest.FromString(request).items))
        return call(request, **kwargs)

    batcher.enqueue_batch = counting
    return sizes


def test_concurrent_enqueues_get_distinct_receipts_and_each_job_runs_once(worker: Worker) -> None:
    seen = collect_deliveries(worker, "burst::job")
    sizes = _count_batches(worker)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(
            worker.trigger_async({"function_id": "burst::job", "payload": {"n": n},
                                  "action": TriggerAction.Enqueue(queue="default")})
            for n in range(200)))

    receipts = [r["messageReceiptId"] for r in asyncio.run(burst())]
    assert len(set(receipts)) == 200
    wait_until(lambda: len(seen) == 200, timeout=30, what="200 deliveries")
    # each receipt names the job its enqueue made (answers matched to the right items)
    assert {rid: seen[rid] for rid in receipts} == {rid: [{"n": n}] for n, rid in enumerate(receipts)}
    assert sum(sizes) == 200
    assert len(sizes) <= 100, f"a burst of 200 took {len(sizes)} EnqueueBatch calls: {sizes}"


def test_a_mixed_burst_fails_only_the_bad_items_with_their_own_reason(worker: Worker) -> None:
    seen = collect_deliveries(worker, "mixed::job")
    sizes = _count_batches(worker)

    def request(n: int) -> dict[str, Any]:
        kind = n % 4
        if kind == 1:
            return {"function_id": "mixed::job", "payload": {"n": n},
                    "action": TriggerAction.Enqueue(queue="paymnet")}
        if kind == 2:  # fifo queue, no orderId
            return {"function_id": "mixed::job", "payload": {"n": n},
                    "action": TriggerAction.Enqueue(queue="payment")}
        if kind == 3:
            return {"function_id": "mixed::job", "payload": {"n": n, "pad": "x" * 5000},
                    "action": TriggerAction.Enqueue(queue="default")}
        return {"function_id": "mixed::job", "payload": {"n": n, "orderId": f"o{n}"},
                "action": TriggerAction.Enqueue(queue="payment" if n % 8 else "default")}

    async def burst() -> tuple[list[Any], list[Any]]:
        batched = await asyncio.gather(*(worker.trigger_async(request(n)) for n in range(80)),
                                       return_exceptions=True)
        # the same requests one Trigger each, straight on the stub
        async def lone(n: int) -> Any:
            r = request(n)
            req = engine_pb2.TriggerRequest(function_id=r["function_id"], payload=to_value(r["payload"]))
            req.enqueue.queue = r["action"].queue
            async def call() -> Any:
                return await worker._engine.Trigger(req, timeout=30)
            return await worker._call_async(call())
        single = await asyncio.gather(*(lone(n) for n in (1, 2, 3)), return_exceptions=True)
        return batched, [None, *single]

    answers, single = asyncio.run(burst())
    expected = {1: QueueNotFoundError, 2: MissingGroupFieldError, 3: PayloadTooLargeError}
    for n, answer in enumerate(answers):
        kind = n % 4
        if kind == 0:
            assert isinstance(answer, dict) and answer["messageReceiptId"], (n, answer)
            continue
        assert type(answer) is expected[kind], (n, answer)
        lone = single[kind]
        assert isinstance(lone, SwitchyardError)
        assert (answer.reason, answer.code, answer.details) == (lone.reason, lone.code, lone.details)
        if kind != 3:  # the size differs by the digits of n
            assert answer.message == lone.message
    assert answers[1].reason == "QUEUE_NOT_FOUND" and "paymnet" in answers[1].message
    assert answers[2].reason == "MISSING_GROUP_FIELD" and answers[3].reason == "PAYLOAD_TOO_LARGE"
    assert sum(sizes) == 80 and len(sizes) < 80, sizes
    good = {a["messageReceiptId"]: n for n, a in enumerate(answers) if n % 4 == 0}
    wait_until(lambda: len(seen) == len(good), timeout=30, what="the good jobs' deliveries")
    assert {rid: [p["n"] for p in seen[rid]] for rid in good} == {rid: [n] for rid, n in good.items()}


def test_sync_trigger_from_many_threads_coalesces(worker: Worker) -> None:
    seen = collect_deliveries(worker, "threads::job")
    sizes = _count_batches(worker)
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)

    def produce(t: int) -> list[tuple[int, str]]:
        start.wait(10)
        out = []
        for i in range(per_thread):
            n = t * per_thread + i
            r = worker.trigger({"function_id": "threads::job", "payload": {"n": n},
                                "action": TriggerAction.Enqueue(queue="default")})
            out.append((n, r["messageReceiptId"]))
        return out

    with futures.ThreadPoolExecutor(threads) as pool:
        results = [pair for chunk in pool.map(produce, range(threads)) for pair in chunk]
    total = threads * per_thread
    assert len({rid for _, rid in results}) == total
    wait_until(lambda: len(seen) == total, timeout=30, what="every thread's jobs delivered")
    assert {rid: seen[rid] for _, rid in results} == {rid: [{"n": n}] for n, rid in results}
    assert sum(sizes) == total and len(sizes) < total, sizes


def test_a_transport_failure_fails_every_enqueue_of_the_burst(engine: Engine, worker: Worker) -> None:
    engine.kill()

    async def burst() -> list[Any]:
        return await asyncio.gather(*(
            worker.trigger_async({"function_id": "gone::job", "payload": {"n": n},
                                  "action": TriggerAction.Enqueue(queue="default")})
            for n in range(20)), return_exceptions=True)

    answers = asyncio.run(burst())
    assert all(isinstance(a, UnavailableError) and a.reason == "UNAVAILABLE" for a in answers), answers


class _OldEngine(engine_pb2_grpc.EngineServicer):
    """An engine from before EnqueueBatch: Trigger enqueues only."""

    def __init__(self) -> None:
        self.triggers = 0
        self.lock = threading.Lock()

    def Trigger(self, request: engine_pb2.TriggerRequest, context: grpc.ServicerContext
                ) -> engine_pb2.TriggerResponse:  # noqa: N802
        with self.lock:
            self.triggers += 1
            n = self.triggers
        if request.enqueue.queue != "default":
            context.abort(grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND: queue is not defined")
        return engine_pb2.TriggerResponse(receipt=engine_pb2.EnqueueReceipt(message_receipt_id=f"old-{n}"))


def test_an_engine_without_enqueue_batch_gets_one_trigger_per_enqueue() -> None:
    servicer = _OldEngine()
    with fake_engine(servicer) as port:
        w = register_worker(f"http://127.0.0.1:{port}", shutdown_grace=1.0)
        try:
            sizes = _count_batches(w)

            async def burst() -> list[Any]:
                return await asyncio.gather(*(
                    w.trigger_async({"function_id": "old::job", "payload": {"n": n},
                                     "action": TriggerAction.Enqueue(queue="nope" if n == 7 else "default")})
                    for n in range(30)), return_exceptions=True)

            answers = asyncio.run(burst())
            assert isinstance(answers[7], QueueNotFoundError)
            ok = [a["messageReceiptId"] for n, a in enumerate(answers) if n != 7]
            assert len(set(ok)) == 29 and all(r.startswith("old-") for r in ok)
            calls = len(sizes)
            assert 1 <= calls <= MAX_IN_FLIGHT  # the batches already on the wire, then never again
            assert w.trigger({"function_id": "old::job", "payload": {},
                              "action": TriggerAction.Enqueue(queue="default")})["messageReceiptId"]
            assert len(sizes) == calls and servicer.triggers == 31
        finally:
            w.shutdown(grace=1.0)

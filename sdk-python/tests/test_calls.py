"""Live tests of the caller surface: enqueue, sync call, void, typed errors, handler kinds."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from _helpers import call_when_registered, wait_until
from switchyard_sdk import (Context, FunctionFailedError, FunctionNotFoundError,
                        MissingGroupFieldError, QueueNotFoundError, SwitchyardTimeoutError,
                        TriggerAction, Worker)


def test_enqueue_is_processed_with_delivery_context(worker: Worker) -> None:
    seen: list[tuple[Any, Context]] = []
    done = threading.Event()

    def handler(payload: Any, ctx: Context) -> dict[str, bool]:
        seen.append((payload, ctx))
        done.set()
        return {"ok": True}

    worker.register_function("orders::process-payment", handler)
    receipt = worker.trigger({"function_id": "orders::process-payment",
                              "payload": {"orderId": "ord_789", "amount": 42},
                              "action": TriggerAction.Enqueue(queue="default")})
    assert receipt == {"messageReceiptId": receipt["messageReceiptId"], "duplicate": False}
    assert receipt["messageReceiptId"]
    assert done.wait(10), "the enqueued job was never delivered"
    payload, ctx = seen[0]
    assert payload == {"orderId": "ord_789", "amount": 42}
    assert ctx.message_receipt_id == receipt["messageReceiptId"]
    assert ctx.queue == "default" and ctx.group is None
    assert ctx.attempt == 1 and ctx.max_attempts == 3
    assert ctx.function_id == "orders::process-payment" and ctx.invocation_id
    completed = wait_until(lambda: next(q for q in worker.list_queues() if q.name == "default")
                           .stats.completed == 1, what="completed counter")
    assert completed


def test_sync_call_returns_the_function_value(worker: Worker) -> None:
    worker.register_function("math::add", lambda p: {"sum": p["a"] + p["b"], "half": 0.5})
    value = call_when_registered(worker, {"function_id": "math::add", "payload": {"a": 1, "b": 2}})
    assert value == {"sum": 3, "half": 0.5}


def test_sync_call_failure_is_function_failed_with_worker_message(worker: Worker) -> None:
    def charge(payload: Any) -> None:
        raise ValueError("card declined")

    worker.register_function("payments::charge", charge)
    with pytest.raises(FunctionFailedError) as info:
        call_when_registered(worker, {"function_id": "payments::charge", "payload": {}})
    err = info.value
    assert err.reason == "FUNCTION_FAILED"
    assert err.message == "FUNCTION_FAILED: function 'payments::charge' failed: card declined"
    assert err.error_message == "card declined"
    assert err.error_code == "ValueError"
    assert "Traceback" in err.stack and "in charge" in err.stack


def test_void_call_runs_and_returns_none(worker: Worker) -> None:
    got = threading.Event()
    worker.register_function("analytics::track", lambda p: got.set())
    assert call_when_registered(worker, {"function_id": "analytics::track", "payload": {"e": 1},
                                         "action": TriggerAction.Void()}) is None
    assert got.wait(10)


def test_enqueue_to_unknown_queue_is_queue_not_found(worker: Worker) -> None:
    with pytest.raises(QueueNotFoundError) as info:
        worker.trigger({"function_id": "orders::process-payment", "payload": {},
                        "action": TriggerAction.Enqueue(queue="paymnet")})
    assert info.value.reason == "QUEUE_NOT_FOUND"
    assert "paymnet" in info.value.message and "payment" in info.value.message


def test_fifo_enqueue_without_group_field_is_missing_group_field(worker: Worker) -> None:
    with pytest.raises(MissingGroupFieldError) as info:
        worker.trigger({"function_id": "orders::process-payment", "payload": {"amount": 1},
                        "action": TriggerAction.Enqueue(queue="payment")})
    assert info.value.reason == "MISSING_GROUP_FIELD"


def test_sync_call_to_unregistered_function_is_function_not_found(worker: Worker) -> None:
    with pytest.raises(FunctionNotFoundError):
        worker.trigger({"function_id": "nobody::home", "payload": None})


def test_sync_call_past_its_timeout_is_timeout(worker: Worker) -> None:
    cancelled = threading.Event()

    async def slow(payload: Any, ctx: Context) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker.register_function("slow::op", slow)
    started = time.monotonic()
    with pytest.raises(SwitchyardTimeoutError) as info:
        call_when_registered(worker, {"function_id": "slow::op", "payload": {}, "timeout_ms": 300})
    assert info.value.reason == "TIMEOUT", "the engine did not enforce timeout_ms itself"
    assert time.monotonic() - started < 5
    assert cancelled.wait(10), "the engine's cancel did not reach the async handler"


def test_async_and_sync_handlers_both_serve(worker: Worker) -> None:
    def sync_plain(p: Any) -> str:
        return f"sync:{p}"

    def sync_ctx(p: Any, ctx: Context) -> str:
        return f"sync-ctx:{ctx.function_id}"

    async def async_plain(p: Any) -> str:
        await asyncio.sleep(0)
        return f"async:{p}"

    @worker.function("kinds::async-ctx")
    async def async_ctx(p: Any, ctx: Context) -> str:
        return f"async-ctx:{ctx.attempt}"

    worker.register_function("kinds::sync", sync_plain)
    worker.register_function("kinds::sync-ctx", sync_ctx)
    worker.register_function("kinds::async", async_plain)
    assert call_when_registered(worker, {"function_id": "kinds::sync", "payload": 1}) == "sync:1"
    assert call_when_registered(worker, {"function_id": "kinds::sync-ctx", "payload": 1}) \
        == "sync-ctx:kinds::sync-ctx"
    assert call_when_registered(worker, {"function_id": "kinds::async", "payload": 2}) == "async:2"
    assert call_when_registered(worker, {"function_id": "kinds::async-ctx", "payload": 3}) \
        == "async-ctx:1"


def test_trigger_async_from_asyncio_code(worker: Worker) -> None:
    worker.register_function("math::square", lambda p: p * p)
    call_when_registered(worker, {"function_id": "math::square", "payload": 0})

    async def main() -> list[Any]:
        calls = [worker.trigger_async({"function_id": "math::square", "payload": n})
                 for n in range(20)]
        receipt = await worker.trigger_async({"function_id": "math::square", "payload": 9,
                                              "action": TriggerAction.Enqueue(queue="default")})
        assert receipt["messageReceiptId"]
        with pytest.raises(QueueNotFoundError):
            await worker.trigger_async({"function_id": "math::square", "payload": 1,
                                        "action": TriggerAction.Enqueue(queue="nope")})
        return list(await asyncio.gather(*calls))

    assert asyncio.run(asyncio.wait_for(main(), 20)) == [n * n for n in range(20)]


def test_handlers_may_call_the_engine(worker: Worker) -> None:
    worker.register_function("math::double", lambda p: p * 2)

    async def quadruple(p: int) -> Any:
        return await worker.trigger_async({"function_id": "math::double", "payload": p * 2})

    def sextuple(p: int) -> Any:  # a sync handler uses the blocking API from its thread
        return worker.trigger({"function_id": "math::double", "payload": p * 3})

    worker.register_function("math::quadruple", quadruple)
    worker.register_function("math::sextuple", sextuple)
    call_when_registered(worker, {"function_id": "math::double", "payload": 0})
    assert call_when_registered(worker, {"function_id": "math::quadruple", "payload": 5}) == 20
    assert call_when_registered(worker, {"function_id": "math::sextuple", "payload": 5}) == 30

"""Live tests of queue semantics as seen from the SDK: FIFO order, DLQ, redrive, discard."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

from _helpers import wait_until
from switchyard_sdk import Context, QueueNotFoundError, TriggerAction, Worker


def _stats(worker: Worker, queue: str) -> Any:
    return next(q for q in worker.list_queues() if q.name == queue).stats


def test_list_queues_shows_effective_config(worker: Worker) -> None:
    queues = {q.name: q for q in worker.list_queues()}
    assert {"default", "payment"} <= set(queues)
    payment = queues["payment"].config
    assert payment.type == "fifo" and payment.message_group_field == "orderId"
    assert payment.max_retries == 3 and payment.concurrency == 4
    assert queues["default"].config.type == "standard"


def test_fifo_runs_each_group_in_enqueue_order(worker: Worker) -> None:
    per_group = 8
    groups = ["ord_A", "ord_B", "ord_C"]
    seen: dict[str, list[int]] = {g: [] for g in groups}
    running: dict[str, int] = {g: 0 for g in groups}
    overlap: list[str] = []
    done = threading.Event()
    lock = threading.Lock()
    total = per_group * len(groups)

    async def pay(payload: Any, ctx: Context) -> None:
        group = payload["orderId"]
        assert ctx.group == group
        with lock:
            running[group] += 1
            if running[group] > 1:
                overlap.append(group)
        await asyncio.sleep(random.uniform(0, 0.01))
        with lock:
            running[group] -= 1
            seen[group].append(payload["seq"])
            if sum(len(v) for v in seen.values()) == total:
                done.set()

    worker.register_function("orders::process-payment", pay)
    for seq in range(per_group):
        for g in groups:
            worker.trigger({"function_id": "orders::process-payment",
                            "payload": {"orderId": g, "seq": seq},
                            "action": TriggerAction.Enqueue(queue="payment")})
    assert done.wait(20), f"only saw {seen}"
    assert not overlap, f"two jobs of one group ran at once: {overlap}"
    for g in groups:
        assert seen[g] == list(range(per_group)), f"group {g} ran out of order: {seen[g]}"


def test_exhausted_retries_reach_dlq_with_traceback_then_redrive_completes(worker: Worker) -> None:
    fixed = threading.Event()
    attempts: list[int] = []
    completed = threading.Event()

    def settle_invoice(payload: Any, ctx: Context) -> str:
        attempts.append(ctx.attempt)
        if not fixed.is_set():
            raise RuntimeError(f"ledger offline (attempt {ctx.attempt})")
        completed.set()
        return "settled"

    worker.register_function("billing::settle", settle_invoice)
    receipt = worker.trigger({"function_id": "billing::settle", "payload": {"invoice": 7},
                              "action": TriggerAction.Enqueue(queue="default")})
    rid = receipt["messageReceiptId"]

    page = wait_until(lambda: (p := worker.list_dead_letters("default")).entries and p,
                      what="the job to be dead-lettered")
    [dead] = page.entries
    assert dead.message_receipt_id == rid
    assert dead.function_id == "billing::settle" and dead.payload == {"invoice": 7}
    assert dead.attempts == 3 and attempts == [1, 2, 3]
    assert dead.last_error.code == "RuntimeError"
    assert dead.last_error.message == "ledger offline (attempt 3)"
    assert "Traceback (most recent call last)" in dead.last_error.stack
    assert "in settle_invoice" in dead.last_error.stack
    assert dead.dead_lettered_at is not None and dead.enqueued_at is not None
    assert _stats(worker, "default").dead == 1

    fixed.set()
    assert worker.redrive_dead_letters("default", [rid]) == 1
    assert completed.wait(10), "the redriven job did not run again"
    assert attempts[-1] == 1, "a redriven job starts with a fresh retry budget"
    assert worker.list_dead_letters("default").entries == []
    wait_until(lambda: _stats(worker, "default").completed == 1, what="completed counter")


def test_discard_dead_letters_removes_them(worker: Worker) -> None:
    def always_fails(payload: Any) -> None:
        raise KeyError("missing")

    worker.register_function("jobs::doomed", always_fails)
    for n in range(3):
        worker.trigger({"function_id": "jobs::doomed", "payload": {"n": n},
                        "action": TriggerAction.Enqueue(queue="default")})
    wait_until(lambda: len(worker.list_dead_letters("default").entries) == 3,
               what="three dead letters")
    first = worker.list_dead_letters("default", page_size=2)
    assert len(first.entries) == 2 and first.next_page_token
    rest = worker.list_dead_letters("default", page_size=2, page_token=first.next_page_token)
    assert len(rest.entries) == 1
    assert worker.discard_dead_letters("default", [first.entries[0].message_receipt_id]) == 1
    assert worker.discard_dead_letters("default") == 2
    assert worker.list_dead_letters("default").entries == []


def test_queues_calls_on_unknown_queue_are_queue_not_found(worker: Worker) -> None:
    with pytest.raises(QueueNotFoundError):
        worker.list_dead_letters("nope")
    with pytest.raises(QueueNotFoundError):
        worker.redrive_dead_letters("nope")

    async def main() -> None:
        with pytest.raises(QueueNotFoundError):
            await worker.discard_dead_letters_async("nope")
        assert any(q.name == "default" for q in await worker.list_queues_async())

    asyncio.run(main())

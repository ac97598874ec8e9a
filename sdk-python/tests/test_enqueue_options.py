"""Live tests of the enqueue options and topics (issue 17) against the engine binary:
delayed jobs, idempotency keys, publish fan-out, and the errors of each."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from _helpers import wait_until
from conftest import DEFAULT_CONFIG
from switchyard_sdk import (Context, Function, InvalidArgumentError, SubscriberReceipt,
                            TopicNotFoundError, TriggerAction, Worker)

TOPIC = "orders.placed"
BILLING, EMAILS = "billing::charge", "emails::receipt"


@pytest.fixture
def engine_config() -> str:
    return DEFAULT_CONFIG + f"""\
  q: {{dedup_window_ms: 300000, max_retries: 0}}
topic_configs:
  {TOPIC}:
    subscribers: [{BILLING}, {EMAILS}]
    max_retries: 0
"""


def _stats(worker: Worker, queue: str) -> Any:
    return next(q for q in worker.list_queues() if q.name == queue).stats


def _recording(worker: Worker, function_id: str, fail: bool = False) -> list[tuple[float, Any, Context]]:
    """Register `function_id`; returns the (start time, payload, ctx) of every invocation."""
    seen: list[tuple[float, Any, Context]] = []
    lock = threading.Lock()

    def handler(payload: Any, ctx: Context) -> bool:
        with lock:
            seen.append((time.monotonic(), payload, ctx))
        if fail:
            raise RuntimeError("subscriber down")
        return True

    worker.register_function(function_id, handler)
    assert worker.wait_registered(function_id, 10)
    return seen


def _enqueue(worker: Worker, payload: Any, queue: str = "q", **options: Any) -> Any:
    return worker.trigger({"function_id": "jobs::run", "payload": payload,
                           "action": TriggerAction.Enqueue(queue=queue, **options)})


def test_delayed_job_is_delayed_then_runs_no_earlier_than_its_delay(worker: Worker) -> None:
    seen = _recording(worker, "jobs::run")
    sent = time.monotonic()
    later = _enqueue(worker, {"n": 1}, delay_ms=500)
    at = _enqueue(worker, {"n": 2}, not_before=datetime.now(timezone.utc) + timedelta(milliseconds=500))
    stats = _stats(worker, "q")
    assert (stats.delayed, stats.ready) == (2, 0), stats
    wait_until(lambda: _stats(worker, "q").completed == 2, what="both delayed jobs completed")
    starts = {ctx.message_receipt_id: start for start, _, ctx in seen}
    for receipt in (later, at):
        assert starts[receipt["messageReceiptId"]] - sent >= 0.5 - 0.001, "a delayed job ran early"
    assert _stats(worker, "q").delayed == 0


def test_not_before_in_the_past_runs_now_and_delay_zero_is_no_delay(worker: Worker) -> None:
    _recording(worker, "jobs::run")
    _enqueue(worker, {"n": 1}, not_before=datetime.now(timezone.utc) - timedelta(hours=1))
    _enqueue(worker, {"n": 2}, delay_ms=0)
    wait_until(lambda: _stats(worker, "q").completed == 2, what="both jobs completed")


def test_delay_with_not_before_is_conflicting_delay_and_stores_nothing(worker: Worker) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _enqueue(worker, {}, delay_ms=10, not_before=datetime.now(timezone.utc))
    assert info.value.reason == "CONFLICTING_DELAY"
    assert info.value.message.startswith("CONFLICTING_DELAY: ")
    assert _stats(worker, "q").enqueued == 0


def test_idempotency_key_duplicate_returns_the_first_receipt(worker: Worker) -> None:
    first = _enqueue(worker, {"n": 1}, idempotency_key="order-1")
    again = _enqueue(worker, {"n": 2}, idempotency_key="order-1")
    other = _enqueue(worker, {"n": 3}, idempotency_key="order-2")
    assert first["duplicate"] is False and other["duplicate"] is False
    assert again == {"messageReceiptId": first["messageReceiptId"], "duplicate": True}
    assert other["messageReceiptId"] != first["messageReceiptId"]
    seen = _recording(worker, "jobs::run")
    wait_until(lambda: _stats(worker, "q").completed == 2, what="the two distinct jobs completed")
    assert sorted(p["n"] for _, p, _ in seen) == [1, 3], "the duplicate's payload must never run"
    assert _enqueue(worker, {"n": 4}, idempotency_key="order-1")["duplicate"], "the key outlives its job"
    assert _stats(worker, "q").enqueued == 2


def test_concurrent_enqueues_with_one_key_in_one_batch_make_one_job(worker: Worker) -> None:
    async def burst() -> list[Any]:
        return await asyncio.gather(*(
            worker.trigger_async({"function_id": "jobs::run", "payload": {"n": n},
                                  "action": TriggerAction.Enqueue(queue="q", idempotency_key="burst")})
            for n in range(8)))
    answers = asyncio.run(burst())
    assert len({a["messageReceiptId"] for a in answers}) == 1, answers
    assert sum(not a["duplicate"] for a in answers) == 1, answers
    assert _stats(worker, "q").enqueued == 1


def test_key_over_256_bytes_is_invalid_idempotency_key(worker: Worker) -> None:
    _enqueue(worker, {}, idempotency_key="é" * 128)  # 256 bytes: accepted
    with pytest.raises(InvalidArgumentError) as info:
        _enqueue(worker, {}, idempotency_key="k" * 257)
    assert info.value.reason == "INVALID_IDEMPOTENCY_KEY"
    assert _stats(worker, "q").enqueued == 1


def test_publish_fans_out_one_job_per_subscriber_with_its_topic(worker: Worker) -> None:
    billing = _recording(worker, BILLING)
    emails = _recording(worker, EMAILS)
    published = worker.publish(TOPIC, {"orderId": "o1"})
    assert [(r.function_id, r.queue, r.duplicate) for r in published.receipts] == [
        (BILLING, f"{TOPIC}/{BILLING}", False), (EMAILS, f"{TOPIC}/{EMAILS}", False)]
    wait_until(lambda: len(billing) == 1 and len(emails) == 1, what="one job per subscriber")
    for seen, receipt in ((billing, published.receipts[0]), (emails, published.receipts[1])):
        _, payload, ctx = seen[0]
        assert payload == {"orderId": "o1"}
        assert (ctx.topic, ctx.queue) == (TOPIC, receipt.queue)
        assert ctx.message_receipt_id == receipt.message_receipt_id
    queues = {q.name: q for q in worker.list_queues()}
    assert queues[f"{TOPIC}/{BILLING}"].config.topic == TOPIC
    assert queues["q"].config.topic is None and queues["q"].config.dedup_window_ms == 300000


def test_publish_with_a_key_twice_answers_the_first_receipts(worker: Worker) -> None:
    async def twice() -> list[Any]:
        first = await worker.publish_async(TOPIC, {"orderId": "o2"}, idempotency_key="o2", delay_ms=60_000)
        return [first, await worker.publish_async(TOPIC, {"orderId": "o2"}, idempotency_key="o2")]
    first, again = asyncio.run(twice())
    assert [r.duplicate for r in again.receipts] == [True, True]
    assert again.receipts == [SubscriberReceipt(r.function_id, r.queue, r.message_receipt_id, True)
                              for r in first.receipts]
    assert _stats(worker, f"{TOPIC}/{BILLING}").delayed == 1


def test_publish_to_an_unknown_topic_is_topic_not_found(worker: Worker) -> None:
    with pytest.raises(TopicNotFoundError) as info:
        worker.publish("orders.lost", {})
    assert info.value.reason == "TOPIC_NOT_FOUND" and "orders.lost" in info.value.message


def test_a_failing_subscriber_dead_letters_alone(worker: Worker) -> None:
    _recording(worker, BILLING, fail=True)
    emails = _recording(worker, EMAILS)
    published = worker.publish(TOPIC, {"orderId": "o3"})
    billing_queue = f"{TOPIC}/{BILLING}"
    wait_until(lambda: len(worker.list_dead_letters(billing_queue).entries) == 1,
               what="billing's dead letter")
    wait_until(lambda: _stats(worker, f"{TOPIC}/{EMAILS}").completed == 1, what="emails completed")
    [dead] = worker.list_dead_letters(billing_queue).entries
    assert dead.message_receipt_id == published.receipts[0].message_receipt_id and dead.function_id == BILLING
    assert worker.list_dead_letters(f"{TOPIC}/{EMAILS}").entries == []
    assert len(emails) == 1


def test_a_typed_function_enqueues_with_the_options(worker: Worker) -> None:
    run = Function[dict[str, int], bool]("jobs::run")
    first = run.enqueue(worker, {"n": 1}, queue="q", idempotency_key="typed", delay_ms=60_000)
    again = asyncio.run(run.enqueue_async(worker, {"n": 2}, queue="q", idempotency_key="typed"))
    assert first["duplicate"] is False
    assert again == {"messageReceiptId": first["messageReceiptId"], "duplicate": True}
    assert _stats(worker, "q").delayed == 1

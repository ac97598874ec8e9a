"""The job lifecycle against the real engine: get_job through the states, wait_for_result
(sync and async, and its TIMEOUT / JOB_CANCELLED / JOB_DEAD), cancel before and during a
run (async and def handlers), progress seen by get_job, NonRetryableError, priorities."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from _helpers import wait_until
from conftest import DEFAULT_CONFIG
from switchyard_sdk import (Context, InvalidArgumentError, JobCancelledError, JobDeadError,
                            JobNotFoundError, JobProgress, NonRetryableError,
                            SwitchyardTimeoutError, TriggerAction, Worker)


@pytest.fixture
def engine_config() -> str:
    return DEFAULT_CONFIG + (
        "  kept: {result_retention_ms: 60000, max_retries: 5, backoff_ms: 50}\n"
        "  single: {concurrency: 1, result_retention_ms: 60000}\n")


def _enqueue(w: Worker, function_id: str, payload: Any, queue: str = "kept", **options: Any) -> str:
    receipt = w.trigger({"function_id": function_id, "payload": payload,
                         "action": TriggerAction.Enqueue(queue=queue, **options)})
    return str(receipt["messageReceiptId"])


def _serve(w: Worker, function_id: str, handler: Callable[..., Any]) -> None:
    w.register_function(function_id, handler)
    assert w.wait_registered(function_id, 10)


def test_get_job_follows_a_job_to_completed_and_wait_for_result_returns_its_value(worker: Worker) -> None:
    job_id = _enqueue(worker, "jobs::double", {"n": 21})
    ready = worker.get_job("kept", job_id)
    assert (ready.state, ready.attempts, ready.max_attempts, ready.payload) == ("ready", 0, 6, {"n": 21})
    assert ready.enqueued_at is not None and ready.finished_at is None and not ready.finished
    _serve(worker, "jobs::double", lambda payload: {"twice": payload["n"] * 2})
    assert worker.wait_for_result("kept", job_id, timeout_ms=10_000) == {"twice": 42}
    done = worker.get_job("kept", job_id)
    assert (done.state, done.attempts, done.result) == ("completed", 1, {"twice": 42})
    assert done.finished_at is not None and done.expires_at is not None and done.expires_at > done.finished_at


def test_an_unknown_job_is_job_not_found_naming_queue_and_id(worker: Worker) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(JobNotFoundError) as info:
        worker.get_job("kept", missing)
    assert info.value.reason == "JOB_NOT_FOUND"
    assert info.value.details["queue"] == "kept" and info.value.details["message_receipt_id"] == missing
    with pytest.raises(JobNotFoundError):
        worker.wait_for_result("kept", missing, timeout_ms=5_000)


def test_wait_for_result_times_out_then_cancel_before_start_makes_it_job_cancelled(worker: Worker) -> None:
    job_id = _enqueue(worker, "jobs::later", {}, delay_ms=600_000)
    with pytest.raises(SwitchyardTimeoutError) as timed_out:
        worker.wait_for_result("kept", job_id, timeout_ms=200)
    assert timed_out.value.reason == "TIMEOUT" and timed_out.value.details["state"] == "delayed"
    first = worker.cancel_job("kept", job_id)
    assert first.outcome == "cancelled" and first.job.state == "cancelled"
    assert worker.cancel_job("kept", job_id).outcome == "already_cancelled"
    with pytest.raises(JobCancelledError) as cancelled:
        worker.wait_for_result("kept", job_id, timeout_ms=5_000)
    assert cancelled.value.reason == "JOB_CANCELLED" and cancelled.value.job is not None


def test_the_async_calls_follow_a_job_too(worker: Worker) -> None:
    _serve(worker, "jobs::echo", lambda payload: payload)

    async def main() -> None:
        receipt = await worker.trigger_async({"function_id": "jobs::echo", "payload": [1, "a"],
                                              "action": TriggerAction.Enqueue(queue="kept")})
        job_id = receipt["messageReceiptId"]
        assert await worker.wait_for_result_async("kept", job_id, timeout_ms=10_000) == [1, "a"]
        assert (await worker.get_job_async("kept", job_id)).state == "completed"
        assert (await worker.cancel_job_async("kept", job_id)).outcome == "already_finished"
    asyncio.run(main())


def test_cancel_during_a_run_cancels_an_async_handler_and_the_job_ends_cancelled(worker: Worker) -> None:
    seen: dict[str, Any] = {}

    async def handler(payload: Any, ctx: Context) -> None:
        seen["ctx"] = ctx
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    _serve(worker, "jobs::slow", handler)
    job_id = _enqueue(worker, "jobs::slow", {})
    wait_until(lambda: "ctx" in seen, what="the job to start")
    result = worker.cancel_job("kept", job_id)
    assert result.outcome == "cancelling"
    wait_until(lambda: seen.get("cancelled"), what="the handler's task to be cancelled")
    assert seen["ctx"].cancelled
    wait_until(lambda: worker.get_job("kept", job_id).state == "cancelled", what="the job to end cancelled")
    job = worker.get_job("kept", job_id)
    assert job.attempts == 1 and job.finished_at is not None
    stats = next(q.stats for q in worker.list_queues() if q.name == "kept")
    assert (stats.dead, stats.dead_lettered, stats.in_flight) == (0, 0, 0)


def test_a_def_handler_sees_ctx_cancelled_when_its_job_is_cancelled(worker: Worker) -> None:
    started, stopped = threading.Event(), threading.Event()

    def handler(payload: Any, ctx: Context) -> None:
        started.set()
        deadline = time.monotonic() + 30
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        if ctx.cancelled:
            stopped.set()

    _serve(worker, "jobs::polling", handler)
    job_id = _enqueue(worker, "jobs::polling", {})
    assert started.wait(10)
    assert worker.cancel_job("kept", job_id).outcome == "cancelling"
    assert stopped.wait(10), "ctx.cancelled never flipped"
    wait_until(lambda: worker.get_job("kept", job_id).state == "cancelled", what="the job to end cancelled")


def test_progress_reported_by_a_handler_is_what_get_job_shows(worker: Worker) -> None:
    release = threading.Event()

    def handler(payload: Any, ctx: Context) -> str:
        for n in range(1, 51):
            ctx.set_progress(n * 2, {"rows": n})
        release.wait(30)
        return "ok"

    _serve(worker, "jobs::report", handler)
    job_id = _enqueue(worker, "jobs::report", {})
    try:
        wait_until(lambda: worker.get_job("kept", job_id).progress == JobProgress(100.0, {"rows": 50}),
                   what="the latest progress in get_job")
        assert worker.get_job("kept", job_id).state == "in_flight"
    finally:
        release.set()
    assert worker.wait_for_result("kept", job_id, timeout_ms=10_000) == "ok"


def test_a_non_retryable_error_dead_letters_the_job_after_one_attempt(worker: Worker) -> None:
    attempts: list[int] = []

    def handler(payload: Any, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise NonRetryableError("card number is invalid")

    _serve(worker, "jobs::charge", handler)
    job_id = _enqueue(worker, "jobs::charge", {"card": "0000"})
    with pytest.raises(JobDeadError) as info:
        worker.wait_for_result("kept", job_id, timeout_ms=10_000)
    err = info.value
    assert err.reason == "JOB_DEAD" and err.error_code == "NonRetryableError"
    assert err.error_message == "card number is invalid"
    assert err.job is not None and err.job.attempts == 1 and err.job.max_attempts == 6
    assert attempts == [1]
    [entry] = worker.list_dead_letters("kept").entries
    assert entry.message_receipt_id == job_id and entry.last_error.code == "NonRetryableError"


def test_priority_orders_ready_jobs_and_its_mistakes_are_typed(worker: Worker) -> None:
    for n, priority in [(1, None), (2, 9), (3, 5), (4, 9)]:
        _enqueue(worker, "jobs::ordered", {"n": n}, queue="single",
                 **({} if priority is None else {"priority": priority}))
    order: list[int] = []
    _serve(worker, "jobs::ordered", lambda payload: order.append(payload["n"]))
    wait_until(lambda: len(order) == 4, what="the four jobs")
    assert order == [2, 4, 3, 1]
    with pytest.raises(InvalidArgumentError) as too_high:
        _enqueue(worker, "jobs::ordered", {}, queue="single", priority=10)
    assert too_high.value.reason == "INVALID_PRIORITY"
    with pytest.raises(InvalidArgumentError) as on_fifo:
        _enqueue(worker, "jobs::ordered", {"orderId": "o1"}, queue="payment", priority=1)
    assert on_fifo.value.reason == "PRIORITY_ON_FIFO_QUEUE"
    kept = _enqueue(worker, "jobs::ordered", {"n": 5}, queue="single", priority=7)
    wait_until(lambda: worker.get_job("single", kept).state == "completed", what="job 5")
    assert worker.get_job("single", kept).priority == 7

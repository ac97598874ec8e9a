"""Calls from other event loops cross to the SDK loop in batches (``_crossing``), and each
still gets its own answer.

Unit tests drive a ``LoopThread`` with plain coroutines (hops counted, order, per-call
outcomes, cancellation, closed loops); live tests run bursts through a worker on the
real engine from one and from two caller loops.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import switchyard_sdk._crossing
from _helpers import call_when_registered, collect_deliveries, wait_until
from switchyard_sdk import (FunctionFailedError, FunctionNotFoundError, QueueNotFoundError,
                        TriggerAction, Worker)
from switchyard_sdk._loop import LoopThread


@pytest.fixture
def sdk() -> Iterator[LoopThread]:
    lt = LoopThread("test-sdk-loop")
    yield lt
    lt.stop()


def _count_hops(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Wrap `loop.call_soon_threadsafe`; the list grows by one per call."""
    hops: list[int] = []
    call = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        hops.append(1)
        return call(*args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return hops


async def _echo(n: int) -> int:
    await asyncio.sleep(0)
    return n


async def _wait_for_thread_event(event: threading.Event, timeout: float = 5) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, timeout)


# ---- unit: a LoopThread and plain coroutines ------------------------------------------


def test_a_turns_calls_cross_in_one_hop_and_their_answers_in_one_hop_back(sdk: LoopThread) -> None:
    to_sdk = _count_hops(sdk.loop)

    async def main() -> tuple[list[int], list[int]]:
        back = _count_hops(asyncio.get_running_loop())
        results = await asyncio.gather(*(sdk.run_async(_echo(n)) for n in range(200)))
        return results, back

    results, back = asyncio.run(main())
    assert results == list(range(200))
    assert (len(to_sdk), len(back)) == (1, 1), "200 calls of one turn should cross once each way"


def test_calls_of_one_loop_start_in_the_order_they_were_made(sdk: LoopThread) -> None:
    started: list[int] = []

    async def record(n: int) -> int:
        started.append(n)
        return n

    async def main() -> None:
        first = [asyncio.ensure_future(sdk.run_async(record(n))) for n in range(100)]
        await asyncio.sleep(0)  # the first 100 leave; the next 100 form a second batch
        rest = [asyncio.ensure_future(sdk.run_async(record(n))) for n in range(100, 200)]
        assert await asyncio.gather(*first, *rest) == list(range(200))

    asyncio.run(main())
    assert started == list(range(200))


def test_each_call_gets_its_own_result_exception_or_cancellation(sdk: LoopThread) -> None:
    async def outcome(n: int) -> int:
        await asyncio.sleep(0)
        if n % 3 == 1:
            raise ValueError(f"bad {n}")
        if n % 3 == 2:
            raise asyncio.CancelledError()
        return n

    async def main() -> list[Any]:
        return await asyncio.gather(*(sdk.run_async(outcome(n)) for n in range(60)),
                                    return_exceptions=True)

    answers = asyncio.run(main())
    for n, answer in enumerate(answers):
        if n % 3 == 0:
            assert answer == n
        elif n % 3 == 1:
            assert isinstance(answer, ValueError) and str(answer) == f"bad {n}", (n, answer)
        else:
            assert isinstance(answer, asyncio.CancelledError), (n, answer)


_request_id: contextvars.ContextVar[int] = contextvars.ContextVar("request_id")


def test_each_call_runs_in_a_copy_of_its_callers_context(sdk: LoopThread) -> None:
    async def read() -> int:
        await asyncio.sleep(0)
        return _request_id.get()

    async def caller(n: int) -> int:
        _request_id.set(n)
        return await sdk.run_async(read())

    async def main() -> list[int]:
        return await asyncio.gather(*(caller(n) for n in range(50)))  # one batch

    assert asyncio.run(main()) == list(range(50))


def test_cancelling_the_await_cancels_the_running_call(sdk: LoopThread) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> None:
        task = asyncio.ensure_future(sdk.run_async(forever()))
        await _wait_for_thread_event(started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _wait_for_thread_event(cancelled)
        assert await sdk.run_async(_echo(7)) == 7

    asyncio.run(asyncio.wait_for(main(), 20))


def test_an_error_no_caller_awaits_any_more_is_not_reported_as_unretrieved(sdk: LoopThread) -> None:
    errors: list[dict[str, Any]] = []
    sdk.loop.set_exception_handler(lambda _loop, context: errors.append(context))
    started = threading.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ValueError("failed while cancelled") from None

    async def main() -> None:
        task = asyncio.ensure_future(sdk.run_async(stubborn()))
        await _wait_for_thread_event(started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await sdk.run_async(_echo(1)) == 1  # crossed after the cancel: answered after it

    asyncio.run(asyncio.wait_for(main(), 20))
    gc.collect()
    assert errors == []


def test_a_call_cancelled_before_its_task_ran_never_runs(sdk: LoopThread) -> None:
    ran = threading.Event()
    block, blocked = threading.Event(), threading.Event()

    async def never() -> None:
        ran.set()

    def hold_the_sdk_loop() -> None:
        blocked.set()
        block.wait(10)

    sdk.call_soon(hold_the_sdk_loop)
    coro = never()

    async def main() -> None:
        await _wait_for_thread_event(blocked)
        task = asyncio.ensure_future(sdk.run_async(coro))
        for _ in range(3):  # the call leaves in its batch, and waits behind the held loop
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        block.set()
        assert await sdk.run_async(_echo(1)) == 1

    asyncio.run(asyncio.wait_for(main(), 20))
    assert not ran.is_set()
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


def test_a_closed_caller_loop_does_not_stop_answers_to_other_loops(sdk: LoopThread) -> None:
    errors: list[dict[str, Any]] = []
    sdk.loop.set_exception_handler(lambda _loop, context: errors.append(context))
    gate = sdk.run(_make_event())
    started = {"gone": threading.Event(), "live": threading.Event()}

    async def wait_gate(name: str) -> str:
        started[name].set()
        await gate.wait()
        return name

    gone = asyncio.new_event_loop()
    gone.set_exception_handler(lambda *_: None)  # `pending` is left pending on purpose
    pending = gone.create_task(sdk.run_async(wait_gate("gone")))
    gone.run_until_complete(_wait_for_thread_event(started["gone"]))
    gone.close()  # with `pending` still waiting for its answer

    async def live() -> str:
        task = asyncio.ensure_future(sdk.run_async(wait_gate("live")))
        await _wait_for_thread_event(started["live"])
        sdk.call_soon(gate.set)  # both finish in one SDK turn, "gone" first
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(live()) == "live"
    assert sdk.run(_echo(2)) == 2
    assert errors == []
    assert not pending.done()


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


def test_a_call_after_the_sdk_loop_closed_raises_runtime_error(sdk: LoopThread) -> None:
    sdk.stop()
    assert sdk.loop.is_closed()
    coro = _echo(1)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="closed"):
            await asyncio.wait_for(sdk.run_async(coro), 5)

    asyncio.run(main())
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


# ---- live: bursts through a worker on the real engine --------------------------------


def _count_batches(w: Worker, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Sizes of the batches of calls that cross to the worker's loop, and of answers back."""
    crossing = w._loop._crossing
    start = crossing._start
    settle = switchyard_sdk._crossing._settle
    out: list[int] = []
    back: list[int] = []

    def counting_start(calls: list[Any]) -> None:
        out.append(len(calls))
        start(calls)

    def counting_settle(calls: list[Any]) -> None:
        back.append(len(calls))
        settle(calls)

    monkeypatch.setattr(crossing, "_start", counting_start)
    monkeypatch.setattr(switchyard_sdk._crossing, "_settle", counting_settle)
    return out, back


def _enqueue(n: Any, function_id: str = "hops::job", queue: str = "default") -> dict[str, Any]:
    return {"function_id": function_id, "payload": {"n": n},
            "action": TriggerAction.Enqueue(queue=queue)}


def _producers(w: Worker, requests: list[dict[str, Any]], producers: int) -> Callable[[], Any]:
    """A coroutine function: `producers` tasks share `requests` (each awaits one at a time,
    as the producer bench does); returns the answers in request order."""
    async def run() -> list[Any]:
        answers: list[Any] = [None] * len(requests)
        todo = iter(range(len(requests)))

        async def producer() -> None:
            for i in todo:
                try:
                    answers[i] = await w.trigger_async(requests[i])
                except Exception as exc:
                    answers[i] = exc

        await asyncio.gather(*(producer() for _ in range(producers)))
        return answers
    return run


def test_many_producers_on_one_loop_get_distinct_receipts_and_each_job_runs_once(
        worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = collect_deliveries(worker, "hops::job")
    out, back = _count_batches(worker, monkeypatch)
    total = 640
    answers = asyncio.run(_producers(worker, [_enqueue(n) for n in range(total)], 32)())
    receipts = [a["messageReceiptId"] for a in answers]
    assert len(set(receipts)) == total
    wait_until(lambda: len(seen) == total, timeout=30, what=f"{total} deliveries")
    # each receipt names the job its own enqueue made
    assert {rid: seen[rid] for rid in receipts} == {rid: [{"n": n}] for n, rid in enumerate(receipts)}
    assert sum(out) == sum(back) == total
    assert len(out) <= total // 8 and len(back) <= total // 8, (out, back)


def test_errors_stay_with_their_call_in_a_mixed_burst(
        worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    def echo(payload: Any) -> Any:
        if payload["n"] % 5 == 4:
            raise ValueError(f"refused {payload['n']}")
        return payload

    worker.register_function("hops::echo", echo)
    call_when_registered(worker, {"function_id": "hops::echo", "payload": {"n": 0}})
    out, _ = _count_batches(worker, monkeypatch)

    def request(n: int) -> dict[str, Any]:
        kind = n % 5
        if kind == 0:
            return _enqueue(n)
        if kind == 1:
            return _enqueue(n, queue="paymnet")
        if kind == 2:
            return {"function_id": "hops::nobody", "payload": {"n": n}}
        return {"function_id": "hops::echo", "payload": {"n": n}}  # 3: value, 4: raises

    async def burst() -> list[Any]:
        return await asyncio.gather(*(worker.trigger_async(request(n)) for n in range(100)),
                                    return_exceptions=True)

    answers = asyncio.run(burst())
    for n, answer in enumerate(answers):
        kind = n % 5
        if kind == 0:
            assert isinstance(answer, dict) and answer["messageReceiptId"], (n, answer)
        elif kind == 1:
            assert type(answer) is QueueNotFoundError and "paymnet" in answer.message, (n, answer)
        elif kind == 2:
            assert type(answer) is FunctionNotFoundError and "hops::nobody" in answer.message, (n, answer)
        elif kind == 3:
            assert answer == {"n": n}
        else:
            assert type(answer) is FunctionFailedError and answer.error_message == f"refused {n}", (n, answer)
    assert len({id(a) for a in answers}) == 100  # each caller its own exception object
    assert out[0] == 100, f"the burst did not cross as one batch: {out}"


def test_two_loops_in_two_threads_share_one_worker(worker: Worker) -> None:
    worker.register_function("hops::echo", lambda payload: payload)
    call_when_registered(worker, {"function_id": "hops::echo", "payload": 0})
    seen = collect_deliveries(worker, "hops::job")
    per_loop = 300
    start = threading.Barrier(2)
    answers: dict[str, list[Any]] = {}

    def requests(tag: str) -> list[dict[str, Any]]:
        return [_enqueue(f"{tag}{i}") if i % 3 else
                {"function_id": "hops::echo", "payload": f"{tag}{i}"} for i in range(per_loop)]

    def run(tag: str) -> None:
        start.wait(10)
        # debug: settling a future from another loop's thread raises instead of going unseen
        answers[tag] = asyncio.run(asyncio.wait_for(_producers(worker, requests(tag), 16)(), 30),
                                   debug=True)

    threads = [threading.Thread(target=run, args=(tag,), daemon=True) for tag in ("a", "b")]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 40
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    assert set(answers) == {"a", "b"}, "a caller loop did not get all its answers"
    expected: dict[str, list[Any]] = {}
    for tag, got in answers.items():
        for i, answer in enumerate(got):
            if i % 3:
                assert isinstance(answer, dict) and answer["messageReceiptId"], (tag, i, answer)
                expected[answer["messageReceiptId"]] = [{"n": f"{tag}{i}"}]
            else:
                assert answer == f"{tag}{i}", (tag, i, answer)
    assert len(expected) == 2 * (per_loop - per_loop // 3)
    wait_until(lambda: len(seen) == len(expected), timeout=30, what="both loops' jobs delivered")
    assert seen == expected


def test_cancelling_an_awaited_sync_call_cancels_it_and_later_calls_work(worker: Worker) -> None:
    started = threading.Event()

    async def slow(payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    worker.register_function("hops::slow", slow)
    worker.register_function("hops::echo", lambda payload: payload)
    assert worker.wait_registered("hops::slow", 10) and worker.wait_registered("hops::echo", 10)
    trigger = worker._trigger
    sdk_side_cancelled = threading.Event()

    async def watched(req: Any, deadline: float) -> Any:  # runs on the worker's loop
        try:
            return await trigger(req, deadline)
        except asyncio.CancelledError:
            sdk_side_cancelled.set()
            raise

    worker._trigger = watched  # type: ignore[method-assign]

    async def main() -> None:
        call = asyncio.ensure_future(worker.trigger_async(
            {"function_id": "hops::slow", "payload": {}, "timeout_ms": 20_000}))
        await _wait_for_thread_event(started, 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await _wait_for_thread_event(sdk_side_cancelled)
        assert await worker.trigger_async({"function_id": "hops::echo", "payload": 5}) == 5
        receipt = await worker.trigger_async(_enqueue(1))
        assert receipt["messageReceiptId"]

    asyncio.run(asyncio.wait_for(main(), 30))
    assert worker.trigger({"function_id": "hops::echo", "payload": 6}) == 6

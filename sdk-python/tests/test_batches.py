"""Batches on the worker stream: ``invokes`` in, ``results`` out.

Unit tests drive the result coalescing (``coalesce`` and a session's writer against a
fake call); live tests push a backlog through a worker with max_in_flight 64, so the
engine sends ``invokes`` batches, and check every job ran exactly once with its own ctx.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from _helpers import wait_until
from conftest import DEFAULT_CONFIG
from switchyard_sdk import Context, TriggerAction, Worker
from switchyard_sdk._json import to_value
from switchyard_sdk._proto.v1 import engine_pb2
from switchyard_sdk._results import coalesce
from switchyard_sdk._stream import _Session


def _result(n: int) -> engine_pb2.InvocationResult:
    return engine_pb2.InvocationResult(invocation_id=f"inv-{n}", value=to_value(n))


def _ids(msg: engine_pb2.WorkerMessage | None) -> Any:
    """A message as: "hello", ("result", id), ("results", [ids]) or None."""
    if msg is None:
        return None
    kind = msg.WhichOneof("kind")
    if kind == "result":
        return ("result", msg.result.invocation_id)
    if kind == "results":
        return ("results", [r.invocation_id for r in msg.results.results])
    return kind


HELLO = engine_pb2.WorkerMessage(hello=engine_pb2.Hello(worker_name="w"))


def test_coalesce_batches_each_run_of_results_and_keeps_order() -> None:
    items = [_result(1), _result(2), HELLO, _result(3), _result(4), _result(5), None]
    assert [_ids(m) for m in coalesce(items)] == [
        ("results", ["inv-1", "inv-2"]), "hello", ("results", ["inv-3", "inv-4", "inv-5"]), None]


def test_coalesce_sends_a_lone_result_as_result() -> None:
    assert [_ids(m) for m in coalesce([_result(1)])] == [("result", "inv-1")]
    assert [_ids(m) for m in coalesce([HELLO, _result(2), HELLO])] == \
        ["hello", ("result", "inv-2"), "hello"]
    assert coalesce([]) == []


def test_coalesce_without_batching_sends_one_result_each() -> None:
    items = [_result(1), _result(2), HELLO, _result(3)]
    assert [_ids(m) for m in coalesce(items, batch=False)] == [
        ("result", "inv-1"), ("result", "inv-2"), "hello", ("result", "inv-3")]


class _FakeCall:
    """Records writes; each write stays pending until `release` is set."""

    def __init__(self) -> None:
        self.written: list[Any] = []
        self.release = asyncio.Event()
        self.release.set()
        self.writing = asyncio.Event()

    async def write(self, msg: engine_pb2.WorkerMessage) -> None:
        self.written.append(_ids(msg))
        self.writing.set()
        await self.release.wait()

    async def done_writing(self) -> None:
        self.written.append("done_writing")

    def cancel(self) -> None:
        pass


def _run_session(body: Callable[[_Session, _FakeCall], Any]) -> list[Any]:
    async def main() -> list[Any]:
        call = _FakeCall()
        session = _Session(call, None)
        try:
            await asyncio.wait_for(body(session, call), 5)
            session.send(None)
            await asyncio.wait_for(session.writer, 5)
        finally:
            session.writer.cancel()
        return call.written
    return asyncio.run(main())


def test_writer_batches_results_of_one_loop_turn() -> None:
    async def body(session: _Session, call: _FakeCall) -> None:
        session.batch_results = True
        for n in range(5):  # all in the same turn: the writer has not run yet
            session.send(_result(n))
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    assert _run_session(body) == [("results", [f"inv-{n}" for n in range(5)]), "done_writing"]


def test_writer_batches_results_that_finish_while_a_write_is_pending() -> None:
    async def body(session: _Session, call: _FakeCall) -> None:
        session.batch_results = True
        call.release.clear()
        session.send(_result(0))  # alone: written at once, as a plain result
        await asyncio.wait_for(call.writing.wait(), 5)
        for n in range(1, 4):  # arrive while that write is still pending
            session.send(_result(n))
            await asyncio.sleep(0)
        call.release.set()

    assert _run_session(body) == [("result", "inv-0"), ("results", ["inv-1", "inv-2", "inv-3"]),
                                  "done_writing"]


def test_writer_sends_single_results_until_the_engine_has_sent_a_batch() -> None:
    async def body(session: _Session, call: _FakeCall) -> None:
        for n in range(3):
            session.send(_result(n))
        await asyncio.sleep(0)

    assert _run_session(body) == [("result", "inv-0"), ("result", "inv-1"), ("result", "inv-2"),
                                  "done_writing"]


def test_finish_answers_once_and_never_after_a_cancel() -> None:
    async def body(session: _Session, call: _FakeCall) -> None:
        from switchyard_sdk._stream import _Job
        session.jobs["inv-1"] = _Job(engine_pb2.Invoke(invocation_id="inv-1"), None)
        session.jobs["inv-2"] = _Job(engine_pb2.Invoke(invocation_id="inv-2"), None)
        session.finish("inv-1", _result(1))
        session.finish("inv-1", _result(1))  # a second answer for the same invocation
        del session.jobs["inv-2"]            # what a cancel does
        session.finish("inv-2", _result(2))
        await asyncio.sleep(0)

    assert _run_session(body) == [("result", "inv-1"), "done_writing"]


# ---- live -----------------------------------------------------------------------------

JOBS = 600


@pytest.fixture
def engine_config() -> str:
    return DEFAULT_CONFIG + "  bulk: {max_retries: 0, backoff_ms: 50, concurrency: 256}\n"


def _enqueue_backlog(producer: Worker, function_id: str) -> dict[str, int]:
    """Enqueue JOBS jobs concurrently; returns receipt id -> payload number."""
    async def main() -> list[str]:
        action = TriggerAction.Enqueue(queue="bulk")
        receipts = await asyncio.gather(*(
            producer.trigger_async({"function_id": function_id, "payload": {"n": n}, "action": action})
            for n in range(JOBS)))
        return [r["messageReceiptId"] for r in receipts]
    return {rid: n for n, rid in enumerate(asyncio.run(asyncio.wait_for(main(), 60)))}


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_backlog_arrives_in_batches_and_each_job_runs_once_with_its_ctx(
        kind: str, make_worker: Callable[..., Worker]) -> None:
    function_id = f"bulk::{kind}"
    producer = make_worker()
    expected = _enqueue_backlog(producer, function_id)  # waits: no worker serves it yet

    seen: list[tuple[int, Context]] = []
    lock = threading.Lock()
    all_seen = threading.Event()

    def record(payload: Any, ctx: Context) -> dict[str, int]:
        with lock:
            seen.append((payload["n"], ctx))
            if len(seen) == JOBS:
                all_seen.set()
        return {"n": payload["n"]}

    if kind == "async":
        async def handler(payload: Any, ctx: Context) -> dict[str, int]:
            if payload["n"] % 3 == 0:
                await asyncio.sleep(0)  # some suspend, some finish at once
            return record(payload, ctx)
    else:
        def handler(payload: Any, ctx: Context) -> dict[str, int]:  # type: ignore[misc]
            return record(payload, ctx)

    w = make_worker(max_in_flight=64)
    assert w.wait_connected(10)
    w.register_function(function_id, handler)
    assert all_seen.wait(60), f"only {len(seen)}/{JOBS} jobs ran"
    stats = wait_until(lambda: (s := next(q for q in producer.list_queues()
                                          if q.name == "bulk").stats).completed >= JOBS and s,
                       timeout=30, what="every job to count as completed")
    assert stats.completed == JOBS and stats.failed == 0 and stats.dead == 0

    with lock:
        got = list(seen)
    assert len(got) == JOBS
    receipts = [ctx.message_receipt_id for _, ctx in got]
    assert sorted(receipts) == sorted(expected), "a job ran twice or not at all"
    assert len({ctx.invocation_id for _, ctx in got}) == JOBS
    for n, ctx in got:
        assert ctx.message_receipt_id is not None and expected[ctx.message_receipt_id] == n
        assert ctx.function_id == function_id and ctx.queue == "bulk" and ctx.group is None
        assert ctx.attempt == 1 and ctx.max_attempts == 1 and not ctx.cancelled
        assert ctx.worker_id == w.worker_id and ctx.enqueued_at is not None
    session = w._stream._session
    assert session is not None and session.batch_results, \
        "the engine never sent an invokes batch (an engine from before batches?)"


def test_value_outcome_fills_the_result_and_rejects_non_json() -> None:
    from switchyard_sdk._json import to_python
    from switchyard_sdk._results import value_outcome
    r = value_outcome("inv-9", {"a": [1, "x", None], "b": 0.5})
    assert r.invocation_id == "inv-9" and r.WhichOneof("outcome") == "value"
    assert to_python(r.value) == {"a": [1, "x", None], "b": 0.5}
    assert value_outcome("inv-0", None).WhichOneof("outcome") == "value"
    with pytest.raises(TypeError):
        value_outcome("inv-1", {"when": object()})

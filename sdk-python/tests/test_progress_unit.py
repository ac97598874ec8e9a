"""Handler-side lifecycle without the real engine: ``ctx.set_progress`` on the worker stream
(a fake ``Engine.Connect`` that invokes one job and records what the worker sends) and
``NonRetryableError`` in the result."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from _helpers import fake_engine, wait_until
from switchyard_sdk import Context, JobProgress, NonRetryableError, register_worker
from switchyard_sdk._json import to_python, to_value
from switchyard_sdk._proto.v1 import engine_pb2, engine_pb2_grpc
from switchyard_sdk._results import error_outcome
from switchyard_sdk.testing import fake_context, run_handler


class _InvokingEngine(engine_pb2_grpc.EngineServicer):
    """Welcomes the worker, acknowledges its registrations, then sends one invoke per
    ``invoke(...)`` call; records every progress report and result it receives."""

    def __init__(self) -> None:
        self.to_worker: queue.Queue[engine_pb2.EngineMessage | None] = queue.Queue()
        self.received: list[tuple[str, Any]] = []  # ("progress", (id, value, detail)) / ("result", msg)
        self.lock = threading.Lock()

    def invoke(self, function_id: str, invocation_id: str, queued: bool = True) -> None:
        inv = engine_pb2.Invoke(invocation_id=invocation_id, function_id=function_id, payload=to_value({}))
        if queued:
            inv.delivery.CopyFrom(engine_pb2.Delivery(queue="jobs", message_receipt_id=f"r-{invocation_id}",
                                                      attempt=1, max_attempts=3))
        self.to_worker.put(engine_pb2.EngineMessage(invoke=inv))

    def of_kind(self, kind: str) -> list[Any]:
        with self.lock:
            return [v for k, v in self.received if k == kind]

    def Connect(self, request_iterator: Any, context: Any) -> Any:  # noqa: N802
        context.send_initial_metadata(())

        def read() -> None:
            for msg in request_iterator:
                kind = msg.WhichOneof("kind")
                if kind == "register_function":
                    self.to_worker.put(engine_pb2.EngineMessage(
                        registered=engine_pb2.Registered(function_id=msg.register_function.function_id)))
                elif kind == "hello":
                    self.to_worker.put(engine_pb2.EngineMessage(welcome=engine_pb2.Welcome(worker_id="w1")))
                elif kind == "progress":
                    p = msg.progress
                    value = p.progress.value if p.progress.HasField("value") else None
                    detail = to_python(p.progress.detail) if p.progress.HasField("detail") else None
                    with self.lock:
                        self.received.append(("progress", (p.invocation_id, value, detail)))
                elif kind == "result":
                    with self.lock:
                        self.received.append(("result", msg.result))
            self.to_worker.put(None)
        threading.Thread(target=read, daemon=True).start()
        while (out := self.to_worker.get()) is not None:
            yield out


@pytest.fixture
def invoking() -> Iterator[tuple[_InvokingEngine, str]]:
    servicer = _InvokingEngine()
    with fake_engine(servicer, threads=8) as port:
        yield servicer, f"127.0.0.1:{port}"


def _serve(url: str, handler: Callable[..., Any]) -> Any:
    worker = register_worker(url, shutdown_grace=0.5)
    worker.register_function("f", handler)
    assert worker.wait_registered("f", 10)
    return worker


def test_a_def_handler_reports_progress_while_it_runs_and_the_latest_is_sent(
        invoking: tuple[_InvokingEngine, str]) -> None:
    engine, url = invoking
    seen_latest = threading.Event()

    def handler(payload: Any, ctx: Context) -> str:
        for percent in range(1, 101):  # a tight loop: coalesced, the last one must arrive
            ctx.set_progress(percent, {"step": "upload", "percent": percent})
        assert seen_latest.wait(10), "the engine never got the latest report"
        return "done"

    worker = _serve(url, handler)
    try:
        engine.invoke("f", "i1")
        wait_until(lambda: ("i1", 100.0, {"step": "upload", "percent": 100}) in engine.of_kind("progress"),
                   what="the latest progress report, while the handler runs")
        assert not engine.of_kind("result")  # it was sent while the job ran
        seen_latest.set()
        wait_until(lambda: engine.of_kind("result"), what="the result")
        reports = [value for _, value, _ in engine.of_kind("progress")]
        assert reports == sorted(reports) and reports[-1] == 100.0  # in order, latest last
        assert engine.of_kind("result")[0].value == to_value("done")
    finally:
        worker.shutdown(grace=0.5)


def test_an_async_handler_reports_progress_through_its_context(invoking: tuple[_InvokingEngine, str]) -> None:
    engine, url = invoking
    release = asyncio.Event()
    loop_of: list[asyncio.AbstractEventLoop] = []

    async def handler(payload: Any, ctx: Context) -> None:
        loop_of.append(asyncio.get_running_loop())
        ctx.set_progress(detail="started")
        await asyncio.sleep(0)
        ctx.set_progress(0.5)
        await release.wait()

    worker = _serve(url, handler)
    try:
        engine.invoke("f", "i2")
        wait_until(lambda: ("i2", 0.5, None) in engine.of_kind("progress"), what="progress 0.5")
        assert engine.of_kind("progress")[0] in [("i2", None, "started"), ("i2", 0.5, None)]
        loop_of[0].call_soon_threadsafe(release.set)
        wait_until(lambda: engine.of_kind("result"), what="the result")
    finally:
        worker.shutdown(grace=0.5)


def test_a_sync_call_has_no_job_so_its_progress_is_not_sent(invoking: tuple[_InvokingEngine, str]) -> None:
    engine, url = invoking
    contexts: list[Context] = []

    def handler(payload: Any, ctx: Context) -> bool:
        ctx.set_progress(10)
        contexts.append(ctx)
        return True

    worker = _serve(url, handler)
    try:
        engine.invoke("f", "i3", queued=False)
        engine.invoke("f", "i4")  # a queued one after it: its report is sent
        wait_until(lambda: len(engine.of_kind("result")) == 2, what="both results")
        assert [inv for inv, _, _ in engine.of_kind("progress")] == ["i4"]
        assert contexts[0].progress == JobProgress(10.0, None)
    finally:
        worker.shutdown(grace=0.5)


def test_set_progress_refuses_what_it_cannot_send() -> None:
    ctx = fake_context(queue="jobs")
    with pytest.raises(TypeError):
        ctx.set_progress("half")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ctx.set_progress(True)
    with pytest.raises(ValueError):
        ctx.set_progress(float("nan"))
    with pytest.raises(TypeError):
        ctx.set_progress(detail={"when": object()})
    assert ctx.progress is None  # nothing refused was recorded
    ctx.set_progress(3, {"rows": 3})
    assert ctx.progress == JobProgress(3.0, {"rows": 3})


def test_run_handler_keeps_the_latest_progress_on_the_fake_context() -> None:
    def handler(payload: Any, ctx: Context) -> None:
        ctx.set_progress(1)
        ctx.set_progress(2, "two")

    ctx = fake_context(queue="jobs")
    run_handler(handler, {}, ctx)
    assert ctx.progress == JobProgress(2.0, "two")


# ---- NonRetryableError ----------------------------------------------------------------

class CardInvalid(NonRetryableError):
    pass


def test_a_non_retryable_error_is_flagged_in_the_result() -> None:
    error = error_outcome("i", NonRetryableError("card number is invalid")).error
    assert (error.message, error.code, error.non_retryable) == ("card number is invalid", "NonRetryableError", True)
    assert "NonRetryableError: card number is invalid" in error.stack
    assert error_outcome("i", CardInvalid("x")).error.code == "CardInvalid"
    assert error_outcome("i", NonRetryableError("x", code="CARD")).error.code == "CARD"
    plain = error_outcome("i", ValueError("try again")).error
    assert (plain.code, plain.non_retryable) == ("ValueError", False)


def test_non_retryable_error_pickles_with_its_code() -> None:
    import pickle
    back = pickle.loads(pickle.dumps(CardInvalid("x", code="CARD")))
    assert type(back) is CardInvalid and str(back) == "x" and back.code == "CARD"


def test_a_handler_raising_non_retryable_error_answers_a_non_retryable_result(
        invoking: tuple[_InvokingEngine, str]) -> None:
    engine, url = invoking

    async def handler(payload: Any) -> None:
        raise NonRetryableError("card number is invalid")

    worker = _serve(url, handler)
    try:
        engine.invoke("f", "i5")
        wait_until(lambda: engine.of_kind("result"), what="the result")
        error = engine.of_kind("result")[0].error
        assert (error.code, error.message, error.non_retryable) == \
            ("NonRetryableError", "card number is invalid", True)
    finally:
        worker.shutdown(grace=0.5)

"""The testing helpers users get: a handler without an engine, a real engine per test."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest

from conftest import ENGINE_BIN
from switchyard_sdk import Context, Function, InvalidArgumentError, TriggerAction, json_default, register_worker
from switchyard_sdk.testing import EngineProcess, fake_context, run_handler, run_handler_async


def test_run_handler_calls_def_and_async_handlers_like_a_worker() -> None:
    def sync(payload: dict[str, int]) -> int:
        return payload["n"] + 1

    async def with_ctx(payload: dict[str, int], ctx: Context) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"attempt": ctx.attempt, "queue": ctx.queue, "receipt": ctx.message_receipt_id}

    assert run_handler(sync, {"n": 1}) == 2
    assert run_handler(with_ctx, {"n": 1}, fake_context(attempt=3, queue="payment")) == {
        "attempt": 3, "queue": "payment", "receipt": "test-receipt"}
    assert asyncio.run(run_handler_async(with_ctx, {})) == {"attempt": 1, "queue": None, "receipt": None}


def test_run_handler_refuses_what_the_wire_would_refuse() -> None:
    with pytest.raises(InvalidArgumentError, match="beyond"):
        run_handler(lambda payload: payload, {"id": 2**60})
    with pytest.raises(TypeError, match="UUID is not JSON serializable"):
        run_handler(lambda payload: uuid.uuid4(), {})
    assert isinstance(run_handler(lambda payload: uuid.uuid4(), {}, default=json_default), str)
    with pytest.raises(KeyError):  # the handler's own failure, as the worker would report it
        run_handler(lambda payload: payload["missing"], {})


@dataclasses.dataclass
class Order:
    order_id: str


def test_run_handler_takes_a_typed_function() -> None:
    def accept(order: Order) -> Order:
        assert isinstance(order, Order)
        return Order(order.order_id.upper())

    assert run_handler(Function("orders::accept", accept), {"order_id": "o1"}) == {"order_id": "O1"}


def test_engine_process_runs_a_real_engine_for_a_test() -> None:
    with EngineProcess("queue_configs:\n  jobs: {max_retries: 0}\n", binary=str(ENGINE_BIN)) as engine:
        with register_worker(engine.url, shutdown_grace=1.0) as sy:
            done: list[Any] = []
            sy.register_function("t::job", lambda payload: done.append(payload))
            assert sy.wait_registered("t::job", 10)
            sy.trigger({"function_id": "t::job", "payload": {"n": 1}, "action": TriggerAction.Enqueue(queue="jobs")})
            assert sy.trigger({"function_id": "t::job", "payload": {"n": 2}}) is None
            assert {q.name for q in sy.list_queues()} >= {"default", "jobs"}
        proc = engine.proc
    assert proc is not None and proc.poll() is not None  # stopped on exit


def test_engine_process_without_a_binary_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHYARD_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="cargo install --path engine"):
        EngineProcess()

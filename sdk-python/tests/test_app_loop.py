"""Workers made inside the application's event loop: async handlers run on that loop (so
they can share its locks and pools), and startup/shutdown hooks run once per worker."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conftest import Engine
from switchyard_sdk import Context, TriggerAction, register_worker, register_worker_async


def test_async_handler_awaits_a_lock_held_by_the_applications_own_task(engine: Engine) -> None:
    async def main() -> Any:
        lock = asyncio.Lock()
        waiting = asyncio.Event()
        await lock.acquire()  # held by this, the application's task

        sy = register_worker(engine.url, shutdown_grace=1.0)  # made inside the loop: lives on it

        async def locked(payload: Any) -> str:
            waiting.set()
            async with lock:
                return f"got the lock for {payload['n']}"

        sy.register_function("app::locked", locked)
        try:
            assert await sy.wait_registered_async("app::locked", 10)
            call = asyncio.ensure_future(sy.trigger_async(
                {"function_id": "app::locked", "payload": {"n": 1}, "timeout_ms": 20_000}))
            await asyncio.wait_for(waiting.wait(), 10)
            lock.release()
            return await asyncio.wait_for(call, 20)
        finally:
            await sy.shutdown_async()

    assert asyncio.run(main()) == "got the lock for 1"


def test_hooks_run_once_around_serving_even_across_an_engine_restart(engine: Engine) -> None:
    events: list[str] = []

    async def main() -> None:
        pool: dict[str, Any] = {}

        async def open_pool() -> None:
            events.append("startup")
            pool["conn"] = "db"

        def close_pool() -> None:  # a def hook runs on the handler thread pool
            assert threading.current_thread() is not threading.main_thread()
            events.append("shutdown")

        sy = await register_worker_async(engine.url, on_startup=open_pool, on_shutdown=[close_pool],
                                         shutdown_grace=1.0)

        async def use_pool(payload: Any, ctx: Context) -> str:
            events.append(f"job {payload['n']}")
            return str(pool["conn"])

        sy.register_function("app::pool", use_pool)
        assert await sy.wait_registered_async("app::pool", 10)
        assert await sy.trigger_async({"function_id": "app::pool", "payload": {"n": 1}}) == "db"
        await asyncio.to_thread(engine.restart)
        assert await sy.wait_connected_async(20)
        assert await sy.wait_registered_async("app::pool", 10)
        assert await sy.trigger_async({"function_id": "app::pool", "payload": {"n": 2}}) == "db"
        await sy.shutdown_async()
        await sy.shutdown_async()  # idempotent: the hook does not run again

    asyncio.run(main())
    assert events == ["startup", "job 1", "job 2", "shutdown"]


def test_a_failing_startup_hook_keeps_the_worker_from_connecting(engine: Engine) -> None:
    def broken() -> None:
        raise ConnectionError("database is down")

    shut: list[str] = []
    w = register_worker(engine.url, on_startup=broken, on_shutdown=lambda: shut.append("x"),
                        shutdown_grace=0.5)
    w.register_function("app::never", lambda payload: None)
    with pytest.raises(ConnectionError, match="database is down"):
        w.run()
    assert not w.connected and shut == []  # shutdown hooks only follow a completed startup


def test_a_worker_that_serves_nothing_runs_no_hooks(engine: Engine) -> None:
    ran: list[str] = []
    w = register_worker(engine.url, on_startup=lambda: ran.append("up"),
                        on_shutdown=lambda: ran.append("down"))
    assert w.trigger({"function_id": "x::y", "payload": {},
                      "action": TriggerAction.Enqueue(queue="default")})["messageReceiptId"]
    w.shutdown(grace=0.5)
    assert ran == []


def test_blocking_calls_on_the_workers_own_loop_raise_instead_of_deadlocking(engine: Engine) -> None:
    async def main() -> None:
        sy = register_worker(engine.url)
        try:
            with pytest.raises(RuntimeError, match="trigger_async"):
                sy.list_queues()
            with pytest.raises(RuntimeError, match="run_async"):
                sy.run()
            with pytest.raises(RuntimeError, match="register_worker_async"):
                register_worker(engine.url, fail_fast=True)
            assert [q.name for q in await sy.list_queues_async()]
        finally:
            await sy.shutdown_async()

    asyncio.run(main())


def test_register_worker_async_with_fail_fast_raises_when_nothing_listens() -> None:
    from test_connecting import _closed_port
    from switchyard_sdk import UnavailableError

    async def main() -> None:
        await register_worker_async(f"http://127.0.0.1:{_closed_port()}", fail_fast=True)

    with pytest.raises(UnavailableError, match="connection refused"):
        asyncio.run(main())

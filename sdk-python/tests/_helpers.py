"""Bounded waiting helpers shared by the live tests (no unbounded sleeps)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from switchyard_sdk import Context, Worker


@contextlib.contextmanager
def fake_engine(servicer: Any, threads: int = 4, queues: Any = None) -> Iterator[int]:
    """Serve `servicer` (an EngineServicer) and `queues` (a QueuesServicer, if given) on a
    free loopback port for the block; yields the port."""
    from switchyard_sdk._proto.v1 import engine_pb2_grpc, queues_pb2_grpc
    server = grpc.server(futures.ThreadPoolExecutor(threads))
    if servicer is not None:
        engine_pb2_grpc.add_EngineServicer_to_server(servicer, server)
    if queues is not None:
        queues_pb2_grpc.add_QueuesServicer_to_server(queues, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def call_when_registered(w: Worker, request: Any, timeout: float = 10.0) -> Any:
    """Trigger once the engine has acknowledged the function's registration."""
    assert w.wait_registered(request["function_id"], timeout), \
        f"{request['function_id']} was never acknowledged as registered"
    return w.trigger(request)


def collect_deliveries(w: Worker, function_id: str) -> dict[str, list[Any]]:
    """Register `function_id`; returns receipt id -> payloads delivered under it."""
    seen: dict[str, list[Any]] = {}
    lock = threading.Lock()

    def handler(payload: Any, ctx: Context) -> None:
        with lock:
            seen.setdefault(ctx.message_receipt_id, []).append(payload)

    w.register_function(function_id, handler)
    assert w.wait_registered(function_id, 10)
    return seen

"""Connecting: what a worker says when it cannot reach the engine, fail-fast, jittered
reconnects, and callers that never register as workers."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from _helpers import fake_engine, wait_until
from conftest import Engine
from switchyard_sdk import TriggerAction, UnavailableError, Worker, connect, register_worker
from switchyard_sdk._backoff import ceiling_ms, delay_ms
from switchyard_sdk._channel import classify
from switchyard_sdk._proto.v1 import engine_pb2, engine_pb2_grpc


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(caplog: pytest.LogCaptureFixture, level: int, message: str) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.levelno == level and message in r.getMessage()]


def test_reconnect_delays_are_full_jitter_within_the_shared_bounds() -> None:
    assert [ceiling_ms(n) for n in range(1, 9)] == [100, 200, 400, 800, 1600, 3200, 5000, 5000]
    assert ceiling_ms(1000) == 5000
    rng = random.Random(7)
    for n in (1, 2, 5, 7, 40):
        delays = [delay_ms(n, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling_ms(n) for d in delays)
        assert len(set(delays)) > 20, f"attempt {n}: delays do not differ: {sorted(set(delays))}"
    # two workers that failed together do not retry together
    a, b = random.Random(1), random.Random(2)
    assert [delay_ms(6, a) for _ in range(5)] != [delay_ms(6, b) for _ in range(5)]
    with pytest.raises(ValueError):
        ceiling_ms(0)


@pytest.mark.parametrize("detail, cause", [
    ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to "
     "connect to remote host: Connection refused", "connection_refused"),
    ("errors resolving nowhere.invalid:49134: [field:hostname lookup error:address lookup failed "
     "for nowhere.invalid:49134: Domain name not found]", "dns_failure"),
    ("failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:6379: Failed "
     "parsing HTTP/2 (Expected SETTINGS frame as the first frame, got frame type 82)", "wrong_protocol"),
    ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:5: connection "
     "attempt timed out before receiving SETTINGS frame", "timed_out"),
    ("Socket closed", "connection_lost"),
    ("Handshake failed with fatal error SSL_ERROR_SSL", "tls_failure"),
    ("something new", "other"),
])
def test_transport_errors_are_classified_into_the_shared_causes(detail: str, cause: str) -> None:
    assert classify(detail)[0] == cause


def test_worker_on_a_closed_port_warns_with_url_and_cause_and_keeps_retrying(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard_sdk")
    url = f"http://127.0.0.1:{_closed_port()}"
    w = register_worker(url, shutdown_grace=0.5)
    try:
        w.register_function("x::y", lambda payload: None)
        warns = wait_until(lambda: len(found := _records(caplog, logging.WARNING, "cannot reach")) >= 2
                           and found, what="two WARNs about the closed port")
        for r in warns:
            assert r.getMessage().startswith(f"cannot reach the Switchyard engine at {url}: "
                                             "connection refused; retrying in ")
            assert (r.url, r.cause) == (url, "connection_refused")  # type: ignore[attr-defined]
            assert 0 <= r.retry_in_ms <= 5000  # type: ignore[attr-defined]
        assert not w.connected
    finally:
        w.shutdown(grace=0.5)


def test_fail_fast_raises_unavailable_naming_the_address() -> None:
    port = _closed_port()
    with pytest.raises(UnavailableError) as info:
        register_worker(f"127.0.0.1:{port}", fail_fast=True)
    assert info.value.reason == "UNAVAILABLE"
    assert str(info.value) == f"UNAVAILABLE: cannot reach the Switchyard engine at 127.0.0.1:{port}: connection refused"


def test_fail_fast_returns_a_connected_worker_when_the_engine_is_there(engine: Engine) -> None:
    w = register_worker(engine.url, fail_fast=True, shutdown_grace=0.5)
    try:
        assert w.connected and w.worker_id
    finally:
        w.shutdown(grace=0.5)


def test_losing_the_engine_warns_connection_lost_then_logs_reconnected(
        engine: Engine, worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard_sdk")
    engine.restart()
    lost = wait_until(lambda: _records(caplog, logging.WARNING, "cannot reach"), what="a WARN")
    assert lost[0].cause == "connection_lost"  # type: ignore[attr-defined]
    back = wait_until(lambda: _records(caplog, logging.INFO, "connected to the Switchyard engine at"),
                      timeout=20, what="the INFO once reconnected")
    assert back[0].getMessage() == f"connected to the Switchyard engine at {engine.url}"
    assert back[0].url == engine.url  # type: ignore[attr-defined]


def test_a_call_to_an_unreachable_engine_names_the_address() -> None:
    port = _closed_port()
    with connect(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(UnavailableError) as info:
            client.list_queues()
        assert str(info.value) == (f"UNAVAILABLE: cannot reach the Switchyard engine at "
                                   f"http://127.0.0.1:{port}: connection refused")
        with pytest.raises(UnavailableError, match=f"127.0.0.1:{port}"):
            client.trigger({"function_id": "f", "action": TriggerAction.Enqueue(queue="q")})


class _CountingEngine(engine_pb2_grpc.EngineServicer):
    """Answers every enqueue and counts Connect streams (worker registrations)."""

    def __init__(self) -> None:
        self.connects = 0

    def Trigger(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.TriggerResponse(receipt=engine_pb2.EnqueueReceipt(message_receipt_id="r"))

    def EnqueueBatch(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.EnqueueBatchResponse(results=[
            engine_pb2.EnqueueResult(receipt=engine_pb2.EnqueueReceipt(message_receipt_id="r"))
            for _ in request.items])

    def Connect(self, request_iterator: Any, context: Any) -> Any:  # noqa: N802
        self.connects += 1
        context.send_initial_metadata(())  # as the engine does: headers at once
        for msg in request_iterator:
            if msg.WhichOneof("kind") == "hello":
                yield engine_pb2.EngineMessage(welcome=engine_pb2.Welcome(worker_id="w1"))


@pytest.fixture
def counting_engine() -> Iterator[tuple[_CountingEngine, str]]:
    servicer = _CountingEngine()
    with fake_engine(servicer) as port:
        yield servicer, f"127.0.0.1:{port}"


def test_a_producer_never_opens_a_worker_stream(counting_engine: tuple[_CountingEngine, str]) -> None:
    servicer, url = counting_engine
    enqueue = {"function_id": "f", "payload": {}, "action": TriggerAction.Enqueue(queue="q")}
    with connect(url) as client:
        assert client.trigger(enqueue) == {"messageReceiptId": "r", "duplicate": False}
    producer = register_worker(url)  # the seed's producer idiom: a worker that serves nothing
    try:
        assert producer.trigger(enqueue) == {"messageReceiptId": "r", "duplicate": False}
        assert servicer.connects == 0
        producer.register_function("f", lambda payload: None)  # now it is a worker
        assert producer.wait_connected(10)
        assert servicer.connects == 1
    finally:
        producer.shutdown(grace=0.5)

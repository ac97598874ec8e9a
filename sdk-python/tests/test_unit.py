"""Pure unit tests: JSON conversion, error decoding, handler shapes, request building."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from switchyard_sdk import (FunctionFailedError, InvalidArgumentError, InvalidUrlError,
                            QueueNotFoundError, SwitchyardError, SwitchyardTimeoutError,
                            TriggerAction, UnavailableError, connect, register_worker)
from switchyard_sdk._batcher import Enqueue
from switchyard_sdk._channel import parse_endpoint, parse_url
from switchyard_sdk._handler import AdaptedHandler
from switchyard_sdk._json import json_default, to_python, to_value
from switchyard_sdk._proto.google_rpc import error_details_pb2, status_pb2
from switchyard_sdk._proto.v1 import engine_pb2
from switchyard_sdk._results import error_result
from switchyard_sdk.actions import EnqueueAction, VoidAction
from switchyard_sdk.context import Context
from switchyard_sdk.errors import from_status
from switchyard_sdk.client import build_request


@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -7, 2**53, 1.5, "", "héllo", [], {}, [1, "a", None],
    {"orderId": "ord_789", "amount": 12.25, "items": [{"sku": "x", "qty": 2}], "ok": True},
])
def test_json_round_trip_is_identity(value: object) -> None:
    assert to_python(to_value(value)) == value


def test_json_integral_numbers_come_back_as_int() -> None:
    assert type(to_python(to_value(3))) is int
    assert type(to_python(to_value(3.5))) is float


def test_json_rejects_non_json_values() -> None:
    with pytest.raises(TypeError):
        to_value({"when": object()})
    with pytest.raises(TypeError):
        to_value({1: "non-str key"})
    with pytest.raises(InvalidArgumentError, match="not a JSON number"):
        to_value(float("nan"))


def _trailers(reason: str, **metadata: str) -> tuple[tuple[str, bytes], ...]:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="switchyard", metadata=metadata)
    detail = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo",
                         value=info.SerializeToString())
    status = status_pb2.Status(code=5, message="x", details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


def test_error_reason_comes_from_error_info() -> None:
    err = from_status(grpc.StatusCode.NOT_FOUND,
                      "QUEUE_NOT_FOUND: queue 'paymnet' is not defined (defined: default)",
                      _trailers("QUEUE_NOT_FOUND"))
    assert isinstance(err, QueueNotFoundError)
    assert err.reason == "QUEUE_NOT_FOUND"
    assert err.code is grpc.StatusCode.NOT_FOUND
    # the engine's status message verbatim, reason prefix included (as in Rust and Node)
    assert err.message == str(err) == "QUEUE_NOT_FOUND: queue 'paymnet' is not defined (defined: default)"


def test_function_failed_carries_the_workers_error() -> None:
    err = from_status(grpc.StatusCode.UNKNOWN, "FUNCTION_FAILED: handler failed",
                      _trailers("FUNCTION_FAILED", message="card declined", code="ValueError",
                                stack="Traceback ..."))
    assert isinstance(err, FunctionFailedError)
    assert err.message == "FUNCTION_FAILED: handler failed"
    assert err.error_message == "card declined"
    assert err.error_code == "ValueError"
    assert err.stack == "Traceback ..."
    assert err.details["code"] == "ValueError"


def test_error_reason_falls_back_to_message_prefix_then_code_name() -> None:
    err = from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "TIMEOUT: no answer in 10 ms", None)
    assert isinstance(err, SwitchyardTimeoutError) and err.reason == "TIMEOUT"
    err = from_status(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", None)
    assert isinstance(err, UnavailableError) and err.reason == "UNAVAILABLE"
    assert err.message == "UNAVAILABLE: failed to connect to all addresses"  # REASON: text
    err = from_status(grpc.StatusCode.INTERNAL, "SOMETHING_NEW: later reason", None)
    assert type(err) is SwitchyardError and err.reason == "SOMETHING_NEW"


def test_errors_pickle() -> None:
    import pickle
    err = from_status(grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND: nope", None)
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, QueueNotFoundError) and back.reason == err.reason


def test_vendored_rpc_protos_do_not_claim_google_rpc_names() -> None:
    # googleapis-common-protos registers google/rpc/status.proto; ours must not collide.
    assert status_pb2.DESCRIPTOR.name != "google/rpc/status.proto"
    assert not status_pb2.Status.DESCRIPTOR.full_name.startswith("google.")


def test_url_grammar_accepts_http_and_bare_host_port_with_default_port() -> None:
    assert parse_url("http://127.0.0.1:49134") == "127.0.0.1:49134"
    assert parse_url("127.0.0.1:5000") == "127.0.0.1:5000"
    assert parse_url("HTTP://engine.internal:7000/") == "engine.internal:7000"
    assert parse_url("http://localhost") == "localhost:49134"
    assert parse_url("localhost") == "localhost:49134"
    assert parse_url("[::1]:5000") == "[::1]:5000"


@pytest.mark.parametrize("url", ["ws://127.0.0.1:49134", "wss://127.0.0.1:49134", "ftp://x:1",
                                 "grpc://x:1", "", "http://", "http://:49134", "http://x:0",
                                 "http://x:99999", "http://x:port", "http://x:1/path", "a b:1"])
def test_url_grammar_refuses_everything_else_naming_the_url(url: str) -> None:
    with pytest.raises(InvalidUrlError) as info:
        parse_url(url)
    assert info.value.reason == "INVALID_URL" and isinstance(info.value, ValueError)
    assert str(info.value) == (f"INVALID_URL: unsupported URL '{url}': use http://HOST:PORT, "
                               "https://HOST:PORT or HOST:PORT")


def test_https_means_tls_with_the_same_host_port_grammar() -> None:
    assert parse_endpoint("https://engine.example:8443") == ("engine.example:8443", True)
    assert parse_endpoint("HTTPS://localhost/") == ("localhost:49134", True)
    assert parse_endpoint("http://localhost:1") == ("localhost:1", False)
    with pytest.raises(InvalidUrlError):
        parse_endpoint("https://x:1/path")


def test_a_bad_url_is_refused_at_construction_and_no_url_reads_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidUrlError):
        register_worker("ws://127.0.0.1:49134")
    with pytest.raises(InvalidUrlError):
        connect("")
    monkeypatch.setenv("SWITCHYARD_URL", "127.0.0.1:1")
    client = connect()
    assert client.url == "127.0.0.1:1"
    client.close()
    monkeypatch.delenv("SWITCHYARD_URL")
    client = connect()
    assert client.url == "http://127.0.0.1:49134"
    client.close()


def test_trigger_request_building() -> None:
    enq, deadline = build_request({"function_id": "f", "payload": {"a": 1},
                                    "action": TriggerAction.Enqueue(queue="payment")})
    # an enqueue goes to the batcher, already encoded
    assert isinstance(enq, Enqueue) and enq.item.queue == "payment" and enq.item.function_id == "f"
    assert engine_pb2.EnqueueBatchRequest.FromString(enq.frame).items == [enq.item]
    # ... also when it sets timeout_ms, which bounds sync calls only
    enq, _ = build_request({"function_id": "f", "action": TriggerAction.Enqueue(queue="q"),
                             "timeout_ms": 500})
    assert isinstance(enq, Enqueue) and enq.item.queue == "q"
    req, _ = build_request({"function_id": "f", "action": TriggerAction.Void()})
    assert isinstance(req, engine_pb2.TriggerRequest) and req.WhichOneof("action") == "void"
    req, deadline = build_request({"function_id": "f", "payload": 1, "timeout_ms": 2000})
    assert isinstance(req, engine_pb2.TriggerRequest) and req.WhichOneof("action") is None and req.timeout_ms == 2000 and deadline > 2
    with pytest.raises(ValueError):
        build_request({"function_id": ""})
    with pytest.raises(ValueError):
        build_request({"function_id": "f", "acton": None})


def test_empty_function_id_is_invalid_argument_like_the_engine_says() -> None:
    # conformance case empty_function_id_rejected: the same typed error as the Rust and
    # Node SDKs get from the engine, still a ValueError for Python callers.
    for function_id in ("", "  "):
        with pytest.raises(InvalidArgumentError) as info:
            build_request({"function_id": function_id, "action": TriggerAction.Void()})
        assert isinstance(info.value, SwitchyardError) and isinstance(info.value, ValueError)
        assert info.value.reason == "INVALID_ARGUMENT"
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_trigger_action_constructors() -> None:
    assert TriggerAction.Enqueue(queue="q") == EnqueueAction("q")
    assert TriggerAction.Enqueue({"queue": "q"}) == EnqueueAction("q")
    assert TriggerAction.Void() == VoidAction()
    with pytest.raises(ValueError):
        TriggerAction.Enqueue()


def _run(handler: AdaptedHandler, payload: object) -> object:
    ctx = Context(function_id="f", invocation_id="i", attempt=2)
    pool = concurrent.futures.ThreadPoolExecutor(2)

    async def main() -> object:
        return await handler.call(payload, ctx, pool)
    try:
        return asyncio.run(main())
    finally:
        pool.shutdown()


def test_handler_shapes_sync_async_with_and_without_context() -> None:
    def sync1(p: int) -> int:
        return p + 1

    def sync2(p: int, ctx: Context) -> int:
        return p + ctx.attempt

    async def async1(p: int) -> int:
        return p * 10

    async def async2(p: int, ctx: Context) -> str:
        return ctx.function_id

    class Callable2:
        async def __call__(self, p: int, ctx: Context) -> int:
            return ctx.attempt

    assert _run(AdaptedHandler(sync1), 1) == 2
    assert _run(AdaptedHandler(sync2), 1) == 3
    assert _run(AdaptedHandler(async1), 1) == 10
    assert _run(AdaptedHandler(async2), 1) == "f"
    assert _run(AdaptedHandler(Callable2()), 1) == 2
    assert _run(AdaptedHandler(functools.partial(sync2)), 5) == 7
    assert _run(AdaptedHandler(lambda p: p), "x") == "x"
    with pytest.raises(TypeError):
        AdaptedHandler(lambda: None)


def test_error_result_reports_class_name_message_and_traceback() -> None:
    try:
        raise ValueError("card declined")
    except ValueError as exc:
        msg = error_result("inv-1", exc)
    err = msg.result.error
    assert msg.result.invocation_id == "inv-1"
    assert err.code == "ValueError" and err.message == "card declined"
    assert "Traceback" in err.stack and "test_unit.py" in err.stack


@pytest.mark.parametrize("payload, where", [
    (2**53 + 1, "payload"), ({"id": -(2**53) - 1}, "payload.id"),
    ({"a": [1, {"b": 10**20}]}, "payload.a[1].b"), ({"x": float("inf")}, "payload.x")])
def test_numbers_a_double_cannot_hold_exactly_are_refused_naming_where(payload: Any, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        to_value(payload)
    assert str(info.value).startswith("INVALID_ARGUMENT: ") and f" at {where}: " in str(info.value)
    assert to_python(to_value(2**53)) == 2**53 and to_python(to_value(-(2**53))) == -(2**53)


def test_default_encodes_values_json_cannot_like_json_dumps() -> None:
    import dataclasses
    import datetime
    import decimal
    import enum
    import uuid

    class Colour(enum.Enum):
        RED = "red"

    @dataclasses.dataclass
    class Line:
        sku: str
        qty: int

    when = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.timezone.utc)
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    payload = {"at": when, "day": when.date(), "id": uid, "amount": decimal.Decimal("12.10"),
               "colour": Colour.RED, "line": Line("x", 2), "tags": {"a"}}
    assert to_python(to_value(payload, json_default)) == {
        "at": "2026-12-03T10:00:00+00:00", "day": "2026-12-03", "id": str(uid), "amount": "12.10",
        "colour": "red", "line": {"sku": "x", "qty": 2}, "tags": ["a"]}
    assert to_python(to_value({"n": object()}, lambda o: "custom")) == {"n": "custom"}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        to_value({"n": object()}, json_default)
    with pytest.raises(TypeError):
        to_value({"at": when})  # no default: refused, as json.dumps does
    # a default that keeps returning non-JSON values ends in TypeError, not a recursion error
    with pytest.raises(TypeError):
        to_value(object(), lambda o: object())


def test_client_default_applies_to_trigger_payloads() -> None:
    import uuid
    uid = uuid.uuid4()
    enq, _ = build_request({"function_id": "f", "payload": {"id": uid},
                            "action": TriggerAction.Enqueue(queue="q")}, json_default)
    assert isinstance(enq, Enqueue) and to_python(enq.item.payload) == {"id": str(uid)}

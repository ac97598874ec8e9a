"""Unit tests of the enqueue options and publish requests (no engine): what the SDK
refuses itself, and what it puts on the wire."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from switchyard_sdk import (InvalidArgumentError, SwitchyardError, TopicNotFoundError,
                            TriggerAction)
from switchyard_sdk._batcher import Enqueue
from switchyard_sdk.client import build_publish, build_request
from switchyard_sdk.typed import Function
from switchyard_sdk.errors import from_status
from switchyard_sdk.queues import queue_info_from_proto
from switchyard_sdk._proto.v1 import queues_pb2


def _item(action: object) -> object:
    req, _ = build_request({"function_id": "f", "payload": {"n": 1}, "action": action})
    assert isinstance(req, Enqueue)
    return req.item


def test_enqueue_options_reach_the_batch_item() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=timezone(timedelta(hours=2)))
    item = _item(TriggerAction.Enqueue(queue="q", not_before=when, idempotency_key="ord_1"))
    assert item.queue == "q" and item.idempotency_key == "ord_1"  # type: ignore[attr-defined]
    assert not item.HasField("delay_ms")  # type: ignore[attr-defined]
    assert item.not_before.ToDatetime(tzinfo=timezone.utc) == when  # type: ignore[attr-defined]
    delayed = _item(TriggerAction.Enqueue({"queue": "q", "delay_ms": 0}))
    assert delayed.HasField("delay_ms") and delayed.delay_ms == 0  # type: ignore[attr-defined]
    plain = _item(TriggerAction.Enqueue(queue="q"))
    assert not plain.HasField("delay_ms") and not plain.HasField("not_before")  # type: ignore[attr-defined]
    assert plain.idempotency_key == ""  # type: ignore[attr-defined]


def test_malformed_options_are_refused_before_any_rpc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TriggerAction.Enqueue(queue="q", not_before=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="delay_ms must be >= 0"):
        TriggerAction.Enqueue(queue="q", delay_ms=-1)
    with pytest.raises(TypeError, match="delay_ms must be an int"):
        TriggerAction.Enqueue(queue="q", delay_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="idempotency_key must be a str"):
        TriggerAction.Enqueue(queue="q", idempotency_key=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown enqueue options: delay"):
        TriggerAction.Enqueue({"queue": "q", "delay": 5})
    with pytest.raises(ValueError, match="timezone-aware"):
        build_publish("t", {}, None, datetime(2030, 1, 1), None)
    with pytest.raises(InvalidArgumentError, match="INVALID_ARGUMENT: topic is required"):
        build_publish(" ", {}, None, None, None)


def test_publish_request_has_the_topic_and_options_and_no_function() -> None:
    req = build_publish("orders.placed", {"id": 1}, 250, None, "k")
    assert req.WhichOneof("action") == "publish" and req.function_id == ""
    assert req.publish.topic == "orders.placed" and req.publish.delay_ms == 250
    assert req.publish.idempotency_key == "k" and not req.publish.HasField("not_before")


def test_option_reasons_map_to_typed_errors() -> None:
    err = from_status(grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND: topic 'x' is not defined", None)
    assert isinstance(err, TopicNotFoundError) and err.reason == "TOPIC_NOT_FOUND"
    for reason in ("CONFLICTING_DELAY", "INVALID_IDEMPOTENCY_KEY"):
        err = from_status(grpc.StatusCode.INVALID_ARGUMENT, f"{reason}: no", None)
        assert isinstance(err, InvalidArgumentError) and isinstance(err, SwitchyardError)
        assert err.reason == reason


def test_queue_config_shows_dedup_window_and_topic() -> None:
    q = queues_pb2.QueueInfo(name="orders.placed/billing::charge")
    q.config.dedup_window_ms = 300_000
    q.config.topic = "orders.placed"
    info = queue_info_from_proto(q)
    assert info.config.dedup_window_ms == 300_000 and info.config.topic == "orders.placed"
    assert queue_info_from_proto(queues_pb2.QueueInfo(name="q")).config.topic is None


def test_priority_reaches_the_batch_item_and_is_absent_unless_given() -> None:
    assert _item(TriggerAction.Enqueue(queue="q", priority=9)).priority == 9  # type: ignore[attr-defined]
    zero = _item(TriggerAction.Enqueue({"queue": "q", "priority": 0}))
    assert zero.HasField("priority") and zero.priority == 0  # type: ignore[attr-defined]
    assert not _item(TriggerAction.Enqueue(queue="q")).HasField("priority")  # type: ignore[attr-defined]


def test_priority_above_nine_is_left_to_the_engine_and_a_negative_one_is_refused_here() -> None:
    assert _item(TriggerAction.Enqueue(queue="q", priority=10)).priority == 10  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentError) as info:
        TriggerAction.Enqueue(queue="q", priority=-1)
    assert info.value.reason == "INVALID_PRIORITY" and info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message.startswith("INVALID_PRIORITY: priority -1 is out of range")
    with pytest.raises(TypeError, match="priority must be an int"):
        TriggerAction.Enqueue(queue="q", priority=True)
    with pytest.raises(TypeError, match="priority must be an int"):
        TriggerAction.Enqueue(queue="q", priority=1.0)  # type: ignore[arg-type]


def test_typed_enqueue_takes_a_priority() -> None:
    captured: list[object] = []

    class _Client:
        def trigger(self, request: dict[str, object]) -> object:
            captured.append(request["action"])
            return {"messageReceiptId": "r", "duplicate": False}

    Function[dict, None]("f").enqueue(_Client(), {}, queue="q", priority=4)  # type: ignore[arg-type]
    assert captured == [TriggerAction.Enqueue(queue="q", priority=4)]


def test_priority_reasons_map_to_invalid_argument() -> None:
    for reason in ("INVALID_PRIORITY", "PRIORITY_ON_FIFO_QUEUE"):
        err = from_status(grpc.StatusCode.INVALID_ARGUMENT, f"{reason}: no", None)
        assert isinstance(err, InvalidArgumentError) and err.reason == reason


def test_queue_config_shows_result_retention_and_rate_limit() -> None:
    q = queues_pb2.QueueInfo(name="q")
    q.config.result_retention_ms = 60_000
    q.config.rate_limit.per_second = 10
    q.config.rate_limit.burst = 2
    config = queue_info_from_proto(q).config
    assert config.result_retention_ms == 60_000
    assert config.rate_limit is not None and (config.rate_limit.per_second, config.rate_limit.burst) == (10, 2)
    assert queue_info_from_proto(queues_pb2.QueueInfo(name="q")).config.rate_limit is None

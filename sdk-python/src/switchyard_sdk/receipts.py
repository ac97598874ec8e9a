"""What an enqueue and a publish answer: the receipts of the jobs they stored.

Invariant: a receipt names a job that exists — a new one, or with ``duplicate`` true the
earlier job whose idempotency key matched (no job was created then). ``EnqueueReceipt``
is a dict (``{"messageReceiptId": …, "duplicate": …}``, the shape ``trigger`` has always
returned, plus the flag); a publish answers a ``PublishReceipt`` with one
``SubscriberReceipt`` per subscriber of the topic, in ``topic_configs`` order (none when
nobody subscribes: the publish is accepted and counted, nothing runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from ._proto.v1 import engine_pb2


class EnqueueReceipt(TypedDict):
    """``trigger``'s answer to an enqueue. `duplicate`: the idempotency key matched an
    earlier job within the queue's ``dedup_window_ms``; `messageReceiptId` is that job's."""

    messageReceiptId: str
    duplicate: bool


def enqueue_receipt_from_proto(r: engine_pb2.EnqueueReceipt) -> EnqueueReceipt:
    return EnqueueReceipt(messageReceiptId=r.message_receipt_id, duplicate=r.duplicate)


@dataclass(frozen=True, slots=True)
class SubscriberReceipt:
    """The job a publish stored for one subscriber, on its queue ``<topic>/<function_id>``."""

    function_id: str
    queue: str
    message_receipt_id: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class PublishReceipt:
    """``publish``'s answer: one receipt per subscriber, in ``topic_configs`` order."""

    receipts: list[SubscriberReceipt]


def publish_receipt_from_proto(p: engine_pb2.PublishReceipt) -> PublishReceipt:
    return PublishReceipt(receipts=[
        SubscriberReceipt(function_id=r.function_id, queue=r.queue,
                          message_receipt_id=r.message_receipt_id, duplicate=r.duplicate)
        for r in p.receipts])

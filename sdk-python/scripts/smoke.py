"""A worker and a producer of the *installed* ``switchyard_sdk``, against a live engine.

Run by ``install-check.sh`` from a fresh virtualenv (outside the repository, so the import
is the wheel's); exits non-zero with the reason when something is off:

1. A worker (``fail_fast``: the engine must be there) serves ``smoke::double`` (async) and
   ``smoke::shout`` (def).
2. A producer (``connect``: never a worker) enqueues ``smoke::double`` to ``default``; the
   worker must receive it with its receipt id. A sync call of ``smoke::shout`` returns its
   value; an enqueue to an undefined queue fails with the engine's message verbatim.
3. The job lifecycle: a delayed job is cancelled (``cancel_job``: outcome and the ``Job``
   decoded by this protobuf) and ``get_job`` then shows it cancelled.
4. Both shut down; the line ``smoke ok`` names the protobuf and grpcio versions used.

Usage: ``python smoke.py URL``
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import google.protobuf
import grpc

import switchyard_sdk
from switchyard_sdk import Context, QueueNotFoundError, TriggerAction


def main(url: str) -> int:
    got: dict[str, Any] = {}
    done = threading.Event()
    worker = switchyard_sdk.register_worker(url, fail_fast=True, shutdown_grace=2.0)
    producer = switchyard_sdk.connect(url)
    try:
        async def double(payload: dict[str, int], ctx: Context) -> dict[str, int]:
            got["receipt"], got["n"] = ctx.message_receipt_id, payload["n"]
            done.set()
            return {"n": payload["n"] * 2}

        def shout(payload: str) -> str:
            return payload.upper()

        worker.register_function("smoke::double", double)
        worker.register_function("smoke::shout", shout)
        for function_id in ("smoke::double", "smoke::shout"):
            if not worker.wait_registered(function_id, 10):
                return fail(f"{function_id} was never acknowledged")
        receipt = producer.trigger({"function_id": "smoke::double", "payload": {"n": 21},
                                    "action": TriggerAction.Enqueue(queue="default")})
        if not done.wait(10) or got != {"receipt": receipt["messageReceiptId"], "n": 21}:
            return fail(f"the enqueued job did not arrive as sent: {got} / {receipt}")
        if producer.trigger({"function_id": "smoke::shout", "payload": "hi"}) != "HI":
            return fail("the sync call did not return the handler's value")
        try:
            producer.trigger({"function_id": "smoke::double", "payload": {},
                              "action": TriggerAction.Enqueue(queue="smoke-nope")})
            return fail("an enqueue to an undefined queue succeeded")
        except QueueNotFoundError as err:
            if not err.message.startswith("QUEUE_NOT_FOUND: queue 'smoke-nope' is not defined"):
                return fail(f"unexpected error text: {err.message!r}")
        later = producer.trigger({"function_id": "smoke::double", "payload": {"n": 1},
                                  "action": TriggerAction.Enqueue(queue="default", delay_ms=600_000)})
        cancelled = producer.cancel_job("default", later["messageReceiptId"])
        if cancelled.outcome != "cancelled" or cancelled.job.payload != {"n": 1}:
            return fail(f"cancelling a delayed job answered {cancelled}")
        if producer.get_job("default", later["messageReceiptId"]).state != "cancelled":
            return fail("get_job does not show the cancelled job")
    finally:
        producer.close()
        worker.shutdown()
    print(f"smoke ok: switchyard_sdk from {switchyard_sdk.__file__}, "
          f"protobuf {google.protobuf.__version__}, grpcio {grpc.__version__}")
    return 0


def fail(why: str) -> int:
    print(f"smoke FAILED: {why}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

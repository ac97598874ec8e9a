"""Quickstart worker: serves the payment and confirmation-email functions.

Run the engine with a config that declares the queues (DESIGN §2, e.g. `payment` as fifo
on `orderId` and `email` as standard), then:

    SWITCHYARD_URL=http://127.0.0.1:49134 python examples/python/quickstart_worker.py

Stop it with Ctrl-C: in-flight jobs finish before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from switchyard_sdk import Context, register_worker

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
sy = register_worker(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134"),
                     max_in_flight=64, worker_name="quickstart-worker")


@sy.function("orders::process-payment")
async def process_payment(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    # FIFO queue: payments of one order run one at a time, in enqueue order.
    logging.info("charging order %s (attempt %d/%d, receipt %s)", payload["orderId"],
                 ctx.attempt, ctx.max_attempts, ctx.message_receipt_id)
    await asyncio.sleep(0.05)  # call the payment provider here
    if payload.get("amount", 0) < 0:
        raise ValueError(f"refusing negative amount {payload['amount']}")  # → retries, then DLQ
    return {"charged": payload.get("amount", 0)}


def send_confirmation(payload: dict[str, Any]) -> None:
    # A plain `def` handler runs on the worker's thread pool, so blocking I/O is fine.
    logging.info("sending confirmation email to %s", payload.get("email"))


sy.register_function("emails::confirmation", send_confirmation)

if __name__ == "__main__":
    sy.run()  # blocks until SIGINT/SIGTERM, then drains in-flight work

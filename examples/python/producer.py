"""Producer: enqueues a payment (fifo by orderId) and a confirmation email, then shows the
typed error for a misspelled queue and the queue stats.

    SWITCHYARD_URL=http://127.0.0.1:49134 python examples/python/producer.py
"""

from __future__ import annotations

import os

from switchyard_sdk import QueueNotFoundError, SwitchyardError, TriggerAction, connect


def main() -> None:
    # a Client: calls only, so the engine never lists this process as a worker
    with connect(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134")) as sy:
        order = {"orderId": "ord_789", "amount": 4200, "email": "ada@example.com"}
        receipt = sy.trigger({"function_id": "orders::process-payment", "payload": order,
                              "action": TriggerAction.Enqueue(queue="payment")})
        print("payment enqueued:", receipt["messageReceiptId"])

        receipt = sy.trigger({"function_id": "emails::confirmation", "payload": order,
                              "action": TriggerAction.Enqueue(queue="email")})
        print("email enqueued:", receipt["messageReceiptId"])

        try:
            sy.trigger({"function_id": "orders::process-payment", "payload": order,
                        "action": TriggerAction.Enqueue(queue="paymnet")})
        except QueueNotFoundError as err:
            print(f"typed error as expected: {err.message}")  # "QUEUE_NOT_FOUND: queue …"

        try:
            for q in sy.list_queues():
                s = q.stats
                print(f"{q.name:>10} ({q.config.type}): ready={s.ready} in_flight={s.in_flight} "
                      f"completed={s.completed} dead={s.dead}")
        except SwitchyardError as err:
            print("could not list queues:", err)


if __name__ == "__main__":
    main()

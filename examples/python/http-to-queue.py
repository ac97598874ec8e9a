"""Scenario 1 — HTTP API → queue pipeline (examples/README.md).

``POST /orders`` validates the order, enqueues the payment (fifo queue ``payment``, grouped
by ``orderId``) and the confirmation email (standard queue ``email``), fires
``analytics::track`` with void, and answers 201 with the order id at once. The same process
serves the three functions.

    python examples/python/http-to-queue.py              # HTTP on 127.0.0.1:3000
    curl -i localhost:3000/orders -H 'content-type: application/json' -d '{"email":"ada@example.com","amount":4200}'
    python examples/python/http-to-queue.py --check      # posts to itself, verifies, exits
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from switchyard_sdk import Context, SwitchyardError, TriggerAction, register_worker

sy = register_worker(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134"))
processed: list[tuple[str, str, str | None]] = []  # (function, orderId, group), for --check


def worker(function_id: str) -> None:
    def handle(order: dict[str, Any], ctx: Context) -> dict[str, bool]:
        print(f"{function_id}: {order['orderId']} (attempt {ctx.attempt})", flush=True)
        processed.append((function_id, order["orderId"], ctx.group))
        return {"ok": True}
    sy.register_function(function_id, handle)


for fn in ("orders::process-payment", "emails::confirmation", "analytics::track"):
    worker(fn)


class Orders(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/orders":
            return self.reply(404, {"error": "not found"})
        try:
            order = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            email, amount = order["email"], order["amount"]
            if "@" not in email or not isinstance(amount, int) or amount <= 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": "need an email and a positive amount"})
        job = {"orderId": f"ord_{uuid.uuid4().hex[:12]}", "email": email, "amount": amount}
        try:
            sy.trigger({"function_id": "orders::process-payment", "payload": job,
                        "action": TriggerAction.Enqueue(queue="payment")})
            sy.trigger({"function_id": "emails::confirmation", "payload": job,
                        "action": TriggerAction.Enqueue(queue="email")})
        except SwitchyardError as err:
            return self.reply(503, {"error": str(err)})
        try:  # analytics is best effort: fire and forget, never fail the order over it
            sy.trigger({"function_id": "analytics::track", "action": TriggerAction.Void(),
                        "payload": {"event": "order_created", "orderId": job["orderId"]}})
        except SwitchyardError as err:
            print("analytics event dropped:", err, file=sys.stderr)
        self.reply(201, {"orderId": job["orderId"]})

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def check(server: ThreadingHTTPServer) -> None:
    """One good and one bad order; the good one reaches all three functions."""
    url = f"http://127.0.0.1:{server.server_address[1]}/orders"
    status, body = post(url, {"email": "ada@example.com", "amount": 4200})
    assert status == 201, (status, body)
    order_id = body["orderId"]
    status, _ = post(url, {"email": "nobody", "amount": -1})
    assert status == 400, f"an invalid order must be refused with 400, got {status}"
    deadline = time.monotonic() + 10
    while sum(p[1] == order_id for p in processed) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    ran = {p[0]: p for p in processed if p[1] == order_id}
    assert set(ran) == {"orders::process-payment", "emails::confirmation", "analytics::track"}, ran
    assert ran["orders::process-payment"][2] == order_id, "payment must be grouped by orderId"
    print(f"check ok: 201 {order_id}, 400 for a bad order; payment (group {order_id}), email and analytics ran")


def main() -> None:
    assert sy.wait_registered("analytics::track", timeout=10), "engine not reachable"
    checking = "--check" in sys.argv
    host, port = ("127.0.0.1", 0) if checking else ("127.0.0.1", int(os.environ.get("PORT", "3000")))
    server = ThreadingHTTPServer((host, port), Orders)
    print(f"orders API on http://{host}:{server.server_address[1]}/orders", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if checking:
            check(server)
        else:
            sy.run()  # until SIGINT/SIGTERM
    finally:
        server.shutdown()
        sy.shutdown()


if __name__ == "__main__":
    main()

"""Scenario 3 — bulk email with rate limiting on the standard queue ``bulk-email``
(``concurrency: 3``, ``backoff_ms: 5000``, ``max_retries: 5``; examples/README.md).

A fake SMTP server accepts at most 5 messages per second and answers "421 rate limited"
beyond that. The engine never runs more than 3 sends at once, and retries each refused send
after backoff_ms × 2^(n−1): 5 s, 10 s, 20 s, 40 s, 80 s. At the end every email is
delivered, and the observed concurrency and retry gaps are checked.

    python examples/python/bulk-email.py
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict, deque
from typing import Any

from switchyard_sdk import Context, TriggerAction, register_worker

EMAILS = 12
RATE_PER_SECOND = 5


class RateLimited(Exception):
    pass


class FakeSmtp:
    def __init__(self) -> None:
        self.accepted: deque[float] = deque()
        self.in_flight = self.max_in_flight = self.delivered = 0
        self.attempts: dict[str, list[tuple[int, float]]] = defaultdict(list)  # per job

    async def send(self, to: str, ctx: Context) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.attempts[ctx.message_receipt_id or ""].append((ctx.attempt, time.monotonic()))
        try:
            await asyncio.sleep(0.02)  # talking SMTP
            now = time.monotonic()
            while self.accepted and now - self.accepted[0] > 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= RATE_PER_SECOND:
                print(f"{to}: 421 rate limited (attempt {ctx.attempt}/{ctx.max_attempts})", flush=True)
                raise RateLimited("421 rate limited, try again later")
            self.accepted.append(now)
            self.delivered += 1
            print(f"{to}: sent (attempt {ctx.attempt}/{ctx.max_attempts})", flush=True)
        finally:
            self.in_flight -= 1


smtp = FakeSmtp()
sy = register_worker(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134"))


@sy.function("emails::send")
async def send_email(email: dict[str, Any], ctx: Context) -> dict[str, bool]:
    await smtp.send(email["to"], ctx)
    return {"sent": True}


def main() -> None:
    assert sy.wait_registered("emails::send", timeout=10), "engine not reachable"
    for i in range(EMAILS):
        sy.trigger({"function_id": "emails::send", "action": TriggerAction.Enqueue(queue="bulk-email"),
                    "payload": {"to": f"user{i}@example.com", "subject": "Our spring newsletter"}})
    backoff_ms = next(q.config.backoff_ms for q in sy.list_queues() if q.name == "bulk-email")

    deadline = time.monotonic() + 31 * backoff_ms / 1000 + 30  # worst case: 5 retries each
    while smtp.delivered < EMAILS and time.monotonic() < deadline:
        time.sleep(0.05)
    sy.shutdown()

    assert smtp.delivered == EMAILS, f"delivered {smtp.delivered} of {EMAILS}"
    assert smtp.max_in_flight <= 3, f"{smtp.max_in_flight} sends were in flight at once"
    retries = 0
    for attempts in smtp.attempts.values():
        for (n, started), (following, retried) in zip(attempts, attempts[1:]):
            wait = backoff_ms * 2 ** (n - 1) / 1000
            assert following == n + 1, f"attempt numbers skipped: {n} then {following}"
            assert retried - started >= wait, f"retry {n} came after {retried - started:.3f}s, before {wait}s"
            retries += 1
    print(f"check ok: {EMAILS} delivered, at most {smtp.max_in_flight} in flight, {retries} retries "
          f"each after >= {backoff_ms} ms × 2^(n−1)")


if __name__ == "__main__":
    main()

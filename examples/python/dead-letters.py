"""Scenario 4 — dead letters (examples/README.md).

``reports::generate`` always fails (a missing template), so after its retries (queue
``reports``: ``max_retries: 2``) the job lands in the dead-letter queue. The example lists
the DLQ, deploys a fix (registers a working handler), redrives the job, and sees it
complete — with the same receipt id and a fresh retry budget.

    python examples/python/dead-letters.py
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

from switchyard_sdk import Context, TriggerAction, register_worker


class TemplateMissing(Exception):
    pass


sy = register_worker(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134"))
completed: queue.Queue[tuple[str | None, int]] = queue.Queue()


def generate_broken(report: dict[str, Any], ctx: Context) -> None:
    print(f"generating {report['name']} (attempt {ctx.attempt}/{ctx.max_attempts}): template missing")
    raise TemplateMissing("template 'monthly.html' not found")


def generate_fixed(report: dict[str, Any], ctx: Context) -> dict[str, str]:
    print(f"generating {report['name']} (attempt {ctx.attempt}/{ctx.max_attempts}): done")
    completed.put((ctx.message_receipt_id, ctx.attempt))
    return {"url": "https://reports.example.com/monthly-2024-05.pdf"}


def main() -> None:
    sy.register_function("reports::generate", generate_broken)
    assert sy.wait_registered("reports::generate", timeout=10), "engine not reachable"
    receipt = sy.trigger({"function_id": "reports::generate", "action": TriggerAction.Enqueue(queue="reports"),
                          "payload": {"name": "monthly", "month": "2024-05"}})
    job_id = receipt["messageReceiptId"]
    print("enqueued", job_id)

    # 1. Wait (bounded) for the job to exhaust its retries and land in the DLQ.
    deadline = time.monotonic() + 15
    while not (dead := [d for d in sy.list_dead_letters("reports").entries if d.message_receipt_id == job_id]):
        assert time.monotonic() < deadline, f"job {job_id} never reached the DLQ"
        time.sleep(0.05)
    entry = dead[0]
    err = entry.last_error
    print(f"dead letter: {entry.function_id} after {entry.attempts} attempts, "
          f"last error {err.code if err else '-'}: {err.message if err else '-'}")
    assert entry.attempts == 3 and err is not None and err.code == "TemplateMissing", entry

    # 2. Deploy the fix: the same function id, a working handler.
    sy.register_function("reports::generate", generate_fixed)

    # 3. Redrive it: it runs again from attempt 1 and completes.
    print("redrove", sy.redrive_dead_letters("reports", [job_id]), "job(s)")
    ran_id, attempt = completed.get(timeout=20)
    assert ran_id == job_id and attempt == 1, f"redriven job {ran_id} ran at attempt {attempt}"
    left = sy.list_dead_letters("reports").entries
    assert not left, f"{len(left)} dead letters left"
    print(f"check ok: {job_id} dead-lettered after 3 attempts, redriven, completed at attempt 1; DLQ empty")
    sy.shutdown()


if __name__ == "__main__":
    main()

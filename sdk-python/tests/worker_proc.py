"""A worker process for the crash and drain tests: serves ``jobs::slow``, which announces
each delivery on stdout (``STARTED <receipt> <attempt>``), sleeps ``argv[2]`` seconds
(default 120: "never finishes", for SIGKILL) and then prints ``FINISHED <receipt>``.
The process serves with ``run()``, so SIGTERM drains it."""

from __future__ import annotations

import sys
import time
from typing import Any

import switchyard_sdk


def main() -> None:
    sy = switchyard_sdk.register_worker(sys.argv[1], worker_name="test-worker-proc")
    work_s = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0

    @sy.function("jobs::slow")
    def slow(payload: Any, ctx: switchyard_sdk.Context) -> None:
        print(f"STARTED {ctx.message_receipt_id} {ctx.attempt}", flush=True)
        time.sleep(work_s)
        print(f"FINISHED {ctx.message_receipt_id}", flush=True)

    sy.run()


if __name__ == "__main__":
    main()

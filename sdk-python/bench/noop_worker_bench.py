"""No-op worker throughput: how many queued jobs/s one Python worker completes.

Method (per handler kind, sync then async):
1. Start an engine (``--url`` to use a running one instead) with a standard queue
   ``bench`` (concurrency 256, so the worker's ``max_in_flight`` is the limit).
2. Enqueue N jobs for a function no worker serves yet: they wait, no attempt spent.
3. Start a worker (max_in_flight 64), register a no-op handler and time until the
   queue's ``completed`` counter has grown by N (ListQueues).

Not a test; run by hand:  python bench/noop_worker_bench.py --jobs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import switchyard_sdk
from _engine import cpu_seconds, start_engine
from switchyard_sdk import TriggerAction, Worker

CONFIG = """\
queue_configs:
  default: {max_retries: 0, concurrency: 10}
  bench: {max_retries: 0, backoff_ms: 10, concurrency: 256}
"""


def completed(w: Worker) -> int:
    return next(q for q in w.list_queues() if q.name == "bench").stats.completed


async def enqueue_all(producer: Worker, function_id: str, n: int, parallel: int = 256) -> float:
    sem = asyncio.Semaphore(parallel)
    action = TriggerAction.Enqueue(queue="bench")

    async def one(i: int) -> None:
        async with sem:
            await producer.trigger_async({"function_id": function_id, "payload": {"i": i},
                                          "action": action})

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


def run_kind(url: str, kind: str, n: int, max_in_flight: int,
             engine_pid: int | None) -> dict[str, float]:
    function_id = f"bench::{kind}"
    producer = switchyard_sdk.register_worker(url, worker_name="bench-producer")
    base = completed(producer)
    enqueue_rate = asyncio.run(enqueue_all(producer, function_id, n))

    counter = [0]
    done = threading.Event()

    def count() -> None:
        counter[0] += 1
        if counter[0] == n:
            done.set()

    if kind == "async":
        async def handler(payload: Any) -> None:
            count()
    else:
        lock = threading.Lock()

        def handler(payload: Any) -> None:  # type: ignore[misc]
            with lock:
                count()

    worker = switchyard_sdk.register_worker(url, max_in_flight=max_in_flight, worker_name=f"bench-{kind}")
    worker.wait_connected(10)
    cpu0 = (cpu_seconds(os.getpid()), cpu_seconds(engine_pid))
    started = time.perf_counter()
    worker.register_function(function_id, handler)
    if not done.wait(600):
        raise SystemExit(f"{kind}: only {counter[0]}/{n} jobs ran")
    handled = time.perf_counter() - started
    while completed(producer) - base < n:
        time.sleep(0.005)
    acked = time.perf_counter() - started
    py_cpu = cpu_seconds(os.getpid()) - cpu0[0]
    engine_cpu = cpu_seconds(engine_pid) - cpu0[1]
    worker.shutdown(grace=2)
    producer.shutdown(grace=2)
    return {"enqueue_per_s": enqueue_rate, "handled_per_s": n / handled, "completed_per_s": n / acked,
            "py_cpu_us_per_job": py_cpu / n * 1e6, "engine_cpu_us_per_job": engine_cpu / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description="no-op worker throughput")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--url", help="use a running engine (needs a 'bench' queue)")
    parser.add_argument("--kinds", default="sync,async")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        url = args.url
        if url is None:
            proc, url = start_engine(Path(tmp), CONFIG, "debug")
        try:
            print(f"engine {url}, {args.jobs} jobs, max_in_flight {args.max_in_flight}, "
                  f"python {sys.version.split()[0]}")
            for kind in args.kinds.split(","):
                r = run_kind(url, kind, args.jobs, args.max_in_flight,
                             proc.pid if proc is not None else None)
                print(f"{kind:>5} handler: {r['completed_per_s']:8.0f} jobs/s completed "
                      f"({r['handled_per_s']:.0f}/s handled; enqueue {r['enqueue_per_s']:.0f}/s); "
                      f"CPU per job: python {r['py_cpu_us_per_job']:.0f} us, "
                      f"engine {r['engine_cpu_us_per_job']:.0f} us", flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()

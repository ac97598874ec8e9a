"""Producer throughput: how many enqueues/s concurrent asyncio producers get from one Worker.

Method:
1. Start an engine (``$SWITCHYARD_BIN``, else ``target/release/switchyard``; ``--url``
   to use a running one with a ``bench`` queue) on the in_memory store.
2. 32 asyncio producers on one event loop share N enqueues (``trigger_async`` with
   ``TriggerAction.Enqueue``) of a ~100-byte JSON payload, for a function no worker
   serves (jobs wait; nothing is processed). Time from the first to the last receipt.
3. Report enqueues/s and the CPU per enqueue of this process and of the engine.

To compare SDK versions, run the same script with ``PYTHONPATH`` pointing at another
copy of ``sdk-python/src`` (the first line printed says which ``switchyard_sdk`` was used).

Not a test; run by hand:  python bench/producer_bench.py --jobs 20000 --producers 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import switchyard_sdk
from _engine import cpu_seconds, start_engine
from switchyard_sdk import TriggerAction

CONFIG = """\
adapter: {name: builtin, config: {store_method: in_memory}}
queue_configs:
  default: {max_retries: 0, concurrency: 10}
  bench: {max_retries: 0, concurrency: 256}
"""
# ~100 bytes as JSON
PAYLOAD = {"orderId": "ord_000000", "customer": "cust_4242", "amount": 1234,
           "currency": "EUR", "items": ["sku-1", "sku-22"], "express": False}


async def produce(producer: switchyard_sdk.Worker, n: int, producers: int) -> float:
    action = TriggerAction.Enqueue(queue="bench")
    next_job = iter(range(n))

    async def one_producer() -> None:
        for i in next_job:
            payload = {**PAYLOAD, "orderId": f"ord_{i:06d}"}
            await producer.trigger_async({"function_id": "bench::never-served", "payload": payload,
                                          "action": action})

    started = time.perf_counter()
    await asyncio.gather(*(one_producer() for _ in range(producers)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="producer (enqueue) throughput")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=32)
    parser.add_argument("--url", help="use a running engine (needs a 'bench' queue)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        url = args.url
        if url is None:
            proc, url = start_engine(Path(tmp), CONFIG, "release")
        try:
            print(f"switchyard_sdk from {Path(switchyard_sdk.__file__).parent}; engine {url}; {args.jobs} jobs, "
                  f"{args.producers} producers, python {sys.version.split()[0]}", flush=True)
            producer = switchyard_sdk.register_worker(url, worker_name="bench-producer")
            asyncio.run(produce(producer, 200, args.producers))  # warm up the channel
            engine_pid = proc.pid if proc is not None else None
            cpu0 = (cpu_seconds(os.getpid()), cpu_seconds(engine_pid))
            elapsed = asyncio.run(produce(producer, args.jobs, args.producers))
            py_cpu = cpu_seconds(os.getpid()) - cpu0[0]
            engine_cpu = cpu_seconds(engine_pid) - cpu0[1]
            producer.shutdown(grace=2)
            print(f"enqueue: {args.jobs / elapsed:8.0f} /s; CPU per enqueue: python "
                  f"{py_cpu / args.jobs * 1e6:.0f} us, engine {engine_cpu / args.jobs * 1e6:.0f} us",
                  flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()

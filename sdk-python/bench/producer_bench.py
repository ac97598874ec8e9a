"""Producer throughput: how many enqueues/s concurrent asyncio producers get from one Worker.

Method:
1. Start an engine (``$SWITCHYARD_BIN``, else ``target/release/switchyard``; ``--url``
   to use a running one with a ``bench`` queue) on the in_memory store.
2. 32 asyncio producers on one event loop share N enqueues (``trigger_async`` with
   ``TriggerAction.Enqueue``) of a ~100-byte JSON payload, for a function no worker
   serves (jobs wait; nothing is processed). Time from the first to the last receipt.
3. Report enqueues/s and the CPU per enqueue of this process and of the engine.

To compare SDK versions, run the same script with ``PYTHONPATH`` pointing at another
copy of ``sdk-python/src`` (the first line printed says which ``switchyard`` was used).

Not a test; run by hand:  python bench/producer_bench.py --jobs 20000 --producers 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import switchyard
from switchyard import TriggerAction

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
adapter: {name: builtin, config: {store_method: in_memory}}
queue_configs:
  default: {max_retries: 0, concurrency: 10}
  bench: {max_retries: 0, concurrency: 256}
"""
# ~100 bytes as JSON
PAYLOAD = {"orderId": "ord_000000", "customer": "cust_4242", "amount": 1234,
           "currency": "EUR", "items": ["sku-1", "sku-22"], "express": False}


def start_engine(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = os.environ.get("SWITCHYARD_BIN") or str(REPO_ROOT / "target" / "release" / "switchyard")
    cfg = tmp / "iii-config.yaml"
    cfg.write_text(CONFIG)
    proc = subprocess.Popen([binary, "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=open(tmp / "engine.log", "wb"))
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"engine did not start: {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, f"http://{match.group(1)}"


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU time of a process so far (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def produce(producer: switchyard.Worker, n: int, producers: int) -> float:
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
            proc, url = start_engine(Path(tmp))
        try:
            print(f"switchyard from {Path(switchyard.__file__).parent}; engine {url}; {args.jobs} jobs, "
                  f"{args.producers} producers, python {sys.version.split()[0]}", flush=True)
            producer = switchyard.register_worker(url, worker_name="bench-producer")
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

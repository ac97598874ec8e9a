// Producer throughput: how many enqueues per second one Node process makes when 32
// concurrent producers each enqueue, await the receipt, and enqueue again.
//
//   node bench/producer.mjs [jobs=20000] [producers=32]     (starts its own engine, in_memory store)
//   SWITCHYARD_BIN=../target/release/switchyard node bench/producer.mjs
//   BENCH_SDK=/path/to/other/sdk-node/dist/index.js node bench/producer.mjs   (compare another build)
//   BENCH_WRAP=3 node bench/producer.mjs     (producer p calls through p % 4 async wrapper layers,
//                                             as application code does; see src/batcher.ts)
//
// Payloads are ~100-byte JSON objects. No worker serves the function, so the jobs wait
// in the queue (DESIGN §3) and the figure is the enqueue path alone. Prints enqueues/s,
// the CPU this process and the engine spent per enqueue, and how many EnqueueBatch calls
// carried them (0 for an SDK that sends one Trigger per enqueue).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startEngine } from '../test/helpers/engine.mjs';

const JOBS = Number(process.argv[2] ?? 20_000);
const PRODUCERS = Number(process.argv[3] ?? 32);
const sdkUrl = process.env.BENCH_SDK ? pathToFileURL(process.env.BENCH_SDK).href : new URL('../dist/index.js', import.meta.url).href;
const { registerWorker, TriggerAction } = await import(sdkUrl);
const methods = await import(new URL('./proto.js', sdkUrl).href).then((m) => m.methods).catch(() => ({}));

const CONFIG = `
queue_configs:
  default: {max_retries: 0, concurrency: 10}
  bench: {max_retries: 3, concurrency: 4096}
adapter: {name: builtin, config: {store_method: in_memory}}
`;

/** CPU time (user + system, ms) of the engine this script started; NaN when it did not start one. */
function engineCpuMs() {
  if (!engine?.pid) return NaN;
  const fields = readFileSync(`/proc/${engine.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const engine = process.env.SWITCHYARD_URL ? undefined : await startEngine({ config: CONFIG });
const url = process.env.SWITCHYARD_URL ?? engine.url;
const sy = registerWorker(url, {});
await sy.ready();

// Count EnqueueBatch calls when the SDK has them.
const batches = { calls: 0, items: 0 };
if (methods.enqueueBatch) {
  const serialize = methods.enqueueBatch.requestSerialize;
  methods.enqueueBatch.requestSerialize = (items) => {
    batches.calls += 1;
    batches.items += items.length;
    return serialize(items);
  };
}

const WRAP = Number(process.env.BENCH_WRAP ?? 0);
const enqueue = (n) => sy.trigger({ function_id: 'bench::produce', payload: payload(n), action: TriggerAction.Enqueue({ queue: 'bench' }) });
const wrapped = async (layers, n) => (layers === 0 ? enqueue(n) : await wrapped(layers - 1, n));

const payload = (n) => ({
  orderId: `ord_${String(n).padStart(8, '0')}`,
  customer: 'cus_4f2a9c',
  amount: 42.5,
  currency: 'EUR',
  lines: [{ sku: 'sku_123', qty: 2 }],
  n,
});

try {
  // Warm up the channel and the JIT.
  await Promise.all(Array.from({ length: 200 }, (_, n) => enqueue(n)));
  batches.calls = 0;
  batches.items = 0;

  let next = 0;
  const cpu0 = { node: process.cpuUsage(), engine: engineCpuMs() };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, p) => {
      while (next < JOBS) await wrapped(p % (WRAP + 1), next++);
    }),
  );
  const ms = performance.now() - t0;
  const nodeCpu = process.cpuUsage(cpu0.node);
  const engineCpu = engineCpuMs() - cpu0.engine;
  const perJob = (cpuMs) => `${((cpuMs * 1000) / JOBS).toFixed(1)} µs/job`;
  const nodeMs = (nodeCpu.user + nodeCpu.system) / 1000;
  console.log(
    `enqueued ${JOBS} jobs in ${ms.toFixed(0)} ms: ${Math.round(JOBS / (ms / 1000))} enqueues/s (${PRODUCERS} producers${WRAP ? `, 0-${WRAP} wrapper layers` : ''}); ` +
      `CPU producer ${perJob(nodeMs)}` + (Number.isNaN(engineCpu) ? '' : `, engine ${perJob(engineCpu)}`) +
      `; ${batches.calls} EnqueueBatch calls` + (batches.calls ? ` (${(batches.items / batches.calls).toFixed(1)} items/call)` : ''),
  );
} finally {
  await sy.shutdown();
  await engine?.stop();
}

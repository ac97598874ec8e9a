// No-op worker throughput: how many queued jobs per second one Node worker completes
// with maxInFlight 64.
//
//   node bench/noop-worker.mjs [jobs=20000]       (starts its own engine, in_memory store)
//   SWITCHYARD_URL=http://127.0.0.1:49134 node bench/noop-worker.mjs   (engine must have a `bench` queue)
//   BENCH_PROFILE=phase2.cpuprofile node bench/noop-worker.mjs           (CPU profile of phase 2 only)
//
// Phase 1 enqueues every job while no worker serves the function (so jobs wait, DESIGN §3)
// and reports the enqueue rate. Phase 2 registers a no-op handler and times from the
// registration until the last job has run: that figure is the worker's throughput.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { registerWorker, TriggerAction } from '../dist/index.js';
import { startEngine } from '../test/helpers/engine.mjs';

const JOBS = Number(process.argv[2] ?? 20_000);
const ENQUEUE_CONCURRENCY = 256;
const FUNCTION_ID = `bench::noop-${process.pid}`;
const CONFIG = `
queue_configs:
  default: {max_retries: 0, concurrency: 10}
  bench: {max_retries: 0, concurrency: 1024, timeout_ms: 60000}
`;

/** CPU time (user + system, ms) of the engine this script started; NaN when it did not start one. */
function engineCpuMs() {
  if (!engine?.pid) return NaN;
  const fields = readFileSync(`/proc/${engine.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

const engine = process.env.SWITCHYARD_URL ? undefined : await startEngine({ config: CONFIG });
const url = process.env.SWITCHYARD_URL ?? engine.url;
const sy = registerWorker(url, { maxInFlight: 64 });
await sy.ready();

try {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: ENQUEUE_CONCURRENCY }, async () => {
      while (next < JOBS) {
        const i = next++;
        await sy.trigger({ function_id: FUNCTION_ID, payload: { i }, action: TriggerAction.Enqueue({ queue: 'bench' }) });
      }
    }),
  );
  const enqueueMs = performance.now() - t0;
  console.log(`enqueued ${JOBS} jobs in ${enqueueMs.toFixed(0)} ms: ${Math.round(JOBS / (enqueueMs / 1000))} enqueues/s (${ENQUEUE_CONCURRENCY} calls in flight)`);

  const profiler = process.env.BENCH_PROFILE ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const cpu0 = { node: process.cpuUsage(), engine: engineCpuMs() };
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const t1 = performance.now();
  sy.registerFunction(FUNCTION_ID, () => {
    if (++done === JOBS) finish();
    return null;
  });
  await finished;
  // The last handler has run; wait until the engine has recorded every result.
  while ((await sy.listQueues()).find((q) => q.name === 'bench').stats.completed < JOBS) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const runMs = performance.now() - t1;
  const nodeCpu = process.cpuUsage(cpu0.node);
  const engineCpu = engineCpuMs() - cpu0.engine;
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
  }
  console.log(`processed ${JOBS} jobs in ${runMs.toFixed(0)} ms: ${Math.round(JOBS / (runMs / 1000))} jobs/s (no-op handler, maxInFlight 64)`);
  const perJob = (ms) => `${((ms * 1000) / JOBS).toFixed(1)} µs/job`;
  const nodeMs = (nodeCpu.user + nodeCpu.system) / 1000;
  console.log(`  CPU while processing: worker ${nodeMs.toFixed(0)} ms (${perJob(nodeMs)})` +
    (Number.isNaN(engineCpu) ? '' : `, engine ${engineCpu.toFixed(0)} ms (${perJob(engineCpu)})`) + `, wall ${runMs.toFixed(0)} ms`);
} finally {
  await sy.shutdown();
  await engine?.stop();
}

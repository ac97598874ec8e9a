// Failures around the worker: a worker killed mid-job, an engine killed and restarted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { registerWorker, TriggerAction } from '../dist/index.js';
import { startEngine } from './helpers/engine.mjs';
import { Collector, deferred, eventually, within } from './helpers/wait.mjs';

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('a_job_whose_worker_is_killed_completes_on_another_worker', { timeout: 40_000 }, async () => {
  const engine = await startEngine();
  cleanups.push(() => engine.stop());
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/hanging-worker.mjs', import.meta.url)), engine.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  const events = new Collector();
  createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  await events.waitFor(1, 10_000, 'the child worker to connect');

  const producer = registerWorker(engine.url, {});
  cleanups.push(() => producer.shutdown());
  const { messageReceiptId } = await producer.trigger({
    function_id: 'jobs::slow',
    payload: { n: 1 },
    action: TriggerAction.Enqueue({ queue: 'default' }),
  });
  const started = await events.waitFor(2, 10_000, 'the child to start the job');
  assert.deepEqual(started[1], { event: 'started', attempt: 1, messageReceiptId });

  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await within(exited, 5_000, 'the child to die');

  const finished = deferred();
  producer.registerFunction('jobs::slow', (payload, ctx) => {
    finished.resolve({ payload, attempt: ctx.attempt, messageReceiptId: ctx.messageReceiptId });
    return 'ok';
  });
  const result = await within(finished.promise, 15_000, 'the job on the second worker');
  assert.deepEqual(result, { payload: { n: 1 }, attempt: 2, messageReceiptId });
});

test('the_worker_reconnects_and_keeps_processing_after_an_engine_restart', { timeout: 60_000 }, async () => {
  const engine = await startEngine();
  cleanups.push(() => engine.stop());
  const sy = registerWorker(engine.url, { maxReconnectDelayMs: 500 });
  cleanups.push(() => sy.shutdown());
  const done = new Collector();
  sy.registerFunction('emails::confirmation', (payload) => {
    done.push(payload.n);
  });
  await sy.ready();
  const enqueue = (n) =>
    sy.trigger({ function_id: 'emails::confirmation', payload: { n }, action: TriggerAction.Enqueue({ queue: 'default' }) });
  await enqueue(1);
  await done.waitFor(1, 10_000, 'the job before the restart');

  const disconnected = deferred();
  sy.once('disconnected', disconnected.resolve);
  await engine.kill();
  await within(disconnected.promise, 10_000, 'the worker to notice the crash');
  const reconnected = deferred();
  sy.once('connected', reconnected.resolve);
  await engine.restart();
  await within(reconnected.promise, 15_000, 'the worker to reconnect');

  // Enqueue works at once; the job runs once the re-registration has reached the engine.
  await eventually(async () => enqueue(2), { timeoutMs: 10_000, what: 'enqueue after the restart' });
  const items = await done.waitFor(2, 15_000, 'the job after the restart');
  assert.deepEqual(items, [1, 2]);
  assert.ok(sy.isConnected);
});

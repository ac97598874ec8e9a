// SIGTERM drain: a worker process that gets a plain `kill` finishes the job it is running,
// the job is not retried, and the process then ends as SIGTERM ends it; the listeners are
// there exactly while a serving worker is open, and not with handleSignals: false.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { registerWorker, TriggerAction } from '../dist/index.js';
import { startEngine } from './helpers/engine.mjs';
import { FakeEngine } from './helpers/fake-engine.mjs';
import { Collector, eventually, within } from './helpers/wait.mjs';

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('sigterm_during_a_job_lets_it_finish_and_the_job_is_not_retried', { timeout: 60_000 }, async () => {
  const engine = await startEngine();
  cleanups.push(() => engine.stop());
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/sigterm-worker.mjs', import.meta.url)), engine.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const events = new Collector();
  createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  await events.waitFor(1, 15_000, 'the child worker to be ready');

  const producer = registerWorker(engine.url);
  cleanups.push(() => producer.shutdown());
  const { messageReceiptId } = await producer.trigger({
    function_id: 'drain::slow', payload: {}, action: TriggerAction.Enqueue({ queue: 'default' }),
  });
  await events.waitFor(2, 10_000, 'the job to start');
  assert.deepEqual(events.items[1], { event: 'started', attempt: 1, messageReceiptId });

  child.kill('SIGTERM');
  const { code, signal } = await within(exited, 20_000, 'the child to exit after SIGTERM');
  assert.deepEqual(events.items.map((e) => e.event), ['ready', 'started', 'draining', 'finished']);
  // Ended by the signal it got, as without the SDK, once the drain was over.
  assert.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' });
  const stats = async () => (await producer.listQueues()).find((q) => q.name === 'default').stats;
  await eventually(async () => (await stats()).completed === 1, { what: 'the job to be completed' });
  const { failed, ready, delayed, inFlight, dead } = await stats();
  assert.deepEqual({ failed, ready, delayed, inFlight, dead }, { failed: 0, ready: 0, delayed: 0, inFlight: 0, dead: 0 });
});

test('a_serving_worker_holds_one_listener_per_signal_until_it_shuts_down', { timeout: 20_000 }, async () => {
  const engine = await new FakeEngine().start();
  cleanups.push(() => engine.crash());
  const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') };
  const count = () => ({ term: process.listenerCount('SIGTERM') - before.term, int: process.listenerCount('SIGINT') - before.int });

  const caller = registerWorker(engine.url);
  const optedOut = registerWorker(engine.url, { handleSignals: false });
  optedOut.registerFunction('f', () => 1);
  await optedOut.ready();
  assert.deepEqual(count(), { term: 0, int: 0 }, 'a pure caller and an opted-out worker listen to nothing');

  const one = registerWorker(engine.url);
  const two = registerWorker(engine.url);
  one.registerFunction('f', () => 1);
  two.registerFunction('g', () => 1);
  assert.deepEqual(count(), { term: 1, int: 1 });
  await one.shutdown();
  assert.deepEqual(count(), { term: 1, int: 1 });
  await two.shutdown();
  assert.deepEqual(count(), { term: 0, int: 0 });
  await Promise.all([caller.shutdown(), optedOut.shutdown()]);
});

// The job lifecycle against a real engine (issue 22): getJob through a job's states,
// waitForResult, cancelJob before and during a run, progress shown by getJob, a
// NonRetryableError going straight to the DLQ, priorities and their refusals. One engine
// (in memory) for the file; each test has its own queue and function ids.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  InvalidArgumentError,
  JobCancelledError,
  JobDeadError,
  JobNotFoundError,
  NonRetryableError,
  registerWorker,
  SwitchyardTimeoutError,
} from '../dist/index.js';
import { startEngine } from './helpers/engine.mjs';
import { Collector, deferred, eventually, within } from './helpers/wait.mjs';

const CONFIG = `
queue_configs:
  kept: {result_retention_ms: 60000, max_retries: 2, backoff_ms: 50}
  plain: {max_retries: 3, backoff_ms: 50}
  permanent: {max_retries: 5, backoff_ms: 50}
  ordered: {concurrency: 1, result_retention_ms: 60000}
  ledger: {type: fifo, message_group_field: account}
`;

let engine;
let producer;
const workers = [];
before(async () => {
  engine = await startEngine({ config: CONFIG });
  producer = registerWorker(engine.url, { handleSignals: false });
});
after(async () => {
  for (const w of workers) await w.shutdown();
  await producer?.shutdown();
  await engine?.stop();
});

/** A worker serving `handlers` (id → handler), once the engine has them all. */
async function serving(handlers) {
  const worker = registerWorker(engine.url, { handleSignals: false, shutdownGraceMs: 1_000 });
  workers.push(worker);
  for (const [id, handler] of Object.entries(handlers)) worker.registerFunction(id, handler);
  await worker.ready();
  return worker;
}

test('get_job_follows_a_job_to_completed_and_wait_for_result_answers_its_result', { timeout: 30_000 }, async () => {
  const { messageReceiptId: id } = await producer.enqueue('kept', 'life::double', { x: 21 });
  const waiting = await producer.getJob('kept', id);
  assert.equal(waiting.state, 'ready');
  assert.equal(waiting.attempts, 0);
  assert.equal(waiting.maxAttempts, 3);
  assert.deepEqual(waiting.payload, { x: 21 });
  assert.equal(waiting.functionId, 'life::double');
  assert.ok(waiting.enqueuedAt instanceof Date);
  assert.equal(waiting.result, undefined);
  const pending = producer.waitForResult('kept', id, { timeoutMs: 20_000 });
  await serving({
    'life::double': (payload, ctx) => {
      if (ctx.attempt < 2) throw Object.assign(new Error('first try fails'), { name: 'Flaky' });
      return { doubled: payload.x * 2 };
    },
  });
  assert.deepEqual(await pending, { doubled: 42 });
  const done = await producer.getJob('kept', id);
  assert.equal(done.state, 'completed');
  assert.equal(done.attempts, 2);
  assert.equal(done.lastError?.code, 'Flaky');
  assert.deepEqual(done.result, { doubled: 42 });
  assert.ok(done.finishedAt instanceof Date);
  assert.ok(done.expiresAt instanceof Date && done.expiresAt > done.finishedAt);
  // Idempotent cancel of a finished job changes nothing.
  const cancel = await producer.cancelJob('kept', id);
  assert.equal(cancel.outcome, 'already_finished');
  assert.equal(cancel.job.state, 'completed');
});

test('an_unknown_receipt_is_job_not_found_and_a_queue_keeping_no_results_forgets_completed_jobs', { timeout: 30_000 }, async () => {
  const missing = await producer.getJob('plain', '00000000-0000-7000-8000-000000000000').then(() => assert.fail('resolved'), (e) => e);
  assert.ok(missing instanceof JobNotFoundError);
  assert.equal(missing.details.message_receipt_id, '00000000-0000-7000-8000-000000000000');
  assert.equal(missing.details.queue, 'plain');
  const ran = deferred();
  await serving({ 'life::quick': () => ran.resolve() });
  const { messageReceiptId: id } = await producer.enqueue('plain', 'life::quick', {});
  await within(ran.promise, 10_000, 'the job to run');
  await eventually(async () => (await producer.getJob('plain', id).catch((e) => e)) instanceof JobNotFoundError, {
    what: 'the completed job to be gone (result_retention_ms 0)',
  });
});

test('wait_for_result_times_out_while_no_worker_serves_the_job', { timeout: 30_000 }, async () => {
  const { messageReceiptId: id } = await producer.enqueue('kept', 'life::nobody', {});
  await assert.rejects(producer.waitForResult('kept', id, { timeoutMs: 300 }), (e) => e instanceof SwitchyardTimeoutError && e.reason === 'TIMEOUT' && e.details.state === 'ready');
});

test('cancel_before_start_means_the_job_never_runs', { timeout: 30_000 }, async () => {
  const { messageReceiptId: id } = await producer.enqueue('plain', 'life::never', {}, { delayMs: 60_000 });
  const first = await producer.cancelJob('plain', id);
  assert.equal(first.outcome, 'cancelled');
  assert.equal(first.job.state, 'cancelled');
  assert.equal((await producer.cancelJob('plain', id)).outcome, 'already_cancelled');
  assert.equal((await producer.getJob('plain', id)).state, 'cancelled');
  await assert.rejects(producer.waitForResult('plain', id, { timeoutMs: 5_000 }), (e) => e instanceof JobCancelledError && e.reason === 'JOB_CANCELLED');
});

test('cancel_during_a_run_aborts_the_handler_and_the_job_ends_cancelled_with_its_progress_seen', { timeout: 30_000 }, async () => {
  const started = new Collector();
  const aborted = deferred();
  await serving({
    'life::long': async (_payload, ctx) => {
      ctx.setProgress(50, { step: 'upload' });
      started.push(ctx);
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      aborted.resolve(ctx.signal.reason);
      return null;
    },
  });
  const { messageReceiptId: id } = await producer.enqueue('plain', 'life::long', {});
  await started.waitFor(1, 10_000, 'the job to start');
  const running = await eventually(async () => {
    const job = await producer.getJob('plain', id);
    return job.progress !== undefined && job;
  }, { what: 'getJob to show the progress' });
  assert.equal(running.state, 'in_flight');
  assert.deepEqual(running.progress, { value: 50, detail: { step: 'upload' } });
  const cancel = await producer.cancelJob('plain', id);
  assert.equal(cancel.outcome, 'cancelling');
  const reason = await within(aborted.promise, 10_000, "the handler's signal to abort");
  assert.match(reason.message, /cancelled/);
  await eventually(async () => (await producer.getJob('plain', id)).state === 'cancelled', { what: 'the job to end cancelled' });
  const [stats] = (await producer.listQueues()).filter((q) => q.name === 'plain').map((q) => q.stats);
  assert.equal(stats.deadLettered, 0);
  assert.equal(started.items.length, 1, 'not retried');
});

test('a_non_retryable_error_dead_letters_the_job_after_one_attempt', { timeout: 30_000 }, async () => {
  let attempts = 0;
  await serving({
    'life::charge': () => {
      attempts += 1;
      throw new NonRetryableError('card number is invalid');
    },
  });
  const { messageReceiptId: id } = await producer.enqueue('permanent', 'life::charge', { card: '0000' });
  const error = await producer.waitForResult('permanent', id, { timeoutMs: 10_000 }).then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof JobDeadError, String(error));
  assert.equal(error.reason, 'JOB_DEAD');
  assert.equal(error.lastError.code, 'NonRetryableError');
  assert.equal(error.lastError.message, 'card number is invalid');
  assert.equal(error.job.attempts, 1);
  assert.equal(attempts, 1);
  const { entries } = await producer.listDeadLetters('permanent');
  assert.deepEqual(entries.map((e) => [e.messageReceiptId, e.attempts, e.lastError?.code]), [[id, 1, 'NonRetryableError']]);
});

test('priorities_order_ready_jobs_and_the_engine_refuses_bad_ones', { timeout: 30_000 }, async () => {
  const order = [];
  const receipts = [];
  for (const [n, priority] of [[1, undefined], [2, 9], [3, 5], [4, 9]]) {
    receipts.push((await producer.enqueue('ordered', 'life::ordered', { n }, priority === undefined ? {} : { priority })).messageReceiptId);
  }
  assert.deepEqual(await Promise.all(receipts.map(async (id) => (await producer.getJob('ordered', id)).priority)), [0, 9, 5, 9]);
  await serving({ 'life::ordered': ({ n }) => order.push(n) });
  await Promise.all(receipts.map((id) => producer.waitForResult('ordered', id, { timeoutMs: 10_000 })));
  assert.deepEqual(order, [2, 4, 3, 1]);
  await assert.rejects(producer.enqueue('ordered', 'life::ordered', {}, { priority: 10 }), (e) => e instanceof InvalidArgumentError && e.reason === 'INVALID_PRIORITY');
  await assert.rejects(producer.enqueue('ledger', 'life::ordered', { account: 'a' }, { priority: 0 }), (e) => e instanceof InvalidArgumentError && e.reason === 'PRIORITY_ON_FIFO_QUEUE');
});

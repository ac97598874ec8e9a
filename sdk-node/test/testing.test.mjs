// The testing helpers users get: a fake Context and runHandler() to unit-test a handler
// without an engine, and startTestEngine() to run workers against a real one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestContext, registerWorker, runHandler, startTestEngine, TriggerAction } from '../dist/index.js';
import { engineBinary } from './helpers/engine.mjs';
import { deferred, within } from './helpers/wait.mjs';

test('a_test_context_defaults_to_a_first_direct_attempt_and_takes_queue_fields', () => {
  const ctx = createTestContext();
  assert.deepEqual(
    { attempt: ctx.attempt, maxAttempts: ctx.maxAttempts, queue: ctx.queue, messageReceiptId: ctx.messageReceiptId, group: ctx.group },
    { attempt: 1, maxAttempts: 1, queue: undefined, messageReceiptId: undefined, group: undefined },
  );
  const at = new Date('2026-12-03T10:00:00.250Z');
  const queued = createTestContext({ queue: 'payment', attempt: 3, maxAttempts: 4, messageReceiptId: 'm1', group: 'ord_1', enqueuedAt: at });
  assert.deepEqual(
    { attempt: queued.attempt, maxAttempts: queued.maxAttempts, queue: queued.queue, receipt: queued.messageReceiptId, group: queued.group },
    { attempt: 3, maxAttempts: 4, queue: 'payment', receipt: 'm1', group: 'ord_1' },
  );
  assert.equal(queued.enqueuedAt.toISOString(), at.toISOString());
  assert.equal(queued.signal.aborted, false);
  queued.abort();
  assert.equal(queued.signal.aborted, true);
});

test('run_handler_reads_the_outcome_as_a_worker_does', async () => {
  assert.deepEqual(await runHandler((p, ctx) => ({ sum: p.a + p.b, attempt: ctx.attempt }), { a: 1, b: 2 }, { attempt: 2, maxAttempts: 3 }), {
    ok: true, value: { sum: 3, attempt: 2 },
  });
  assert.deepEqual(await runHandler(async () => undefined, {}), { ok: true, value: null });
  // The payload arrives as it would off the wire: a Date is a string, undefined is gone.
  const seen = await runHandler((p) => p, { at: new Date('2026-01-01T00:00:00Z'), gone: undefined });
  assert.deepEqual(seen, { ok: true, value: { at: '2026-01-01T00:00:00.000Z' } });
  const failed = await runHandler(() => {
    throw new RangeError('invalid amount');
  }, {});
  assert.equal(failed.ok, false);
  assert.equal(failed.error.code, 'RangeError');
  assert.equal(failed.error.message, 'invalid amount');
  assert.match(failed.error.stack, /RangeError: invalid amount\n\s+at /);
  const unencodable = await runHandler(() => 1n, {});
  assert.equal(unencodable.ok, false);
  assert.equal(unencodable.error.code, 'TypeError');
});

test('start_test_engine_runs_a_real_engine_a_worker_can_serve', { timeout: 30_000 }, async () => {
  const engine = await startTestEngine({ bin: engineBinary, config: 'queue_configs:\n  emails: {max_retries: 0}\n' });
  const sy = registerWorker(engine.url, { handleSignals: false });
  try {
    const got = deferred();
    sy.registerFunction('emails::send', (payload, ctx) => got.resolve({ payload, queue: ctx.queue }));
    await sy.trigger({ function_id: 'emails::send', payload: { to: 'a@example.com' }, action: TriggerAction.Enqueue({ queue: 'emails' }) });
    assert.deepEqual(await within(got.promise, 10_000, 'the job'), { payload: { to: 'a@example.com' }, queue: 'emails' });
  } finally {
    await sy.shutdown();
    await engine.stop();
  }
});

test('start_test_engine_says_why_it_could_not_start', async () => {
  await assert.rejects(startTestEngine({ bin: '/nonexistent/switchyard' }), /cannot start \/nonexistent\/switchyard/);
});

// What the worker logs about jobs, through the injected logger, against a scripted fake
// engine: one WARN per failed attempt with the engine's field names (never the payload),
// DEBUG lines for each job's start and end.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { registerWorker } from '../dist/index.js';
import { FakeEngine, invoke, resultsOf } from './helpers/fake-engine.mjs';
import { captureLogger } from './helpers/log.mjs';
import { eventually } from './helpers/wait.mjs';

const SECRET = 'card-4242-4242-4242-4242';
const workers = [];
const engines = [];
after(async () => {
  await Promise.all(workers.map((w) => w.shutdown()));
  for (const e of engines) e.crash();
});

async function setup() {
  const engine = await new FakeEngine().start();
  engines.push(engine);
  const log = captureLogger();
  const worker = registerWorker(engine.url, { logger: log.logger, maxReconnectDelayMs: 200 });
  workers.push(worker);
  return { engine, worker, log };
}

const delivery = (receipt, attempt = 1) => ({ queue: 'payment', message_receipt_id: receipt, attempt, max_attempts: 3, group: 'ord_1' });
const jobLines = (log) => log.records.filter((r) => r.message.startsWith('job '));

test('a_handler_exception_is_one_warn_with_the_job_fields_and_the_error_never_the_payload', { timeout: 10_000 }, async () => {
  const { engine, worker, log } = await setup();
  worker.registerFunction('orders::charge', (payload) => {
    throw new RangeError(`declined for order ${payload.orderId}`);
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('i1', 'orders::charge', { orderId: 'ord_1', card: SECRET }, delivery('m1', 2)));
  const warn = await log.waitFor((r) => r.level === 'warn', 5_000, 'the WARN');
  assert.equal(warn.message, 'job failed: orders::charge (attempt 2/3 of job m1 from payment): RangeError: declined for order ord_1');
  const { duration_ms: duration, error_stack: stack, ...fields } = warn.fields;
  assert.deepEqual(fields, {
    queue: 'payment', function_id: 'orders::charge', message_receipt_id: 'm1', invocation_id: 'i1', attempt: 2, max_attempts: 3,
    outcome: 'failed', error_code: 'RangeError', error_message: 'declined for order ord_1',
  });
  assert.ok(Number.isInteger(duration) && duration >= 0, String(duration));
  assert.match(stack, /RangeError: declined for order ord_1\n\s+at /);
  assert.ok(!JSON.stringify(log.records).includes(SECRET), 'the payload leaked into the log');
  assert.equal(log.records.filter((r) => r.level === 'warn').length, 1);
});

test('a_rejected_promise_and_an_unencodable_result_are_failures_too', { timeout: 10_000 }, async () => {
  const { engine, worker, log } = await setup();
  worker.registerFunction('a::rejects', async () => {
    throw Object.assign(new Error('downstream refused'), { name: 'DownstreamError' });
  });
  worker.registerFunction('a::bigint', () => 10n);
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('i1', 'a::rejects', {}, delivery('m1')));
  stream.call.write(invoke('i2', 'a::bigint', {}));
  await eventually(() => log.records.filter((r) => r.level === 'warn').length === 2, { what: 'two WARNs' });
  const [rejected, bigint] = ['i1', 'i2'].map((id) => log.records.find((r) => r.level === 'warn' && r.fields.invocation_id === id));
  assert.equal(rejected.fields.error_code, 'DownstreamError');
  assert.equal(rejected.fields.message_receipt_id, 'm1');
  // A direct call has no queue fields, and says so.
  assert.equal(bigint.fields.error_code, 'TypeError');
  assert.equal('queue' in bigint.fields || 'message_receipt_id' in bigint.fields, false);
  assert.match(bigint.message, /^job failed: a::bigint \(direct call\): TypeError: /);
});

test('the_engine_timing_an_attempt_out_is_a_failure_and_other_cancels_are_debug', { timeout: 10_000 }, async () => {
  const { engine, worker, log } = await setup();
  worker.registerFunction('slow::wait', (_payload, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('t1', 'slow::wait', {}, delivery('m1')));
  stream.call.write(invoke('t2', 'slow::wait', {}, delivery('m2')));
  await eventually(() => log.records.filter((r) => r.message.startsWith('job started')).length === 2, { what: 'both jobs to start' });
  stream.call.write({ cancel: { invocation_id: 't1', reason: 'timeout' } });
  stream.call.write({ cancel: { invocation_id: 't2', reason: 'engine shutting down' } });
  const timedOut = await log.waitFor((r) => r.level === 'warn', 5_000, 'the timeout WARN');
  assert.equal(timedOut.fields.invocation_id, 't1');
  assert.equal(timedOut.fields.outcome, 'failed');
  assert.equal(timedOut.fields.error_code, 'TIMEOUT');
  const cancelled = await log.waitFor((r) => r.message.startsWith('job cancelled'), 5_000, 'the cancel DEBUG');
  assert.equal(cancelled.level, 'debug');
  assert.equal(cancelled.fields.invocation_id, 't2');
  assert.equal(cancelled.fields.outcome, 'cancelled');
  assert.match(cancelled.fields.reason, /engine shutting down/);
  assert.equal(log.records.filter((r) => r.level === 'warn').length, 1);
});

test('each_job_logs_debug_lines_at_its_start_and_end', { timeout: 10_000 }, async () => {
  const { engine, worker, log } = await setup();
  worker.registerFunction('math::double', (payload) => payload.x * 2);
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('i1', 'math::double', { x: 21 }, delivery('m1')));
  await eventually(() => resultsOf(stream.messages).has('i1'), { what: 'the result' });
  const lines = jobLines(log);
  assert.deepEqual(lines.map((r) => [r.level, r.message]), [['debug', 'job started: math::double'], ['debug', 'job completed: math::double']]);
  assert.equal(lines[0].fields.outcome, undefined);
  assert.equal(lines[0].fields.message_receipt_id, 'm1');
  assert.equal(lines[1].fields.outcome, 'completed');
  assert.ok(Number.isInteger(lines[1].fields.duration_ms));
});

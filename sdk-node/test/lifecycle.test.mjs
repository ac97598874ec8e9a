// The job lifecycle without a real engine (issue 22): getJob / cancelJob conversions,
// waitForResult's polling (with an injected clock), setProgress and NonRetryableError on
// the worker stream of a fake engine, the priority option, and the new reasons' typed
// errors.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  createTestContext,
  InvalidArgumentError,
  JobCancelledError,
  JobDeadError,
  JobNotFoundError,
  NonRetryableError,
  registerWorker,
  runHandler,
  SwitchyardError,
  SwitchyardTimeoutError,
  TriggerAction,
} from '../dist/index.js';
import { errorForReason } from '../dist/errors.js';
import { toFunctionError } from '../dist/invocations.js';
import { fromWireJob, MAX_POLL_MS, pollDelayMs, waitForJob } from '../dist/jobs.js';
import { encodeStatusWithErrorInfo, methods } from '../dist/proto.js';
import { toWirePublish, toWireTrigger } from '../dist/trigger.js';
import { fromValueBytes, toValueBytes } from '../dist/value.js';
import { allResults, FakeEngine, invoke } from './helpers/fake-engine.mjs';
import { deferred, eventually, within } from './helpers/wait.mjs';

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const ts = (iso) => {
  const ms = Date.parse(iso);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
};

/** A JobInfo as the engine sends it (snake_case, Values as bytes). */
function wireJob(fields = {}) {
  return { message_receipt_id: 'm1', queue: 'jobs', function_id: 'f', state: 'ready', attempts: 0, max_attempts: 3, payload: toValueBytes({ n: 1 }), priority: 0, enqueued_at: ts('2026-12-04T10:00:00.000Z'), ...fields };
}

/** Time that only moves when the wait sleeps: the polling schedule, without waiting. */
function fakeTimers() {
  const timers = { at: 0, sleeps: [] };
  timers.now = () => timers.at;
  timers.sleep = async (ms) => {
    timers.sleeps.push(ms);
    timers.at += ms;
  };
  return timers;
}

/** A getJob that answers `states` in turn (the last one forever), counting the calls. */
function answering(...jobs) {
  const fn = async () => {
    fn.calls += 1;
    const job = jobs[Math.min(fn.calls - 1, jobs.length - 1)];
    if (job instanceof Error) throw job;
    return fromWireJob(wireJob(job));
  };
  fn.calls = 0;
  return fn;
}

const request = { queue: 'jobs', messageReceiptId: 'm1', timeoutMs: 10_000 };

// ---- waitForResult's polling --------------------------------------------------------

test('poll_delay_backs_off_from_50_ms_doubling_to_1_s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(pollDelayMs), [50, 100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(MAX_POLL_MS, 1000);
});

test('wait_for_result_polls_until_completed_and_resolves_the_result', async () => {
  const timers = fakeTimers();
  const getJob = answering({ state: 'ready' }, { state: 'in_flight' }, { state: 'completed', attempts: 1, result: toValueBytes({ ok: 1 }) });
  assert.deepEqual(await waitForJob(getJob, request, timers), { ok: 1 });
  assert.equal(getJob.calls, 3);
  assert.deepEqual(timers.sleeps, [50, 100]);
});

test('wait_for_result_of_a_job_that_returned_nothing_is_null', async () => {
  assert.equal(await waitForJob(answering({ state: 'completed', result: toValueBytes(null) }), request, fakeTimers()), null);
});

test('wait_for_result_times_out_with_reason_timeout_after_a_last_poll_at_the_deadline', async () => {
  const timers = fakeTimers();
  const getJob = answering({ state: 'in_flight' });
  const error = await waitForJob(getJob, { ...request, timeoutMs: 500 }, timers).then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof SwitchyardTimeoutError && error instanceof SwitchyardError);
  assert.equal(error.reason, 'TIMEOUT');
  assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
  assert.match(error.message, /^TIMEOUT: job m1 of queue 'jobs' has not finished after 500 ms \(state: in_flight\)$/);
  assert.deepEqual(error.details, { queue: 'jobs', message_receipt_id: 'm1', state: 'in_flight' });
  // 50 + 100 + 200, then the 150 ms left: never past the deadline, and one poll at it.
  assert.deepEqual(timers.sleeps, [50, 100, 200, 150]);
  assert.equal(getJob.calls, 5);
});

test('wait_for_result_with_a_zero_timeout_asks_once', async () => {
  const getJob = answering({ state: 'delayed' });
  await assert.rejects(waitForJob(getJob, { ...request, timeoutMs: 0 }, fakeTimers()), { reason: 'TIMEOUT' });
  assert.equal(getJob.calls, 1);
  await assert.rejects(waitForJob(getJob, { ...request, timeoutMs: -1 }, fakeTimers()), RangeError);
});

test('wait_for_result_of_a_dead_job_is_job_dead_with_the_last_error', async () => {
  const lastError = { message: 'card number is invalid', code: 'NonRetryableError', stack: 'at charge' };
  const getJob = answering({ state: 'in_flight', attempts: 1 }, { state: 'dead', attempts: 1, last_error: lastError });
  const error = await waitForJob(getJob, request, fakeTimers()).then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof JobDeadError && error instanceof SwitchyardError);
  assert.equal(error.name, 'JobDeadError');
  assert.equal(error.reason, 'JOB_DEAD');
  assert.match(error.message, /^JOB_DEAD: job m1 of queue 'jobs' was dead-lettered after 1 attempt\(s\): NonRetryableError: card number is invalid$/);
  assert.deepEqual(error.lastError, lastError);
  assert.deepEqual(error.details, { queue: 'jobs', message_receipt_id: 'm1', attempts: '1', ...lastError });
  assert.equal(error.job.state, 'dead');
});

test('wait_for_result_of_a_cancelled_job_is_job_cancelled', async () => {
  const error = await waitForJob(answering({ state: 'cancelled' }), request, fakeTimers()).then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof JobCancelledError && error instanceof SwitchyardError);
  assert.equal(error.reason, 'JOB_CANCELLED');
  assert.equal(error.code, grpc.status.CANCELLED);
  assert.equal(error.job.state, 'cancelled');
});

test('wait_for_result_passes_job_not_found_and_other_errors_through', async () => {
  const notFound = errorForReason('JOB_NOT_FOUND', "JOB_NOT_FOUND: queue 'jobs' has no job 'm1'", grpc.status.NOT_FOUND, { queue: 'jobs' });
  const getJob = answering({ state: 'ready' }, notFound);
  await assert.rejects(waitForJob(getJob, request, fakeTimers()), (e) => e === notFound);
  assert.equal(getJob.calls, 2);
  const unavailable = errorForReason('UNAVAILABLE', 'engine gone', grpc.status.UNAVAILABLE);
  await assert.rejects(waitForJob(answering(unavailable), request, fakeTimers()), (e) => e === unavailable);
});

test('wait_for_result_turns_a_poll_that_outlives_the_deadline_into_timeout', async () => {
  const timers = fakeTimers();
  const getJob = async () => {
    timers.at += 2_000; // the call itself ran out of time
    throw errorForReason('DEADLINE_EXCEEDED', 'deadline exceeded', grpc.status.DEADLINE_EXCEEDED);
  };
  await assert.rejects(waitForJob(getJob, { ...request, timeoutMs: 1_000 }, timers), { reason: 'TIMEOUT' });
});

test('wait_for_result_stops_when_its_signal_aborts', async () => {
  const controller = new AbortController();
  const getJob = answering({ state: 'ready' });
  const timers = fakeTimers();
  timers.sleep = async () => controller.abort(new Error('caller gave up'));
  await assert.rejects(waitForJob(getJob, { ...request, signal: controller.signal }, timers), /caller gave up/);
  assert.equal(getJob.calls, 1);
});

test('wait_for_result_stops_at_once_when_its_signal_aborts_during_a_poll', async () => {
  const controller = new AbortController();
  const never = new Promise(() => {});
  const waiting = waitForJob(() => never, { ...request, signal: controller.signal }, fakeTimers());
  controller.abort(new Error('caller gave up'));
  await assert.rejects(within(waiting, 5_000, 'the wait to stop'), /caller gave up/);
});

// ---- conversions ----------------------------------------------------------------------

test('a_job_info_becomes_a_plain_job_with_dates_and_json_values', () => {
  const job = fromWireJob(wireJob({
    state: 'retrying', attempts: 1, group: 'acct_1', priority: 7, topic: 'orders.placed',
    last_error: { message: 'boom', code: 'ConformanceError', stack: '' },
    due_at: ts('2026-12-04T10:00:01.500Z'),
    progress: { value: 50, detail: toValueBytes({ step: 'upload' }) }, cancel_requested: true,
  }));
  assert.deepEqual(job, {
    messageReceiptId: 'm1', queue: 'jobs', functionId: 'f', state: 'retrying', attempts: 1, maxAttempts: 3,
    lastError: { message: 'boom', code: 'ConformanceError', stack: '' }, payload: { n: 1 }, group: 'acct_1',
    priority: 7, enqueuedAt: new Date('2026-12-04T10:00:00.000Z'), dueAt: new Date('2026-12-04T10:00:01.500Z'),
    finishedAt: undefined, expiresAt: undefined, result: undefined, progress: { value: 50, detail: { step: 'upload' } },
    cancelRequested: true, topic: 'orders.placed',
  });
  // Unset fields read as defaults or undefined; a progress with only a detail has no value.
  const bare = fromWireJob({ progress: { detail: toValueBytes(null) }, result: toValueBytes(false) });
  assert.equal(bare.state, '');
  assert.equal(bare.attempts, 0);
  assert.equal(bare.group, undefined);
  assert.equal(bare.payload, null);
  assert.equal(bare.result, false);
  assert.deepEqual(bare.progress, { value: undefined, detail: null });
});

test('a_job_info_survives_the_wire_with_the_optional_fields_present_at_zero', () => {
  const bytes = methods.getJob.responseSerialize({ job: wireJob({ attempts: 0, priority: 0, progress: { value: 0 } }) });
  const job = fromWireJob(methods.getJob.responseDeserialize(bytes).job);
  assert.equal(job.attempts, 0);
  assert.equal(job.priority, 0);
  assert.deepEqual(job.progress, { value: 0, detail: undefined });
  assert.deepEqual(job.enqueuedAt, new Date('2026-12-04T10:00:00.000Z'));
});

// ---- typed errors ---------------------------------------------------------------------

test('the_lifecycle_reasons_have_their_typed_errors', () => {
  for (const reason of ['INVALID_PRIORITY', 'PRIORITY_ON_FIFO_QUEUE']) {
    const error = errorForReason(reason, `${reason}: no`, grpc.status.INVALID_ARGUMENT);
    assert.ok(error instanceof InvalidArgumentError, reason);
    assert.equal(error.reason, reason);
  }
  assert.ok(errorForReason('JOB_NOT_FOUND', 'x', grpc.status.NOT_FOUND) instanceof JobNotFoundError);
  assert.ok(errorForReason('JOB_DEAD', 'x') instanceof JobDeadError);
  assert.ok(errorForReason('JOB_CANCELLED', 'x') instanceof JobCancelledError);
});

// ---- the priority option --------------------------------------------------------------

test('priority_travels_on_enqueue_when_set_even_as_zero', () => {
  const wire = (options) => toWireTrigger({ function_id: 'f', payload: {}, action: TriggerAction.Enqueue({ queue: 'q', ...options }) }).enqueue;
  assert.deepEqual(wire({ priority: 7 }), { queue: 'q', priority: 7 });
  assert.deepEqual(wire({ priority: 0 }), { queue: 'q', priority: 0 });
  assert.deepEqual(wire({}), { queue: 'q' });
  // On the wire, presence is kept: a fifo queue refuses an explicit 0 as it refuses any priority.
  const decoded = methods.trigger.requestDeserialize(methods.trigger.requestSerialize(toWireTrigger({
    function_id: 'f', payload: {}, action: TriggerAction.Enqueue({ queue: 'q', priority: 0 }),
  })));
  assert.equal(decoded.enqueue.priority, 0);
  // Above 9 is the engine's INVALID_PRIORITY to answer, so it is sent.
  assert.deepEqual(wire({ priority: 10 }), { queue: 'q', priority: 10 });
});

test('a_priority_the_wire_cannot_carry_is_refused_before_any_call', () => {
  for (const priority of [-1, 1.5, Number.NaN, 2 ** 32, '3']) {
    assert.throws(() => TriggerAction.Enqueue({ queue: 'q', priority }), RangeError, String(priority));
  }
  // A publish fans out to queues of any kind: it takes no priority.
  assert.throws(() => toWirePublish('t', {}, { priority: 1 }), /unknown publish options: priority/);
});

// ---- NonRetryableError ----------------------------------------------------------------

test('a_non_retryable_error_is_marked_and_keeps_its_class_name_as_code', () => {
  const wire = toFunctionError(new NonRetryableError('card number is invalid'));
  assert.equal(wire.non_retryable, true);
  assert.equal(wire.code, 'NonRetryableError');
  assert.equal(wire.message, 'card number is invalid');
  class CardDeclined extends NonRetryableError {}
  assert.deepEqual([toFunctionError(new CardDeclined('no')).code, toFunctionError(new CardDeclined('no')).non_retryable], ['CardDeclined', true]);
  assert.equal(toFunctionError(new TypeError('retry me')).non_retryable, undefined);
  // Branded, not instanceof: the other build's class (a separate module instance) counts too.
  const foreign = Object.assign(new Error('x'), { [Symbol.for('switchyard.nonRetryable')]: true });
  assert.equal(toFunctionError(foreign).non_retryable, true);
});

test('run_handler_reports_a_non_retryable_failure', async () => {
  const outcome = await runHandler(() => {
    throw new NonRetryableError('never');
  }, {});
  assert.deepEqual({ ...outcome.error, stack: undefined }, { message: 'never', code: 'NonRetryableError', stack: undefined, nonRetryable: true });
  const retryable = await runHandler(() => {
    throw new Error('again');
  }, {});
  assert.equal(retryable.error.nonRetryable, false);
});

// ---- setProgress ----------------------------------------------------------------------

test('set_progress_on_a_test_context_records_each_report', () => {
  const ctx = createTestContext({ queue: 'jobs' });
  ctx.setProgress(10);
  ctx.setProgress(50, { step: 'upload', at: new Date('2026-01-01T00:00:00Z') });
  ctx.setProgress(undefined, ['done']);
  assert.deepEqual(ctx.progress, [
    { value: 10, detail: undefined },
    { value: 50, detail: { step: 'upload', at: '2026-01-01T00:00:00.000Z' } },
    { value: undefined, detail: ['done'] },
  ]);
});

test('set_progress_refuses_what_the_engine_would_drop', () => {
  const ctx = createTestContext({ queue: 'jobs' });
  assert.throws(() => ctx.setProgress(Number.NaN), RangeError);
  assert.throws(() => ctx.setProgress(Infinity), RangeError);
  assert.throws(() => ctx.setProgress('50'), RangeError);
  assert.throws(() => ctx.setProgress(1, { big: 'x'.repeat(5000) }), /detail is \d+ bytes encoded; the engine keeps at most 4096/);
  assert.throws(() => ctx.setProgress(1, { n: 1n }), TypeError);
  assert.deepEqual(ctx.progress, []);
});

// ---- the worker stream of a fake engine -------------------------------------------------

async function fakeSetup(unary = {}) {
  const engine = await new FakeEngine(unary).start();
  const worker = registerWorker(engine.url, { maxReconnectDelayMs: 200, handleSignals: false });
  cleanups.push(async () => {
    await worker.shutdown();
    engine.crash();
  });
  return { engine, worker };
}

const delivery = { queue: 'jobs', message_receipt_id: 'm1', attempt: 1, max_attempts: 3, enqueued_at: ts('2026-12-04T10:00:00.000Z') };

test('set_progress_sends_the_latest_report_of_the_turn_on_the_worker_stream', { timeout: 10_000 }, async () => {
  const { engine, worker } = await fakeSetup();
  const release = deferred();
  worker.registerFunction('jobs::upload', async (_payload, ctx) => {
    ctx.setProgress(10);
    ctx.setProgress(50, { step: 'upload' }); // same turn: replaces the first
    await release.promise;
    ctx.setProgress(99); // same turn as the result: dropped, the result says more
    return 'ok';
  });
  worker.registerFunction('jobs::direct', (_payload, ctx) => {
    ctx.setProgress(1); // a direct call has no job to show it: nothing is sent
    return 'direct';
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('7', 'jobs::direct', {}));
  stream.call.write(invoke('8', 'jobs::upload', {}, delivery));
  const progress = () => stream.messages.items.filter((m) => m.progress);
  await eventually(() => progress().length === 1, { what: 'one progress report' });
  const [{ progress: report }] = progress();
  assert.equal(report.invocation_id, '8');
  assert.equal(report.progress.value, 50);
  assert.deepEqual(fromValueBytes(report.progress.detail), { step: 'upload' });
  release.resolve();
  await eventually(() => allResults(stream.messages).length === 2, { what: 'both results' });
  assert.equal(progress().length, 1);
});

test('progress_after_the_engine_cancelled_the_invocation_is_not_sent', { timeout: 10_000 }, async () => {
  const { engine, worker } = await fakeSetup();
  const aborted = deferred();
  worker.registerFunction('jobs::slow', async (_payload, ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    ctx.setProgress(5);
    aborted.resolve(ctx.signal.reason);
    return null;
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('9', 'jobs::slow', {}, delivery));
  await eventually(() => stream.messages.items.length >= 2, { what: 'the invocation to start' });
  stream.call.write({ cancel: { invocation_id: '9', reason: 'cancelled' } });
  const reason = await within(aborted.promise, 5_000, 'the handler to see the cancel');
  assert.match(reason.message, /cancelled by the engine: cancelled/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stream.messages.items.filter((m) => m.progress || m.result || m.results).length, 0);
});

test('a_non_retryable_error_reaches_the_engine_marked', { timeout: 10_000 }, async () => {
  const { engine, worker } = await fakeSetup();
  worker.registerFunction('cards::charge', () => {
    throw new NonRetryableError('card number is invalid');
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('3', 'cards::charge', {}, delivery));
  const [result] = await eventually(() => {
    const results = allResults(stream.messages);
    return results.length > 0 && results;
  }, { what: 'the result' });
  assert.equal(result.error.non_retryable, true);
  assert.equal(result.error.code, 'NonRetryableError');
  assert.equal(result.error.message, 'card number is invalid');
});

// ---- getJob / cancelJob / waitForResult against the fake Queues service ----------------

function jobNotFound(queue, id) {
  const details = `JOB_NOT_FOUND: queue '${queue}' has no job '${id}'`;
  const metadata = new grpc.Metadata();
  const info = { reason: 'JOB_NOT_FOUND', domain: 'switchyard', metadata: { queue, message_receipt_id: id } };
  metadata.set('grpc-status-details-bin', Buffer.from(encodeStatusWithErrorInfo(grpc.status.NOT_FOUND, details, info)));
  return { code: grpc.status.NOT_FOUND, details, metadata };
}

test('get_job_and_cancel_job_ask_the_queues_service_by_queue_and_receipt', { timeout: 10_000 }, async () => {
  const asked = [];
  const { worker } = await fakeSetup({
    GetJob: (req) => {
      asked.push(['get', req.queue, req.message_receipt_id]);
      if (req.message_receipt_id !== 'm1') throw jobNotFound(req.queue, req.message_receipt_id);
      return { job: wireJob({ state: 'in_flight', attempts: 1, progress: { value: 25 } }) };
    },
    CancelJob: (req) => {
      asked.push(['cancel', req.queue, req.message_receipt_id]);
      return { outcome: 'cancelling', job: wireJob({ state: 'in_flight', attempts: 1, cancel_requested: true }) };
    },
  });
  const job = await worker.getJob('jobs', 'm1');
  assert.equal(job.state, 'in_flight');
  assert.deepEqual(job.progress, { value: 25, detail: undefined });
  const cancelled = await worker.cancelJob('jobs', 'm1');
  assert.equal(cancelled.outcome, 'cancelling');
  assert.equal(cancelled.job.cancelRequested, true);
  const missing = await worker.getJob('jobs', 'nope').then(() => assert.fail('resolved'), (e) => e);
  assert.ok(missing instanceof JobNotFoundError);
  assert.equal(missing.reason, 'JOB_NOT_FOUND');
  assert.deepEqual(missing.details, { queue: 'jobs', message_receipt_id: 'nope' });
  assert.deepEqual(asked, [['get', 'jobs', 'm1'], ['cancel', 'jobs', 'm1'], ['get', 'jobs', 'nope']]);
});

test('wait_for_result_polls_the_engine_until_the_job_completes', { timeout: 10_000 }, async () => {
  let polls = 0;
  const { worker } = await fakeSetup({
    GetJob: () => {
      polls += 1;
      return { job: polls < 3 ? wireJob({ state: 'in_flight' }) : wireJob({ state: 'completed', result: toValueBytes({ total: 42 }) }) };
    },
  });
  assert.deepEqual(await worker.waitForResult('jobs', 'm1', { timeoutMs: 5_000 }), { total: 42 });
  assert.equal(polls, 3);
  await assert.rejects(
    fakeSetup({ GetJob: () => ({ job: wireJob({ state: 'delayed' }) }) }).then(({ worker: w }) => w.waitForResult('jobs', 'm1', { timeoutMs: 120 })),
    (e) => e instanceof SwitchyardTimeoutError && e.reason === 'TIMEOUT' && e.details.state === 'delayed',
  );
});

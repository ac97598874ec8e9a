// The SDK against a real engine: enqueue, sync and void calls, typed rejections, FIFO
// order, retries into the DLQ and redrive. One engine serves every test in this file;
// each test uses its own function ids so tests cannot see each other's jobs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  FunctionFailedError,
  FunctionNotFoundError,
  MissingGroupFieldError,
  QueueNotFoundError,
  registerWorker,
  SwitchyardError,
  SwitchyardTimeoutError,
  TriggerAction,
  functionRef,
} from '../dist/index.js';
import { methods } from '../dist/proto.js';
import { startEngine } from './helpers/engine.mjs';
import { Collector, deferred, eventually, within } from './helpers/wait.mjs';

let engine;
let sy;
before(async () => {
  engine = await startEngine();
  sy = registerWorker(engine.url, {});
  await sy.ready();
});
after(async () => {
  await sy?.shutdown();
  await engine?.stop();
});

/** Sync call after the engine has acknowledged every registration; resolves to { value } or { error }. */
async function callWhenRegistered(request) {
  await sy.ready();
  try {
    return { value: await sy.trigger(request) };
  } catch (error) {
    return { error };
  }
}

test('enqueue_returns_a_receipt_and_the_job_is_processed', { timeout: 20_000 }, async () => {
  const seen = new Collector();
  sy.registerFunction('orders::process-payment', async (payload, ctx) => {
    seen.push({ payload, ctx });
    return { charged: true };
  });
  const receipt = await sy.trigger({
    function_id: 'orders::process-payment',
    payload: { orderId: 'ord_789', amount: 42 },
    action: TriggerAction.Enqueue({ queue: 'payment' }),
  });
  assert.equal(typeof receipt.messageReceiptId, 'string');
  assert.ok(receipt.messageReceiptId.length > 0);
  const [{ payload, ctx }] = await seen.waitFor(1, 10_000, 'the payment job');
  assert.deepEqual(payload, { orderId: 'ord_789', amount: 42 });
  assert.equal(ctx.messageReceiptId, receipt.messageReceiptId);
  assert.equal(ctx.queue, 'payment');
  assert.equal(ctx.group, 'ord_789');
  assert.equal(ctx.attempt, 1);
  assert.equal(ctx.maxAttempts, 4);
  assert.equal(ctx.functionId, 'orders::process-payment');
  assert.ok(ctx.invocationId);
  assert.ok(ctx.enqueuedAt instanceof Date && Math.abs(Date.now() - ctx.enqueuedAt.getTime()) < 60_000);
  const queues = await sy.listQueues();
  const payment = queues.find((q) => q.name === 'payment');
  assert.equal(payment.config.type, 'fifo');
  assert.equal(payment.config.messageGroupField, 'orderId');
  assert.equal(payment.config.maxRetries, 3);
  await eventually(async () => (await sy.listQueues()).find((q) => q.name === 'payment').stats.completed >= 1, {
    what: 'stats.completed to count the job',
  });
  assert.ok(queues.some((q) => q.name === 'default'));
});

test('sync_call_resolves_to_the_function_value', { timeout: 20_000 }, async () => {
  sy.registerFunction('math::add', ({ a, b }, ctx) => ({ sum: a + b, attempt: ctx.attempt, queue: ctx.queue ?? null }));
  const { value, error } = await callWhenRegistered({ function_id: 'math::add', payload: { a: 1, b: 2 } });
  assert.equal(error, undefined);
  assert.deepEqual(value, { sum: 3, attempt: 1, queue: null });
});

test('sync_call_to_a_failing_handler_is_function_failed_with_the_js_stack', { timeout: 20_000 }, async () => {
  sy.registerFunction('math::divide', ({ a, b }) => {
    if (b === 0) throw new RangeError('division by zero');
    return a / b;
  });
  const { error } = await callWhenRegistered({ function_id: 'math::divide', payload: { a: 1, b: 0 } });
  assert.ok(error instanceof FunctionFailedError, `got ${error}`);
  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.reason, 'FUNCTION_FAILED');
  assert.equal(error.code, 2); // UNKNOWN
  assert.equal(error.details.code, 'RangeError');
  assert.equal(error.details.message, 'division by zero');
  assert.match(error.details.stack, /RangeError: division by zero\n\s+at .*engine\.test\.mjs/);
});

test('sync_call_timeout_is_a_timeout_error_and_aborts_the_handler', { timeout: 20_000 }, async () => {
  const aborted = deferred();
  sy.registerFunction('slow::forever', (_payload, ctx) => new Promise(() => {
    ctx.signal.addEventListener('abort', () => aborted.resolve());
  }));
  const { error } = await callWhenRegistered({ function_id: 'slow::forever', payload: {}, timeout_ms: 300 });
  assert.ok(error instanceof SwitchyardTimeoutError, `got ${error}`);
  assert.equal(error.reason, 'TIMEOUT');
  assert.equal(error.code, 4); // DEADLINE_EXCEEDED
  await within(aborted.promise, 5_000, 'the cancel to abort the handler signal');
});

test('void_call_resolves_undefined_and_runs_the_function', { timeout: 20_000 }, async () => {
  const tracked = deferred();
  sy.registerFunction('analytics::track', (payload) => tracked.resolve(payload));
  const { value, error } = await callWhenRegistered({
    function_id: 'analytics::track',
    payload: { event: 'order_created' },
    action: TriggerAction.Void(),
  });
  assert.equal(error, undefined);
  assert.equal(value, undefined);
  assert.deepEqual(await within(tracked.promise, 5_000, 'the void call to run'), { event: 'order_created' });
});

test('call_to_an_unregistered_function_is_function_not_found', { timeout: 10_000 }, async () => {
  await assert.rejects(sy.trigger({ function_id: 'nobody::home', payload: {} }), (error) => {
    assert.ok(error instanceof FunctionNotFoundError);
    assert.equal(error.reason, 'FUNCTION_NOT_FOUND');
    assert.equal(error.code, 5);
    return true;
  });
});

test('enqueue_to_an_unknown_queue_is_queue_not_found', { timeout: 10_000 }, async () => {
  await assert.rejects(
    sy.trigger({ function_id: 'orders::process-payment', payload: { orderId: 'o' }, action: TriggerAction.Enqueue({ queue: 'paymnet' }) }),
    (error) => {
      assert.ok(error instanceof QueueNotFoundError, `got ${error}`);
      assert.equal(error.reason, 'QUEUE_NOT_FOUND');
      assert.equal(error.code, 5); // NOT_FOUND
      assert.match(error.message, /^QUEUE_NOT_FOUND: .*paymnet/);
      return true;
    },
  );
  await assert.rejects(sy.listDeadLetters('paymnet'), QueueNotFoundError);
});

test('fifo_enqueue_without_the_group_field_is_missing_group_field', { timeout: 10_000 }, async () => {
  for (const payload of [{ amount: 1 }, { orderId: null }, { orderId: { nested: true } }]) {
    await assert.rejects(
      sy.trigger({ function_id: 'orders::process-payment', payload, action: TriggerAction.Enqueue({ queue: 'payment' }) }),
      (error) => {
        assert.ok(error instanceof MissingGroupFieldError, `got ${error} for ${JSON.stringify(payload)}`);
        assert.equal(error.reason, 'MISSING_GROUP_FIELD');
        assert.equal(error.code, 3); // INVALID_ARGUMENT
        return true;
      },
    );
  }
});

test('fifo_jobs_of_one_group_run_in_enqueue_order', { timeout: 30_000 }, async () => {
  const done = new Collector();
  let running = new Map();
  let overlap = false;
  sy.registerFunction('ledger::apply', async ({ orderId, seq }) => {
    if (running.get(orderId)) overlap = true;
    running.set(orderId, true);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
    running.set(orderId, false);
    done.push({ orderId, seq });
  });
  const groups = ['acct_A', 'acct_B', 'acct_C'];
  const perGroup = 8;
  for (let seq = 0; seq < perGroup; seq++) {
    for (const orderId of groups) {
      await sy.trigger({ function_id: 'ledger::apply', payload: { orderId, seq }, action: TriggerAction.Enqueue({ queue: 'payment' }) });
    }
  }
  const items = await done.waitFor(groups.length * perGroup, 20_000, 'every ledger job');
  for (const group of groups) {
    assert.deepEqual(items.filter((i) => i.orderId === group).map((i) => i.seq), [...Array(perGroup).keys()], group);
  }
  assert.equal(overlap, false, 'two jobs of one group ran at once');
});

test('exhausted_retries_reach_the_dlq_with_the_js_stack_then_redrive_completes', { timeout: 30_000 }, async () => {
  class PaymentDeclined extends Error {
    name = 'PaymentDeclined';
  }
  let fixed = false;
  const attempts = new Collector();
  const completed = deferred();
  sy.registerFunction('billing::charge', (payload, ctx) => {
    attempts.push(ctx.attempt);
    if (!fixed) throw new PaymentDeclined(`card declined for ${payload.customer}`);
    completed.resolve(ctx);
    return 'charged';
  });
  const { messageReceiptId } = await sy.trigger({
    function_id: 'billing::charge',
    payload: { customer: 'cus_1' },
    action: TriggerAction.Enqueue({ queue: 'flaky' }),
  });
  const entry = await eventually(
    async () => (await sy.listDeadLetters('flaky')).entries.find((e) => e.messageReceiptId === messageReceiptId),
    { timeoutMs: 15_000, what: 'the job in the DLQ' },
  );
  assert.deepEqual(attempts.items, [1, 2]);
  assert.equal(entry.queue, 'flaky');
  assert.equal(entry.functionId, 'billing::charge');
  assert.deepEqual(entry.payload, { customer: 'cus_1' });
  assert.equal(entry.attempts, 2);
  assert.equal(entry.group, undefined);
  assert.equal(entry.lastError.code, 'PaymentDeclined');
  assert.equal(entry.lastError.message, 'card declined for cus_1');
  assert.match(entry.lastError.stack, /card declined for cus_1\n\s+at .*engine\.test\.mjs/);
  assert.ok(entry.deadLetteredAt instanceof Date);
  const flaky = (await sy.listQueues()).find((q) => q.name === 'flaky');
  assert.ok(flaky.stats.dead >= 1 && flaky.stats.deadLettered >= 1 && flaky.stats.failed >= 2);

  fixed = true;
  assert.equal(await sy.redriveDeadLetters('flaky', [messageReceiptId]), 1);
  const ctx = await within(completed.promise, 10_000, 'the redriven job');
  assert.equal(ctx.messageReceiptId, messageReceiptId);
  assert.equal(ctx.attempt, 1, 'redrive gives a fresh retry budget');
  const page = await sy.listDeadLetters('flaky', { pageSize: 10 });
  assert.equal(page.entries.some((e) => e.messageReceiptId === messageReceiptId), false);
});

test('discard_removes_dead_letters', { timeout: 30_000 }, async () => {
  sy.registerFunction('billing::always-fails', () => {
    throw new Error('nope');
  });
  const { messageReceiptId } = await sy.trigger({
    function_id: 'billing::always-fails',
    payload: {},
    action: TriggerAction.Enqueue({ queue: 'flaky' }),
  });
  await eventually(async () => (await sy.listDeadLetters('flaky')).entries.some((e) => e.messageReceiptId === messageReceiptId), {
    timeoutMs: 15_000,
    what: 'the job in the DLQ',
  });
  assert.equal(await sy.discardDeadLetters('flaky', [messageReceiptId]), 1);
  const page = await sy.listDeadLetters('flaky');
  assert.equal(page.entries.some((e) => e.messageReceiptId === messageReceiptId), false);
});

test('many_waiting_jobs_arrive_in_batches_and_each_runs_exactly_once_with_its_context', { timeout: 60_000 }, async (t) => {
  const JOBS = 600;
  // Count what the worker stream carries, both ways (the serializers are read when a stream opens).
  const connect = methods.connect;
  const original = { out: connect.requestSerialize, in: connect.responseDeserialize };
  const counts = { invokes: 0, invokesInBatches: 0, results: 0, resultsInBatches: 0 };
  connect.responseDeserialize = (bytes) => {
    const message = original.in(bytes);
    if (message.invokes) {
      counts.invokes += 1;
      counts.invokesInBatches += message.invokes.invokes.length;
    }
    return message;
  };
  connect.requestSerialize = (message) => {
    if (message.results) {
      counts.results += 1;
      counts.resultsInBatches += message.results.results.length;
    }
    return original.out(message);
  };
  const worker = registerWorker(engine.url, { maxInFlight: 64 });
  try {
    await worker.ready();
    // Enqueue everything while no worker serves the function: the jobs wait, then pour in.
    const receipts = new Map();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < JOBS) {
        const n = next++;
        const { messageReceiptId } = await sy.trigger({ function_id: 'bulk::job', payload: { n }, action: TriggerAction.Enqueue({ queue: 'bulk' }) });
        receipts.set(messageReceiptId, n);
      }
    }));
    const runs = new Map();
    const all = deferred();
    worker.registerFunction('bulk::job', async (payload, ctx) => {
      runs.set(ctx.messageReceiptId, [...(runs.get(ctx.messageReceiptId) ?? []), { payload, ctx }]);
      if (runs.size === JOBS) all.resolve();
      if (payload.n % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      return payload.n;
    });
    await within(all.promise, 30_000, 'every bulk job to run');
    await eventually(async () => (await sy.listQueues()).find((q) => q.name === 'bulk').stats.completed >= JOBS, {
      what: 'the engine to record every result',
    });
    assert.equal(runs.size, JOBS);
    for (const [receipt, n] of receipts) {
      const seen = runs.get(receipt);
      assert.equal(seen?.length, 1, `job ${n} ran ${seen?.length ?? 0} times`);
      const [{ payload, ctx }] = seen;
      assert.deepEqual(payload, { n });
      assert.equal(ctx.messageReceiptId, receipt);
      assert.equal(ctx.functionId, 'bulk::job');
      assert.equal(ctx.queue, 'bulk');
      assert.equal(ctx.attempt, 1);
      assert.equal(ctx.maxAttempts, 1);
    }
    const ids = [...runs.values()].map(([{ ctx }]) => ctx.invocationId);
    assert.equal(new Set(ids).size, JOBS, 'every invocation id is distinct');
    const bulk = (await sy.listQueues()).find((q) => q.name === 'bulk');
    assert.equal(bulk.stats.failed, 0);
    t.diagnostic(`worker stream: ${counts.invokes} invokes batches (${counts.invokesInBatches} invocations), ` +
      `${counts.results} results batches (${counts.resultsInBatches} results)`);
    assert.ok(counts.invokesInBatches > 0, 'the engine sent invokes batches (it needs batch support)');
    assert.ok(counts.resultsInBatches > 0, 'results went out in batches');
  } finally {
    connect.requestSerialize = original.out;
    connect.responseDeserialize = original.in;
    await worker.shutdown();
  }
});

test('call_and_enqueue_take_a_function_ref_and_send_its_id', { timeout: 20_000 }, async () => {
  const multiply = functionRef('math::multiply');
  const jobs = new Collector();
  const returned = sy.registerFunction(multiply, ({ a, b }, ctx) => {
    if (ctx.queue) jobs.push({ a, b, queue: ctx.queue });
    return { product: a * b };
  });
  assert.equal(returned, multiply);
  assert.equal(String(multiply), 'math::multiply');
  await sy.ready();
  assert.deepEqual(await sy.call(multiply, { a: 6, b: 7 }), { product: 42 });
  assert.deepEqual(await sy.call('math::multiply', { a: 2, b: 3 }, { timeoutMs: 5_000 }), { product: 6 });
  const { messageReceiptId } = await sy.enqueue('default', multiply, { a: 1, b: 1 });
  assert.ok(messageReceiptId);
  assert.deepEqual((await jobs.waitFor(1, 10_000, 'the enqueued job'))[0], { a: 1, b: 1, queue: 'default' });
  sy.unregisterFunction(multiply);
});

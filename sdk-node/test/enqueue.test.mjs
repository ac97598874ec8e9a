// Enqueue coalescing (src/batcher.ts): concurrent enqueues share EnqueueBatch calls, and
// each still gets exactly the answer a lone Trigger enqueue would have given. Against the
// real engine, plus a fake engine for an older engine (no EnqueueBatch) and failed calls.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  InvalidArgumentError,
  MissingGroupFieldError,
  PayloadTooLargeError,
  QueueNotFoundError,
  registerWorker,
  SwitchyardTimeoutError,
  TriggerAction,
  UnavailableError,
} from '../dist/index.js';
import { methods } from '../dist/proto.js';
import { fromValueBytes } from '../dist/value.js';
import { startEngine } from './helpers/engine.mjs';
import { FakeEngine } from './helpers/fake-engine.mjs';
import { deferred, eventually, within } from './helpers/wait.mjs';

let engine;
let sy;
const quiet = {};
before(async () => {
  engine = await startEngine();
  sy = registerWorker(engine.url, quiet);
  await sy.ready();
});
after(async () => {
  await sy?.shutdown();
  await engine?.stop();
});

/** Counts the EnqueueBatch calls this process sends (and their items) until restore(). */
function countBatches() {
  const method = methods.enqueueBatch;
  const original = method.requestSerialize;
  const counts = { calls: 0, items: 0, sizes: [] };
  method.requestSerialize = (items) => {
    counts.calls += 1;
    counts.items += items.length;
    counts.sizes.push(items.length);
    return original(items);
  };
  counts.restore = () => (method.requestSerialize = original);
  return counts;
}

const enqueue = (worker, function_id, payload, queue = 'bulk') =>
  worker.trigger({ function_id, payload, action: TriggerAction.Enqueue({ queue }) });

/** Settles every promise: [{ value } | { error }], in order. */
const settle = (promises) =>
  Promise.all(promises.map((p) => p.then((value) => ({ value }), (error) => ({ error }))));

test('concurrent_enqueues_share_batch_calls_and_each_job_runs_exactly_once', { timeout: 60_000 }, async (t) => {
  const JOBS = 200;
  const counts = countBatches();
  let receipts;
  try {
    receipts = await Promise.all(Array.from({ length: JOBS }, (_, n) => enqueue(sy, 'batch::once', { n })));
  } finally {
    counts.restore();
  }
  t.diagnostic(`${JOBS} enqueues in ${counts.calls} EnqueueBatch calls (sizes ${counts.sizes.join(', ')})`);
  assert.equal(counts.items, JOBS, 'every enqueue went out in an EnqueueBatch');
  assert.ok(counts.calls < JOBS / 4, `${counts.calls} calls for ${JOBS} concurrent enqueues`);
  const ids = receipts.map((r) => r.messageReceiptId);
  assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
  assert.equal(new Set(ids).size, JOBS, 'every receipt is distinct');

  const runs = new Map();
  const all = deferred();
  sy.registerFunction('batch::once', (payload, ctx) => {
    runs.set(ctx.messageReceiptId, [...(runs.get(ctx.messageReceiptId) ?? []), payload.n]);
    if (runs.size === JOBS) all.resolve();
  });
  await within(all.promise, 30_000, 'every job to run');
  await eventually(async () => (await sy.listQueues()).find((q) => q.name === 'bulk').stats.completed >= JOBS, {
    what: 'the engine to record every result',
  });
  // Each receipt names the job of the enqueue that got it, and that job ran once.
  ids.forEach((id, n) => assert.deepEqual(runs.get(id), [n], `job ${n} (receipt ${id})`));
  assert.equal(runs.size, JOBS);
});

test('producers_woken_by_an_answer_ride_in_the_next_batch', { timeout: 60_000 }, async (t) => {
  // 32 producers, each enqueueing again as soon as its previous enqueue is answered: the
  // answer wakes them all, and their next enqueues must leave together, not one by one.
  // Application code wraps the SDK, so the producers resume after different numbers of
  // promise hops (0 to 3 wrapper layers here): the cut must wait for all of them.
  const PRODUCERS = 32;
  const EACH = 20;
  const wrapped = async (layers, payload) =>
    layers === 0 ? enqueue(sy, 'batch::producers', payload) : await wrapped(layers - 1, payload);
  const counts = countBatches();
  const ids = new Set();
  try {
    await Promise.all(Array.from({ length: PRODUCERS }, async (_, p) => {
      for (let i = 0; i < EACH; i++) {
        const { messageReceiptId } = await wrapped(p % 4, { p, i });
        ids.add(messageReceiptId);
      }
    }));
  } finally {
    counts.restore();
  }
  const singles = counts.sizes.filter((size) => size === 1).length;
  t.diagnostic(`${PRODUCERS * EACH} enqueues in ${counts.calls} calls, ${singles} of one item (sizes ${counts.sizes.join(', ')})`);
  assert.equal(ids.size, PRODUCERS * EACH);
  assert.equal(counts.items, PRODUCERS * EACH);
  // Every round of 32 fits in one call (cutting before the deeper-wrapped producers have
  // resumed splits each round in four, cutting at once makes singles).
  assert.ok(counts.calls <= 1.5 * EACH, `${counts.calls} calls for ${EACH} rounds of ${PRODUCERS}`);
  assert.ok(singles <= EACH / 4, `${singles} single-item batches`);
});

test('items_of_one_batch_fail_alone_with_their_own_reason', { timeout: 60_000 }, async (t) => {
  const big = 'x'.repeat(1024 * 1024 + 10); // over the engine's max_payload_bytes (1 MiB)
  const cases = Array.from({ length: 120 }, (_, n) => {
    switch (n % 10) {
      case 3:
        return { n, queue: 'paymnet', expect: QueueNotFoundError, reason: 'QUEUE_NOT_FOUND', code: 5 };
      case 5:
        return { n, queue: 'payment', payload: { amount: n }, expect: MissingGroupFieldError, reason: 'MISSING_GROUP_FIELD', code: 3 };
      case 7:
        return { n, function_id: '  ', expect: InvalidArgumentError, reason: 'INVALID_ARGUMENT', code: 3 };
      default:
        return n === 42 || n === 88
          ? { n, payload: { n, big }, expect: PayloadTooLargeError, reason: 'PAYLOAD_TOO_LARGE', code: 8 }
          : { n, queue: n % 2 ? 'payment' : 'bulk', payload: { n, orderId: `o${n % 4}` } };
    }
  });
  const counts = countBatches();
  let outcomes;
  try {
    outcomes = await settle(cases.map((c) => enqueue(sy, c.function_id ?? 'batch::mixed', c.payload ?? { n: c.n }, c.queue ?? 'bulk')));
  } finally {
    counts.restore();
  }
  t.diagnostic(`${cases.length} enqueues in ${counts.calls} calls (sizes ${counts.sizes.join(', ')})`);
  assert.ok(counts.calls < cases.length / 4, `${counts.calls} calls`);
  const good = new Map();
  cases.forEach((c, i) => {
    const { value, error } = outcomes[i];
    if (c.expect) {
      assert.ok(error instanceof c.expect, `enqueue ${c.n}: expected ${c.expect.name}, got ${error ?? JSON.stringify(value)}`);
      assert.equal(error.reason, c.reason, `enqueue ${c.n}`);
      assert.equal(error.code, c.code, `enqueue ${c.n}`);
      assert.match(error.message, new RegExp(`^${c.reason}: `), `enqueue ${c.n}`);
      if (c.reason === 'QUEUE_NOT_FOUND') assert.match(error.message, /paymnet/);
    } else {
      assert.equal(error, undefined, `enqueue ${c.n} failed: ${error}`);
      good.set(value.messageReceiptId, c.n);
    }
  });
  assert.equal(good.size, cases.filter((c) => !c.expect).length, 'distinct receipts for the good enqueues');
  // The good ones are stored and run, each with its own payload.
  const runs = new Map();
  const all = deferred();
  sy.registerFunction('batch::mixed', (payload, ctx) => {
    runs.set(ctx.messageReceiptId, payload.n);
    if (runs.size === good.size) all.resolve();
  });
  await within(all.promise, 30_000, 'every good job to run');
  assert.deepEqual(runs, good);
});

test('an_engine_without_enqueue_batch_gets_one_trigger_per_enqueue_from_then_on', { timeout: 20_000 }, async () => {
  const triggers = [];
  const fake = await new FakeEngine({
    Trigger: (request) => {
      triggers.push(request);
      if (request.enqueue.queue !== 'q') return { code: grpc.status.NOT_FOUND, details: `QUEUE_NOT_FOUND: queue '${request.enqueue.queue}'` };
      return { receipt: { message_receipt_id: `r-${fromValueBytes(request.payload).n}` } };
    },
  }).start();
  const worker = registerWorker(fake.url, quiet);
  const counts = countBatches();
  try {
    const first = await settle(Array.from({ length: 10 }, (_, n) => enqueue(worker, 'f', { n }, n === 4 ? 'nope' : 'q')));
    assert.equal(counts.calls, 1, 'one EnqueueBatch attempt');
    assert.equal(triggers.length, 10, 'then one Trigger per enqueue');
    first.forEach(({ value, error }, n) => {
      if (n === 4) assert.ok(error instanceof QueueNotFoundError, `got ${error}`);
      else assert.deepEqual(value, { messageReceiptId: `r-${n}`, duplicate: false });
    });
    const later = await Promise.all(Array.from({ length: 5 }, (_, n) => enqueue(worker, 'f', { n: 100 + n }, 'q')));
    assert.deepEqual(later.map((r) => r.messageReceiptId), ['r-100', 'r-101', 'r-102', 'r-103', 'r-104']);
    assert.equal(counts.calls, 1, 'EnqueueBatch is not tried again');
    assert.equal(triggers.length, 15);
  } finally {
    counts.restore();
    await worker.shutdown();
    fake.crash();
  }
});

test('a_failed_batch_call_fails_each_of_its_items_with_that_error', { timeout: 20_000 }, async () => {
  let calls = 0;
  const fake = await new FakeEngine({
    EnqueueBatch: () => {
      calls += 1;
      return { code: grpc.status.UNAVAILABLE, details: 'UNAVAILABLE: store failed' };
    },
  }).start();
  const worker = registerWorker(fake.url, quiet);
  try {
    const outcomes = await settle(Array.from({ length: 50 }, (_, n) => enqueue(worker, 'f', { n }, 'q')));
    assert.ok(calls >= 1 && calls < 50, `${calls} calls`);
    for (const { error } of outcomes) {
      assert.ok(error instanceof UnavailableError, `got ${error}`);
      assert.equal(error.reason, 'UNAVAILABLE');
      assert.equal(error.message, 'UNAVAILABLE: store failed');
    }
    assert.equal(new Set(outcomes.map((o) => o.error)).size, 50, 'each item has its own error object');
  } finally {
    await worker.shutdown();
    fake.crash();
  }
});

test('batch_answers_are_matched_to_items_by_position', { timeout: 20_000 }, async () => {
  // The fake answers item i with receipt "r<n>" (n from its payload), or with a NOT_FOUND
  // status carrying an ErrorInfo when n is odd: every caller must get its own.
  const fake = await new FakeEngine({
    EnqueueBatch: (request) => ({
      results: request.items.map((item) => {
        const n = fromValueBytes(item.payload).n;
        return n % 2
          ? { error: { code: grpc.status.NOT_FOUND, message: `QUEUE_NOT_FOUND: item ${n}` } }
          : { receipt: { message_receipt_id: `r${n}` } };
      }),
    }),
  }).start();
  const worker = registerWorker(fake.url, quiet);
  try {
    const outcomes = await settle(Array.from({ length: 64 }, (_, n) => enqueue(worker, 'f', { n }, 'q')));
    outcomes.forEach(({ value, error }, n) => {
      if (n % 2) {
        assert.ok(error instanceof QueueNotFoundError, `item ${n}: got ${error}`);
        assert.equal(error.message, `QUEUE_NOT_FOUND: item ${n}`);
      } else {
        assert.deepEqual(value, { messageReceiptId: `r${n}`, duplicate: false });
      }
    });
  } finally {
    await worker.shutdown();
    fake.crash();
  }
});

test('an_enqueue_whose_deadline_passes_while_it_waits_for_a_slot_fails_unsent', { timeout: 20_000 }, async () => {
  // Both slots are held by calls the fake does not answer yet; a third enqueue with a short
  // deadline waits for a slot, and when one frees its deadline has passed: it fails with
  // DEADLINE_EXCEEDED and is never sent. (trigger() gives every enqueue 30 s, so the
  // batcher is driven directly here with shorter deadlines.)
  const held = [];
  const sent = [];
  const fake = await new FakeEngine({
    EnqueueBatch: (request) => {
      sent.push(request.items.map((item) => fromValueBytes(item.payload).n));
      const answer = deferred();
      held.push(answer);
      return answer.promise.then(() => ({ results: request.items.map((_, i) => ({ receipt: { message_receipt_id: `r${i}` } })) }));
    },
  }).start();
  const client = new grpc.Client(`127.0.0.1:${fake.port}`, grpc.credentials.createInsecure());
  const { EnqueueBatcher } = await import('../dist/batcher.js');
  const { toWireTrigger } = await import('../dist/trigger.js');
  const batcher = new EnqueueBatcher({
    client,
    isClosed: () => false,
    triggerEnqueue: () => Promise.reject(new Error('no fallback expected')),
  });
  const request = (n) => toWireTrigger({ function_id: 'f', payload: { n }, action: TriggerAction.Enqueue({ queue: 'q' }) });
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  try {
    const first = batcher.enqueue(request(1), 10_000);
    await turn();
    const second = batcher.enqueue(request(2), 10_000);
    await eventually(() => held.length === 2, { what: 'both slots to be taken' });
    const late = settle([batcher.enqueue(request(3), 100)]);
    await new Promise((resolve) => setTimeout(resolve, 250));
    held[0].resolve();
    const [{ error }] = await late;
    assert.ok(error instanceof SwitchyardTimeoutError, `got ${error}`);
    assert.equal(error.reason, 'DEADLINE_EXCEEDED');
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
    held[1].resolve();
    assert.deepEqual(await Promise.all([first, second]), [{ messageReceiptId: 'r0', duplicate: false }, { messageReceiptId: 'r0', duplicate: false }]);
    assert.deepEqual(sent, [[1], [2]], 'the expired enqueue was never sent');

    // A batch call's deadline is the earliest of its items': both fail with it.
    const started = Date.now();
    const [short, long] = await settle([batcher.enqueue(request(4), 200), batcher.enqueue(request(5), 10_000)]);
    assert.ok(Date.now() - started < 5_000, `the call outlived its earliest deadline (${Date.now() - started} ms)`);
    for (const { error: e } of [short, long]) assert.ok(e instanceof SwitchyardTimeoutError && e.code === grpc.status.DEADLINE_EXCEEDED, `got ${e}`);
    assert.deepEqual(sent.at(-1), [4, 5]);
  } finally {
    for (const answer of held) answer.resolve();
    client.close();
    fake.crash();
  }
});

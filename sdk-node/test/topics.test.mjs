// Enqueue options and topics (issue 17) against the real engine: delayed jobs, idempotency
// keys, publish fan-out, and the errors of each. One engine and worker per test.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { InvalidArgumentError, registerWorker, TopicNotFoundError, TriggerAction } from '../dist/index.js';
import { DEFAULT_CONFIG, startEngine } from './helpers/engine.mjs';
import { eventually } from './helpers/wait.mjs';

const TOPIC = 'orders.placed';
const BILLING = 'billing::charge';
const EMAILS = 'emails::receipt';
const CONFIG = `${DEFAULT_CONFIG}  q: {dedup_window_ms: 300000, max_retries: 0}
topic_configs:
  ${TOPIC}:
    subscribers: [${BILLING}, ${EMAILS}]
    max_retries: 0
`;

/** Runs `body(sy)` with a worker on a fresh engine; both are stopped afterwards. */
async function withEngine(body) {
  const engine = await startEngine({ config: CONFIG });
  const sy = registerWorker(engine.url, { handleSignals: false });
  try {
    await sy.ready(10_000);
    await body(sy);
  } finally {
    await sy.shutdown();
    await engine.stop();
  }
}

const stats = async (sy, queue) => (await sy.listQueues()).find((q) => q.name === queue).stats;
const enqueue = (sy, payload, options = {}) =>
  sy.trigger({ function_id: 'jobs::run', payload, action: TriggerAction.Enqueue({ queue: 'q', ...options }) });

/** Registers `functionId` (failing when `fail`); returns the [start, payload, ctx] of each invocation. */
async function recording(sy, functionId, fail = false) {
  const seen = [];
  sy.registerFunction(functionId, (payload, ctx) => {
    seen.push([performance.now(), payload, ctx]);
    if (fail) throw new Error('subscriber down');
    return true;
  });
  await sy.ready(10_000);
  return seen;
}

test('a_delayed_job_is_delayed_then_runs_no_earlier_than_its_delay', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    const seen = await recording(sy, 'jobs::run');
    const sent = performance.now();
    const later = await enqueue(sy, { n: 1 }, { delayMs: 500 });
    const at = await enqueue(sy, { n: 2 }, { notBefore: new Date(Date.now() + 500) });
    const now = await stats(sy, 'q');
    assert.deepEqual([now.delayed, now.ready], [2, 0]);
    await eventually(async () => (await stats(sy, 'q')).completed === 2, { what: 'both delayed jobs to complete' });
    for (const receipt of [later, at]) {
      const [start] = seen.find(([, , ctx]) => ctx.messageReceiptId === receipt.messageReceiptId);
      assert.ok(start - sent >= 500 - 1, `a delayed job started ${start - sent} ms after its enqueue`);
    }
  }));

test('not_before_in_the_past_runs_now_and_delay_with_not_before_conflicts', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    await recording(sy, 'jobs::run');
    await enqueue(sy, { n: 1 }, { notBefore: new Date(Date.now() - 3_600_000) });
    await enqueue(sy, { n: 2 }, { delayMs: 0 });
    await eventually(async () => (await stats(sy, 'q')).completed === 2, { what: 'both jobs to complete' });
    await assert.rejects(enqueue(sy, {}, { delayMs: 10, notBefore: new Date() }), (error) =>
      error instanceof InvalidArgumentError && error.reason === 'CONFLICTING_DELAY' && error.message.startsWith('CONFLICTING_DELAY: '));
    assert.equal((await stats(sy, 'q')).enqueued, 2);
  }));

test('an_idempotency_key_duplicate_returns_the_first_receipt', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    const first = await enqueue(sy, { n: 1 }, { idempotencyKey: 'order-1' });
    const again = await enqueue(sy, { n: 2 }, { idempotencyKey: 'order-1' });
    const other = await sy.enqueue('q', 'jobs::run', { n: 3 }, { idempotencyKey: 'order-2' });
    assert.equal(first.duplicate, false);
    assert.deepEqual(again, { messageReceiptId: first.messageReceiptId, duplicate: true });
    assert.equal(other.duplicate, false);
    assert.notEqual(other.messageReceiptId, first.messageReceiptId);
    const seen = await recording(sy, 'jobs::run');
    await eventually(async () => (await stats(sy, 'q')).completed === 2, { what: 'the two distinct jobs to complete' });
    assert.deepEqual(seen.map(([, p]) => p.n).sort(), [1, 3], "the duplicate's payload never runs");
    assert.equal((await enqueue(sy, { n: 4 }, { idempotencyKey: 'order-1' })).duplicate, true, 'the key outlives its job');

    // Concurrent enqueues with one key share a batch and still make one job.
    const burst = await Promise.all(Array.from({ length: 8 }, (_, n) => enqueue(sy, { n }, { idempotencyKey: 'burst' })));
    assert.equal(new Set(burst.map((r) => r.messageReceiptId)).size, 1);
    assert.equal(burst.filter((r) => !r.duplicate).length, 1);

    await enqueue(sy, {}, { idempotencyKey: 'é'.repeat(128) }); // 256 bytes: accepted
    await assert.rejects(enqueue(sy, {}, { idempotencyKey: 'k'.repeat(257) }), (error) =>
      error instanceof InvalidArgumentError && error.reason === 'INVALID_IDEMPOTENCY_KEY');
    assert.equal((await stats(sy, 'q')).enqueued, 4);
  }));

test('publish_fans_out_one_job_per_subscriber_with_its_topic', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    const billing = await recording(sy, BILLING);
    const emails = await recording(sy, EMAILS);
    const published = await sy.publish(TOPIC, { orderId: 'o1' });
    assert.deepEqual(
      published.receipts.map((r) => [r.functionId, r.queue, r.duplicate]),
      [[BILLING, `${TOPIC}/${BILLING}`, false], [EMAILS, `${TOPIC}/${EMAILS}`, false]],
    );
    await eventually(() => billing.length === 1 && emails.length === 1, { what: 'one job per subscriber' });
    [billing, emails].forEach((seen, i) => {
      const [, payload, ctx] = seen[0];
      assert.deepEqual(payload, { orderId: 'o1' });
      assert.deepEqual([ctx.topic, ctx.queue, ctx.messageReceiptId], [TOPIC, published.receipts[i].queue, published.receipts[i].messageReceiptId]);
    });
    const queues = new Map((await sy.listQueues()).map((q) => [q.name, q]));
    assert.equal(queues.get(`${TOPIC}/${BILLING}`).config.topic, TOPIC);
    assert.equal(queues.get('q').config.topic, undefined);
    assert.equal(queues.get('q').config.dedupWindowMs, 300_000);

    const keyed = await sy.publish(TOPIC, { orderId: 'o2' }, { idempotencyKey: 'o2', delayMs: 60_000 });
    const again = await sy.publish(TOPIC, { orderId: 'o2' }, { idempotencyKey: 'o2' });
    assert.deepEqual(again.receipts, keyed.receipts.map((r) => ({ ...r, duplicate: true })));
    assert.equal((await stats(sy, `${TOPIC}/${BILLING}`)).delayed, 1);
  }));

test('publish_to_an_unknown_topic_is_topic_not_found', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    await assert.rejects(sy.publish('orders.lost', {}), (error) =>
      error instanceof TopicNotFoundError && error.reason === 'TOPIC_NOT_FOUND' && error.message.includes('orders.lost'));
  }));

test('a_failing_subscriber_dead_letters_alone', { timeout: 60_000 }, () =>
  withEngine(async (sy) => {
    await recording(sy, BILLING, true);
    const emails = await recording(sy, EMAILS);
    const published = await sy.publish(TOPIC, { orderId: 'o3' });
    const billingQueue = `${TOPIC}/${BILLING}`;
    await eventually(async () => (await sy.listDeadLetters(billingQueue)).entries.length === 1, { what: "billing's dead letter" });
    await eventually(async () => (await stats(sy, `${TOPIC}/${EMAILS}`)).completed === 1, { what: 'emails to complete' });
    const [dead] = (await sy.listDeadLetters(billingQueue)).entries;
    assert.equal(dead.messageReceiptId, published.receipts[0].messageReceiptId);
    assert.equal(dead.functionId, BILLING);
    assert.equal((await sy.listDeadLetters(`${TOPIC}/${EMAILS}`)).entries.length, 0);
    assert.equal(emails.length, 1);
  }));

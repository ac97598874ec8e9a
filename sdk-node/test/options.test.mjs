// Enqueue options and publish without an engine: what the SDK refuses itself, what it
// puts on the wire (Trigger and EnqueueBatch items), and how it reads the answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, TopicNotFoundError, TriggerAction, createTestContext } from '../dist/index.js';
import { fromServiceError } from '../dist/errors.js';
import { encodeEnqueueItem } from '../dist/proto.js';
import { fromWirePublish, fromWireTrigger, toWirePublish, toWireTrigger } from '../dist/trigger.js';
import { fromWireQueues } from '../dist/queues.js';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : PROTO_DIR + target);
root.loadSync('switchyard/v1/engine.proto', { keepCase: true }).resolveAll();
const EnqueueItem = root.lookupType('switchyard.v1.EnqueueItem');

test('enqueue_options_go_on_the_trigger_and_the_batch_item', () => {
  const notBefore = new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678));
  const action = TriggerAction.Enqueue({ queue: 'q', notBefore, idempotencyKey: 'ord_1' });
  const wire = toWireTrigger({ function_id: 'f', payload: {}, action });
  assert.deepEqual(wire.enqueue, { queue: 'q', not_before: { seconds: String(notBefore.getTime() / 1000 - 0.678), nanos: 678_000_000 }, idempotency_key: 'ord_1' });
  const { queue, ...options } = wire.enqueue;
  const item = EnqueueItem.toObject(EnqueueItem.decode(encodeEnqueueItem({ function_id: 'f', payload: wire.payload, queue, ...options })), { longs: String });
  assert.equal(item.idempotency_key, 'ord_1');
  assert.equal(item.not_before.seconds, String(Math.floor(notBefore.getTime() / 1000)));
  assert.equal(item.not_before.nanos, 678_000_000);
  assert.equal(item.delay_ms, undefined);

  const zero = toWireTrigger({ function_id: 'f', action: TriggerAction.Enqueue({ queue: 'q', delayMs: 0 }) });
  const zeroItem = EnqueueItem.decode(encodeEnqueueItem({ function_id: 'f', payload: zero.payload, ...zero.enqueue }));
  assert.ok(Object.hasOwn(zeroItem, 'delay_ms') && String(zeroItem.delay_ms) === '0', 'delayMs 0 is sent (it is optional on the wire)');
  assert.deepEqual(toWireTrigger({ function_id: 'f', action: TriggerAction.Enqueue({ queue: 'q' }) }).enqueue, { queue: 'q' });
});

test('malformed_options_are_refused_before_any_call', () => {
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', delayMs: -1 }), /delayMs must be a non-negative integer/);
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', delayMs: 1.5 }), RangeError);
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', notBefore: new Date('nope') }), /notBefore must be a valid Date/);
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', notBefore: 1000 }), TypeError);
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', idempotencyKey: 7 }), /idempotencyKey must be a string/);
  assert.throws(() => TriggerAction.Enqueue({ queue: 'q', delay_ms: 5 }), /unknown enqueue options: delay_ms/);
  assert.throws(() => toWirePublish('', {}, {}), /publish needs a topic name/);
  assert.throws(() => toWirePublish('t', {}, { delayMs: -5 }), RangeError);
});

test('publish_request_and_answer', () => {
  const wire = toWirePublish('orders.placed', { id: 1 }, { delayMs: 250, idempotencyKey: 'k' });
  assert.equal(wire.function_id, '');
  assert.deepEqual(wire.publish, { topic: 'orders.placed', delay_ms: '250', idempotency_key: 'k' });
  const answer = fromWirePublish({
    outcome: 'published',
    published: {
      receipts: [
        { function_id: 'billing::charge', queue: 'orders.placed/billing::charge', message_receipt_id: 'a', duplicate: true },
        { function_id: 'emails::receipt', queue: 'orders.placed/emails::receipt', message_receipt_id: 'b' },
      ],
    },
  });
  assert.deepEqual(answer, {
    receipts: [
      { functionId: 'billing::charge', queue: 'orders.placed/billing::charge', messageReceiptId: 'a', duplicate: true },
      { functionId: 'emails::receipt', queue: 'orders.placed/emails::receipt', messageReceiptId: 'b', duplicate: false },
    ],
  });
  assert.deepEqual(fromWirePublish({ outcome: 'published', published: {} }), { receipts: [] });
  assert.throws(() => fromWirePublish({ outcome: 'receipt', receipt: {} }), /expecting published/);
  assert.deepEqual(fromWireTrigger(TriggerAction.Enqueue({ queue: 'q' }), { outcome: 'receipt', receipt: { message_receipt_id: 'm', duplicate: true } }), {
    messageReceiptId: 'm',
    duplicate: true,
  });
});

test('option_reasons_map_to_typed_errors_and_topic_shows_on_context_and_queue', () => {
  const topic = fromServiceError({ code: 5, details: "TOPIC_NOT_FOUND: topic 'x' is not defined", message: '', metadata: undefined });
  assert.ok(topic instanceof TopicNotFoundError && topic.reason === 'TOPIC_NOT_FOUND');
  for (const reason of ['CONFLICTING_DELAY', 'INVALID_IDEMPOTENCY_KEY']) {
    const error = fromServiceError({ code: 3, details: `${reason}: no`, message: '', metadata: undefined });
    assert.ok(error instanceof InvalidArgumentError && error.reason === reason, reason);
  }
  assert.equal(createTestContext({ topic: 'orders.placed' }).topic, 'orders.placed');
  assert.equal(createTestContext().topic, undefined);
  const [queue] = fromWireQueues({ queues: [{ name: 'orders.placed/billing::charge', config: { dedup_window_ms: '300000', topic: 'orders.placed' }, stats: {} }] });
  assert.equal(queue.config.dedupWindowMs, 300_000);
  assert.equal(queue.config.topic, 'orders.placed');
});

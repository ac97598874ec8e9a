// Payloads through a real engine arrive as a JSON encoder writes them: a "__proto__" key
// is data on every path (enqueue to handler, sync result, dead letter), strings are
// UTF-8 and nesting goes as deep as the engine allows. Public API only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerWorker, TriggerAction } from '../dist/index.js';
import { startEngine } from './helpers/engine.mjs';
import { Collector, eventually } from './helpers/wait.mjs';

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

const PROTO_JSON = '{"__proto__":{"role":"admin"},"a":2,"lines":[{"__proto__":1,"sku":"s"}]}';

/** `value` is what JSON.parse(PROTO_JSON) builds: same JSON text, own "__proto__" keys, plain prototypes. */
function assertProtoPayload(value, what) {
  assert.equal(JSON.stringify(value), PROTO_JSON, what);
  assert.equal(Object.getPrototypeOf(value), Object.prototype, `${what}: prototype`);
  assert.ok(Object.hasOwn(value, '__proto__') && Object.hasOwn(value.lines[0], '__proto__'), `${what}: own "__proto__" keys`);
  assert.equal(value.role, undefined, `${what}: "__proto__" is not the prototype`);
}

test('an_enqueued_proto_key_reaches_the_handler_intact', { timeout: 20_000 }, async () => {
  const seen = new Collector();
  sy.registerFunction('payloads::record', (payload) => {
    seen.push(payload);
  });
  await sy.trigger({ function_id: 'payloads::record', payload: JSON.parse(PROTO_JSON), action: TriggerAction.Enqueue({ queue: 'default' }) });
  const [payload] = await seen.waitFor(1, 10_000, 'the job');
  assertProtoPayload(payload, 'handler payload');
});

test('a_sync_result_with_a_proto_key_comes_back_intact', { timeout: 20_000 }, async () => {
  // The handler's payload is the test above's: here only the result carries the key.
  sy.registerFunction('payloads::answer', () => JSON.parse(PROTO_JSON));
  await sy.ready();
  assertProtoPayload(await sy.trigger({ function_id: 'payloads::answer', payload: {} }), 'sync result');
});

test('a_dead_letter_keeps_its_proto_key', { timeout: 20_000 }, async () => {
  sy.registerFunction('payloads::refuse', () => {
    throw new Error('always fails');
  });
  // `bulk` has max_retries 0: the first failure dead-letters the job.
  const { messageReceiptId } = await sy.trigger({
    function_id: 'payloads::refuse',
    payload: JSON.parse(PROTO_JSON),
    action: TriggerAction.Enqueue({ queue: 'bulk' }),
  });
  const entry = await eventually(
    async () => (await sy.listDeadLetters('bulk')).entries.find((e) => e.messageReceiptId === messageReceiptId),
    { what: 'the dead letter' },
  );
  assertProtoPayload(entry.payload, 'dead letter payload');
  assert.equal(await sy.discardDeadLetters('bulk', [messageReceiptId]), 1);
});

test('a_lone_surrogate_travels_as_a_replacement_character', { timeout: 20_000 }, async () => {
  sy.registerFunction('payloads::strings', (payload) => ({ got: payload }));
  await sy.ready();
  const long = 'x'.repeat(60);
  const result = await sy.trigger({ function_id: 'payloads::strings', payload: { short: 'a\ud800b', long: `${long}\udc00`, ['k\ud800']: 1 } });
  assert.deepEqual(result, { got: { short: 'a\ufffdb', long: `${long}\ufffd`, ['k\ufffd']: 1 } });
});

test('payloads_nest_as_deep_as_the_engine_allows', { timeout: 20_000 }, async () => {
  sy.registerFunction('payloads::nested', (payload) => payload);
  await sy.ready();
  /** `levels` arrays around null: levels + 1 Value levels. */
  const nest = (levels) => (levels === 0 ? null : [nest(levels - 1)]);
  // 100 Value levels: the engine's bound.
  assert.deepEqual(await sy.trigger({ function_id: 'payloads::nested', payload: nest(99) }), nest(99));
  await assert.rejects(sy.trigger({ function_id: 'payloads::nested', payload: nest(100) }), RangeError);
});

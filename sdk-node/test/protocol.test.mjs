// The worker side of Engine.Connect against a scripted fake engine: handshake, results,
// cancel, max_in_flight, reconnect and drain-on-shutdown — no real engine needed.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { registerWorker } from '../dist/index.js';
import { InvocationRunner } from '../dist/invocations.js';
import { Log } from '../dist/logger.js';
import { fromValueBytes } from '../dist/value.js';
import { allResults, FakeEngine, invoke, invokes, resultsOf } from './helpers/fake-engine.mjs';
import { deferred, eventually, within } from './helpers/wait.mjs';

const quiet = { maxReconnectDelayMs: 200 };
const workers = [];
const engines = [];
after(async () => {
  await Promise.all(workers.map((w) => w.shutdown()));
  for (const e of engines) e.crash();
});

async function setup(options = {}) {
  const engine = await new FakeEngine().start();
  engines.push(engine);
  const worker = registerWorker(engine.url, { ...quiet, ...options });
  workers.push(worker);
  return { engine, worker };
}

test('handshake_registers_every_function_then_says_hello', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup({ maxInFlight: 3, workerName: 'unit' });
  worker.registerFunction('a::one', () => 1);
  worker.registerFunction('a::two', () => 2, { description: 'second' });
  const stream = await engine.stream(0);
  const [one, two, hello] = await stream.messages.waitFor(3);
  assert.equal(one.register_function.function_id, 'a::one');
  assert.deepEqual({ ...two.register_function }, { function_id: 'a::two', description: 'second' });
  assert.equal(hello.hello.worker_name, 'unit');
  assert.equal(hello.hello.sdk_name, 'switchyard-node');
  assert.equal(hello.hello.max_in_flight, 3);
  assert.equal(hello.hello.batches, true);
  await worker.ready();
  assert.equal(worker.workerId, 'w1');
});

test('ready_waits_for_the_engine_to_acknowledge_later_registrations', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const first = worker.ready();
  const stream = await engine.stream(0);
  await first;
  // Hold back the acknowledgement: ready() must wait for it.
  const write = stream.call.write.bind(stream.call);
  let heldBack;
  stream.call.write = (message) => (message.registered ? (heldBack = message) : write(message));
  worker.registerFunction('a::three', () => 3);
  const later = await stream.messages.waitFor(2);
  assert.equal(later[1].register_function.function_id, 'a::three');
  let ready = false;
  const readyPromise = worker.ready().then(() => (ready = true));
  await eventually(() => heldBack, { what: 'the acknowledgement to be held back' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(ready, false);
  write(heldBack);
  await within(readyPromise, 5_000, 'ready() after the acknowledgement');
});

test('results_carry_the_value_or_the_error_with_its_stack', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const seen = [];
  worker.registerFunction('math::double', (payload, ctx) => {
    seen.push(ctx);
    return { doubled: payload.x * 2 };
  });
  worker.registerFunction('math::broken', () => {
    throw new TypeError('cannot add');
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('i1', 'math::double', { x: 21 }, {
    queue: 'default', message_receipt_id: 'm1', attempt: 2, max_attempts: 3, group: '',
    enqueued_at: { seconds: '1767225600', nanos: 0 },
  }));
  stream.call.write(invoke('i2', 'math::broken', {}));
  stream.call.write(invoke('i3', 'math::missing', {}));
  await eventually(() => resultsOf(stream.messages).size === 3, { what: 'three results' });
  const results = resultsOf(stream.messages);
  assert.deepEqual(fromValueBytes(results.get('i1').value), { doubled: 42 });
  assert.equal(results.get('i1').outcome, 'value');
  assert.equal(results.get('i2').error.code, 'TypeError');
  assert.equal(results.get('i2').error.message, 'cannot add');
  assert.match(results.get('i2').error.stack, /TypeError: cannot add\n\s+at .*protocol\.test\.mjs/);
  assert.equal(results.get('i3').error.code, 'FUNCTION_NOT_FOUND');
  const ctx = seen[0];
  assert.equal(ctx.invocationId, 'i1');
  assert.equal(ctx.functionId, 'math::double');
  assert.equal(ctx.attempt, 2);
  assert.equal(ctx.maxAttempts, 3);
  assert.equal(ctx.messageReceiptId, 'm1');
  assert.equal(ctx.queue, 'default');
  assert.equal(ctx.group, undefined);
  assert.equal(ctx.enqueuedAt.toISOString(), '2026-01-01T00:00:00.000Z');
  assert.equal(ctx.signal.aborted, false);
});

test('cancel_aborts_the_handler_signal_and_sends_no_result', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const aborted = deferred();
  worker.registerFunction('slow::wait', (_payload, ctx) => new Promise((_, reject) => {
    ctx.signal.addEventListener('abort', () => {
      aborted.resolve(ctx.signal.reason);
      reject(ctx.signal.reason);
    });
  }));
  worker.registerFunction('fast::echo', (payload) => payload);
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('slow-1', 'slow::wait', {}));
  stream.call.write({ cancel: { invocation_id: 'slow-1', reason: 'timeout' } });
  const reason = await within(aborted.promise, 5_000, 'the abort signal');
  assert.match(String(reason.message), /timeout/);
  stream.call.write(invoke('fast-1', 'fast::echo', 'after'));
  await eventually(() => resultsOf(stream.messages).has('fast-1'), { what: 'the echo result' });
  assert.equal(resultsOf(stream.messages).has('slow-1'), false);
});

test('every_invocation_of_an_invokes_batch_runs_with_its_own_context', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const seen = [];
  worker.registerFunction('math::double', (payload, ctx) => {
    seen.push(ctx);
    return payload.x * 2;
  });
  worker.registerFunction('math::broken', () => {
    throw new RangeError('broken');
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invokes([
    invoke('b1', 'math::double', { x: 1 }, { queue: 'default', message_receipt_id: 'm1', attempt: 1, max_attempts: 3 }),
    invoke('b2', 'math::broken', {}),
    invoke('b3', 'math::double', { x: 3 }, { queue: 'payment', message_receipt_id: 'm3', attempt: 2, max_attempts: 4, group: 'g' }),
    invoke('b4', 'math::double', { x: 4 }),
  ]));
  await eventually(() => resultsOf(stream.messages).size === 4, { what: 'four results' });
  const results = resultsOf(stream.messages);
  assert.equal(allResults(stream.messages).length, 4, 'exactly one result per invocation');
  assert.equal(fromValueBytes(results.get('b1').value), 2);
  assert.equal(results.get('b2').error.code, 'RangeError');
  assert.equal(fromValueBytes(results.get('b3').value), 6);
  assert.equal(fromValueBytes(results.get('b4').value), 8);
  assert.deepEqual(
    seen.map((c) => [c.invocationId, c.queue, c.messageReceiptId, c.attempt, c.maxAttempts, c.group]),
    [
      ['b1', 'default', 'm1', 1, 3, undefined],
      ['b3', 'payment', 'm3', 2, 4, 'g'],
      ['b4', undefined, undefined, 1, 1, undefined],
    ],
  );
});

test('results_that_complete_in_one_turn_go_out_as_one_results_message', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const release = deferred();
  worker.registerFunction('fast::echo', (payload) => payload);
  worker.registerFunction('slow::gate', async () => {
    await release.promise;
    return 'late';
  });
  const stream = await engine.stream(0);
  await worker.ready();
  const before = stream.messages.items.length;
  const sent = () => stream.messages.items.slice(before).filter((m) => m.result || m.results);
  // Five fast ones finish in the same turn while the slow one still runs: one message.
  stream.call.write(invokes([
    invoke('s1', 'slow::gate', null),
    ...[1, 2, 3, 4, 5].map((n) => invoke(`f${n}`, 'fast::echo', n)),
  ]));
  await eventually(() => sent().length === 1, { what: 'the batched results' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(sent().length, 1);
  const [batch] = sent();
  assert.deepEqual(batch.results.results.map((r) => [r.invocation_id, fromValueBytes(r.value)]), [
    ['f1', 1], ['f2', 2], ['f3', 3], ['f4', 4], ['f5', 5],
  ]);
  // The slow one finishes alone: a lone `result`.
  release.resolve();
  await eventually(() => sent().length === 2, { what: 'the slow result' });
  assert.equal(sent()[1].result.invocation_id, 's1');
  assert.equal(fromValueBytes(sent()[1].result.value), 'late');
  // Lone invokes still get exactly one result each, however they are grouped.
  for (let n = 6; n <= 9; n++) stream.call.write(invoke(`f${n}`, 'fast::echo', n));
  await eventually(() => resultsOf(stream.messages).size === 10, { what: 'every result' });
  assert.equal(allResults(stream.messages).length, 10, 'exactly one result per invocation');
});

test('results_go_out_one_per_message_until_the_engine_has_sent_a_batch', { timeout: 10_000 }, async () => {
  // An engine that predates batches never sends `invokes`, and would drop a `results`.
  const { engine, worker } = await setup();
  const release = deferred();
  let started = 0;
  worker.registerFunction('gate::hold', async (payload) => {
    started += 1;
    await release.promise;
    return payload;
  });
  const stream = await engine.stream(0);
  await worker.ready();
  const sent = () => stream.messages.items.filter((m) => m.result || m.results);
  for (const n of [1, 2, 3]) stream.call.write(invoke(`l${n}`, 'gate::hold', n));
  await eventually(() => started === 3, { what: 'three running handlers' });
  release.resolve(); // all three finish in one turn
  await eventually(() => resultsOf(stream.messages).size === 3, { what: 'three results' });
  assert.deepEqual(sent().map((m) => m.result?.invocation_id), ['l1', 'l2', 'l3']);
  // Once an `invokes` arrived, results of one turn share a message.
  const again = deferred();
  worker.registerFunction('gate::again', async (payload) => {
    await again.promise;
    return payload;
  });
  stream.call.write(invokes([invoke('b1', 'gate::again', 1), invoke('b2', 'gate::again', 2)]));
  await new Promise((resolve) => setTimeout(resolve, 50));
  again.resolve();
  await eventually(() => resultsOf(stream.messages).size === 5, { what: 'five results' });
  assert.deepEqual(sent()[3].results.results.map((r) => r.invocation_id), ['b1', 'b2']);
});

test('a_result_cancelled_before_it_is_written_is_never_sent', { timeout: 10_000 }, async () => {
  // The runner alone, with a recording sink: the cancel lands after the handler finished
  // but before the turn ended and the collected results were written.
  const release = deferred();
  const handlers = new Map([
    ['slow::gate', async () => { await release.promise; return 'late'; }],
    ['fast::echo', (payload) => payload],
  ]);
  const written = [];
  const runner = new InvocationRunner(handlers, (results, generation) => written.push({ results, generation }), 64, new Log(undefined));
  runner.accept(invoke('hold', 'slow::gate', null).invoke, 1);
  runner.accept(invoke('c1', 'fast::echo', 1).invoke, 1);
  runner.accept(invoke('c2', 'fast::echo', 2).invoke, 1);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(written.length, 0, 'held until the turn ends');
  runner.cancel('c1', 'timeout');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(written.map((w) => [w.generation, w.results.map((r) => r.invocation_id)]), [[1, ['c2']]]);
  release.resolve();
  await runner.idle();
  assert.deepEqual(written.map((w) => w.results.map((r) => r.invocation_id)), [['c2'], ['hold']]);
});

test('never_runs_more_handlers_than_max_in_flight', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup({ maxInFlight: 2 });
  let running = 0;
  let peak = 0;
  const gates = [];
  worker.registerFunction('gate::hold', async () => {
    running += 1;
    peak = Math.max(peak, running);
    const gate = deferred();
    gates.push(gate);
    await gate.promise;
    running -= 1;
    return null;
  });
  const stream = await engine.stream(0);
  await worker.ready();
  for (let i = 0; i < 5; i++) stream.call.write(invoke(`g${i}`, 'gate::hold', i));
  await eventually(() => gates.length === 2, { what: 'two running handlers' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(gates.length, 2);
  for (let released = 0; released < 5; released++) {
    await eventually(() => gates.length > released, { what: `handler #${released}` });
    gates[released].resolve();
  }
  await eventually(() => resultsOf(stream.messages).size === 5, { what: 'five results' });
  assert.equal(peak, 2);
});

test('reconnects_and_registers_again_after_the_engine_restarts', { timeout: 15_000 }, async () => {
  const { engine, worker } = await setup();
  worker.registerFunction('a::one', () => 1);
  await engine.stream(0);
  await worker.ready();
  const disconnected = deferred();
  worker.once('disconnected', disconnected.resolve);
  engine.crash();
  await within(disconnected.promise, 5_000, 'the disconnect');
  const restarted = await new FakeEngine().start(engine.port);
  engines.push(restarted);
  const stream = await restarted.stream(0);
  const [register, hello] = await stream.messages.waitFor(2);
  assert.equal(register.register_function.function_id, 'a::one');
  assert.ok(hello.hello);
  await worker.ready();
  stream.call.write(invoke('r1', 'a::one', null));
  await eventually(() => resultsOf(stream.messages).has('r1'), { what: 'a result after the restart' });
});

test('shutdown_unregisters_then_drains_running_handlers', { timeout: 10_000 }, async () => {
  const { engine, worker } = await setup();
  const started = deferred();
  const release = deferred();
  worker.registerFunction('drain::job', async () => {
    started.resolve();
    await release.promise;
    return 'done';
  });
  const stream = await engine.stream(0);
  await worker.ready();
  stream.call.write(invoke('d1', 'drain::job', null));
  await within(started.promise, 5_000, 'the handler to start');
  let finished = false;
  const shutdown = worker.shutdown().then(() => (finished = true));
  await eventually(() => stream.messages.items.some((m) => m.unregister_function?.function_id === 'drain::job'), {
    what: 'unregister_function',
  });
  assert.equal(finished, false);
  release.resolve();
  await within(shutdown, 5_000, 'shutdown');
  assert.equal(fromValueBytes(resultsOf(stream.messages).get('d1').value), 'done');
  await within(stream.ended, 5_000, 'the stream to be half-closed');
});

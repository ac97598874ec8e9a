// TLS, mTLS and tokens against the real engine, with certificates from `switchyard
// dev-certs` (run twice: the second CA is one the engine does not use). Each test starts
// its own engine: TLS (optionally mTLS) and three tokens — a producer limited to `orders*`
// queues, a worker limited to `orders::*` functions, an admin.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  FunctionNotFoundError,
  PermissionDeniedError,
  registerWorker,
  TriggerAction,
  UnauthenticatedError,
  UnavailableError,
} from '../dist/index.js';
import { engineBinary, startEngine } from './helpers/engine.mjs';
import { Collector } from './helpers/wait.mjs';

const TOKENS = {
  producer: { roles: ['producer'], queues: ['orders*'] },
  worker: { roles: ['worker'], functions: ['orders::*'] },
  admin: { roles: ['admin'] },
};

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const dir = mkdtempSync(join(tmpdir(), 'switchyard-node-tls-'));
const certs = { engine: join(dir, 'engine'), other: join(dir, 'other') };
before(() => {
  for (const out of Object.values(certs)) execFileSync(engineBinary, ['dev-certs', '--out', out], { stdio: 'ignore', timeout: 60_000 });
});

const ca = (which = 'engine') => ({ caFile: join(certs[which], 'ca.pem') });
const identity = (which = 'engine') => ({ certFile: join(certs[which], 'client.pem'), keyFile: join(certs[which], 'client-key.pem') });

async function secureEngine({ mtls = false } = {}) {
  const secrets = {};
  const tokens = Object.entries(TOKENS).map(([name, spec]) => {
    secrets[name] = randomBytes(18).toString('base64url');
    const secretFile = join(mkdtempSync(join(dir, 'secret-')), `${name}.secret`);
    writeFileSync(secretFile, secrets[name]);
    return { name, secret_file: secretFile, ...spec };
  });
  const tls = { cert_file: join(certs.engine, 'server.pem'), key_file: join(certs.engine, 'server-key.pem') };
  if (mtls) tls.client_ca_file = join(certs.engine, 'ca.pem');
  const config = JSON.stringify({ shutdown_grace_ms: 1000, tls, auth: { tokens }, queue_configs: { orders: { max_retries: 0 }, billing: {} } });
  const engine = await startEngine({ config });
  cleanups.push(() => engine.stop());
  return { engine, url: `https://127.0.0.1:${engine.port}`, secrets };
}

function worker(url, options) {
  const sy = registerWorker(url, { handleSignals: false, shutdownGraceMs: 1000, ...options });
  cleanups.push(() => sy.shutdown());
  return sy;
}

test('tls_worker_and_caller_that_trust_the_engines_ca_work_end_to_end', async () => {
  const { url, secrets } = await secureEngine();
  const served = worker(url, { token: secrets.worker, tls: ca() });
  served.registerFunction('orders::echo', (payload) => payload);
  await served.ready(10_000);
  const producer = worker(url, { token: secrets.producer, tls: ca() });
  assert.deepEqual(await producer.call('orders::echo', { n: 1 }), { n: 1 });
  assert.ok((await producer.enqueue('orders', 'orders::echo', { n: 2 })).messageReceiptId);
  const admin = worker(url, { token: secrets.admin, tls: ca() });
  const names = (await admin.listQueues()).map((q) => q.name);
  assert.ok(names.includes('orders') && names.includes('billing'), names.join(','));
});

test('a_caller_that_trusts_another_ca_or_only_the_default_roots_is_refused', async () => {
  const { url, secrets } = await secureEngine();
  for (const tls of [ca('other'), undefined]) {
    await assert.rejects(worker(url, { token: secrets.admin, tls }).listQueues(),
      (error) => error instanceof UnavailableError && error.message.includes('TLS handshake failed'), String(tls?.caFile));
  }
  const refused = worker(url, { token: secrets.worker, tls: ca('other'), failFast: true });
  await assert.rejects(refused.ready(10_000), (error) => error instanceof UnavailableError && error.details.cause === 'tls_failure');
});

test('mtls_needs_a_client_certificate_signed_by_the_engines_client_ca', async () => {
  const { url, secrets } = await secureEngine({ mtls: true });
  const admin = worker(url, { token: secrets.admin, tls: { ...ca(), ...identity() } });
  assert.ok((await admin.listQueues()).length >= 2);
  const served = worker(url, { token: secrets.worker, tls: { ...ca(), ...identity() } });
  served.registerFunction('orders::x', () => true);
  await served.ready(10_000);
  for (const tls of [ca(), { ...ca(), ...identity('other') }]) {
    await assert.rejects(worker(url, { token: secrets.admin, tls }).listQueues(), UnavailableError);
  }
});

test('a_missing_or_unknown_token_is_unauthenticated_for_calls_and_workers', async () => {
  const { url, engine, secrets } = await secureEngine();
  const saved = process.env.SWITCHYARD_TOKEN;
  cleanups.push(() => (saved === undefined ? delete process.env.SWITCHYARD_TOKEN : (process.env.SWITCHYARD_TOKEN = saved)));
  delete process.env.SWITCHYARD_TOKEN;
  await assert.rejects(worker(url, { tls: ca() }).enqueue('orders', 'orders::x', {}),
    (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_MISSING');
  await assert.rejects(worker(url, { token: 'not-a-known-secret', tls: ca() }).listQueues(),
    (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_INVALID' && !error.message.includes('not-a-known-secret'));
  assert.ok(!engine.logs().includes('not-a-known-secret'), 'the engine logged a secret');
  const refused = worker(url, { tls: ca(), failFast: true });
  await assert.rejects(refused.ready(10_000), (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_MISSING');
  process.env.SWITCHYARD_TOKEN = secrets.admin; // the environment's token is the default
  assert.ok((await worker(url, { tls: ca() }).listQueues()).length >= 2);
});

test('a_producer_outside_its_queues_or_roles_is_permission_denied', async () => {
  const { url, secrets } = await secureEngine();
  const producer = worker(url, { token: secrets.producer, tls: ca() });
  await producer.enqueue('orders', 'orders::x', {});
  await assert.rejects(producer.enqueue('billing', 'orders::x', {}),
    (error) => error instanceof PermissionDeniedError && error.reason === 'PERMISSION_DENIED' && error.details.token === 'producer');
  await assert.rejects(producer.listQueues(), PermissionDeniedError); // the Queues service is the admin's
  const admin = worker(url, { token: secrets.admin, tls: ca() });
  await assert.rejects(admin.enqueue('orders', 'orders::x', {}), PermissionDeniedError);
});

test('a_worker_registering_outside_its_functions_is_refused_for_that_function_alone', async () => {
  const { url, secrets } = await secureEngine();
  const seen = [];
  const registered = new Collector();
  const refused = new Collector();
  const errors = [];
  const logger = { error: (message, fields) => errors.push({ message, fields }) };
  const served = worker(url, { token: secrets.worker, tls: ca(), logger });
  served.on('registered', (fn) => registered.push(fn));
  served.on('refused', (fn, error) => refused.push([fn, error]));
  served.registerFunction('orders::charge', () => 'charged');
  served.registerFunction('emails::send', (payload) => seen.push(payload));
  served.registerFunction('orders::last', () => null);
  // ready() rejects with the engine's typed refusal, naming the function
  await assert.rejects(
    served.ready(10_000),
    (error) =>
      error instanceof PermissionDeniedError &&
      error.reason === 'PERMISSION_DENIED' &&
      error.details.function === 'emails::send' &&
      /may not register function 'emails::send'/.test(error.message),
  );
  await refused.waitFor(1, 10_000, 'the refusal of emails::send');
  assert.equal(refused.items[0][0], 'emails::send');
  // the other registrations go on
  await registered.waitFor(2, 10_000, 'the registrations of orders::charge and orders::last');
  assert.deepEqual(registered.items, ['orders::charge', 'orders::last']);
  assert.deepEqual(
    errors.map((e) => [e.fields.function_id, e.fields.reason]),
    [['emails::send', 'PERMISSION_DENIED']],
  );
  const producer = worker(url, { token: secrets.producer, tls: ca() });
  assert.equal(await producer.call('orders::charge', {}), 'charged');
  // nobody serves emails::send: the registration was refused
  await assert.rejects(producer.trigger({ function_id: 'emails::send', payload: {}, action: TriggerAction.Void() }), FunctionNotFoundError);
  assert.deepEqual(seen, []);
});

test('with_failfast_a_refused_registration_rejects_ready_and_stops_the_worker', async () => {
  const { url, secrets } = await secureEngine();
  const served = worker(url, { token: secrets.worker, tls: ca(), failFast: true });
  served.registerFunction('orders::charge', () => 'charged');
  served.registerFunction('emails::send', () => null);
  const isRefusal = (error) => error instanceof PermissionDeniedError && /'emails::send'/.test(error.message);
  await assert.rejects(served.ready(10_000), isRefusal);
  // the worker gave up: later calls reject with the same refusal
  await assert.rejects(served.ready(10_000), isRefusal);
  await assert.rejects(served.call('orders::charge', {}), isRefusal);
});

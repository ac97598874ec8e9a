// Token and TLS options without an engine: checked at construction, the bearer header on
// every kind of call (against an in-process server that records the metadata and refuses
// the way the engine does), and the typed errors of the engine's refusals.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, PermissionDeniedError, registerWorker, TriggerAction, UnauthenticatedError } from '../dist/index.js';
import { fromServiceError } from '../dist/errors.js';
import { encodeStatusWithErrorInfo, methods } from '../dist/proto.js';
import { resolveToken } from '../dist/security.js';

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function worker(url, options) {
  const sy = registerWorker(url, { handleSignals: false, shutdownGraceMs: 500, ...options });
  cleanups.push(() => sy.shutdown());
  return sy;
}

function refusal(reason) {
  const metadata = new grpc.Metadata();
  const code = reason === 'PERMISSION_DENIED' ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED;
  metadata.set('grpc-status-details-bin', Buffer.from(encodeStatusWithErrorInfo(code, `${reason}: refused`, { reason, domain: 'switchyard', metadata: { token: 't' } })));
  return { code, details: `${reason}: refused`, metadata };
}

/** Records the authorization header of every call; refuses calls without `Bearer good-token`. */
async function recordingEngine() {
  const headers = [];
  const check = (method, metadata) => {
    const header = metadata.get('authorization')[0];
    headers.push([method, header]);
    if (header === 'Bearer good-token') return undefined;
    return refusal(header === undefined ? 'TOKEN_MISSING' : 'TOKEN_INVALID');
  };
  const server = new grpc.Server();
  server.addService(
    { Trigger: methods.trigger, EnqueueBatch: methods.enqueueBatch, Connect: methods.connect },
    {
      Trigger: (call, callback) => {
        const refused = check('Trigger', call.metadata);
        refused ? callback(refused) : callback(null, { accepted: {} });
      },
      EnqueueBatch: (call, callback) => {
        const refused = check('EnqueueBatch', call.metadata);
        const results = (call.request.items ?? []).map(() => ({ receipt: { message_receipt_id: 'r1' } }));
        refused ? callback(refused) : callback(null, { results });
      },
      Connect: (call) => {
        const refused = check('Connect', call.metadata);
        if (refused) {
          call.emit('error', refused);
          return;
        }
        call.on('data', (message) => {
          if (message.hello) call.write({ welcome: { worker_id: 'w1', max_in_flight: 64 } });
        });
        call.on('end', () => call.end());
        call.on('error', () => {});
      },
    },
  );
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  cleanups.push(() => server.forceShutdown());
  return { url: `http://127.0.0.1:${port}`, headers };
}

test('the_token_is_the_option_else_switchyard_token_and_an_empty_one_sends_none', () => {
  assert.equal(resolveToken(undefined, {}), undefined);
  assert.equal(resolveToken(undefined, { SWITCHYARD_TOKEN: '' }), undefined);
  assert.equal(resolveToken(undefined, { SWITCHYARD_TOKEN: 'from-env' }), 'from-env');
  assert.equal(resolveToken('given', { SWITCHYARD_TOKEN: 'from-env' }), 'given');
  assert.equal(resolveToken('', { SWITCHYARD_TOKEN: 'from-env' }), undefined);
  for (const bad of ['has space', 'line\nbreak', 'é']) {
    assert.throws(() => registerWorker('127.0.0.1:1', { token: bad, handleSignals: false }),
      (error) => error instanceof InvalidArgumentError && /token must be printable ASCII/.test(error.message));
  }
});

test('https_turns_tls_on_and_tls_options_with_a_plaintext_url_are_refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-node-tls-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  assert.equal(worker('https://127.0.0.1:1').url, 'https://127.0.0.1:1');
  assert.equal(worker('https://127.0.0.1:1', { tls: { caFile: ca } }).url, 'https://127.0.0.1:1');
  for (const url of ['http://127.0.0.1:1', '127.0.0.1:1']) {
    assert.throws(() => registerWorker(url, { tls: { caFile: ca }, handleSignals: false }),
      (error) => error instanceof InvalidArgumentError &&
        error.message === "INVALID_ARGUMENT: tls options are set but 'http://127.0.0.1:1' is plaintext: use https://HOST:PORT");
  }
  const missing = join(dir, 'nope.pem');
  assert.throws(() => registerWorker('https://127.0.0.1:1', { tls: { caFile: missing }, handleSignals: false }), new RegExp(`tls.caFile: cannot read '${missing}'`));
  const notPem = join(dir, 'x.pem');
  writeFileSync(notPem, 'hello');
  assert.throws(() => registerWorker('https://127.0.0.1:1', { tls: { caFile: notPem }, handleSignals: false }), /tls.caFile: '.*x.pem' is not a PEM file/);
  assert.throws(() => registerWorker('https://127.0.0.1:1', { tls: { certFile: ca }, handleSignals: false }), /certFile and tls.keyFile go together/);
  assert.throws(() => registerWorker('https://127.0.0.1:1', { tls: { ca: ca }, handleSignals: false }), /unknown tls options: ca/);
});

test('auth_reasons_map_to_typed_errors', () => {
  for (const [reason, Class] of [['TOKEN_MISSING', UnauthenticatedError], ['TOKEN_INVALID', UnauthenticatedError], ['PERMISSION_DENIED', PermissionDeniedError]]) {
    const status = refusal(reason);
    const error = fromServiceError(Object.assign(new Error(status.details), status));
    assert.ok(error instanceof Class, reason);
    assert.equal(error.reason, reason);
    assert.deepEqual(error.details, { token: 't' });
  }
  const bare = fromServiceError(Object.assign(new Error('no'), { code: grpc.status.UNAUTHENTICATED, details: 'no', metadata: new grpc.Metadata() }));
  assert.ok(bare instanceof UnauthenticatedError);
});

test('every_call_and_the_worker_stream_carry_the_bearer_token', async () => {
  const engine = await recordingEngine();
  const sy = worker(engine.url, { token: 'good-token' });
  await sy.trigger({ function_id: 'f', action: TriggerAction.Void() });
  await sy.enqueue('q', 'f', {});
  await sy.ready(10_000);
  const methodsSeen = new Set(engine.headers.map(([method]) => method));
  assert.deepEqual([...methodsSeen].sort(), ['Connect', 'EnqueueBatch', 'Trigger']);
  assert.ok(engine.headers.every(([, header]) => header === 'Bearer good-token'), JSON.stringify(engine.headers));
});

test('switchyard_token_is_sent_and_a_missing_or_wrong_token_is_unauthenticated', async () => {
  const engine = await recordingEngine();
  const saved = process.env.SWITCHYARD_TOKEN;
  try {
    process.env.SWITCHYARD_TOKEN = 'good-token';
    assert.equal(await worker(engine.url).trigger({ function_id: 'f', action: TriggerAction.Void() }), undefined);
    delete process.env.SWITCHYARD_TOKEN;
    await assert.rejects(worker(engine.url).trigger({ function_id: 'f', action: TriggerAction.Void() }),
      (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_MISSING' && error.message === 'TOKEN_MISSING: refused');
    await assert.rejects(worker(engine.url, { token: 'bad-token' }).enqueue('q', 'f', {}),
      (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_INVALID');
  } finally {
    if (saved === undefined) delete process.env.SWITCHYARD_TOKEN;
    else process.env.SWITCHYARD_TOKEN = saved;
  }
});

test('a_fail_fast_worker_with_a_wrong_token_rejects_ready_with_the_engines_refusal', async () => {
  const engine = await recordingEngine();
  const sy = worker(engine.url, { token: 'bad-token', failFast: true });
  await assert.rejects(sy.ready(10_000), (error) => error instanceof UnauthenticatedError && error.reason === 'TOKEN_INVALID');
});

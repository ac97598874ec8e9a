// Connecting: the shared URL grammar, the reconnect delays (full jitter), how a failure to
// reach the engine is classified and logged, failFast, and the error text rule.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InvalidUrlError, registerWorker, SwitchyardError, TriggerAction, UnavailableError } from '../dist/index.js';
import { backoffCeilingMs, reconnectDelayMs } from '../dist/backoff.js';
import { fromServiceError } from '../dist/errors.js';
import { classify } from '../dist/reachability.js';
import { defaultUrl, parseEngineUrl } from '../dist/url.js';
import { FakeEngine } from './helpers/fake-engine.mjs';
import { captureLogger } from './helpers/log.mjs';

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A local port nothing listens on (bound, then closed). */
async function closedPort() {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function worker(url, options) {
  const sy = registerWorker(url, options);
  cleanups.push(() => sy.shutdown());
  return sy;
}

test('http_and_bare_host_port_urls_mean_plaintext_and_the_port_defaults_to_49134', () => {
  assert.deepEqual(parseEngineUrl('http://127.0.0.1:7000'), { url: 'http://127.0.0.1:7000', target: '127.0.0.1:7000', tls: false });
  assert.deepEqual(parseEngineUrl('http://engine.internal:7000/'), { url: 'http://engine.internal:7000', target: 'engine.internal:7000', tls: false });
  assert.deepEqual(parseEngineUrl('127.0.0.1:7000'), { url: 'http://127.0.0.1:7000', target: '127.0.0.1:7000', tls: false });
  assert.deepEqual(parseEngineUrl('HTTP://localhost'), { url: 'http://localhost:49134', target: 'localhost:49134', tls: false });
  assert.deepEqual(parseEngineUrl('localhost'), { url: 'http://localhost:49134', target: 'localhost:49134', tls: false });
  assert.deepEqual(parseEngineUrl('[::1]:80'), { url: 'http://[::1]:80', target: '[::1]:80', tls: false });
});

test('https_urls_mean_tls_with_the_same_host_and_port_rules', () => {
  assert.deepEqual(parseEngineUrl('https://engine.example:8443'), { url: 'https://engine.example:8443', target: 'engine.example:8443', tls: true });
  assert.deepEqual(parseEngineUrl('HTTPS://localhost/'), { url: 'https://localhost:49134', target: 'localhost:49134', tls: true });
  assert.throws(() => parseEngineUrl('https://h:5/api'), InvalidUrlError);
});

test('unsupported_urls_are_refused_with_invalid_url_naming_the_url_and_the_grammar', () => {
  const refused = (url, message) =>
    assert.throws(
      () => parseEngineUrl(url),
      (error) => error instanceof InvalidUrlError && error instanceof SwitchyardError && error.reason === 'INVALID_URL' &&
        error.code === grpc.status.INVALID_ARGUMENT && error.message === message,
      url,
    );
  const grammar = (url) => `INVALID_URL: unsupported URL '${url}': use http://HOST:PORT, https://HOST:PORT or HOST:PORT`;
  for (const url of ['ws://127.0.0.1:49134', 'wss://127.0.0.1:49134', 'ftp://127.0.0.1:1', '', ' ', 'http://', 'http://:5',
    'http://h:5/api', 'http://user@h:5', 'http://h:5?x=1', 'h:0', 'h:65536', 'h:port', '::1']) {
    refused(url, grammar(url));
  }
});

test('a_refused_url_throws_from_register_worker_before_any_connection', () => {
  assert.throws(() => registerWorker('ws://127.0.0.1:1'), InvalidUrlError);
});

test('without_a_url_the_worker_reads_switchyard_url_then_the_default', () => {
  assert.equal(defaultUrl({}), 'http://127.0.0.1:49134');
  assert.equal(defaultUrl({ SWITCHYARD_URL: '' }), 'http://127.0.0.1:49134');
  assert.equal(defaultUrl({ SWITCHYARD_URL: 'engine:7000' }), 'engine:7000');
  const saved = process.env.SWITCHYARD_URL;
  process.env.SWITCHYARD_URL = '127.0.0.2:7001';
  try {
    assert.equal(worker().url, 'http://127.0.0.2:7001');
    assert.equal(worker({ maxInFlight: 2 }).url, 'http://127.0.0.2:7001');
    assert.equal(worker(undefined, { maxInFlight: 2 }).url, 'http://127.0.0.2:7001');
  } finally {
    if (saved === undefined) delete process.env.SWITCHYARD_URL;
    else process.env.SWITCHYARD_URL = saved;
  }
});

test('reconnect_delays_are_drawn_with_full_jitter_below_a_doubling_capped_ceiling', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffCeilingMs(n)), [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  assert.equal(backoffCeilingMs(3, 250), 250);
  for (const n of [1, 2, 5, 8, 60]) {
    assert.equal(reconnectDelayMs(n, 5000, () => 0), 0);
    assert.equal(reconnectDelayMs(n, 5000, () => 0.999999), backoffCeilingMs(n) - 1);
    assert.equal(reconnectDelayMs(n, 5000, () => 0.5), backoffCeilingMs(n) / 2);
  }
  // With the real RNG every draw is in range and the draws differ.
  const draws = Array.from({ length: 200 }, () => reconnectDelayMs(7));
  assert.ok(draws.every((d) => Number.isInteger(d) && d >= 0 && d < 5000), String(draws));
  assert.ok(new Set(draws).size > 100, `only ${new Set(draws).size} distinct delays in 200 draws`);
});

test('transport_failures_are_classified_into_the_shared_causes', () => {
  const cases = [
    ['No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ', 'connection_refused',
      'connection refused (connect ECONNREFUSED 127.0.0.1:1)'],
    ['Name resolution failed for target dns:nowhere.invalid:1', 'dns_failure', 'DNS lookup failed (Name resolution failed for target dns:nowhere.invalid:1)'],
    ['No connection established. Last error: Protocol error (2026-12-03T10:19:54.717Z). Resolution note: ', 'wrong_protocol',
      'the server does not speak gRPC (HTTP/2) (Protocol error)'],
    ['Received HTTP status code 404', 'wrong_protocol', undefined],
    ['Error: read ECONNRESET', 'connection_lost', undefined],
    ['No connection established. Last error: Error: connect ETIMEDOUT 10.0.0.1:5', 'timed_out', undefined],
    ['Failed to connect', 'other', 'transport error (Failed to connect)'],
  ];
  for (const [details, cause, text] of cases) {
    const got = classify(grpc.status.UNAVAILABLE, details);
    assert.equal(got.cause, cause, details);
    if (text) assert.equal(got.text, text);
  }
  assert.equal(classify(grpc.status.DEADLINE_EXCEEDED, 'no detail').cause, 'timed_out');
});

test('errors_the_engine_did_not_write_take_the_reason_prefix_and_name_the_address', () => {
  const serviceError = (code, details) => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
  const unreachable = fromServiceError(serviceError(grpc.status.UNAVAILABLE, 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:9'), 'http://127.0.0.1:9');
  assert.ok(unreachable instanceof UnavailableError);
  assert.equal(unreachable.message, 'UNAVAILABLE: cannot reach the Switchyard engine at http://127.0.0.1:9: connection refused (connect ECONNREFUSED 127.0.0.1:9)');
  assert.equal(fromServiceError(serviceError(grpc.status.INTERNAL, 'boom')).message, 'INTERNAL: boom');
  // The engine's own message is kept as it is, prefix included.
  const engine = fromServiceError(serviceError(grpc.status.UNAVAILABLE, 'UNAVAILABLE: engine shutting down'), 'http://127.0.0.1:9');
  assert.equal(engine.message, 'UNAVAILABLE: engine shutting down');
});

test('a_call_to_a_closed_port_rejects_naming_the_address_and_the_cause', { timeout: 20_000 }, async () => {
  const port = await closedPort();
  const sy = worker(`127.0.0.1:${port}`);
  await assert.rejects(
    sy.trigger({ function_id: 'f', payload: {}, action: TriggerAction.Enqueue({ queue: 'q' }) }),
    (error) => error instanceof UnavailableError &&
      error.message.startsWith(`UNAVAILABLE: cannot reach the Switchyard engine at http://127.0.0.1:${port}: connection refused`),
  );
});

test('a_worker_on_a_closed_port_warns_with_url_cause_and_delay_and_keeps_retrying', { timeout: 20_000 }, async () => {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const log = captureLogger();
  const sy = worker(url, { logger: log.logger });
  sy.registerFunction('f', () => 1);
  const isWarn = (r) => r.level === 'warn' && r.fields.url === url;
  const first = await log.waitFor(isWarn, 10_000, 'the first WARN');
  assert.deepEqual(Object.keys(first.fields).sort(), ['cause', 'retry_in_ms', 'url']);
  assert.equal(first.fields.cause, 'connection_refused');
  assert.ok(first.fields.retry_in_ms >= 0 && first.fields.retry_in_ms < 100, String(first.fields.retry_in_ms));
  assert.equal(first.message, `cannot reach the Switchyard engine at ${url}: connection refused (connect ECONNREFUSED 127.0.0.1:${port}); retrying in ${first.fields.retry_in_ms} ms`);
  await log.waitFor((r) => isWarn(r) && r !== first, 10_000, 'the WARN of the retry');
  const second = log.records.filter(isWarn)[1];
  assert.ok(second.fields.retry_in_ms < 200, String(second.fields.retry_in_ms));
});

test('a_peer_that_does_not_speak_http2_is_a_wrong_protocol', { timeout: 20_000 }, async () => {
  const server = createHttpServer((_, res) => res.end('hello')).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  const log = captureLogger();
  worker(`127.0.0.1:${server.address().port}`, { logger: log.logger }).registerFunction('f', () => 1);
  const warn = await log.waitFor((r) => r.level === 'warn', 10_000, 'the WARN');
  assert.equal(warn.fields.cause, 'wrong_protocol');
});

test('fail_fast_rejects_ready_with_unavailable_and_does_not_retry', { timeout: 20_000 }, async () => {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const log = captureLogger();
  const sy = worker(url, { failFast: true, logger: log.logger });
  sy.registerFunction('f', () => 1);
  await assert.rejects(sy.ready(), (error) => {
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.reason, 'UNAVAILABLE');
    assert.equal(error.message, `UNAVAILABLE: cannot reach the Switchyard engine at ${url}: connection refused (connect ECONNREFUSED 127.0.0.1:${port})`);
    assert.deepEqual(error.details, { url, cause: 'connection_refused' });
    return true;
  });
  // Settled for good: a later ready() and calls reject with the same error, nothing retried.
  await assert.rejects(sy.ready(), /cannot reach the Switchyard engine/);
  await assert.rejects(sy.listQueues(), /cannot reach the Switchyard engine/);
  await assert.rejects(sy.enqueue('q', 'f', {}), /cannot reach the Switchyard engine/);
  assert.deepEqual(log.records.map((r) => r.level), ['error']);
  await sy.shutdown();
});

test('a_lost_stream_warns_connection_lost_and_the_reconnect_logs_info', { timeout: 20_000 }, async () => {
  const engine = await new FakeEngine().start();
  cleanups.push(() => engine.crash());
  const log = captureLogger();
  const sy = worker(engine.url, { logger: log.logger, maxReconnectDelayMs: 200 });
  sy.registerFunction('f', () => 1);
  await sy.ready();
  const connected = await log.waitFor((r) => r.level === 'info', 5_000, 'the INFO');
  assert.deepEqual(connected, { level: 'info', message: `connected to the Switchyard engine at ${engine.url}`, fields: { url: engine.url } });
  const port = engine.port;
  engine.crash();
  const lost = await log.waitFor((r) => r.level === 'warn', 10_000, 'the WARN after the crash');
  assert.equal(lost.fields.cause, 'connection_lost');
  const again = await new FakeEngine().start(port);
  cleanups.push(() => again.crash());
  await again.stream(0);
  await log.waitFor((r) => r.level === 'info' && r !== connected, 10_000, 'the INFO after reconnecting');
});

test('without_a_logger_the_sdk_is_silent', { timeout: 20_000 }, async () => {
  const port = await closedPort();
  const calls = [];
  const saved = { ...console };
  for (const level of ['debug', 'info', 'warn', 'error', 'log']) console[level] = (...args) => calls.push(args);
  try {
    const sy = worker(`127.0.0.1:${port}`, { failFast: true });
    sy.registerFunction('f', () => 1);
    await assert.rejects(sy.ready(), UnavailableError);
  } finally {
    Object.assign(console, saved);
  }
  assert.deepEqual(calls, []);
});

test('the_logger_option_takes_an_object_and_a_throwing_logger_breaks_nothing', { timeout: 20_000 }, async () => {
  assert.throws(() => registerWorker('127.0.0.1:1', { logger: () => {} }), /logger option takes an object/);
  const port = await closedPort();
  const boom = () => {
    throw new Error('broken logger');
  };
  const sy = worker(`127.0.0.1:${port}`, { failFast: true, logger: { warn: boom, error: boom } });
  sy.registerFunction('f', () => 1);
  await assert.rejects(sy.ready(), UnavailableError);
});

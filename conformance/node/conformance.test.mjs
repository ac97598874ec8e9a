// The conformance cases (../cases.yaml, vocabulary in ../README.md) run by the Node SDK.
// One engine for the file, started with every case's queues, and one TLS + token engine
// (`{secure_engine}`, README "TLS and tokens") with the same queues and every case's
// tokens; one worker per case. A case with `schedules` gets an engine of its own, started
// when the case starts (its queues and schedules only) and stopped when it ends: a
// schedule ticks from its engine's start, and on the shared engine the ticks of every
// case run before it would pile up as jobs waiting for the case's worker.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { FunctionNotFoundError, JobNotFoundError, NonRetryableError, registerWorker, SwitchyardError, TriggerAction } from '@switchyard/sdk';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { cases } = parse(readFileSync(new URL('../cases.yaml', import.meta.url), 'utf8'));
const only = (process.env.CONFORMANCE_CASES ?? '').split(',').filter(Boolean);
const engineBin = process.env.SWITCHYARD_BIN ?? join(root, 'target', 'debug', 'switchyard');
const WAIT_MS = 10_000;

let engine;
let secureEngine;
let url;
/** `{engine}`, `{secure_engine}` and `{closed_port}` in case strings (README, "Connecting and logs"). */
const placeholders = {};
/** The secure engine's CA files (`engine`, `other`) and each case token's secret, by engine name. */
const secure = { ca: {}, secrets: new Map() };

/** Starts `switchyard serve` on `config`; resolves to [process, "127.0.0.1:PORT"]. A refusal fails with the engine's words. */
async function serve(config) {
  const child = spawn(engineBin, ['serve', '--config', config, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  // 'close': the process has exited and its stderr is read to the end.
  const exited = new Promise((resolve) => child.once('close', () => resolve('')));
  const line = await Promise.race([
    new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
    exited,
    sleep(20_000, '', { ref: false }),
  ]);
  const match = /^switchyard listening on (\S+)/.exec(line);
  if (!match) child.kill('SIGKILL');
  assert.ok(match, `engine did not start: ${JSON.stringify(line)}\n${stderr}`);
  child.stderr.resume();
  return [child, match[1]];
}

/** A case's queues as queue_configs entries, under their engine names. */
function queuesOf(c) {
  return Object.fromEntries(Object.entries(c.queues ?? {}).map(([q, cfg]) => [`${c.name}.${q}`, cfg]));
}

/**
 * A case's schedules as `schedules` entries: names, queues and functions as the engine
 * knows them. The case says `function` (its vocabulary); the engine's key is `function_id`.
 */
function schedulesOf(c) {
  return Object.fromEntries(Object.entries(c.schedules ?? {}).map(([name, { function: fn, function_id, ...cfg }]) => [
    `${c.name}.${name}`, { ...cfg, queue: `${c.name}.${cfg.queue}`, function_id: `${c.name}::${fn ?? function_id}` },
  ]));
}

/** The engine of a case with schedules (see the file's head); resolves to [process, url]. */
async function serveCase(c) {
  const config = join(secure.dir, `${c.name}.yaml`);
  writeFileSync(config, JSON.stringify({ shutdown_grace_ms: 1000, queue_configs: queuesOf(c), schedules: schedulesOf(c) }));
  const [child, address] = await serve(config);
  return [child, `http://${address}`];
}

before(async () => {
  const closed = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => closed.once('listening', resolve));
  placeholders.closed_port = String(closed.address().port);
  await new Promise((resolve) => closed.close(resolve));
  delete process.env.SWITCHYARD_TOKEN; // cases say which token they send
  const queues = {};
  for (const c of cases) Object.assign(queues, queuesOf(c));
  const topics = {};
  for (const c of cases) {
    for (const [t, cfg] of Object.entries(c.topics ?? {})) topics[`${c.name}.${t}`] = { ...cfg, subscribers: cfg.subscribers.map((f) => `${c.name}::${f}`) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-conformance-'));
  const config = join(dir, 'conformance.yaml');
  writeFileSync(config, JSON.stringify({ shutdown_grace_ms: 1000, queue_configs: queues, topic_configs: topics })); // JSON is YAML
  [engine, placeholders.engine] = await serve(config);
  url = `http://${placeholders.engine}`;
  secure.dir = dir;
  secure.queues = queues;
});

/** Starts the secure engine the first time a case needs it (so plaintext cases need no dev-certs). */
async function ensureSecure() {
  if (secureEngine !== undefined) return;
  const { dir, queues } = secure;
  const certs = join(dir, 'certs');
  const other = join(dir, 'other');
  for (const out of [certs, other]) execFileSync(engineBin, ['dev-certs', '--out', out], { stdio: 'ignore', timeout: 60_000 });
  secure.ca = { engine: join(certs, 'ca.pem'), other: join(other, 'ca.pem') };
  const tokens = [];
  for (const c of cases) {
    for (const [local, spec] of Object.entries(c.tokens ?? {})) {
      const name = `${c.name}.${local}`;
      const secret = randomBytes(18).toString('base64url');
      secure.secrets.set(name, secret);
      const secretFile = join(dir, `${name}.secret`);
      writeFileSync(secretFile, secret);
      const token = { name, secret_file: secretFile, roles: spec.roles };
      if (spec.queues) token.queues = spec.queues.map((g) => `${c.name}.${g}`);
      if (spec.functions) token.functions = spec.functions.map((g) => `${c.name}::${g}`);
      tokens.push(token);
    }
  }
  const secureConfig = join(dir, 'secure.yaml');
  writeFileSync(secureConfig, JSON.stringify({
    shutdown_grace_ms: 1000, queue_configs: queues,
    tls: { cert_file: join(certs, 'server.pem'), key_file: join(certs, 'server-key.pem') },
    auth: { tokens },
  }));
  [secureEngine, placeholders.secure_engine] = await serve(secureConfig);
}

/** `value` with every `{engine}` / `{closed_port}` in its strings replaced. */
function substitute(value) {
  if (typeof value === 'string') return value.replace(/\{(engine|secure_engine|closed_port)\}/g, (_, name) => placeholders[name]);
  if (Array.isArray(value)) return value.map(substitute);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v)]));
  return value;
}

const LEVELS = ['debug', 'info', 'warn', 'error'];
after(() => {
  engine?.kill('SIGTERM');
  secureEngine?.kill('SIGTERM');
});

/** A case's `error` as its handler raises it: an Error whose name is the code. */
function failure(spec) {
  const error = new Error(spec.error?.message ?? 'conformance failure');
  error.name = spec.error?.code ?? 'ConformanceError';
  return error;
}

const matches = (pattern, payload) =>
  !pattern || (typeof payload === 'object' && payload !== null && Object.entries(pattern).every(([k, v]) => payload[k] === v));

function behave(spec, payload, ctx) {
  const behavior = spec.behavior;
  if (!matches(spec.match, payload) || behavior === 'succeed') return true;
  if (behavior === 'echo') return payload;
  if (behavior === 'fail_permanent') throw new NonRetryableError(spec.error?.message ?? 'conformance failure');
  if (behavior === 'fail_always' || ctx.attempt < behavior.fail_until_attempt) throw failure(spec);
  return true;
}

function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

async function waitUntil(probe, args, what) {
  const timeoutMs = args?.timeout_ms ?? WAIT_MS;
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
}

/** One case: its worker, the record of every invocation, and the step interpreter. */
class Run {
  /** `engineUrl`: the engine the case's worker uses (the shared one unless the case has its own). */
  constructor(c, engineUrl = url) {
    this.name = c.name;
    this.logs = [];
    const record = (level) => (message, fields) => this.logs.push({ level, message, fields });
    this.logger = Object.fromEntries(LEVELS.map((level) => [level, record(level)]));
    this.sy = registerWorker(engineUrl, { shutdownGraceMs: 1000, logger: this.logger });
    this.second = undefined;
    /** Callers built by `connect: {as: NAME}`. */
    this.clients = new Map();
    this.specs = new Map();
    this.calls = [];
    this.inFlight = new Map();
    this.maxInFlight = new Map();
    this.receipts = new Map();
    /** Receipt name -> when its enqueue was sent (performance.now()). */
    this.sent = new Map();
  }

  /** A local queue name; `TOPIC/FUNCTION` is that topic subscriber's queue. */
  queue(local) {
    const slash = local.indexOf('/');
    return slash < 0 ? `${this.name}.${local}` : `${this.topic(local.slice(0, slash))}/${this.fn(local.slice(slash + 1))}`;
  }
  topic(local) { return `${this.name}.${local}`; }
  fn(local) { return local ? `${this.name}::${local}` : ''; }
  of(fn) { return this.calls.filter((c) => c.function === fn); }
  /** The worker a step runs through: `via` names a caller built by `connect`. */
  via(a) { return a.via === undefined ? this.sy : this.clients.get(a.via); }

  /** `token` / `tls` options for a step's `token`, `secret` and `ca` (README, "TLS and tokens"). */
  security(a) {
    const options = { token: '' }; // none unless the step says
    if (a.token !== undefined) options.token = secure.secrets.get(`${this.name}.${a.token}`);
    if (a.secret !== undefined) options.token = a.secret;
    if (a.ca !== undefined) options.tls = { caFile: secure.ca[a.ca] };
    return options;
  }

  handler(fn) {
    return async (payload, ctx) => {
      const spec = this.specs.get(fn);
      const rec = {
        function: fn, attempt: ctx.attempt, max_attempts: ctx.maxAttempts, receipt: ctx.messageReceiptId ?? null,
        queue: ctx.queue ?? null, group: ctx.group ?? null, topic: ctx.topic ?? null, payload, start: performance.now(), end: null, outcome: 'running',
      };
      this.calls.push(rec);
      this.inFlight.set(fn, (this.inFlight.get(fn) ?? 0) + 1);
      this.maxInFlight.set(fn, Math.max(this.maxInFlight.get(fn) ?? 0, this.inFlight.get(fn)));
      try {
        if (spec.progress) ctx.setProgress(spec.progress.value, spec.progress.detail);
        if (spec.sleep_ms) await sleep(spec.sleep_ms, undefined, { signal: ctx.signal });
        const result = behave(spec, payload, ctx);
        rec.outcome = 'ok';
        return result;
      } catch (error) {
        rec.outcome = ctx.signal.aborted ? 'cancelled' : 'failed';
        throw error;
      } finally {
        rec.end = performance.now();
        this.inFlight.set(fn, this.inFlight.get(fn) - 1);
      }
    };
  }

  async step(raw) {
    const step = substitute(raw);
    const action = Object.keys(step).find((k) => k !== 'expect' && k !== 'expect_error');
    let result;
    try {
      result = await this[action](step[action]);
    } catch (error) {
      if (!(error instanceof SwitchyardError)) throw error;
      assert.ok('expect_error' in step, `${action} failed: ${error.message}`);
      const expected = step.expect_error;
      assert.equal(error.reason, expected.reason, `${action}: ${error.message}`);
      assert.ok(error.message.includes(expected.message_contains ?? ''), `${action}: message ${error.message}`);
      assert.ok(error.message.startsWith(expected.message_starts_with ?? ''), `${action}: message ${error.message}`);
      for (const [k, v] of Object.entries(expected.details ?? {})) assert.equal(error.details[k], v, `${action}: details.${k}`);
      // the SDK's typed error class, e.g. PermissionDeniedError
      if (expected.kind !== undefined) assert.equal(error.constructor.name, `${expected.kind}Error`, `${action}: ${error.constructor.name}`);
      return;
    }
    assert.ok(!('expect_error' in step), `${action} succeeded, expected ${JSON.stringify(step.expect_error)}`);
    if ('expect' in step) assert.deepEqual(result ?? null, step.expect, `${action} result`);
  }

  async register(a) {
    const fn = this.fn(a.function);
    this.specs.set(fn, a);
    this.sy.registerFunction(fn, this.handler(fn));
    await this.sy.ready(WAIT_MS);
  }

  /** The enqueue options of an enqueue or publish step. */
  options(a) {
    const options = {};
    if ('delay_ms' in a) options.delayMs = a.delay_ms;
    if ('not_before_in_ms' in a) options.notBefore = new Date(Date.now() + a.not_before_in_ms);
    if ('idempotency_key' in a) options.idempotencyKey = a.idempotency_key;
    if ('priority' in a) options.priority = a.priority;
    return options;
  }

  checkDuplicate(a, receiptId, duplicate, name) {
    if ('duplicate_of' in a) {
      assert.ok(duplicate, `receipt ${receiptId} is not a duplicate`);
      assert.equal(receiptId, this.receipts.get(name), 'the duplicate answers the first receipt');
    } else {
      assert.equal(duplicate, false, `receipt ${receiptId} is a duplicate`);
    }
  }

  async enqueue(a) {
    const sent = performance.now();
    const receipt = await this.via(a).trigger({
      function_id: this.fn(a.function), payload: a.payload, action: TriggerAction.Enqueue({ queue: this.queue(a.queue), ...this.options(a) }),
    });
    this.checkDuplicate(a, receipt.messageReceiptId, receipt.duplicate, a.duplicate_of);
    if (a.as) {
      this.receipts.set(a.as, receipt.messageReceiptId);
      this.sent.set(a.as, sent);
    }
    return receipt;
  }

  async publish(a) {
    const { receipts } = await this.sy.publish(this.topic(a.topic), a.payload, this.options(a));
    return receipts.map((r) => {
      const local = r.functionId.slice(`${this.name}::`.length);
      assert.equal(r.queue, this.queue(`${a.topic}/${local}`), 'receipt queue');
      this.checkDuplicate(a, r.messageReceiptId, r.duplicate, `${a.duplicate_of}.${local}`);
      if (a.as) this.receipts.set(`${a.as}.${local}`, r.messageReceiptId);
      return local;
    });
  }

  /** A caller for `url` (no function: it opens no worker stream) that lists the engine's queues, or is kept (`as`). */
  async connect(a) {
    const caller = registerWorker(a.url, { logger: this.logger, handleSignals: false, ...this.security(a) });
    if (a.as !== undefined) {
      this.clients.set(a.as, caller);
      return;
    }
    try {
      await caller.listQueues();
    } finally {
      await caller.shutdown();
    }
  }

  async start_worker(a) {
    await this.stop_worker();
    const second = registerWorker(a.url, { failFast: a.fail_fast ?? false, shutdownGraceMs: 1000, logger: this.logger, ...this.security(a) });
    this.second = second;
    for (const f of a.functions ?? ['second_worker']) second.registerFunction(this.fn(f), () => null);
    if (a.fail_fast) await second.ready(WAIT_MS);
  }

  /** The second worker's readiness: resolves once all its functions are live, or rejects with the engine's refusal. */
  async await_registration(a) {
    assert.ok(this.second, 'await_registration needs start_worker');
    await this.second.ready(a.timeout_ms ?? WAIT_MS);
  }

  async await_registered(a) {
    const fn = this.fn(a.function);
    const served = async () => {
      try {
        await this.via(a).trigger({ function_id: fn, payload: null });
        return true;
      } catch (error) {
        if (error instanceof FunctionNotFoundError) return false;
        throw error;
      }
    };
    await waitUntil(served, a, `a worker serving ${fn}`);
  }

  async stop_worker() {
    const second = this.second;
    this.second = undefined;
    await second?.shutdown();
  }

  /** `{receipt: NAME}`, `{function: F}`, `{queue: Q}` stand for the engine-side names. */
  logValue(want) {
    if (want === null || typeof want !== 'object') return want;
    if ('receipt' in want) return this.receipts.get(want.receipt);
    if ('function' in want) return this.fn(want.function);
    if ('queue' in want) return this.queue(want.queue);
    return want;
  }

  async await_log(a) {
    const min = LEVELS.indexOf(a.level);
    const want = Object.entries(a.fields ?? {}).map(([k, v]) => [k, this.logValue(v)]);
    const texts = [a.contains ?? []].flat();
    const found = () =>
      this.logs.some((r) =>
        LEVELS.indexOf(r.level) >= min &&
        want.every(([k, v]) => (typeof v === 'number' ? Number(r.fields?.[k]) === v : r.fields?.[k] === v)) &&
        texts.every((t) => r.message.includes(t)));
    await waitUntil(found, a, () => `a ${a.level} record with ${JSON.stringify(Object.fromEntries(want))} (logged: ${JSON.stringify(this.logs)})`);
  }

  call(a) { return this.via(a).trigger({ function_id: this.fn(a.function), payload: a.payload, timeout_ms: a.timeout_ms }); }
  void(a) { return this.via(a).trigger({ function_id: this.fn(a.function), payload: a.payload, action: TriggerAction.Void() }); }
  async list_dlq(a) { return (await this.via(a).listDeadLetters(this.queue(a.queue))).entries.length; }
  redrive(a) { return this.sy.redriveDeadLetters(this.queue(a.queue), (a.ids ?? []).map((n) => this.receipts.get(n))); }
  sleep_ms(ms) { return sleep(ms); }

  async stats(local) {
    const s = (await this.sy.listQueues()).find((q) => q.name === this.queue(local)).stats;
    return { ready: s.ready, delayed: s.delayed, in_flight: s.inFlight, dead: s.dead, enqueued: s.enqueued,
      completed: s.completed, failed: s.failed, dead_lettered: s.deadLettered };
  }

  async await_attempts(a) {
    const fn = this.fn(a.function);
    await waitUntil(() => this.of(fn).length >= a.count, a, `${a.count} invocations of ${fn}`);
  }

  async await_cancelled(a) {
    const fn = this.fn(a.function);
    await waitUntil(() => this.of(fn).filter((c) => c.outcome === 'cancelled').length >= a.count, a, `${a.count} cancelled invocations of ${fn}`);
  }

  async await_stats({ queue, timeout_ms, ...want }) {
    let last;
    await waitUntil(async () => {
      last = await this.stats(queue);
      return Object.entries(want).every(([k, v]) => last[k] === v);
    }, { timeout_ms }, () => `stats ${JSON.stringify(want)} of ${queue} (last ${JSON.stringify(last)})`);
  }

  async expect_stats({ queue, ...want }) {
    const stats = await this.stats(queue);
    for (const [k, v] of Object.entries(want)) assert.equal(stats[k], v, `${queue}.${k} (${JSON.stringify(stats)})`);
  }

  async await_dlq(a) {
    await waitUntil(async () => (await this.list_dlq(a)) === a.count, a, `${a.count} dead letters in ${a.queue}`);
  }

  async expect_dlq(a) {
    const { entries } = await this.sy.listDeadLetters(this.queue(a.queue));
    assert.equal(entries.length, a.entries.length, `dead letters: ${JSON.stringify(entries)}`);
    a.entries.forEach((want, i) => {
      const got = entries[i];
      const actual = {
        receipt: got.messageReceiptId, function: got.functionId, attempts: got.attempts, payload: got.payload,
        group: got.group ?? null, error_code: got.lastError?.code ?? null, error_message: got.lastError?.message ?? null,
      };
      for (let [k, v] of Object.entries(want)) {
        if (k === 'receipt') v = this.receipts.get(v);
        if (k === 'function') v = this.fn(v);
        assert.deepEqual(actual[k], v, `dead letter ${k}`);
      }
    });
  }

  expect_attempts(a) {
    const calls = this.of(this.fn(a.function));
    assert.deepEqual(calls.map((c) => c.attempt), a.attempts, 'attempts');
    const expected = {};
    if ('max_attempts' in a) expected.max_attempts = a.max_attempts;
    if ('receipt' in a) expected.receipt = a.receipt === null ? null : this.receipts.get(a.receipt);
    if ('queue' in a) expected.queue = a.queue === null ? null : this.queue(a.queue);
    if ('group' in a) expected.group = a.group;
    if ('topic' in a) expected.topic = a.topic === null ? null : this.topic(a.topic);
    for (const c of calls) for (const [k, v] of Object.entries(expected)) assert.equal(c[k], v, `invocation ${k}`);
  }

  expect_started_after(a) {
    const receipt = this.receipts.get(a.receipt);
    const first = this.calls.find((c) => c.receipt === receipt);
    assert.ok(first, `job ${a.receipt} never started`);
    const waited = first.start - this.sent.get(a.receipt);
    assert.ok(waited >= a.ms - 1, `job ${a.receipt} started ${waited} ms after its enqueue, < ${a.ms} ms`);
  }

  expect_retry_schedule(a) {
    const jobs = groupBy(this.of(this.fn(a.function)), (c) => c.receipt);
    for (const calls of jobs.values()) {
      for (let i = 1; i < calls.length; i++) {
        const [prev, next] = [calls[i - 1], calls[i]];
        if (next.attempt === 1) continue; // redriven: a fresh budget
        assert.equal(next.attempt, prev.attempt + 1, 'consecutive attempts');
        const wait = a.backoff_ms * 2 ** (prev.attempt - 1);
        assert.ok(next.start - prev.start >= wait - 1, `retry ${prev.attempt} after ${next.start - prev.start} ms < ${wait} ms`);
      }
    }
  }

  expect_fifo_order(a) {
    for (const [group, calls] of groupBy(this.of(this.fn(a.function)), (c) => c.group)) {
      const keys = calls.map((c) => c.payload[a.key]);
      assert.deepEqual(keys, [...keys].sort((x, y) => x - y), `group ${group} ran out of order`);
      const done = calls.filter((c) => c.outcome === 'ok').map((c) => c.payload[a.key]);
      assert.deepEqual(done, [...new Set(done)].sort((x, y) => x - y), `group ${group} completed`);
      for (let i = 1; i < calls.length; i++) assert.ok(calls[i].start >= calls[i - 1].end, `group ${group} overlapped`);
    }
  }

  expect_finished_before(a) {
    const calls = this.of(this.fn(a.function)).filter((c) => c.outcome === 'ok');
    const first = calls.find((c) => matches(a.first, c.payload));
    const then = calls.find((c) => matches(a.then, c.payload));
    assert.ok(first.end <= then.end, `${JSON.stringify(a.first)} finished after ${JSON.stringify(a.then)}`);
  }

  expect_max_in_flight(a) {
    const seen = this.maxInFlight.get(this.fn(a.function)) ?? 0;
    assert.ok(seen <= a.max, `${seen} in flight at once, limit ${a.max}`);
    assert.ok(seen >= (a.reaches ?? 0), `only ${seen} in flight at once, expected ${a.reaches}`);
  }

  // ---- the job lifecycle (README "The job lifecycle") ----

  /** A step's job id: its receipt name's id, or a literal `id`. */
  jobId(a) {
    if ('id' in a) return a.id;
    assert.ok(this.receipts.has(a.receipt), `no receipt named ${a.receipt}`);
    return this.receipts.get(a.receipt);
  }

  get_job(a) { return this.sy.getJob(this.queue(a.queue), this.jobId(a)); }

  async cancel_job(a) { return (await this.sy.cancelJob(this.queue(a.queue), this.jobId(a))).outcome; }

  wait_for_result(a) { return this.sy.waitForResult(this.queue(a.queue), this.jobId(a), { timeoutMs: a.timeout_ms }); }

  /** The listed fields of `expect_job` / `await_job` that `job` does not match (none: it matches). */
  jobMismatches(job, want) {
    const actual = {
      state: job.state, attempts: job.attempts, result: job.result, error_code: job.lastError?.code ?? null, priority: job.priority,
    };
    const wrong = [];
    for (const key of ['state', 'attempts', 'result', 'error_code', 'priority']) {
      if (key in want && !isDeepStrictEqual(actual[key], want[key])) wrong.push(`${key} ${JSON.stringify(actual[key])} (want ${JSON.stringify(want[key])})`);
    }
    if ('progress' in want) {
      for (const [key, value] of Object.entries(want.progress)) {
        if (!isDeepStrictEqual(job.progress?.[key], value)) wrong.push(`progress.${key} ${JSON.stringify(job.progress?.[key])} (want ${JSON.stringify(value)})`);
      }
    }
    return wrong;
  }

  async expect_job(a) {
    const wrong = this.jobMismatches(await this.get_job(a), a);
    assert.deepEqual(wrong, [], `job ${a.receipt}`);
  }

  async await_job(a) {
    let last = 'no answer yet';
    await waitUntil(async () => {
      try {
        const wrong = this.jobMismatches(await this.get_job(a), a);
        last = wrong.join(', ');
        return wrong.length === 0;
      } catch (error) {
        if (!(error instanceof JobNotFoundError)) throw error;
        last = error.message; // not (or no longer) there: wait through it
        return false;
      }
    }, a, () => `job ${a.receipt} of ${a.queue} to match ${JSON.stringify(a)} (last: ${last})`);
  }

  expect_start_order(a) {
    const order = this.of(this.fn(a.function)).map((c) => c.payload?.[a.key]);
    assert.deepEqual(order, a.order, 'start order');
  }

  expect_start_spacing(a) {
    const calls = this.of(this.fn(a.function));
    assert.ok(calls.length >= 2, `${calls.length} invocations: no spacing to measure`);
    const span = calls[calls.length - 1].start - calls[0].start;
    // 1 ms allowed for clock rounding, as for the retry schedule; no upper bound.
    assert.ok(span >= a.min_span_ms - 1, `the invocations started over ${span} ms, < ${a.min_span_ms} ms`);
  }

  expect_groups(a) {
    const seen = [...new Set(this.of(this.fn(a.function)).map((c) => c.group))].sort();
    assert.deepEqual(seen, [...a.groups].sort(), 'groups');
  }
}

for (const c of cases) {
  test(c.name, { skip: only.length > 0 && !only.includes(c.name), timeout: 60_000 }, async () => {
    if (c.tokens !== undefined || JSON.stringify(c.steps).includes('{secure_engine}')) await ensureSecure();
    const [ownEngine, ownUrl] = c.schedules === undefined ? [] : await serveCase(c);
    const run = new Run(c, ownUrl);
    try {
      for (const step of c.steps) await run.step(step);
    } finally {
      await run.stop_worker();
      for (const caller of run.clients.values()) await caller.shutdown();
      await run.sy.shutdown();
      ownEngine?.kill('SIGTERM');
    }
  });
}

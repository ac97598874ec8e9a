/**
 * Testing helpers: unit-test a handler without an engine, or run workers against a real
 * engine in the application's own tests.
 *
 * Invariant: runHandler() gives a handler exactly what a worker gives it — the payload as
 * it arrives from the wire (the same codec: Dates become strings, undefined fields vanish,
 * BigInt is refused), a Context, and the same reading of the outcome (undefined is null,
 * a throw or rejection is `{ code, message, stack }`, an unencodable result fails) — so a
 * handler that passes here behaves the same on a worker. Retries, backoff and the DLQ are
 * the engine's: to test those, startTestEngine() runs the real one.
 *
 * Not done: no in-process engine (the engine is a Rust binary); no fake of the engine's
 * retry schedule.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { InvocationContext } from './context.js';
import { toFunctionError } from './invocations.js';
import type { WireJobProgress } from './messages.js';
import type { Context, FunctionErrorInfo, Handler, JobProgress } from './types.js';
import { fromValueBytes, toValueBytes } from './value.js';

/**
 * A Context for a unit test; `abort()` does what an engine cancel does to `signal`, and
 * `progress` lists every `setProgress` report, in order, as getJob() would show it.
 */
export interface TestContext extends Context {
  abort(reason?: Error): void;
  readonly progress: JobProgress[];
}

/** The Context fields a test may set; the rest default to a first attempt of a direct call. */
export type TestContextFields = Partial<Omit<Context, 'signal' | 'setProgress'>>;

/** A Context as a worker would build it: defaults to attempt 1 of 1 of a direct call (no queue). */
export function createTestContext(fields: TestContextFields = {}): TestContext {
  const enqueuedAt = fields.enqueuedAt;
  const context = new TestInvocationContext({
    invocation_id: fields.invocationId ?? 'test-invocation',
    function_id: fields.functionId ?? 'test::function',
    delivery: {
      queue: fields.queue ?? '',
      message_receipt_id: fields.messageReceiptId ?? '',
      attempt: fields.attempt ?? 1,
      max_attempts: fields.maxAttempts ?? fields.attempt ?? 1,
      group: fields.group ?? '',
      topic: fields.topic ?? '',
      enqueued_at: enqueuedAt === undefined ? null : { seconds: Math.floor(enqueuedAt.getTime() / 1000), nanos: (enqueuedAt.getTime() % 1000) * 1e6 },
    },
  });
  return context;
}

class TestInvocationContext extends InvocationContext implements TestContext {
  readonly progress: JobProgress[] = [];

  override abort(reason: Error = new Error('cancelled by the test')): void {
    super.abort(reason);
  }

  protected override report(progress: WireJobProgress): void {
    this.progress.push({
      value: progress.value ?? undefined,
      detail: progress.detail === undefined ? undefined : fromValueBytes(progress.detail),
    });
  }
}

/**
 * What the engine would record for one invocation; `nonRetryable` is true for a
 * NonRetryableError (a queued job would go straight to the DLQ).
 */
export type HandlerOutcome<R> = { ok: true; value: R | null } | { ok: false; error: FunctionErrorInfo & { nonRetryable: boolean } };

/**
 * Runs `handler` once the way a worker does and resolves to its outcome (never rejects
 * for a handler failure). `context` is a TestContext or the fields of one.
 */
export async function runHandler<P, R>(
  handler: Handler<P, R>,
  payload: P,
  context: TestContext | TestContextFields = {},
): Promise<HandlerOutcome<Awaited<R>>> {
  const ctx = context instanceof TestInvocationContext ? context : createTestContext(context as TestContextFields);
  const wirePayload = fromValueBytes(toValueBytes(payload ?? null)) as P;
  let value: unknown;
  try {
    value = await handler(wirePayload, ctx);
  } catch (error) {
    return { ok: false, error: errorInfo(error) };
  }
  try {
    return { ok: true, value: fromValueBytes(toValueBytes(value === undefined ? null : value)) as Awaited<R> | null };
  } catch (error) {
    return { ok: false, error: errorInfo(error) };
  }
}

function errorInfo(error: unknown): FunctionErrorInfo & { nonRetryable: boolean } {
  const { message = '', code = 'Error', stack = '', non_retryable = false } = toFunctionError(error);
  return { message, code, stack, nonRetryable: non_retryable };
}

export interface TestEngineOptions {
  /** The engine binary: default `SWITCHYARD_BIN`, else `switchyard` on PATH. */
  bin?: string;
  /** iii-config.yaml text (default: the built-in defaults, one `default` queue). */
  config?: string;
  /** Extra environment for the engine (e.g. `SWITCHYARD_LOG`). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for it to listen. Default 20000 ms. */
  startTimeoutMs?: number;
}

export interface TestEngine {
  /** `http://127.0.0.1:PORT`, for registerWorker(). */
  url: string;
  /** Stops the engine (SIGTERM, then SIGKILL after 5 s) and removes its config. */
  stop(): Promise<void>;
  /** What the engine wrote to stderr so far. */
  logs(): string;
}

/**
 * Starts a real engine for a test on 127.0.0.1 and a free port, in memory, resolving once
 * it listens. Stop it when the test is done (`after(() => engine.stop())`).
 */
export async function startTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const bin = options.bin ?? process.env.SWITCHYARD_BIN ?? 'switchyard';
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-test-engine-'));
  const config = join(dir, 'iii-config.yaml');
  writeFileSync(config, options.config ?? 'queue_configs: {}\n');
  const child = spawn(bin, ['serve', '--config', config, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const address = await new Promise<string>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      cleanup();
      reject(new Error(`startTestEngine: ${why}\n--- engine stderr ---\n${stderr}`));
    };
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    const timer = setTimeout(() => fail(`${bin} did not listen within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (error) => fail(`cannot start ${bin}: ${error.message}`));
    child.once('exit', (code, signal) => fail(`${bin} exited early (code ${code}, signal ${signal})`));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^switchyard listening on (\S+)/.exec(line);
      if (match === null) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      child.on('error', () => {});
      resolve(match[1]!);
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://${address}`,
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(force);
      }
      cleanup();
    },
  };
}

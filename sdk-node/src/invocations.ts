/**
 * Running handlers for the invocations the engine sends, and reporting their results.
 *
 * Invariant: every invocation accepted from a stream gets exactly one result written on
 * that same stream — the handler's value, or its error as {message, code, stack} — unless
 * the engine cancelled it or the stream is gone, in which case the engine no longer waits,
 * nothing is written, and the invocation stops counting as running (its signal is
 * aborted). At most `limit` counted handlers run at once; invocations beyond it (which a
 * correct engine never sends) wait their turn in arrival order.
 *
 * Results are coalesced: those that complete in the same event-loop turn are handed to
 * the sink together, which writes them as one `results` message where the engine takes
 * batches. A result is held only until the current
 * turn ends (setImmediate), never by a timer — or less, when a drain is waiting for the
 * runner to go idle.
 *
 * Progress (ctx.setProgress) of a running queued job is held the same way, the latest
 * report per invocation replacing earlier ones of the turn, and written before the turn's
 * results; a report whose invocation ends or is cancelled before it is written is dropped
 * (its result says more), and direct calls have no reporter at all (no job shows it).
 *
 * Logs (logger.ts), with the engine's field names and never the payload: DEBUG `job
 * started` and, at its end, DEBUG `job completed` / `job cancelled`; a failure — a throw,
 * a rejected promise, an unencodable result, or the engine's timeout cancel — is one WARN
 * `job failed` with `outcome: failed`, `error_code`, `error_message` and `error_stack`.
 */
import type { WireFunctionError, WireInvocationResult, WireInvoke, WireJobProgress, WireProgress } from './messages.js';
import { performance } from 'node:perf_hooks';
import { InvocationContext } from './context.js';
import { isNonRetryable } from './non-retryable.js';
import type { LogFields, Log } from './logger.js';
import type { Handler } from './types.js';
import { fromValueBytes, toValueBytes } from './value.js';

/** Writes results (in one message where the stream allows) on the stream of `generation`; false when it is gone. */
export type ResultSink = (results: WireInvocationResult[], generation: number) => boolean;

/** Writes one progress report on the stream of `generation`; false when it is gone. */
export type ProgressSink = (progress: WireProgress, generation: number) => boolean;

interface Running {
  context: InvocationContext;
  generation: number;
  cancelled: boolean;
  /** performance.now() when the handler started. */
  startedAt: number;
}

/** The engine's reason when it cancels an attempt that ran out of time. */
const TIMEOUT_REASON = 'timeout';

interface Waiting {
  invoke: WireInvoke;
  generation: number;
}

export class InvocationRunner {
  private readonly running = new Map<string, Running>();
  private readonly waiting: Waiting[] = [];
  private idleWaiters: (() => void)[] = [];
  /** Results not yet written, all for the stream of `pendingGeneration`. */
  private pending: WireInvocationResult[] = [];
  private pendingGeneration = 0;
  /** Progress not yet written: the latest report per running invocation. */
  private pendingProgress = new Map<string, { progress: WireJobProgress; generation: number }>();
  /** Given to the contexts of queued invocations (one function for all of them). */
  private readonly reportProgress = (invocationId: string, progress: WireJobProgress): void => {
    const running = this.running.get(invocationId);
    if (running === undefined || running.cancelled) return; // ended: nobody shows it any more
    this.pendingProgress.set(invocationId, { progress, generation: running.generation });
    this.scheduleFlush();
  };
  private flushScheduled = false;
  private pumping = false;
  private readonly scheduledFlush = () => {
    this.flushScheduled = false;
    this.flush();
  };

  constructor(
    private readonly handlers: ReadonlyMap<string, Handler>,
    private readonly sink: ResultSink,
    private limit: number,
    private readonly log: Log,
    private readonly progressSink: ProgressSink = () => false,
  ) {}

  /** Handlers running or waiting for a slot. */
  get size(): number {
    return this.running.size + this.waiting.length;
  }

  setLimit(limit: number): void {
    if (limit > 0) this.limit = limit;
    this.pump();
  }

  accept(invoke: WireInvoke, generation: number): void {
    if (this.waiting.length === 0 && this.running.size < this.limit) {
      this.run(invoke, generation);
    } else {
      this.waiting.push({ invoke, generation });
      this.pump();
    }
  }

  /** Hands every progress report and then every result collected so far to the sinks, now (results in one call). */
  flush(): void {
    if (this.pendingProgress.size > 0) {
      const reports = this.pendingProgress;
      this.pendingProgress = new Map();
      for (const [invocationId, { progress, generation }] of reports) {
        this.progressSink({ invocation_id: invocationId, progress }, generation);
      }
    }
    const results = this.pending;
    if (results.length === 0) return;
    this.pending = [];
    this.sink(results, this.pendingGeneration);
  }

  /** The engine gave up on an invocation: abort its handler and never answer it. */
  cancel(invocationId: string, reason: string): void {
    const index = this.waiting.findIndex((w) => w.invoke.invocation_id === invocationId);
    if (index >= 0) this.waiting.splice(index, 1);
    const running = this.running.get(invocationId);
    if (running !== undefined) this.forget(invocationId, running, `cancelled by the engine: ${reason || 'no reason given'}`, reason);
    // Finished but not yet written: the engine no longer wants it.
    const done = this.pending.findIndex((r) => r.invocation_id === invocationId);
    if (done >= 0) this.pending.splice(done, 1);
    this.pump();
    this.notifyIfIdle();
  }

  /** The stream of `generation` is gone: its invocations can no longer be answered. */
  disconnected(generation: number): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i]!.generation === generation) this.waiting.splice(i, 1);
    }
    for (const [invocationId, running] of this.running) {
      if (running.generation === generation) this.forget(invocationId, running, 'the connection to the engine was lost');
    }
    if (this.pendingGeneration === generation) this.pending = [];
    this.notifyIfIdle();
  }

  /** Aborts every handler (shutdown grace expired). */
  abortAll(reason: string): void {
    this.waiting.length = 0;
    for (const running of this.running.values()) running.context.abort(new Error(reason));
  }

  /** Resolves once no handler is running or waiting. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    // A handler that completes synchronously pumps again from inside run(): the outer loop
    // carries on instead, so the stack never grows with the queue.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiting.length > 0 && this.running.size < this.limit) {
        const next = this.waiting.shift()!;
        this.run(next.invoke, next.generation);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Starts the handler. A handler that returns a non-thenable completes synchronously
   * (no promise, no microtask); one that returns a thenable completes when it settles.
   */
  private run(invoke: WireInvoke, generation: number): void {
    const invocationId = invoke.invocation_id ?? '';
    const functionId = invoke.function_id ?? '';
    // Only a queued job has somewhere to show progress: a direct call's context reports nowhere.
    const reporter = invoke.delivery?.queue ? this.reportProgress : undefined;
    const state: Running = { context: new InvocationContext(invoke, reporter), generation, cancelled: false, startedAt: performance.now() };
    this.running.set(invocationId, state);
    if (this.log.enabled('debug')) this.log.debug(`job started: ${functionId}`, jobFields(state));
    let returned: unknown;
    let thenable: boolean;
    try {
      const handler = this.handlers.get(functionId);
      if (handler === undefined) {
        throw Object.assign(new Error(`function '${functionId}' is not registered on this worker`), {
          name: 'FUNCTION_NOT_FOUND',
        });
      }
      returned = handler(fromValueBytes(invoke.payload), state.context);
      thenable = returned !== null && (typeof returned === 'object' || typeof returned === 'function') &&
        typeof (returned as PromiseLike<unknown>).then === 'function';
    } catch (error) {
      this.complete(invocationId, state, { invocation_id: invocationId, error: toFunctionError(error) });
      return;
    }
    if (thenable) {
      Promise.resolve(returned as PromiseLike<unknown>).then(
        (value) => this.complete(invocationId, state, success(invocationId, value)),
        (error: unknown) => this.complete(invocationId, state, { invocation_id: invocationId, error: toFunctionError(error) }),
      );
    } else {
      this.complete(invocationId, state, success(invocationId, returned));
    }
  }

  private complete(invocationId: string, state: Running, outcome: WireInvocationResult): void {
    if (state.cancelled) return;
    this.running.delete(invocationId);
    this.pendingProgress.delete(invocationId);
    if (outcome.error) this.logFailure(state, outcome.error);
    else if (this.log.enabled('debug')) this.log.debug(`job completed: ${state.context.functionId}`, jobFields(state, 'completed'));
    this.report(outcome, state.generation);
    this.pump();
    this.notifyIfIdle();
  }

  /** Collects a result for the stream of `generation`; it is written when the current event-loop turn ends. */
  private report(result: WireInvocationResult, generation: number): void {
    if (this.pending.length > 0 && this.pendingGeneration !== generation) this.flush();
    this.pendingGeneration = generation;
    this.pending.push(result);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.scheduledFlush);
    }
  }

  /**
   * The engine no longer waits for this invocation: abort its signal and stop counting it
   * (it frees its slot and no longer holds up a drain, even if the handler ignores the
   * signal); its eventual outcome is discarded.
   */
  private forget(invocationId: string, running: Running, reason: string, engineReason?: string): void {
    running.cancelled = true;
    this.running.delete(invocationId);
    this.pendingProgress.delete(invocationId);
    running.context.abort(new Error(reason));
    if (engineReason === TIMEOUT_REASON) {
      this.logFailure(running, { code: 'TIMEOUT', message: 'the engine cancelled the attempt: it ran past its timeout (the queue\'s timeout_ms, or a sync call\'s timeout_ms)', stack: '' });
    } else if (this.log.enabled('debug')) {
      this.log.debug(`job cancelled: ${running.context.functionId}: ${reason}`, { ...jobFields(running, 'cancelled'), reason });
    }
  }

  /** The one WARN line of a failed attempt: the job's fields and the error, never the payload. */
  private logFailure(state: Running, error: WireFunctionError): void {
    if (!this.log.enabled('warn')) return;
    const ctx = state.context;
    const where = ctx.queue === undefined ? 'direct call' : `attempt ${ctx.attempt}/${ctx.maxAttempts} of job ${ctx.messageReceiptId} from ${ctx.queue}`;
    this.log.warn(`job failed: ${ctx.functionId} (${where}): ${error.code}: ${error.message}`, {
      ...jobFields(state, 'failed'),
      error_code: error.code,
      error_message: error.message,
      error_stack: error.stack || undefined,
    });
  }

  private notifyIfIdle(): void {
    if (this.size !== 0 || this.idleWaiters.length === 0) return;
    // Write the collected results before anyone learns the runner is idle: a drain closes
    // the stream next.
    this.flush();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** The engine's job-event fields for an invocation (queue fields are left out for direct calls). */
function jobFields(state: Running, outcome?: 'completed' | 'failed' | 'cancelled'): LogFields {
  const ctx = state.context;
  return {
    queue: ctx.queue,
    function_id: ctx.functionId,
    message_receipt_id: ctx.messageReceiptId,
    invocation_id: ctx.invocationId,
    attempt: ctx.attempt,
    max_attempts: ctx.maxAttempts,
    outcome,
    duration_ms: outcome === undefined ? undefined : Math.round(performance.now() - state.startedAt),
  };
}

/**
 * A thrown value as the engine stores it: code is the error's type name (its `name`, or
 * its class name when a subclass left `name` as "Error"), message and the full stack;
 * a NonRetryableError is marked `non_retryable` (non-retryable.ts).
 */
export function toFunctionError(error: unknown): WireFunctionError {
  if (error instanceof Error) {
    const className = error.constructor?.name;
    const code = error.name === 'Error' && className && className !== 'Error' ? className : error.name || 'Error';
    const wire: WireFunctionError = { message: error.message, code, stack: error.stack ?? '' };
    if (isNonRetryable(error)) wire.non_retryable = true;
    return wire;
  }
  return { message: typeof error === 'string' ? error : safeJson(error), code: 'Error', stack: '' };
}

/** A handler's return value as a result (`undefined` is null); an unencodable value fails the invocation. */
function success(invocationId: string, value: unknown): WireInvocationResult {
  try {
    return { invocation_id: invocationId, value: toValueBytes(value === undefined ? null : value) };
  } catch (error) {
    return { invocation_id: invocationId, error: toFunctionError(error) };
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * One job by its receipt: the conversion of GetJob / CancelJob answers, and
 * waitForResult()'s polling.
 *
 * Invariant: waitForResult settles exactly once, from what GetJob last said — it resolves
 * to the result of a `completed` job; rejects with JobDeadError (JOB_DEAD) for `dead`,
 * JobCancelledError (JOB_CANCELLED) for `cancelled`, SwitchyardTimeoutError (TIMEOUT) when
 * the job is unfinished once `timeoutMs` has passed, and with GetJob's own typed error
 * otherwise (JobNotFoundError passes through: a completed job on a queue that keeps no
 * results is gone at once). It never asks the engine more often than the backoff allows.
 *
 * Protocol:
 *   1. Ask GetJob. A finished state settles (above).
 *   2. Unfinished, and the deadline has passed: TIMEOUT (its details name the last state).
 *   3. Else wait the next poll delay — 50 ms, doubling to at most 1 s (pollDelayMs), never
 *      past the deadline — and go to 1, so the last poll is at the deadline itself.
 *   A GetJob call is given the time left (at least MIN_CALL_MS): one that runs out after
 *   the deadline is the TIMEOUT too.
 *
 * Time goes through `Timers` (now, sleep), so the schedule is testable without waiting.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { answerPayload, JobCancelledError, JobDeadError, SwitchyardTimeoutError, type SwitchyardError } from './errors.js';
import type { WireCancelJobResponse, WireJobInfo, WireJobProgress, WireValueBytes } from './messages.js';
import { fromWireFunctionError } from './queues.js';
import type { CancelJobResult, Job, JobProgress } from './types.js';
import { fromTimestamp, type JsonValue } from './value.js';

export const FIRST_POLL_MS = 50;
export const MAX_POLL_MS = 1_000;
/** waitForResult's timeout when the caller gives none. */
export const DEFAULT_WAIT_MS = 30_000;
/** The shortest deadline a GetJob call gets, even when the wait has less time left. */
export const MIN_CALL_MS = 1_000;

/** The wait after the n-th unfinished answer (n ≥ 1): 50, 100, 200, 400, 800, 1000, 1000, … ms. */
export function pollDelayMs(polls: number): number {
  const n = Math.max(1, Math.floor(polls));
  return Math.min(MAX_POLL_MS, FIRST_POLL_MS * 2 ** (n - 1));
}

const FINISHED = new Set(['completed', 'dead', 'cancelled']);

const orUndefined = (text: string | undefined): string | undefined => (text ? text : undefined);

/** A Value field: undefined when unset (no bytes), else its JSON value (null included). */
function optionalValue(bytes: WireValueBytes | null | undefined): JsonValue | undefined {
  return bytes === null || bytes === undefined || bytes.length === 0 ? undefined : answerPayload(bytes);
}

function fromWireProgress(progress: WireJobProgress | null | undefined): JobProgress | undefined {
  if (progress === null || progress === undefined) return undefined;
  return { value: typeof progress.value === 'number' ? progress.value : undefined, detail: optionalValue(progress.detail) };
}

export function fromWireJob(job: WireJobInfo | null | undefined): Job {
  const info = job ?? {};
  return {
    messageReceiptId: info.message_receipt_id ?? '',
    queue: info.queue ?? '',
    functionId: info.function_id ?? '',
    state: info.state ?? '',
    attempts: info.attempts ?? 0,
    maxAttempts: info.max_attempts ?? 0,
    lastError: fromWireFunctionError(info.last_error),
    payload: answerPayload(info.payload),
    group: orUndefined(info.group),
    priority: info.priority ?? 0,
    enqueuedAt: fromTimestamp(info.enqueued_at),
    dueAt: fromTimestamp(info.due_at),
    finishedAt: fromTimestamp(info.finished_at),
    expiresAt: fromTimestamp(info.expires_at),
    result: optionalValue(info.result),
    progress: fromWireProgress(info.progress),
    cancelRequested: info.cancel_requested ?? false,
    topic: orUndefined(info.topic),
  };
}

export function fromWireCancel(response: WireCancelJobResponse): CancelJobResult {
  return { outcome: response.outcome ?? '', job: fromWireJob(response.job) };
}

/** Clock and sleep for the polling: real ones by default, a test's own in the unit tests. */
export interface Timers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** `promise`, or the signal's reason as soon as it aborts (the call itself runs on, its answer unused). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export interface WaitRequest {
  queue: string;
  messageReceiptId: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Polls `getJob` (given the ms its call may take) until the job finishes or the wait
 * times out (module protocol); resolves to a completed job's result.
 */
export async function waitForJob<R = JsonValue>(
  getJob: (deadlineMs: number) => Promise<Job>,
  request: WaitRequest,
  timers: Timers = realTimers,
): Promise<R> {
  const { queue, messageReceiptId, timeoutMs, signal } = request;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw new RangeError(`timeoutMs must be a non-negative number of milliseconds, got ${String(timeoutMs)}`);
  }
  const deadline = timers.now() + timeoutMs;
  let last: Job | undefined;
  for (let polls = 1; ; polls++) {
    if (signal?.aborted) throw signal.reason;
    const left = deadline - timers.now();
    try {
      last = await abortable(getJob(Math.max(MIN_CALL_MS, left)), signal);
    } catch (error) {
      if (error instanceof SwitchyardTimeoutError && timers.now() >= deadline) throw timedOut(request, last);
      throw error;
    }
    if (FINISHED.has(last.state)) return settle<R>(last);
    const remaining = deadline - timers.now();
    if (remaining <= 0) throw timedOut(request, last);
    await timers.sleep(Math.min(pollDelayMs(polls), remaining), signal);
  }

  function timedOut(req: WaitRequest, job: Job | undefined): SwitchyardError {
    const state = job?.state ?? 'unknown';
    return new SwitchyardTimeoutError(
      'TIMEOUT',
      `job ${req.messageReceiptId} of queue '${req.queue}' has not finished after ${req.timeoutMs} ms (state: ${state})`,
      GrpcStatus.DEADLINE_EXCEEDED,
      { queue: req.queue, message_receipt_id: req.messageReceiptId, state },
    );
  }

  function settle<T>(job: Job): T {
    if (job.state === 'completed') return (job.result ?? null) as T;
    const where = { queue, message_receipt_id: messageReceiptId, attempts: String(job.attempts) };
    if (job.state === 'dead') {
      const e = job.lastError;
      const why = e === undefined ? 'no error recorded' : `${e.code}: ${e.message}`;
      const error = new JobDeadError(
        'JOB_DEAD',
        `job ${messageReceiptId} of queue '${queue}' was dead-lettered after ${job.attempts} attempt(s): ${why}`,
        GrpcStatus.UNKNOWN,
        { ...where, message: e?.message ?? '', code: e?.code ?? '', stack: e?.stack ?? '' },
      );
      error.job = job;
      throw error;
    }
    const error = new JobCancelledError(
      'JOB_CANCELLED',
      `job ${messageReceiptId} of queue '${queue}' was cancelled`,
      GrpcStatus.CANCELLED,
      where,
    );
    error.job = job;
    throw error;
  }
}

/**
 * The public, camelCase shapes of the SDK: options, handler context, trigger requests
 * and the Queues API results.
 *
 * Invariant: everything a user receives is a plain object (no protobuf classes, no Long,
 * no wire oneof markers): counters are numbers, times are Dates, payloads are JSON values.
 */
import type { FunctionRef } from './functions.js';
import type { Logger } from './logger.js';
import type { JsonValue } from './value.js';

export type { JsonValue };
export type { Logger, LogFields, LogLevel } from './logger.js';

export interface WorkerOptions {
  /** Most invocations this worker runs at once; sent in hello. Default 64. */
  maxInFlight?: number;
  /** Shown in the engine's logs. Default "node-<pid>@<hostname>". */
  workerName?: string;
  /**
   * Cap on the wait between reconnect attempts: the n-th wait is drawn uniformly from
   * [0, min(cap, 100 × 2^(n−1))) ms (full jitter). Default 5000.
   */
  maxReconnectDelayMs?: number;
  /** How long shutdown() waits for running handlers before aborting them. Default 30000. */
  shutdownGraceMs?: number;
  /**
   * When the first connection fails, stop instead of retrying: ready() rejects with
   * UnavailableError `UNAVAILABLE: cannot reach the Switchyard engine at URL: CAUSE`, or
   * with the engine's refusal (UnauthenticatedError, PermissionDeniedError). Later losses of the stream are always retried. Default false.
   */
  failFast?: boolean;
  /**
   * Drain on SIGTERM and SIGINT: the first one runs shutdown() (running jobs finish and
   * are not retried), then the process ends as the signal would have ended it — unless
   * the application listens for that signal too, which then decides. A second signal
   * ends the process at once. False leaves signals alone. Default true.
   */
  handleSignals?: boolean;
  /**
   * Where the SDK's log records go: `(message, fields)` to the method of their level,
   * e.g. `console`. Default: silent.
   */
  logger?: Logger;
  /**
   * Sent as `authorization: Bearer <token>` on every call and on the worker stream, for an
   * engine with `auth` configured. Default: `SWITCHYARD_TOKEN` when set and non-empty;
   * `''` sends none.
   */
  token?: string;
  /**
   * TLS settings for an `https://` URL (which without them checks the engine against
   * Node's default roots); with a plaintext URL they are refused.
   */
  tls?: TlsOptions;
}

/** PEM files for TLS: the CA the engine's certificate must chain to, and for mTLS the client's identity. */
export interface TlsOptions {
  /** CA bundle to trust instead of Node's default roots. */
  caFile?: string;
  /** Client certificate chain (mTLS); needs keyFile. */
  certFile?: string;
  /** Client private key (mTLS); needs certFile. */
  keyFile?: string;
}

/** What a handler learns about the invocation it is running. */
export interface Context {
  /** The engine's id for this invocation (one per attempt). */
  invocationId: string;
  /** The function being invoked, e.g. "orders::process-payment". */
  functionId: string;
  /** 1-based attempt number; always 1 for synchronous and void calls. */
  attempt: number;
  /** max_retries + 1 of the queue; 1 for synchronous and void calls. */
  maxAttempts: number;
  /** The job id the producer got from enqueue; undefined outside queues. */
  messageReceiptId: string | undefined;
  /** The queue the job came from; undefined for synchronous and void calls. */
  queue: string | undefined;
  /** The FIFO message group; undefined for standard queues and direct calls. */
  group: string | undefined;
  /** When the job was first enqueued; undefined outside queues. */
  enqueuedAt: Date | undefined;
  /** For a topic subscriber's job: the topic it was published to; else undefined. */
  topic: string | undefined;
  /**
   * Fired when the engine cancels the invocation (timeout, shutdown, the job cancelled
   * with cancelJob: reason "cancelled") or the stream drops.
   */
  signal: AbortSignal;
  /**
   * Reports the queued job's progress — a number (e.g. percent done) and/or a small JSON
   * `detail` (at most 4 KiB encoded) — which getJob() shows while the job runs. Each report
   * replaces the previous one whole; reports made in one event-loop turn travel as the
   * last of them, and the engine stores at most one per job every 500 ms. Ignored for
   * synchronous and void calls and once the invocation has ended. Throws RangeError for
   * a non-finite value or an oversized detail, TypeError for a detail JSON cannot carry.
   */
  setProgress(value?: number | null, detail?: unknown): void;
}

/** A function handler: its return value (JSON) is the result; a throw is a failed attempt. */
export type Handler<P = any, R = unknown> = (payload: P, ctx: Context) => R | Promise<R>;

export interface CallOptions {
  /** How long the engine waits for the result (default 30000). */
  timeoutMs?: number;
}

export interface RegisterOptions {
  /** Free text shown by the engine. */
  description?: string;
}

/**
 * Options of an enqueue (a publish takes them all but `priority`). The SDK refuses
 * malformed values itself (a negative or fractional `delayMs`, an invalid Date, a
 * non-string key, a negative or fractional priority); what only the engine can judge it
 * answers: `delayMs` with `notBefore` is `CONFLICTING_DELAY`, a key over 256 bytes
 * `INVALID_IDEMPOTENCY_KEY`, a priority above 9 `INVALID_PRIORITY` (all InvalidArgumentError).
 */
export interface EnqueueOptions extends PublishOptions {
  /**
   * 0 (the default) to 9, standard queues only: a ready job of higher priority starts
   * before any of lower priority; equal priorities start in enqueue order. The engine
   * answers INVALID_PRIORITY above 9 and PRIORITY_ON_FIFO_QUEUE on a fifo queue (both
   * InvalidArgumentError); a negative or fractional value is a RangeError here.
   */
  priority?: number;
}

/** The options of a publish, for every subscriber's job: an enqueue's but `priority` (subscriber queues may be fifo). */
export interface PublishOptions {
  /** The job is delayed until the engine's now + delayMs. */
  delayMs?: number;
  /** The job is delayed until this instant (one in the past runs now). */
  notBefore?: Date;
  /**
   * A repeat with this key to the same queue within its dedup_window_ms (default 5
   * minutes) creates no job and resolves to the first job's receipt with `duplicate: true`.
   */
  idempotencyKey?: string;
}

export interface EnqueueAction {
  readonly type: 'enqueue';
  readonly queue: string;
  readonly delayMs?: number;
  readonly notBefore?: Date;
  readonly idempotencyKey?: string;
  readonly priority?: number;
}

export interface VoidAction {
  readonly type: 'void';
}

export type Action = EnqueueAction | VoidAction;

/** The request shape of iii's trigger(): snake_case keys, as in the proto. */
export interface TriggerRequest<P = unknown> {
  /** A function id, or a FunctionRef (only its id travels). */
  function_id: string | FunctionRef<any, any>;
  payload?: P;
  action?: Action;
  /** Synchronous calls only: how long the engine waits for the result (default 30000). */
  timeout_ms?: number;
}

export interface EnqueueReceipt {
  messageReceiptId: string;
  /** The idempotency key matched an earlier job: no job was created, the id is that job's. */
  duplicate: boolean;
}

/** The job a publish stored for one subscriber, on its queue `<topic>/<functionId>`. */
export interface SubscriberReceipt {
  functionId: string;
  queue: string;
  messageReceiptId: string;
  duplicate: boolean;
}

/** One receipt per subscriber, in topic_configs order; empty when nobody subscribes. */
export interface PublishReceipt {
  receipts: SubscriberReceipt[];
}

export interface QueueConfig {
  maxRetries: number;
  backoffMs: number;
  concurrency: number;
  /** "standard" or "fifo". */
  type: string;
  /** Set for fifo queues. */
  messageGroupField: string | undefined;
  timeoutMs: number;
  maxBackoffMs: number | undefined;
  jitter: boolean;
  /** How long an idempotency key is remembered, in ms. */
  dedupWindowMs: number;
  /** Set for a topic subscriber's queue ("<topic>/<functionId>"): its topic. */
  topic: string | undefined;
  /** How long completed and cancelled jobs are kept for getJob(), in ms (0: completed jobs are deleted at once, cancelled ones kept 60 s). */
  resultRetentionMs: number;
  /** Set when the queue has a rate limit. */
  rateLimit: RateLimit | undefined;
}

/** At most `perSecond` attempts start per second, with up to `burst` at once; jobs over it wait. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export interface QueueStats {
  ready: number;
  delayed: number;
  inFlight: number;
  dead: number;
  enqueued: number;
  completed: number;
  failed: number;
  deadLettered: number;
}

export interface QueueInfo {
  name: string;
  config: QueueConfig;
  stats: QueueStats;
}

/** The error a handler reported, as the engine stored it. */
export interface FunctionErrorInfo {
  message: string;
  code: string;
  stack: string;
}

export interface DeadLetter {
  messageReceiptId: string;
  queue: string;
  functionId: string;
  payload: JsonValue;
  /** undefined for standard queues. */
  group: string | undefined;
  attempts: number;
  lastError: FunctionErrorInfo | undefined;
  enqueuedAt: Date | undefined;
  deadLetteredAt: Date | undefined;
}

export interface ListDeadLettersOptions {
  /** Default 100 (engine side), at most 1000. */
  pageSize?: number;
  pageToken?: string;
}

export interface DeadLetterPage {
  entries: DeadLetter[];
  /** undefined when there are no more entries. */
  nextPageToken: string | undefined;
}

/**
 * A job's state, as getJob() reports it: `ready` (due, waiting for a worker slot),
 * `waiting` (fifo: behind an earlier job of its group), `delayed` (not yet due),
 * `in_flight`, `retrying` (an attempt failed; the next is due at `dueAt`), and the
 * finished ones `completed`, `dead` (in the DLQ) and `cancelled`.
 */
export type JobState =
  | 'ready'
  | 'waiting'
  | 'delayed'
  | 'in_flight'
  | 'retrying'
  | 'completed'
  | 'dead'
  | 'cancelled'
  | (string & {});

/** The latest progress a job's handler reported (ctx.setProgress). */
export interface JobProgress {
  /** undefined when the report had no number. */
  value: number | undefined;
  /** undefined when the report had no detail. */
  detail: JsonValue | undefined;
}

/** One job, by its receipt (getJob, cancelJob). */
export interface Job {
  messageReceiptId: string;
  queue: string;
  functionId: string;
  state: JobState;
  /** Attempts started so far. */
  attempts: number;
  /** max_retries + 1 of its queue. */
  maxAttempts: number;
  /** The last failed attempt's error; undefined when none failed. */
  lastError: FunctionErrorInfo | undefined;
  payload: JsonValue;
  /** The FIFO message group; undefined on standard queues. */
  group: string | undefined;
  /** 0 (default) to 9. */
  priority: number;
  enqueuedAt: Date | undefined;
  /** delayed / retrying: when it is due. */
  dueAt: Date | undefined;
  /** completed / dead / cancelled: when it ended. */
  finishedAt: Date | undefined;
  /** Until when a completed or cancelled job is kept (then getJob rejects with JobNotFoundError). */
  expiresAt: Date | undefined;
  /** completed: the handler's return value; else undefined. */
  result: JsonValue | undefined;
  /** The latest progress its handler reported; undefined when none. */
  progress: JobProgress | undefined;
  /** in_flight: cancelJob() was called; the job ends cancelled when its attempt stops. */
  cancelRequested: boolean;
  /** Set for a topic subscriber's job. */
  topic: string | undefined;
}

/**
 * What cancelJob() did: `cancelled` (it had not started and never will), `cancelling`
 * (in flight: its worker is told, and it ends cancelled), `already_cancelled`,
 * `already_finished` (it had completed or been dead-lettered; nothing changed).
 */
export type CancelOutcome = 'cancelled' | 'cancelling' | 'already_cancelled' | 'already_finished' | (string & {});

export interface CancelJobResult {
  outcome: CancelOutcome;
  /** The job after the call. */
  job: Job;
}

export interface WaitForResultOptions {
  /** How long to wait for the job to finish. Default 30000. */
  timeoutMs?: number;
  /** Stops the wait early: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

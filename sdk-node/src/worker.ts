/**
 * The Worker: one engine connection that serves registered functions and makes calls.
 *
 * Invariant: the engine always knows exactly the functions registered here — every new
 * stream starts with one register_function per function and then hello, and later
 * (un)registrations go out on the open stream as they happen — until shutdown(), which
 * unregisters everything first so no new work arrives, drains the handlers that are
 * running (their results are still sent), and only then closes the stream and channel.
 *
 * A worker is also a caller: trigger() and the Queues calls share its gRPC channel;
 * concurrent enqueues share EnqueueBatch calls (batcher.ts), each with its own answer. They
 * fail fast with UnavailableError while the engine is unreachable; only the worker stream
 * retries (connection.ts). A worker with no function is a pure caller: it opens no worker
 * stream (the engine does not count it as a worker) until a function is registered or
 * ready() is awaited.
 *
 * The URL is checked at construction, before any I/O (url.ts).
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_MAX_DELAY_MS } from './backoff.js';
import { EnqueueBatcher } from './batcher.js';
import { Connection } from './connection.js';
import { SDK_VERSION } from './contract.generated.js';
import { fromRpcStatus, fromServiceError, shutDown, UnavailableError, type SwitchyardError } from './errors.js';
import { FunctionRef, functionRef, idOf } from './functions.js';
import { InvocationRunner } from './invocations.js';
import { Log } from './logger.js';
import { drainOnSignals, forgetOnSignals } from './signals.js';
import type { WireRpcStatus, WireWorkerMessage } from './messages.js';
import { methods } from './proto.js';
import { DEFAULT_WAIT_MS, fromWireCancel, fromWireJob, waitForJob } from './jobs.js';
import { fromWireDeadLetters, fromWireQueues } from './queues.js';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  fromWirePublish,
  fromWireTrigger,
  toWirePublish,
  toWireTrigger,
  TriggerAction,
} from './trigger.js';
import type {
  CallOptions,
  CancelJobResult,
  DeadLetterPage,
  EnqueueAction,
  EnqueueOptions,
  EnqueueReceipt,
  Handler,
  Job,
  ListDeadLettersOptions,
  PublishOptions,
  PublishReceipt,
  QueueInfo,
  RegisterOptions,
  TriggerRequest,
  VoidAction,
  WaitForResultOptions,
  WorkerOptions,
} from './types.js';
import { channelCredentials, resolveToken, tokenInterceptors } from './security.js';
import { defaultUrl, parseEngineUrl } from './url.js';
import type { JsonValue } from './value.js';

const SDK_NAME = 'switchyard-node';

const DEFAULT_MAX_IN_FLIGHT = 64;
/** Headroom the client adds to a synchronous call's deadline over the engine's timeout. */
const CALL_DEADLINE_SLACK_MS = 5_000;
/** Deadline of enqueue, void and Queues calls. */
const UNARY_DEADLINE_MS = 30_000;

type Resolved = Required<Omit<WorkerOptions, 'logger' | 'token' | 'tls'>>;

interface ReadyWaiter {
  resolve: () => void;
  reject: (error: SwitchyardError) => void;
}

export interface WorkerEvents {
  /** A stream was welcomed by the engine. */
  connected: [workerId: string];
  /** The stream ended; the worker reconnects unless it is shutting down. */
  disconnected: [status: grpc.StatusObject];
  /** The engine applied a function registration (sent on the open stream). */
  registered: [functionId: string];
  /** The engine refused a function registration (PermissionDeniedError, or the typed error of its reason). */
  refused: [functionId: string, error: SwitchyardError];
  /** shutdown() has begun (called, or SIGTERM / SIGINT): no new work comes; running jobs may finish. */
  draining: [];
}

export class Worker extends EventEmitter<WorkerEvents> {
  /** The engine's URL in its canonical form, `http://HOST:PORT` or `https://HOST:PORT`. */
  readonly url: string;
  private readonly options: Resolved;
  private readonly log: Log;
  private readonly client: grpc.Client;
  private readonly functions = new Map<string, { handler: Handler; description: string }>();
  private readonly handlers = new Map<string, Handler>();
  private readonly connection: Connection;
  private readonly runner: InvocationRunner;
  private readonly batcher: EnqueueBatcher;
  private readyWaiters: ReadyWaiter[] = [];
  /** failFast: why the first connection failed; the worker is closed. */
  private gaveUp: SwitchyardError | undefined;
  /** Functions registered on the open stream after its handshake, not yet acknowledged. */
  private unacknowledged = new Set<string>();
  /** Functions the engine refused on the open stream, with the typed refusal. */
  private refused = new Map<string, SwitchyardError>();
  private closing = false;
  private startScheduled = false;
  private closed = false;
  private shutdownPromise: Promise<void> | undefined;
  private id = '';

  /** `url` as in registerWorker(); an InvalidUrlError is thrown before any I/O. */
  constructor(url?: string, options: WorkerOptions = {}) {
    super();
    const address = parseEngineUrl(url ?? defaultUrl());
    this.url = address.url;
    const credentials = channelCredentials(address, options.tls);
    const interceptors = tokenInterceptors(resolveToken(options.token));
    this.options = {
      maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      workerName: options.workerName ?? `node-${process.pid}@${hostname()}`,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? DEFAULT_MAX_DELAY_MS,
      shutdownGraceMs: options.shutdownGraceMs ?? 30_000,
      failFast: options.failFast ?? false,
      handleSignals: options.handleSignals ?? true,
    };
    this.log = new Log(options.logger);
    this.client = new grpc.Client(address.target, credentials, {
      interceptors,
      // Match the worker's own reconnect policy instead of grpc-js's 1 s … 120 s.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': this.options.maxReconnectDelayMs,
    });
    this.batcher = new EnqueueBatcher({
      client: this.client,
      url: this.url,
      isClosed: () => this.closed,
      triggerEnqueue: async (wire, deadline) => {
        const response = await this.unary(methods.trigger, wire, deadline - Date.now());
        return fromWireTrigger(wire.enqueue ? { type: 'enqueue', queue: wire.enqueue.queue } : undefined, response) as EnqueueReceipt;
      },
    });
    this.runner = new InvocationRunner(
      this.handlers,
      (results, generation) => this.connection.sendResults(results, generation),
      this.options.maxInFlight,
      this.log,
      (progress, generation) => this.connection.send({ progress }, generation),
    );
    this.connection = new Connection(
      this.client,
      {
        handshake: () => this.handshake(),
        onWelcome: (workerId, maxInFlight) => this.welcomed(workerId, maxInFlight),
        onInvoke: (invoke, generation) => this.runner.accept(invoke, generation),
        onCancel: (invocationId, reason) => this.runner.cancel(invocationId, reason),
        onRegistered: (functionId) => {
          this.unacknowledged.delete(functionId);
          this.emit('registered', functionId);
          this.notifyIfReady();
        },
        onRefused: (functionId, status) => this.refusedRegistration(functionId, status),
        onDisconnect: (generation, status) => {
          this.runner.disconnected(generation);
          this.emit('disconnected', status);
        },
        onGiveUp: (error) => this.giveUp(error),
      },
      { url: this.url, maxDelayMs: this.options.maxReconnectDelayMs, failFast: this.options.failFast, log: this.log },
    );
  }

  /** The id the engine gave this worker on the current stream ("" before the first welcome). */
  get workerId(): string {
    return this.id;
  }

  /** True while the worker stream is open and welcomed. */
  get isConnected(): boolean {
    return this.connection.isConnected;
  }

  /** Welcomed, and the engine has applied every function registered so far. */
  private get isReady(): boolean {
    return this.connection.isConnected && this.unacknowledged.size === 0;
  }

  /**
   * Resolves once the engine has welcomed this worker and applied every function
   * registered so far (so callers can reach them). Rejects with UnavailableError after
   * timeoutMs, at once with failFast when the first connection fails, and after shutdown().
   * Rejects with the engine's refusal when it refuses one of them (PermissionDeniedError
   * for a function outside the token's `functions`; the message names the function).
   * Opens the worker stream if no function has done so yet.
   */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.gaveUp !== undefined) return Promise.reject(this.gaveUp);
    const refusal = this.firstRefusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.closing) return Promise.reject(shutDown());
    if (this.isReady) return Promise.resolve();
    this.start();
    return new Promise((resolve, reject) => {
      const waiter: ReadyWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
        reject(this.notReady(timeoutMs));
      }, timeoutMs);
      this.readyWaiters.push(waiter);
    });
  }

  /**
   * Serves a function with `handler` from now on (before or after connecting). With a
   * FunctionRef the handler is checked against its types; with a string, annotate the
   * payload. Returns a FunctionRef whose result type is the handler's, for typed calls.
   */
  registerFunction<P, R>(fn: FunctionRef<P, R>, handler: Handler<P, R>, options?: RegisterOptions): FunctionRef<P, R>;
  registerFunction<P = any, R = unknown>(functionId: string, handler: Handler<P, R>, options?: RegisterOptions): FunctionRef<P, Awaited<R>>;
  registerFunction(fn: string | FunctionRef<any, any>, handler: Handler, options: RegisterOptions = {}): FunctionRef<any, any> {
    if (typeof handler !== 'function') throw new TypeError('registerFunction: handler must be a function');
    const functionId = idOf(fn);
    const isNew = !this.functions.has(functionId);
    const description = options.description ?? '';
    this.functions.set(functionId, { handler, description });
    this.handlers.set(functionId, handler);
    if (isNew && !this.closing && this.connection.send({ register_function: { function_id: functionId, description } })) {
      this.unacknowledged.add(functionId);
    }
    this.start();
    return typeof fn === 'string' ? functionRef(fn) : fn;
  }

  /** Stops serving `functionId`; invocations already running finish normally. */
  unregisterFunction(fn: string | FunctionRef<any, any>): void {
    const functionId = idOf(fn);
    if (!this.functions.delete(functionId)) return;
    this.handlers.delete(functionId);
    this.unacknowledged.delete(functionId);
    this.refused.delete(functionId);
    this.connection.send({ unregister_function: { function_id: functionId } });
    this.notifyIfReady();
  }

  /** Durable enqueue: resolves once the job is stored. */
  trigger<P = unknown>(request: TriggerRequest<P> & { action: EnqueueAction }): Promise<EnqueueReceipt>;
  /** Fire-and-forget: resolves once a worker has the call. */
  trigger<P = unknown>(request: TriggerRequest<P> & { action: VoidAction }): Promise<undefined>;
  /** Synchronous call: resolves to the function's return value. */
  trigger<R = JsonValue, P = unknown>(request: TriggerRequest<P> & { action?: undefined }): Promise<R>;
  async trigger(request: TriggerRequest): Promise<unknown> {
    const wire = toWireTrigger(request);
    if (request.action?.type === 'enqueue') {
      // Concurrent enqueues share EnqueueBatch calls; each still gets its own answer (batcher.ts).
      if (this.closed) throw this.gaveUp ?? shutDown();
      return this.batcher.enqueue(wire, UNARY_DEADLINE_MS);
    }
    const deadline =
      request.action === undefined
        ? (request.timeout_ms ?? DEFAULT_CALL_TIMEOUT_MS) + CALL_DEADLINE_SLACK_MS
        : UNARY_DEADLINE_MS;
    const response = await this.unary(methods.trigger, wire, deadline);
    return fromWireTrigger(request.action, response);
  }

  /**
   * Synchronous call: resolves to the function's return value (typed by a FunctionRef).
   * `timeoutMs` (default 30000) bounds the engine's wait for the result.
   */
  call<P, R>(fn: FunctionRef<P, R>, payload: NoInfer<P>, options?: CallOptions): Promise<R>;
  call<R = JsonValue>(functionId: string, payload?: unknown, options?: CallOptions): Promise<R>;
  call(fn: string | FunctionRef<any, any>, payload?: unknown, options: CallOptions = {}): Promise<unknown> {
    return this.trigger({ function_id: idOf(fn), payload, timeout_ms: options.timeoutMs });
  }

  /**
   * Durable enqueue of a job for `fn` to `queue` (payload typed by a FunctionRef), with
   * optional `delayMs` / `notBefore` / `idempotencyKey`: resolves once the job is stored.
   */
  enqueue<P>(queue: string, fn: FunctionRef<P, unknown>, payload: NoInfer<P>, options?: EnqueueOptions): Promise<EnqueueReceipt>;
  enqueue(queue: string, functionId: string, payload?: unknown, options?: EnqueueOptions): Promise<EnqueueReceipt>;
  enqueue(queue: string, fn: string | FunctionRef<any, any>, payload?: unknown, options: EnqueueOptions = {}): Promise<EnqueueReceipt> {
    return this.trigger({ function_id: idOf(fn), payload, action: TriggerAction.Enqueue({ queue, ...options }) });
  }

  /**
   * Publishes to a topic from topic_configs: one durable job per subscriber, each on its
   * own queue `<topic>/<functionId>` with its own retries and DLQ. The options apply to
   * every subscriber's job. Resolves to one receipt per subscriber, in config order;
   * rejects with TopicNotFoundError for a topic absent from the config.
   */
  async publish(topic: string, payload?: unknown, options: PublishOptions = {}): Promise<PublishReceipt> {
    const wire = toWirePublish(topic, payload, options);
    return fromWirePublish(await this.unary(methods.trigger, wire, UNARY_DEADLINE_MS));
  }

  /** Every queue with its effective config and stats. */
  async listQueues(): Promise<QueueInfo[]> {
    return fromWireQueues(await this.unary(methods.listQueues, {}, UNARY_DEADLINE_MS));
  }

  /** One page of a queue's dead letters, oldest first. */
  async listDeadLetters(queue: string, options: ListDeadLettersOptions = {}): Promise<DeadLetterPage> {
    const request = { queue, page_size: options.pageSize ?? 0, page_token: options.pageToken ?? '' };
    return fromWireDeadLetters(await this.unary(methods.listDeadLetters, request, UNARY_DEADLINE_MS));
  }

  /** Moves dead letters (all when `ids` is empty or omitted) back to their queue; resolves to the count. */
  async redriveDeadLetters(queue: string, ids: string[] = []): Promise<number> {
    const response = await this.unary(methods.redriveDeadLetters, { queue, ids }, UNARY_DEADLINE_MS);
    return Number(response.count ?? 0);
  }

  /** Deletes dead letters (all when `ids` is empty or omitted); resolves to the count. */
  async discardDeadLetters(queue: string, ids: string[] = []): Promise<number> {
    const response = await this.unary(methods.discardDeadLetters, { queue, ids }, UNARY_DEADLINE_MS);
    return Number(response.count ?? 0);
  }

  /**
   * One job by its receipt: its state, attempts, last error, times, progress, and for a
   * completed job its result. Live jobs are always found; completed and cancelled ones
   * while the queue's result_retention_ms keeps them (completed: none by default;
   * cancelled: 60 s) — after that, and for an id the queue never had, it rejects with
   * JobNotFoundError (reason JOB_NOT_FOUND).
   */
  async getJob(queue: string, messageReceiptId: string): Promise<Job> {
    return fromWireJob((await this.getJobWithin(queue, messageReceiptId, UNARY_DEADLINE_MS)).job);
  }

  /**
   * Cancels a job: one that has not started (ready, waiting, delayed, retrying) never runs
   * (`cancelled`); one in flight has its handler's signal aborted (reason "cancelled") and
   * ends cancelled, not retried nor dead-lettered (`cancelling`). Idempotent: a second
   * call answers `already_cancelled`, one for a completed or dead job `already_finished`
   * (nothing changes). `job` is the job after the call. JobNotFoundError for an unknown id.
   */
  async cancelJob(queue: string, messageReceiptId: string): Promise<CancelJobResult> {
    const request = { queue, message_receipt_id: messageReceiptId };
    return fromWireCancel(await this.unary(methods.cancelJob, request, UNARY_DEADLINE_MS));
  }

  /**
   * Waits for an enqueued job to finish, polling getJob() (every 50 ms at first, backing
   * off to every 1 s), and resolves to its result once it completed. Rejects with
   * JobDeadError (reason JOB_DEAD, the last error in `lastError` and `details`) when it was
   * dead-lettered, JobCancelledError (JOB_CANCELLED) when it was cancelled,
   * SwitchyardTimeoutError (TIMEOUT) when it has not finished within `timeoutMs` (default
   * 30000; the job itself carries on), and JobNotFoundError when the engine does not know
   * it — so the queue must keep results (`result_retention_ms`) for this to see them.
   */
  waitForResult<R = JsonValue>(queue: string, messageReceiptId: string, options: WaitForResultOptions = {}): Promise<R> {
    const request = { queue, messageReceiptId, timeoutMs: options.timeoutMs ?? DEFAULT_WAIT_MS, signal: options.signal };
    return waitForJob<R>(
      async (deadlineMs) => fromWireJob((await this.getJobWithin(queue, messageReceiptId, deadlineMs)).job),
      request,
    );
  }

  private getJobWithin(queue: string, messageReceiptId: string, deadlineMs: number) {
    return this.unary(methods.getJob, { queue, message_receipt_id: messageReceiptId }, deadlineMs);
  }

  /**
   * Unregisters every function, waits for running handlers (up to shutdownGraceMs, then
   * aborts their signals), closes the stream and the channel. Idempotent.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.drainAndClose();
    return this.shutdownPromise;
  }

  private async drainAndClose(): Promise<void> {
    this.closing = true;
    try {
      this.emit('draining');
    } catch {
      // A listener's failure must not stop the drain.
    }
    this.rejectReadyWaiters(shutDown());
    for (const functionId of this.functions.keys()) {
      this.connection.send({ unregister_function: { function_id: functionId } });
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.shutdownGraceMs)));
    await Promise.race([this.runner.idle(), grace]);
    clearTimeout(timer);
    if (this.runner.size > 0) this.runner.abortAll('worker shutting down');
    this.runner.flush();
    await this.connection.close(2_000);
    this.closed = true;
    this.client.close();
    forgetOnSignals(this);
  }

  /**
   * Registrations first, then hello. Each registration the engine applies is acknowledged
   * with `registered` (before the welcome); one it refuses (a worker token outside its
   * `functions` globs, an invalid id) with `refused`.
   */
  private handshake(): WireWorkerMessage[] {
    this.unacknowledged = new Set(this.closing ? [] : this.functions.keys());
    this.refused = new Map();
    const messages: WireWorkerMessage[] = [];
    if (!this.closing) {
      for (const [functionId, { description }] of this.functions) {
        messages.push({ register_function: { function_id: functionId, description } });
      }
    }
    messages.push({
      hello: {
        worker_name: this.options.workerName,
        sdk_name: SDK_NAME,
        sdk_version: SDK_VERSION,
        max_in_flight: this.options.maxInFlight,
        // This worker understands `invokes` batches.
        batches: true,
      },
    });
    return messages;
  }

  private welcomed(workerId: string, maxInFlight: number): void {
    this.id = workerId;
    this.runner.setLimit(maxInFlight);
    this.emit('connected', workerId);
    this.notifyIfReady();
  }

  /**
   * The engine refused `functionId`: nothing of it arrives here. Logged at ERROR; ready()
   * rejects with the typed error; with failFast the worker gives up and shuts down.
   */
  private refusedRegistration(functionId: string, status: WireRpcStatus): void {
    const error = fromRpcStatus(status);
    if (error.details.function_id === undefined) error.details.function_id = functionId;
    this.log.error(`the engine refused to register function '${functionId}': ${error.message}`, {
      function_id: functionId,
      reason: error.reason,
    });
    if (!this.functions.has(functionId)) return; // unregistered meanwhile
    this.unacknowledged.delete(functionId);
    this.refused.set(functionId, error);
    this.emit('refused', functionId, error);
    this.rejectReadyWaiters(error);
    if (this.options.failFast && this.gaveUp === undefined) {
      this.gaveUp = error;
      void this.shutdown();
    }
  }

  private firstRefusal(): SwitchyardError | undefined {
    return this.refused.values().next().value;
  }

  private notifyIfReady(): void {
    if (!this.isReady || this.readyWaiters.length === 0) return;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  private rejectReadyWaiters(error: SwitchyardError): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Opens the worker stream on the next tick (so functions registered in this one go out in the first handshake). */
  private start(): void {
    if (this.startScheduled || this.closing) return;
    this.startScheduled = true;
    if (this.options.handleSignals) drainOnSignals(this);
    process.nextTick(() => {
      if (!this.closing) this.connection.start();
    });
  }

  /** failFast and the first connection failed: the worker is done; ready() and calls reject with `error`. */
  private giveUp(error: SwitchyardError): void {
    this.gaveUp = error;
    this.closing = true;
    this.closed = true;
    this.rejectReadyWaiters(error);
    this.client.close();
    forgetOnSignals(this);
  }

  private notReady(timeoutMs: number): UnavailableError {
    const failure = this.connection.lastFailure;
    const message =
      failure !== undefined
        ? `cannot reach the Switchyard engine at ${this.url}: ${failure.text} (not ready after ${timeoutMs} ms, still retrying)`
        : this.connection.isConnected
          ? `not ready after ${timeoutMs} ms: the engine at ${this.url} has not acknowledged ${[...this.unacknowledged].join(', ')}`
          : `not ready after ${timeoutMs} ms: the engine at ${this.url} has not welcomed this worker and acknowledged its functions`;
    return new UnavailableError('UNAVAILABLE', message, grpc.status.UNAVAILABLE, { url: this.url });
  }

  private unary<Req, Res>(method: grpc.MethodDefinition<Req, Res>, request: Req, deadlineMs: number): Promise<Res> {
    if (this.closed || this.gaveUp !== undefined) return Promise.reject(this.gaveUp ?? shutDown());
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, response) => (error ? reject(fromServiceError(error, this.url)) : resolve(response as Res)),
      );
    });
  }
}

/**
 * Creates a worker for the engine at `url` — `http://HOST:PORT` or `HOST:PORT` (port
 * 49134 when omitted); without one, `SWITCHYARD_URL`, else http://127.0.0.1:49134. It
 * connects in the background once a function is registered. A URL outside that grammar
 * (`https://`, `ws://`, …) throws InvalidUrlError at once.
 */
export function registerWorker(url?: string, options?: WorkerOptions): Worker;
export function registerWorker(options?: WorkerOptions): Worker;
export function registerWorker(url?: string | WorkerOptions, options?: WorkerOptions): Worker {
  return typeof url === 'object' && url !== null ? new Worker(undefined, url) : new Worker(url, options);
}

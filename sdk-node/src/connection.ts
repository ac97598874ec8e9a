/**
 * The worker's Engine.Connect stream and its reconnect policy.
 *
 * Invariant: at most one stream is open at a time, and every stream starts with the
 * handshake (one register_function per registered function, then hello — so the engine's
 * `welcome` means every one of them is live) before anything else is written on it. Each
 * stream has a generation number; a message written for an older generation is dropped,
 * so a result can never reach an engine connection other than the one that sent the
 * invocation.
 *
 * Protocol:
 *   1. open(): start the bidi call and write the handshake.
 *   2. `welcome` marks the stream connected and resets the backoff. Invocations arrive as
 *      `invoke`, or — the hello says `batches` — several at once as `invokes`; each member
 *      of a batch is handed on exactly like a lone `invoke`. Results go back as `result`,
 *      or several as one `results` once the engine has sent an `invokes` on the stream
 *      (the proof that it knows batches: an older engine would drop a `results`).
 *   3. When the call ends for any reason (engine gone, restart, GOAWAY, no welcome within
 *      HANDSHAKE_TIMEOUT_MS), report the disconnect, log at WARN `cannot reach the
 *      Switchyard engine at URL: CAUSE; retrying in N ms` (fields url, cause, retry_in_ms;
 *      cause from reachability.ts, `connection_lost` for a stream that had been welcomed)
 *      and open again after N ms, N drawn with full jitter (backoff.ts). The next welcome
 *      logs INFO `connected to the Switchyard engine at URL` and resets the backoff.
 *   3a. With failFast, a failure before the first welcome ever is final: nothing is
 *      retried and onGiveUp gets UNAVAILABLE `cannot reach the Switchyard engine at URL: CAUSE`,
 *      or the engine's typed refusal when it answered UNAUTHENTICATED / PERMISSION_DENIED
 *      (without failFast a refused token is retried like any failure: the engine's config
 *      may change).
 *   4. close(): stop reconnecting, half-close the stream and wait for the engine to end it.
 */
import { status as grpcStatus, type Client, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { reconnectDelayMs } from './backoff.js';
import { fromServiceError, UnavailableError, type SwitchyardError } from './errors.js';
import type { Log } from './logger.js';
import type { WireEngineMessage, WireInvocationResult, WireInvoke, WireRpcStatus, WireWorkerMessage } from './messages.js';
import { methods } from './proto.js';
import { cannotReach, classify, unreachable, type Unreachable } from './reachability.js';

/** A stream not welcomed by then is given up as timed out (a peer that accepts TCP and says nothing). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectionHandlers {
  /** The messages every new stream starts with. */
  handshake(): WireWorkerMessage[];
  onWelcome(workerId: string, maxInFlight: number): void;
  onInvoke(invoke: WireInvoke, generation: number): void;
  onCancel(invocationId: string, reason: string): void;
  /** The engine applied a register_function sent on the current stream. */
  onRegistered(functionId: string): void;
  /** The engine refused a register_function sent on the current stream (`status`: why). */
  onRefused(functionId: string, status: WireRpcStatus): void;
  /** The stream of `generation` is gone; `status` says why. */
  onDisconnect(generation: number, status: StatusObject): void;
  /**
   * failFast: the first connection failed, and the connection has stopped for good:
   * UnavailableError, or the engine's own refusal (UnauthenticatedError, PermissionDeniedError).
   */
  onGiveUp(error: SwitchyardError): void;
}

export interface ConnectionOptions {
  /** The engine's canonical URL, as logs name it. */
  url: string;
  maxDelayMs: number;
  failFast: boolean;
  log: Log;
}

type Stream = ClientDuplexStream<WireWorkerMessage, WireEngineMessage>;

export class Connection {
  private call: Stream | undefined;
  private generation = 0;
  private failures = 0;
  private connected = false;
  private everConnected = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private handshakeTimedOut = false;
  /** Why the last attempt failed; undefined once connected. */
  private failure: Unreachable | undefined;
  /** The engine has sent an `invokes` batch on the current stream, so it takes `results` too. */
  private engineBatches = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private closed: (() => void) | undefined;

  constructor(
    private readonly client: Client,
    private readonly handlers: ConnectionHandlers,
    private readonly options: ConnectionOptions,
  ) {}

  /** True while the current stream has been welcomed. */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Why the engine could not be reached last time; undefined while connected or before any attempt. */
  get lastFailure(): Unreachable | undefined {
    return this.failure;
  }

  start(): void {
    if (this.call === undefined && this.timer === undefined && !this.stopped) this.open();
  }

  /**
   * Writes on the current stream. With `generation`, only if that stream is still the
   * current one. Returns false when the message was dropped.
   */
  send(message: WireWorkerMessage, generation?: number): boolean {
    const call = this.call;
    if (call === undefined || (generation !== undefined && generation !== this.generation)) return false;
    call.write(message);
    return true;
  }

  /**
   * Writes results on the stream of `generation` (false when it is gone): several in one
   * `results` message once the engine has shown it speaks batches — it sent an `invokes`
   * on this stream — else one `result` message each (an engine that predates batches
   * would drop a `results` message, and with it the results).
   */
  sendResults(results: WireInvocationResult[], generation: number): boolean {
    const call = this.call;
    if (call === undefined || generation !== this.generation) return false;
    if (results.length > 1 && this.engineBatches) {
      call.write({ results: { results } });
    } else {
      for (const result of results) call.write({ result });
    }
    return true;
  }

  /** Stops reconnecting, half-closes the stream and waits (up to timeoutMs) for it to end. */
  async close(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const call = this.call;
    if (call === undefined) return;
    const ended = new Promise<void>((resolve) => (this.closed = resolve));
    call.end();
    let timeout: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => (timeout = setTimeout(resolve, timeoutMs)));
    await Promise.race([ended, expired]);
    clearTimeout(timeout);
    if (this.call === call) call.cancel();
  }

  private open(): void {
    this.timer = undefined;
    const generation = ++this.generation;
    this.engineBatches = false;
    const call: Stream = this.client.makeBidiStreamRequest(
      methods.connect.path,
      methods.connect.requestSerialize,
      methods.connect.responseDeserialize,
    );
    this.call = call;
    this.handshakeTimedOut = false;
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimedOut = true;
      call.cancel();
    }, HANDSHAKE_TIMEOUT_MS);
    call.on('data', (message: WireEngineMessage) => this.receive(message, generation));
    // Every outcome, error or not, also arrives as exactly one 'status' event.
    call.on('error', () => {});
    call.on('status', (status: StatusObject) => this.ended(call, generation, status));
    for (const message of this.handlers.handshake()) call.write(message);
  }

  private receive(message: WireEngineMessage, generation: number): void {
    if (generation !== this.generation) return;
    if (message.invokes) {
      // A batch: each member is accepted exactly as a lone `invoke` would be, in order.
      this.engineBatches = true;
      for (const invoke of message.invokes.invokes ?? []) this.handlers.onInvoke(invoke, generation);
    } else if (message.invoke) {
      this.handlers.onInvoke(message.invoke, generation);
    } else if (message.cancel) {
      this.handlers.onCancel(message.cancel.invocation_id ?? '', message.cancel.reason ?? '');
    } else if (message.registered) {
      this.handlers.onRegistered(message.registered.function_id ?? '');
    } else if (message.refused) {
      this.handlers.onRefused(message.refused.function_id ?? '', message.refused.status ?? {});
    } else if (message.welcome) {
      clearTimeout(this.handshakeTimer);
      this.options.log.info(`connected to the Switchyard engine at ${this.options.url}`, { url: this.options.url });
      this.failures = 0;
      this.failure = undefined;
      this.connected = true;
      this.everConnected = true;
      this.handlers.onWelcome(message.welcome.worker_id ?? '', message.welcome.max_in_flight ?? 0);
    }
  }

  private ended(call: Stream, generation: number, status: StatusObject): void {
    if (this.call !== call) return;
    clearTimeout(this.handshakeTimer);
    const wasConnected = this.connected;
    this.call = undefined;
    this.connected = false;
    this.handlers.onDisconnect(generation, status);
    if (this.stopped) {
      this.closed?.();
      return;
    }
    const { url } = this.options;
    const failure = wasConnected
      ? unreachable('connection_lost', status.code === grpcStatus.OK ? 'the engine closed the stream' : status.details)
      : this.handshakeTimedOut
        ? unreachable('timed_out', `no answer to the handshake within ${HANDSHAKE_TIMEOUT_MS} ms`)
        : classify(status.code, status.details);
    this.failure = failure;
    if (this.options.failFast && !this.everConnected) {
      this.stopped = true;
      if (status.code === grpcStatus.UNAUTHENTICATED || status.code === grpcStatus.PERMISSION_DENIED) {
        // The engine answered: its "no" (a missing, unknown or too weak token) is the error.
        const refused = fromServiceError(Object.assign(new Error(status.details), status), url);
        this.options.log.error(`the Switchyard engine at ${url} refused this worker: ${refused.message}; not retrying (failFast)`, { url, cause: 'other' });
        this.handlers.onGiveUp(refused);
        return;
      }
      this.options.log.error(`${cannotReach(url, failure)}; not retrying (failFast)`, { url, cause: failure.cause });
      this.handlers.onGiveUp(new UnavailableError('UNAVAILABLE', cannotReach(url, failure), grpcStatus.UNAVAILABLE, { url, cause: failure.cause }));
      return;
    }
    this.failures += 1;
    const delay = reconnectDelayMs(this.failures, this.options.maxDelayMs);
    this.options.log.warn(`${cannotReach(url, failure)}; retrying in ${delay} ms`, { url, cause: failure.cause, retry_in_ms: delay });
    this.timer = setTimeout(() => this.open(), delay);
  }
}

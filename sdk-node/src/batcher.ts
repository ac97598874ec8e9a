/**
 * Enqueue coalescing: concurrent enqueues share `Engine.EnqueueBatch` calls.
 *
 * Invariant: every enqueue gets exactly the answer a single `Trigger` enqueue would have
 * given — its receipt, or its own typed error (an item naming an unknown queue fails with
 * QueueNotFoundError while the others in its batch succeed; a failure of the whole call,
 * e.g. the engine unreachable, fails each item of that call with that call's error).
 * Batching changes the cost, not the result.
 *
 * Protocol:
 * 1. `enqueue()` encodes the item to EnqueueItem wire bytes once (so a batch's size is
 *    known exactly), stamps its deadline, queues it and schedules a cut.
 * 2. A cut runs once the current macrotask and every microtask queued behind it have run
 *    (`setImmediate`). It sends batches while fewer than MAX_IN_FLIGHT calls are on the
 *    wire, each taking queued items in order up to MAX_ITEMS items or MAX_BYTES bytes
 *    (an item larger than that travels alone). Items that arrive while both slots are
 *    busy ride in the next batch. A lone producer therefore waits for nothing but the
 *    end of its own event-loop turn; many producers pay one round trip per batch.
 * 3. An answer settles its items in order: a receipt, or the per-item google.rpc.Status
 *    converted by the same rules as a failed call (errors.ts `fromRpcStatus`). Then the
 *    freed slot schedules the next cut, again with `setImmediate`.
 *
 * When to cut: producers awaiting an answer resume in microtasks that run after the
 * answer's callback returns — two or more promise hops later (this module's promise,
 * then `trigger()`'s, then the caller's `await`, more with wrappers in between). Cutting
 * synchronously in the callback, or one `queueMicrotask` later, runs before them and
 * sends whatever is queued without them; they then wait a whole round trip for the next
 * free slot. `setImmediate` runs after the microtask queue is empty, however deep the
 * caller's chain, and adds no timer delay: an answer arrives in the poll phase and the
 * check phase follows at once. Measured with 32 producers, 0–3 wrapper layers deep
 * (`BENCH_WRAP=3 node bench/producer.mjs`, release engine, 3 interleaved runs):
 * `setImmediate` 15–19k enqueues/s at 32 items per call, `queueMicrotask` 9–11k at 10.6
 * (each round split by wrapper depth); with no wrappers both give 32 per call. A lone
 * producer measured the same ~1.3–1.4k enqueues/s as one Trigger per enqueue.
 *
 * Deadlines: an enqueue has the deadline a `Trigger` enqueue has — UNARY_DEADLINE_MS from
 * the moment `trigger()` is called (`timeout_ms` bounds synchronous calls only; the
 * engine ignores it on enqueues, so items carrying it are batched like any other). A
 * batch call's deadline is the earliest of its items' — so no item is ever waited on
 * past its own deadline; since every enqueue gets the same 30 s, a later item can give
 * up at most its wait in the queue (under one round trip) early. An item whose deadline
 * passes while it waits for a slot fails with DEADLINE_EXCEEDED without being sent, as
 * the single call would have failed by then.
 *
 * Older engines: if EnqueueBatch answers UNIMPLEMENTED, that batch's items are sent again
 * as one `Trigger` each (nothing was stored), and this client sends every later enqueue
 * as a `Trigger` without trying EnqueueBatch again.
 *
 * Not done: no timer ever holds a batch back to fill it (a lone producer never waits),
 * and nothing is retried — a failed call fails its items, as a failed Trigger would.
 */
import * as grpc from '@grpc/grpc-js';
import { errorForReason, fromRpcStatus, fromServiceError, shutDown, SwitchyardError } from './errors.js';
import type { WireEnqueueBatchResponse, WireTriggerRequest } from './messages.js';
import { encodeEnqueueItem, methods } from './proto.js';
import { fromWireReceipt } from './trigger.js';
import type { EnqueueReceipt } from './types.js';

/**
 * Two, as in the Rust SDK: a second batch overlaps the first's round trip, and fewer,
 * larger batches cost both sides less per job than more, smaller ones.
 */
export const MAX_IN_FLIGHT = 2;
export const MAX_ITEMS = 1024;
export const MAX_BYTES = 1024 * 1024;

interface Pending {
  /** EnqueueItem wire bytes. */
  bytes: Uint8Array;
  /** The same enqueue as a Trigger request, for an engine without EnqueueBatch. */
  trigger: WireTriggerRequest;
  /** Absolute (Date.now()) deadline. */
  deadline: number;
  resolve: (receipt: EnqueueReceipt) => void;
  reject: (error: SwitchyardError) => void;
}

export interface BatcherHost {
  readonly client: grpc.Client;
  /** The engine's URL, named by transport errors. */
  readonly url: string;
  /** True once the client is shut down: queued items then fail with UNAVAILABLE. */
  isClosed(): boolean;
  /** One enqueue as a `Trigger` call with this absolute deadline (the fallback path). */
  triggerEnqueue(request: WireTriggerRequest, deadline: number): Promise<EnqueueReceipt>;
}

export class EnqueueBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** The engine answered UNIMPLEMENTED to EnqueueBatch: every enqueue goes out as a Trigger. */
  private triggerOnly = false;
  private readonly cutSoon = () => {
    this.scheduled = false;
    this.cut();
  };

  constructor(private readonly host: BatcherHost) {}

  /** Enqueues `request` (a Trigger request with an enqueue action) within `deadlineMs`. */
  enqueue(request: WireTriggerRequest, deadlineMs: number): Promise<EnqueueReceipt> {
    const deadline = Date.now() + deadlineMs;
    if (this.triggerOnly) return this.host.triggerEnqueue(request, deadline);
    // The item carries the action's enqueue options as the same fields.
    const { queue = '', ...options } = request.enqueue ?? {};
    const bytes = encodeEnqueueItem({ function_id: request.function_id, payload: request.payload, queue, ...options });
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, trigger: request, deadline, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.cutSoon);
  }

  private cut(): void {
    if (this.host.isClosed() || this.triggerOnly) {
      const queued = this.queue;
      this.queue = [];
      for (const item of queued) {
        if (this.host.isClosed()) item.reject(shutDown());
        else this.host.triggerEnqueue(item.trigger, item.deadline).then(item.resolve, item.reject);
      }
      return;
    }
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const now = Date.now();
      const batch: Pending[] = [];
      let bytes = 0;
      let deadline = Infinity;
      let taken = 0;
      for (; taken < this.queue.length && batch.length < MAX_ITEMS; taken++) {
        const item = this.queue[taken]!;
        if (item.deadline <= now) {
          item.reject(expired());
          continue;
        }
        if (batch.length > 0 && bytes + item.bytes.length > MAX_BYTES) break;
        bytes += item.bytes.length;
        deadline = Math.min(deadline, item.deadline);
        batch.push(item);
      }
      this.queue = taken === this.queue.length ? [] : this.queue.slice(taken);
      if (batch.length > 0) this.send(batch, deadline);
    }
  }

  private send(batch: Pending[], deadline: number): void {
    this.inFlight += 1;
    const method = methods.enqueueBatch;
    this.host.client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      batch.map((item) => item.bytes),
      new grpc.Metadata(),
      { deadline },
      (error, response) => {
        this.inFlight -= 1;
        if (error) this.failed(batch, error);
        else this.answered(batch, response!);
        this.schedule();
      },
    );
  }

  private answered(batch: Pending[], response: WireEnqueueBatchResponse): void {
    const results = response.results ?? [];
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      const result = results[i];
      const outcome = result?.outcome ?? (result?.receipt ? 'receipt' : result?.error ? 'error' : undefined);
      if (outcome === 'receipt') {
        item.resolve(fromWireReceipt(result?.receipt));
      } else if (outcome === 'error') {
        item.reject(fromRpcStatus(result?.error ?? {}));
      } else {
        item.reject(
          new SwitchyardError('INVALID_RESPONSE', `engine answered ${results.length} results to a batch of ${batch.length} enqueues`),
        );
      }
    }
  }

  private failed(batch: Pending[], error: grpc.ServiceError): void {
    if (error.code === grpc.status.UNIMPLEMENTED) {
      // An engine that predates EnqueueBatch stored nothing: send each item as a Trigger.
      this.triggerOnly = true;
      for (const item of batch) this.host.triggerEnqueue(item.trigger, item.deadline).then(item.resolve, item.reject);
      return;
    }
    for (const item of batch) item.reject(fromServiceError(error, this.host.url));
  }
}

function expired(): SwitchyardError {
  return errorForReason('DEADLINE_EXCEEDED', 'Deadline exceeded before the enqueue could be sent', grpc.status.DEADLINE_EXCEEDED);
}


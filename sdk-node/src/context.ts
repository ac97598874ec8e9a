/**
 * The Context a handler receives.
 *
 * Invariant: `signal` is aborted exactly when the engine stops waiting for this
 * invocation (cancel, lost stream, shutdown grace over), whether the handler looked at it
 * before or after — the AbortController is only created when a handler first reads
 * `signal`, since most never do and it is the costliest part of an invocation.
 */
import type { WireInvoke, WireTimestamp } from './messages.js';
import type { Context } from './types.js';
import { fromTimestamp } from './value.js';

export class InvocationContext implements Context {
  readonly invocationId: string;
  readonly functionId: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly messageReceiptId: string | undefined;
  readonly queue: string | undefined;
  readonly group: string | undefined;
  readonly topic: string | undefined;
  #enqueuedAt: WireTimestamp | undefined;
  #controller: AbortController | undefined;
  #abortReason: Error | undefined;

  constructor(invoke: WireInvoke) {
    const delivery = invoke.delivery;
    this.invocationId = invoke.invocation_id ?? '';
    this.functionId = invoke.function_id ?? '';
    this.attempt = delivery?.attempt || 1;
    this.maxAttempts = delivery?.max_attempts || 1;
    this.messageReceiptId = delivery?.message_receipt_id || undefined;
    this.queue = delivery?.queue || undefined;
    this.group = delivery?.group || undefined;
    this.topic = delivery?.topic || undefined;
    this.#enqueuedAt = delivery?.enqueued_at ?? undefined;
  }

  get enqueuedAt(): Date | undefined {
    return fromTimestamp(this.#enqueuedAt);
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Fires `signal` (once); later calls are ignored. */
  abort(reason: Error): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  /** What console.log and JSON.stringify show: every field, including the getters. */
  toJSON(): Omit<Context, 'signal'> & { aborted: boolean } {
    const { invocationId, functionId, attempt, maxAttempts, messageReceiptId, queue, group, enqueuedAt, topic } = this;
    return { invocationId, functionId, attempt, maxAttempts, messageReceiptId, queue, group, enqueuedAt, topic, aborted: this.#abortReason !== undefined };
  }
}

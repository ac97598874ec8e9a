/**
 * The Context a handler receives.
 *
 * Invariant: `signal` is aborted exactly when the engine stops waiting for this
 * invocation (cancel, lost stream, shutdown grace over), whether the handler looked at it
 * before or after — the AbortController is only created when a handler first reads
 * `signal`, since most never do and it is the costliest part of an invocation.
 * `setProgress` checks its arguments whatever happens to the report (so a handler's bug
 * shows in a unit test too), then hands the report to the reporter the worker gave —
 * none for a direct call (no job to show it); a test context (testing.ts) keeps every
 * report in `progress` instead.
 */
import type { WireInvoke, WireJobProgress, WireTimestamp } from './messages.js';
import type { Context } from './types.js';
import { fromTimestamp, toValueBytes } from './value.js';

/** The engine keeps a progress detail up to this size (encoded bytes); a larger one it drops. */
export const MAX_PROGRESS_DETAIL_BYTES = 4096;

/** Where a context's progress reports go: the worker's runner (invocations.ts). */
export type ProgressReporter = (invocationId: string, progress: WireJobProgress) => void;

/** A progress report as JobProgress, checked (see Context.setProgress). */
export function toWireProgress(value: number | null | undefined, detail: unknown): WireJobProgress {
  const progress: WireJobProgress = {};
  if (value !== undefined && value !== null) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new RangeError(`setProgress: value must be a finite number, got ${String(value)}`);
    }
    progress.value = value;
  }
  if (detail !== undefined) {
    const bytes = toValueBytes(detail);
    if (bytes.length > MAX_PROGRESS_DETAIL_BYTES) {
      throw new RangeError(`setProgress: detail is ${bytes.length} bytes encoded; the engine keeps at most ${MAX_PROGRESS_DETAIL_BYTES}`);
    }
    progress.detail = bytes;
  }
  return progress;
}

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
  #reporter: ProgressReporter | undefined;

  /** `reporter`: where setProgress reports go (undefined: nowhere). */
  constructor(invoke: WireInvoke, reporter?: ProgressReporter) {
    this.#reporter = reporter;
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

  setProgress(value?: number | null, detail?: unknown): void {
    this.report(toWireProgress(value, detail));
  }

  /** Hands a checked report on; a test context overrides this to keep it. */
  protected report(progress: WireJobProgress): void {
    this.#reporter?.(this.invocationId, progress);
  }

  /** Fires `signal` (once); later calls are ignored. */
  abort(reason: Error): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  /** What console.log and JSON.stringify show: every field, including the getters. */
  toJSON(): Omit<Context, 'signal' | 'setProgress'> & { aborted: boolean } {
    const { invocationId, functionId, attempt, maxAttempts, messageReceiptId, queue, group, enqueuedAt, topic } = this;
    return { invocationId, functionId, attempt, maxAttempts, messageReceiptId, queue, group, enqueuedAt, topic, aborted: this.#abortReason !== undefined };
  }
}

/**
 * TriggerAction, the enqueue options, and the conversion of trigger() and publish()
 * requests and responses.
 *
 * Invariant: the action decides the answer's shape — no action resolves to the function's
 * JSON value, `TriggerAction.Enqueue` to `{ messageReceiptId, duplicate }`,
 * `TriggerAction.Void` to undefined, a publish to `{ receipts }` — and a response whose
 * outcome does not match the request is an error, never silently reinterpreted. Enqueue
 * options are checked when the action is built (a bad value never reaches the engine);
 * what only the engine judges (CONFLICTING_DELAY, INVALID_IDEMPOTENCY_KEY) is its answer.
 */
import { answerPayload, SwitchyardError } from './errors.js';
import { idOf } from './functions.js';
import type { WireEnqueueOptions, WireEnqueueReceipt, WireTimestamp, WireTriggerRequest, WireTriggerResponse } from './messages.js';
import type {
  Action,
  EnqueueAction,
  EnqueueOptions,
  EnqueueReceipt,
  PublishOptions,
  PublishReceipt,
  TriggerRequest,
  VoidAction,
} from './types.js';
import { type JsonValue, toValueBytes } from './value.js';

/** Builders for the `action` of a trigger request. */
export const TriggerAction = {
  /**
   * Durable enqueue to a queue from queue_configs, with optional `delayMs` / `notBefore` /
   * `idempotencyKey` / `priority`; resolves to `{ messageReceiptId, duplicate }`.
   */
  Enqueue({ queue, ...options }: { queue: string } & EnqueueOptions): EnqueueAction {
    if (typeof queue !== 'string' || queue === '') throw new TypeError('TriggerAction.Enqueue needs a queue name');
    return { type: 'enqueue', queue, ...checkOptions(options) };
  },
  /** Fire-and-forget; resolves to undefined once a worker has the call. */
  Void(): VoidAction {
    return { type: 'void' };
  },
} as const;

const PUBLISH_OPTION_NAMES = ['delayMs', 'notBefore', 'idempotencyKey'];
const OPTION_NAMES = new Set([...PUBLISH_OPTION_NAMES, 'priority']);
/** The largest value the wire's uint32 carries; the engine's own range is 0–9. */
const MAX_WIRE_PRIORITY = 0xffff_ffff;

/**
 * The options, checked; throws TypeError/RangeError naming the bad one. Unset ones are
 * left out. `publish` refuses `priority` (a publish takes no priority).
 */
export function checkOptions(options: EnqueueOptions, what: 'enqueue' | 'publish' = 'enqueue'): EnqueueOptions {
  const allowed = what === 'enqueue' ? OPTION_NAMES : new Set(PUBLISH_OPTION_NAMES);
  const unknown = Object.keys(options).filter((key) => !allowed.has(key));
  if (unknown.length > 0) throw new TypeError(`unknown ${what} options: ${unknown.sort().join(', ')}`);
  const { delayMs, notBefore, idempotencyKey, priority } = options;
  const checked: EnqueueOptions = {};
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < 0) {
      throw new RangeError(`delayMs must be a non-negative integer of milliseconds, got ${String(delayMs)}`);
    }
    checked.delayMs = delayMs;
  }
  if (notBefore !== undefined) {
    if (!(notBefore instanceof Date) || Number.isNaN(notBefore.getTime())) {
      throw new TypeError(`notBefore must be a valid Date, got ${String(notBefore)}`);
    }
    checked.notBefore = notBefore;
  }
  if (idempotencyKey !== undefined) {
    if (typeof idempotencyKey !== 'string') throw new TypeError(`idempotencyKey must be a string, got ${typeof idempotencyKey}`);
    checked.idempotencyKey = idempotencyKey;
  }
  if (priority !== undefined) {
    // Range (0–9) and queue kind are the engine's to judge: INVALID_PRIORITY, PRIORITY_ON_FIFO_QUEUE.
    if (typeof priority !== 'number' || !Number.isSafeInteger(priority) || priority < 0 || priority > MAX_WIRE_PRIORITY) {
      throw new RangeError(`priority must be a non-negative integer (0 to 9), got ${String(priority)}`);
    }
    checked.priority = priority;
  }
  return checked;
}

/** The options as the proto fields of EnqueueAction / EnqueueItem / PublishAction. */
export function toWireOptions(options: EnqueueOptions): WireEnqueueOptions {
  const wire: WireEnqueueOptions = {};
  if (options.delayMs !== undefined) wire.delay_ms = String(options.delayMs);
  if (options.notBefore !== undefined) wire.not_before = toTimestamp(options.notBefore);
  if (options.idempotencyKey) wire.idempotency_key = options.idempotencyKey;
  // Sent only when set: any priority, even 0, is refused on a fifo queue.
  if (options.priority !== undefined) wire.priority = options.priority;
  return wire;
}

function toTimestamp(date: Date): WireTimestamp {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 };
}

/** Default engine-side timeout of a synchronous call (DESIGN §3). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export function toWireTrigger(request: TriggerRequest): WireTriggerRequest {
  const wire: WireTriggerRequest = { function_id: idOf(request.function_id), payload: toValueBytes(request.payload ?? null) };
  const action: Action | undefined = request.action;
  if (action?.type === 'enqueue') wire.enqueue = { queue: action.queue, ...toWireOptions(action) };
  else if (action?.type === 'void') wire.void = {};
  else if (action !== undefined) throw new TypeError(`unknown trigger action ${JSON.stringify(action)}`);
  if (request.timeout_ms !== undefined) wire.timeout_ms = String(Math.max(0, Math.floor(request.timeout_ms)));
  return wire;
}

/** A publish as a Trigger request: the publish action and no function (the subscribers are the functions). */
export function toWirePublish(topic: string, payload: unknown, options: PublishOptions): WireTriggerRequest {
  if (typeof topic !== 'string' || topic.trim() === '') throw new TypeError('publish needs a topic name');
  return { function_id: '', payload: toValueBytes(payload ?? null), publish: { topic, ...toWireOptions(checkOptions(options, 'publish')) } };
}

export function fromWireReceipt(receipt: WireEnqueueReceipt | null | undefined): EnqueueReceipt {
  return { messageReceiptId: receipt?.message_receipt_id ?? '', duplicate: receipt?.duplicate ?? false };
}

export function fromWireTrigger(action: Action | undefined, response: WireTriggerResponse): JsonValue | EnqueueReceipt | undefined {
  const expected = action === undefined ? 'result' : action.type === 'enqueue' ? 'receipt' : 'accepted';
  const outcome = outcomeOf(response);
  if (outcome !== expected) {
    throw new SwitchyardError('INVALID_RESPONSE', `engine answered ${outcome} to a request expecting ${expected}`);
  }
  if (outcome === 'receipt') return fromWireReceipt(response.receipt);
  if (outcome === 'accepted') return undefined;
  return answerPayload(response.result);
}

export function fromWirePublish(response: WireTriggerResponse): PublishReceipt {
  const outcome = outcomeOf(response);
  if (outcome !== 'published') {
    throw new SwitchyardError('INVALID_RESPONSE', `engine answered ${outcome} to a request expecting published`);
  }
  return {
    receipts: (response.published?.receipts ?? []).map((r) => ({
      functionId: r.function_id ?? '',
      queue: r.queue ?? '',
      messageReceiptId: r.message_receipt_id ?? '',
      duplicate: r.duplicate ?? false,
    })),
  };
}

function outcomeOf(response: WireTriggerResponse): NonNullable<WireTriggerResponse['outcome']> {
  return (
    response.outcome ?? (response.receipt ? 'receipt' : response.accepted ? 'accepted' : response.published ? 'published' : 'result')
  );
}

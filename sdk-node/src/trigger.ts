/**
 * TriggerAction and the conversion of trigger() requests and responses.
 *
 * Invariant: the action decides the answer's shape — no action resolves to the function's
 * JSON value, `TriggerAction.Enqueue` to `{ messageReceiptId }`, `TriggerAction.Void` to
 * undefined — and a response whose outcome does not match the action is an error, never
 * silently reinterpreted.
 */
import { answerPayload, SwitchyardError } from './errors.js';
import { idOf } from './functions.js';
import type { WireTriggerRequest, WireTriggerResponse } from './messages.js';
import type { Action, EnqueueAction, EnqueueReceipt, TriggerRequest, VoidAction } from './types.js';
import { type JsonValue, toValueBytes } from './value.js';

/** Builders for the `action` of a trigger request. */
export const TriggerAction = {
  /** Durable enqueue to a queue from queue_configs; resolves to `{ messageReceiptId }`. */
  Enqueue({ queue }: { queue: string }): EnqueueAction {
    return { type: 'enqueue', queue };
  },
  /** Fire-and-forget; resolves to undefined once a worker has the call. */
  Void(): VoidAction {
    return { type: 'void' };
  },
} as const;

/** Default engine-side timeout of a synchronous call (DESIGN §3). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export function toWireTrigger(request: TriggerRequest): WireTriggerRequest {
  const wire: WireTriggerRequest = { function_id: idOf(request.function_id), payload: toValueBytes(request.payload ?? null) };
  const action: Action | undefined = request.action;
  if (action?.type === 'enqueue') wire.enqueue = { queue: action.queue };
  else if (action?.type === 'void') wire.void = {};
  else if (action !== undefined) throw new TypeError(`unknown trigger action ${JSON.stringify(action)}`);
  if (request.timeout_ms !== undefined) wire.timeout_ms = String(Math.max(0, Math.floor(request.timeout_ms)));
  return wire;
}

export function fromWireTrigger(action: Action | undefined, response: WireTriggerResponse): JsonValue | EnqueueReceipt | undefined {
  const expected = action === undefined ? 'result' : action.type === 'enqueue' ? 'receipt' : 'accepted';
  const outcome = response.outcome ?? (response.receipt ? 'receipt' : response.accepted ? 'accepted' : 'result');
  if (outcome !== expected) {
    throw new SwitchyardError('INVALID_RESPONSE', `engine answered ${outcome} to a request expecting ${expected}`);
  }
  if (outcome === 'receipt') return { messageReceiptId: response.receipt?.message_receipt_id ?? '' };
  if (outcome === 'accepted') return undefined;
  return answerPayload(response.result);
}

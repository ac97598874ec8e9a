// Pure conversions: JSON <-> protobuf Value, error reasons, trigger requests and answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  FunctionFailedError,
  QueueNotFoundError,
  SwitchyardError,
  SwitchyardTimeoutError,
  TriggerAction,
  UnavailableError,
} from '../dist/index.js';
import { fromRpcStatus, fromServiceError } from '../dist/errors.js';
import { toFunctionError } from '../dist/invocations.js';
import { encodeStatusWithErrorInfo, methods } from '../dist/proto.js';
import { fromWireTrigger, toWireTrigger } from '../dist/trigger.js';
import { fromValue, toValue } from '../dist/value.js';

const roundTrip = (value) => {
  const { requestSerialize, requestDeserialize } = methods.trigger;
  const wire = requestDeserialize(requestSerialize({ function_id: 'f', payload: toValue(value) }));
  return fromValue(wire.payload);
};

test('json_values_survive_the_protobuf_round_trip', () => {
  const payload = { orderId: 'ord_789', amount: 12.5, ok: true, none: null, tags: ['a', 1, false, null], nested: { deep: [{}] } };
  assert.deepEqual(roundTrip(payload), payload);
  for (const scalar of ['', 'x', 0, -1.5, true, false, null, []]) assert.deepEqual(roundTrip(scalar), scalar);
});

test('payloads_are_encoded_as_json_stringify_would', () => {
  const when = new Date('2026-01-02T03:04:05.000Z');
  const input = { when, skip: undefined, fn() {}, list: [undefined, NaN, Infinity], n: -0 };
  assert.deepEqual(roundTrip(input), JSON.parse(JSON.stringify(input)));
  assert.throws(() => toValue({ big: 1n }), TypeError);
  const cycle = {};
  cycle.self = cycle;
  assert.throws(() => toValue(cycle), TypeError);
});

test('a_proto_key_in_a_payload_stays_data', () => {
  const decoded = fromValue({ structValue: { fields: { __proto__: { stringValue: 'x' } } } });
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.equal(Object.keys(decoded).length <= 1, true);
});

function serviceError(code, details, info) {
  const metadata = new grpc.Metadata();
  if (info) metadata.set('grpc-status-details-bin', Buffer.from(encodeStatusWithErrorInfo(code, details, info)));
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

test('error_reason_comes_from_error_info_first', () => {
  const error = fromServiceError(
    serviceError(grpc.status.NOT_FOUND, 'something else', { reason: 'QUEUE_NOT_FOUND', domain: 'switchyard', metadata: { queue: 'q' } }),
  );
  assert.ok(error instanceof QueueNotFoundError && error instanceof SwitchyardError);
  assert.equal(error.reason, 'QUEUE_NOT_FOUND');
  assert.equal(error.code, grpc.status.NOT_FOUND);
  assert.deepEqual(error.details, { queue: 'q' });
  assert.equal(error.name, 'QueueNotFoundError');
});

test('error_reason_falls_back_to_message_prefix_then_status_name', () => {
  const prefixed = fromServiceError(serviceError(grpc.status.DEADLINE_EXCEEDED, "TIMEOUT: no answer within 10 ms"));
  assert.ok(prefixed instanceof SwitchyardTimeoutError);
  assert.equal(prefixed.reason, 'TIMEOUT');
  assert.deepEqual(prefixed.details, {});
  const bare = fromServiceError(serviceError(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED'));
  assert.ok(bare instanceof UnavailableError);
  assert.equal(bare.reason, 'UNAVAILABLE');
  const unknownReason = fromServiceError(serviceError(grpc.status.INTERNAL, 'boom'));
  assert.equal(unknownReason.constructor, SwitchyardError);
  assert.equal(unknownReason.reason, 'INTERNAL');
});

test('a_batch_item_status_becomes_the_error_a_failed_call_with_that_status_raises', () => {
  const info = { reason: 'QUEUE_NOT_FOUND', domain: 'switchyard', metadata: { queue: 'q' } };
  const status = encodeStatusWithErrorInfo(grpc.status.NOT_FOUND, 'something else', info);
  // EnqueueBatchResponse { results: [EnqueueResult { error: <status> }] }, framed by hand.
  const result = Buffer.concat([Buffer.from([0x12, status.length]), status]);
  const response = methods.enqueueBatch.responseDeserialize(Buffer.concat([Buffer.from([0x0a, result.length]), result]));
  const fromItem = fromRpcStatus(response.results[0].error);
  const fromCall = fromServiceError(serviceError(grpc.status.NOT_FOUND, 'something else', info));
  for (const error of [fromItem, fromCall]) {
    assert.ok(error instanceof QueueNotFoundError);
    assert.equal(error.reason, 'QUEUE_NOT_FOUND');
    assert.equal(error.code, grpc.status.NOT_FOUND);
    assert.equal(error.message, 'something else');
    assert.deepEqual(error.details, { queue: 'q' });
  }
  const bare = fromRpcStatus({ code: grpc.status.INVALID_ARGUMENT, message: 'MISSING_GROUP_FIELD: no orderId' });
  assert.equal(bare.reason, 'MISSING_GROUP_FIELD');
  assert.equal(bare.code, grpc.status.INVALID_ARGUMENT);
});

test('function_failed_exposes_the_remote_error', () => {
  const error = fromServiceError(
    serviceError(grpc.status.UNKNOWN, 'FUNCTION_FAILED: boom', {
      reason: 'FUNCTION_FAILED',
      domain: 'switchyard',
      metadata: { message: 'boom', code: 'TypeError', stack: 'TypeError: boom\n    at x' },
    }),
  );
  assert.ok(error instanceof FunctionFailedError);
  assert.equal(error.remoteCode, 'TypeError');
  assert.equal(error.remoteMessage, 'boom');
  assert.match(error.remoteStack, /at x/);
});

test('handler_errors_are_reported_with_their_type_name_and_stack', () => {
  class PaymentDeclined extends Error {}
  const reported = toFunctionError(new PaymentDeclined('card declined'));
  assert.equal(reported.code, 'PaymentDeclined');
  assert.equal(reported.message, 'card declined');
  assert.match(reported.stack, /card declined\n\s+at /);
  assert.equal(toFunctionError(new RangeError('r')).code, 'RangeError');
  assert.deepEqual(toFunctionError('plain string'), { message: 'plain string', code: 'Error', stack: '' });
});

test('trigger_action_shapes_the_request_and_the_answer', () => {
  const enqueue = toWireTrigger({ function_id: 'f', payload: { a: 1 }, action: TriggerAction.Enqueue({ queue: 'payment' }) });
  assert.deepEqual(enqueue.enqueue, { queue: 'payment' });
  assert.equal(enqueue.void, undefined);
  assert.deepEqual(toWireTrigger({ function_id: 'f', action: TriggerAction.Void() }).void, {});
  const call = toWireTrigger({ function_id: 'f', payload: 1, timeout_ms: 250 });
  assert.equal(call.timeout_ms, '250');
  assert.equal(call.enqueue, undefined);

  assert.deepEqual(fromWireTrigger(TriggerAction.Enqueue({ queue: 'q' }), { receipt: { message_receipt_id: 'm1' }, outcome: 'receipt' }), {
    messageReceiptId: 'm1',
  });
  assert.equal(fromWireTrigger(TriggerAction.Void(), { accepted: {}, outcome: 'accepted' }), undefined);
  assert.equal(fromWireTrigger(undefined, { result: { numberValue: 3 }, outcome: 'result' }), 3);
  assert.equal(fromWireTrigger(undefined, {}), null);
  assert.throws(() => fromWireTrigger(undefined, { accepted: {}, outcome: 'accepted' }), SwitchyardError);
});

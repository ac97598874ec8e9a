// Pure conversions: the contract's payload fields, error reasons, handler errors, trigger
// requests and answers. (The payload codec itself: value.test.mjs.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
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
import { encodeEnqueueItem, encodeStatusWithErrorInfo, methods } from '../dist/proto.js';
import { fromWireTrigger, toWireTrigger } from '../dist/trigger.js';
import { fromValueBytes, toValueBytes } from '../dist/value.js';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

test('every_value_field_of_the_contract_travels_as_the_bytes_of_its_value', () => {
  // The contract as written, read by protobufjs alone: the independent view of the wire.
  const contract = new protobuf.Root();
  contract.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : PROTO_DIR + target);
  contract.loadSync(['switchyard/v1/engine.proto', 'switchyard/v1/queues.proto'], { keepCase: true }).resolveAll();
  const valueFields = contract
    .lookup('switchyard.v1')
    .nestedArray.filter((type) => type instanceof protobuf.Type)
    .flatMap((type) => type.fieldsArray.filter((f) => f.resolvedType?.fullName === '.google.protobuf.Value').map((f) => `${type.name}.${f.name}`));
  const Value = contract.lookupType('google.protobuf.Value');
  // Per Value field: the message that holds it, that message encoded by the SDK with
  // `bytes` in the field, and the field read back from the as-written and the SDK's decoding.
  const cases = (bytes) => [
    {
      field: 'TriggerRequest.payload',
      type: 'TriggerRequest',
      wire: methods.trigger.requestSerialize({ function_id: 'f', payload: bytes }),
      readAsWritten: (m) => m.payload,
      readBySdk: (wire) => methods.trigger.requestDeserialize(wire).payload,
    },
    {
      field: 'TriggerResponse.result',
      type: 'TriggerResponse',
      wire: methods.trigger.responseSerialize({ result: bytes }),
      readAsWritten: (m) => m.result,
      readBySdk: (wire) => methods.trigger.responseDeserialize(wire).result,
    },
    {
      // Only ever sent: the SDK has no decoder for it.
      field: 'EnqueueItem.payload',
      type: 'EnqueueItem',
      wire: encodeEnqueueItem({ function_id: 'f', payload: bytes, queue: 'q' }),
      readAsWritten: (m) => m.payload,
    },
    {
      field: 'InvocationResult.value',
      type: 'WorkerMessage',
      wire: methods.connect.requestSerialize({ result: { invocation_id: 'i', value: bytes } }),
      readAsWritten: (m) => m.result.value,
      readBySdk: (wire) => methods.connect.requestDeserialize(wire).result.value,
    },
    {
      field: 'Invoke.payload',
      type: 'EngineMessage',
      wire: methods.connect.responseSerialize({ invoke: { invocation_id: 'i', payload: bytes } }),
      readAsWritten: (m) => m.invoke.payload,
      readBySdk: (wire) => methods.connect.responseDeserialize(wire).invoke.payload,
    },
    {
      field: 'DeadLetter.payload',
      type: 'ListDeadLettersResponse',
      wire: methods.listDeadLetters.responseSerialize({ entries: [{ payload: bytes }] }),
      readAsWritten: (m) => m.entries[0].payload,
      readBySdk: (wire) => methods.listDeadLetters.responseDeserialize(wire).entries[0].payload,
    },
    {
      field: 'JobInfo.payload',
      type: 'GetJobResponse',
      wire: methods.getJob.responseSerialize({ job: { payload: bytes } }),
      readAsWritten: (m) => m.job.payload,
      readBySdk: (wire) => methods.getJob.responseDeserialize(wire).job.payload,
    },
    {
      field: 'JobInfo.result',
      type: 'CancelJobResponse',
      wire: methods.cancelJob.responseSerialize({ job: { result: bytes } }),
      readAsWritten: (m) => m.job.result,
      readBySdk: (wire) => methods.cancelJob.responseDeserialize(wire).job.result,
    },
    {
      // Sent by the worker (ctx.setProgress), read back by getJob.
      field: 'JobProgress.detail',
      type: 'WorkerMessage',
      wire: methods.connect.requestSerialize({ progress: { invocation_id: 'i', progress: { value: 1, detail: bytes } } }),
      readAsWritten: (m) => m.progress.progress.detail,
      readBySdk: (wire) => methods.connect.requestDeserialize(wire).progress.progress.detail,
    },
  ];
  assert.deepEqual(cases().map((c) => c.field).sort(), valueFields.sort(), 'a case for every Value field of the contract');
  // protobufjs's Struct drops a "__proto__" key: the as-written view gets a payload without one.
  const plain = toValueBytes({ orderId: 'ord_1', x: [1, 'two', null, { y: true }] });
  for (const { field, type, wire, readAsWritten } of cases(plain)) {
    const asWritten = readAsWritten(contract.lookupType(`switchyard.v1.${type}`).decode(wire));
    assert.ok(asWritten instanceof Value.ctor, `${field} is a google.protobuf.Value on the wire`);
    assert.deepEqual(Buffer.from(Value.encode(asWritten).finish()), Buffer.from(plain), field);
  }
  const withProtoKey = JSON.parse('{"__proto__": {"x": [1, "two", null]}, "orderId": "ord_1"}');
  for (const { field, wire, readBySdk } of cases(toValueBytes(withProtoKey))) {
    if (readBySdk) assert.equal(JSON.stringify(fromValueBytes(readBySdk(wire))), JSON.stringify(withProtoKey), field);
  }
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
    duplicate: false,
  });
  assert.equal(fromWireTrigger(TriggerAction.Void(), { accepted: {}, outcome: 'accepted' }), undefined);
  assert.equal(fromWireTrigger(undefined, { result: toValueBytes(3), outcome: 'result' }), 3);
  assert.equal(fromWireTrigger(undefined, {}), null);
  const garbled = () => fromWireTrigger(undefined, { result: Buffer.from([0x1a, 0x05, 0x61]), outcome: 'result' });
  assert.throws(garbled, (error) => error instanceof SwitchyardError && error.reason === 'INVALID_RESPONSE' && /truncated/.test(error.message));
  assert.throws(() => fromWireTrigger(undefined, { accepted: {}, outcome: 'accepted' }), SwitchyardError);
});

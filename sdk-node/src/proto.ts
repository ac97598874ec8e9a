/**
 * The loaded gRPC contract: method definitions for Engine and Queues, and the decoder
 * for the `grpc-status-details-bin` trailer.
 *
 * Invariant: the SDK's contract is the package's own `proto/` folder (a checked copy of
 * the repository's `proto/`, see scripts/sync-proto.mjs), embedded at build time as a
 * JSON descriptor (scripts/gen-contract.mjs, so no file is read at run time) with one
 * change that leaves the wire untouched: every google.protobuf.Value field is `bytes`
 * (its encoded Value), which value.ts writes and reads. Unary messages go through the proto-loader options below;
 * the Connect stream — the per-job hot path — skips proto-loader's object conversion and
 * encodes plain objects / decodes to message instances with protobufjs directly (about a
 * third less CPU per job). EnqueueBatch does the same: each item is
 * encoded to EnqueueItem bytes once, when its enqueue is made (so a batch's size is known
 * exactly), and a request is those bytes framed as the repeated `items` field.
 * `messages.ts` describes these shapes.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { CONTRACT_JSON } from './contract.generated.js';
import { varintLength } from './value.js';
import type {
  WireCancelJobResponse,
  WireCountResponse,
  WireDeadLetterIdsRequest,
  WireEnqueueBatchRequest,
  WireEnqueueBatchResponse,
  WireEnqueueItem,
  WireEngineMessage,
  WireErrorInfo,
  WireGetJobResponse,
  WireJobRequest,
  WireListDeadLettersRequest,
  WireListDeadLettersResponse,
  WireListQueuesResponse,
  WireRpcStatus,
  WireTriggerRequest,
  WireTriggerResponse,
  WireWorkerMessage,
} from './messages.js';

const contract = JSON.parse(CONTRACT_JSON) as protobuf.INamespace;

const packageDefinition = protoLoader.fromJSON(contract, {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});

type Service = Record<string, MethodDefinition<unknown, unknown>>;

function method<Req, Res>(service: string, name: string): MethodDefinition<Req, Res> {
  const definition = (packageDefinition[service] as unknown as Service | undefined)?.[name];
  if (definition === undefined) throw new Error(`switchyard: ${service}.${name} missing from the contract`);
  return definition as MethodDefinition<Req, Res>;
}

/** The same contract as protobufjs types, for the messages encoded and decoded without proto-loader. */
const types = protobuf.Root.fromJSON(contract);

/** A streaming method whose messages are encoded from plain objects and decoded to message instances. */
function rawStream<Req, Res>(service: string, name: string, request: string, response: string): MethodDefinition<Req, Res> {
  const base = method<Req, Res>(service, name);
  const Request = types.lookupType(request);
  const Response = types.lookupType(response);
  return {
    ...base,
    requestSerialize: (message: Req) => Request.encode(message as protobuf.Message).finish() as Buffer,
    requestDeserialize: (bytes: Buffer) => Request.decode(bytes) as unknown as Req,
    responseSerialize: (message: Res) => Response.encode(message as protobuf.Message).finish() as Buffer,
    responseDeserialize: (bytes: Buffer) => Response.decode(bytes) as unknown as Res,
  };
}

const EnqueueItemType = types.lookupType('switchyard.v1.EnqueueItem');
const EnqueueBatchResponseType = types.lookupType('switchyard.v1.EnqueueBatchResponse');

/** An EnqueueItem's wire bytes (what EnqueueBatch carries for it). */
export function encodeEnqueueItem(item: WireEnqueueItem): Uint8Array {
  return EnqueueItemType.encode(item as unknown as protobuf.Message).finish();
}

/** EnqueueBatchRequest bytes: each item as field 1 (`items`), length-delimited. */
function encodeEnqueueBatch(items: WireEnqueueBatchRequest): Buffer {
  let size = 0;
  for (const item of items) size += 1 + varintLength(item.length) + item.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const item of items) {
    out[at++] = 0x0a; // field 1, wire type 2
    let n = item.length;
    while (n > 0x7f) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
    out.set(item, at);
    at += item.length;
  }
  return out;
}

/** Engine.EnqueueBatch with the pre-encoded request above and a raw protobufjs answer. */
function enqueueBatchMethod(): MethodDefinition<WireEnqueueBatchRequest, WireEnqueueBatchResponse> {
  const base = method<WireEnqueueBatchRequest, WireEnqueueBatchResponse>('switchyard.v1.Engine', 'EnqueueBatch');
  return {
    ...base,
    requestSerialize: encodeEnqueueBatch,
    responseDeserialize: (bytes: Buffer) => EnqueueBatchResponseType.decode(bytes) as unknown as WireEnqueueBatchResponse,
    responseSerialize: (message: WireEnqueueBatchResponse) =>
      EnqueueBatchResponseType.encode(message as protobuf.Message).finish() as Buffer,
  };
}

/** Every RPC the SDK makes, with its wire types. */
export const methods = {
  trigger: method<WireTriggerRequest, WireTriggerResponse>('switchyard.v1.Engine', 'Trigger'),
  enqueueBatch: enqueueBatchMethod(),
  connect: rawStream<WireWorkerMessage, WireEngineMessage>(
    'switchyard.v1.Engine',
    'Connect',
    'switchyard.v1.WorkerMessage',
    'switchyard.v1.EngineMessage',
  ),
  listQueues: method<Record<string, never>, WireListQueuesResponse>('switchyard.v1.Queues', 'ListQueues'),
  listDeadLetters: method<WireListDeadLettersRequest, WireListDeadLettersResponse>(
    'switchyard.v1.Queues',
    'ListDeadLetters',
  ),
  redriveDeadLetters: method<WireDeadLetterIdsRequest, WireCountResponse>('switchyard.v1.Queues', 'RedriveDeadLetters'),
  discardDeadLetters: method<WireDeadLetterIdsRequest, WireCountResponse>('switchyard.v1.Queues', 'DiscardDeadLetters'),
  getJob: method<WireJobRequest, WireGetJobResponse>('switchyard.v1.Queues', 'GetJob'),
  cancelJob: method<WireJobRequest, WireCancelJobResponse>('switchyard.v1.Queues', 'CancelJob'),
};

const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

const StatusType = types.lookupType('google.rpc.Status');
const ErrorInfoType = types.lookupType('google.rpc.ErrorInfo');

/**
 * Reads the google.rpc.ErrorInfo out of a serialized google.rpc.Status (the
 * `grpc-status-details-bin` trailer). Undefined when absent or undecodable.
 */
export function decodeErrorInfo(statusBytes: Uint8Array): WireErrorInfo | undefined {
  try {
    return errorInfoOf((StatusType.decode(statusBytes) as unknown as WireRpcStatus).details);
  } catch {
    // A malformed trailer is not worth failing over: the caller falls back to the message.
    return undefined;
  }
}

/** The first google.rpc.ErrorInfo among a Status's details; undefined when absent or undecodable. */
export function errorInfoOf(details: WireRpcStatus['details']): WireErrorInfo | undefined {
  try {
    for (const any of details ?? []) {
      if (any.type_url === ERROR_INFO_TYPE_URL && any.value !== undefined) {
        return ErrorInfoType.toObject(ErrorInfoType.decode(any.value)) as WireErrorInfo;
      }
    }
  } catch {
    // As above: a malformed detail leaves the reason to the message.
  }
  return undefined;
}

/** Encodes a google.rpc.Status carrying one ErrorInfo — for tests of the decoder. */
export function encodeStatusWithErrorInfo(code: number, message: string, info: WireErrorInfo): Uint8Array {
  const value = ErrorInfoType.encode(ErrorInfoType.fromObject(info)).finish();
  const status = StatusType.fromObject({ code, message, details: [{ type_url: ERROR_INFO_TYPE_URL, value }] });
  return StatusType.encode(status).finish();
}

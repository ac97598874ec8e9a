/**
 * Wire shapes of the switchyard.v1 messages this SDK sends and receives.
 *
 * Invariant: these types describe exactly what `@grpc/proto-loader` produces and accepts
 * with the options in `proto.ts` (`keepCase`, `longs: String`, `enums: String`,
 * `oneofs: true`, no defaults) — and, for the Connect stream, what raw protobufjs
 * encoding accepts and decoding produces (see WireEngineMessage): field names are the
 * proto snake_case names, payloads are the bytes of their google.protobuf.Value (see
 * WireValueBytes), 64-bit integers are decimal strings, every field may be absent on the
 * way in, and a set oneof member is named by the virtual `kind`/`action`/`outcome`
 * field. They are hand-written from proto/switchyard/v1/*.proto; nothing here is
 * user-facing — the public camelCase shapes live in `types.ts`.
 */

/**
 * A 64-bit integer: a decimal string from proto-loader (`longs: String`), a Long object
 * from raw protobufjs decoding, or a number / string as we send it. `String()` of any of
 * them is its decimal form.
 */
export type WireLong = string | number | { toString(): string };

/**
 * A google.protobuf.Value as its wire bytes: `proto.ts` loads every Value field as
 * `bytes`, and value.ts converts (`toValueBytes` / `fromValueBytes`). Decoded, it is a
 * Buffer; an unset field is absent from a proto-loader object and, on a protobufjs
 * message instance, reads as protobufjs's default for bytes, a frozen empty array.
 */
export type WireValueBytes = Uint8Array | readonly never[];

/** google.protobuf.Timestamp */
export interface WireTimestamp {
  seconds?: WireLong;
  nanos?: number;
}

// ---- Engine.Trigger ---------------------------------------------------------------

export interface WireTriggerRequest {
  function_id: string;
  payload: WireValueBytes;
  void?: Record<string, never>;
  enqueue?: WireEnqueueAction;
  publish?: WirePublishAction;
  timeout_ms?: WireLong;
}

/** The enqueue options of EnqueueAction, EnqueueItem and PublishAction (unset: absent). */
export interface WireEnqueueOptions {
  delay_ms?: WireLong;
  not_before?: WireTimestamp;
  idempotency_key?: string;
  /** proto3 `optional`: present (even 0) only when the caller set it. */
  priority?: number;
}

export interface WireEnqueueAction extends WireEnqueueOptions {
  queue: string;
}

export interface WirePublishAction extends WireEnqueueOptions {
  topic: string;
}

export interface WireEnqueueReceipt {
  message_receipt_id?: string;
  duplicate?: boolean;
}

export interface WirePublishReceipt {
  receipts?: { function_id?: string; queue?: string; message_receipt_id?: string; duplicate?: boolean }[] | null;
}

export interface WireTriggerResponse {
  result?: WireValueBytes;
  receipt?: WireEnqueueReceipt;
  accepted?: Record<string, never>;
  published?: WirePublishReceipt;
  outcome?: 'result' | 'receipt' | 'accepted' | 'published';
}

// ---- Engine.EnqueueBatch ----------------------------------------------------------

/** One EnqueueItem, as encoded (raw protobufjs) when the enqueue is made. */
export interface WireEnqueueItem extends WireEnqueueOptions {
  function_id: string;
  payload: WireValueBytes;
  queue: string;
}

/**
 * An EnqueueBatchRequest as the SDK sends it: the items' EnqueueItem wire bytes, each
 * encoded once when its enqueue was made (see `proto.ts`).
 */
export type WireEnqueueBatchRequest = readonly Uint8Array[];

/** google.rpc.Status as a protobufjs message instance (details are google.protobuf.Any). */
export interface WireRpcStatus {
  code?: number;
  message?: string;
  details?: { type_url?: string; value?: Uint8Array }[] | null;
}

/** One item's answer, in item order, as a protobufjs message instance. */
export interface WireEnqueueResult {
  receipt?: WireEnqueueReceipt | null;
  error?: WireRpcStatus | null;
  outcome?: 'receipt' | 'error';
}

export interface WireEnqueueBatchResponse {
  results?: WireEnqueueResult[] | null;
}

// ---- Engine.Connect ---------------------------------------------------------------

export interface WireFunctionError {
  message?: string;
  code?: string;
  stack?: string;
  /** The handler threw NonRetryableError: a queued job goes straight to the DLQ. */
  non_retryable?: boolean;
}

export interface WireInvocationResult {
  invocation_id: string;
  value?: WireValueBytes;
  error?: WireFunctionError;
}

/** Worker → engine. Exactly one member is set. */
export interface WireWorkerMessage {
  hello?: { worker_name: string; sdk_name: string; sdk_version: string; max_in_flight: number; batches: boolean };
  register_function?: { function_id: string; description: string };
  unregister_function?: { function_id: string };
  result?: WireInvocationResult;
  /** Several results in one message. */
  results?: { results: WireInvocationResult[] };
  /** A running queued job's progress (the engine ignores it for direct calls and ended invocations). */
  progress?: WireProgress;
}

/** JobProgress: both members optional; a report replaces the previous one whole. */
export interface WireJobProgress {
  value?: number | null;
  /** Empty (unset) = no detail. */
  detail?: WireValueBytes;
}

export interface WireProgress {
  invocation_id: string;
  progress: WireJobProgress;
}

export interface WireDelivery {
  queue?: string;
  message_receipt_id?: string;
  attempt?: number;
  max_attempts?: number;
  enqueued_at?: WireTimestamp | null;
  group?: string;
  topic?: string;
}

export interface WireInvoke {
  invocation_id?: string;
  function_id?: string;
  payload?: WireValueBytes | null;
  delivery?: WireDelivery | null;
}

/**
 * Engine → worker, as a protobufjs message instance (see `proto.ts`): an unset message
 * field is null, an unset scalar reads as its default, `kind` names the set member.
 */
export interface WireEngineMessage {
  welcome?: { worker_id?: string; max_in_flight?: number } | null;
  invoke?: WireInvoke | null;
  cancel?: { invocation_id?: string; reason?: string } | null;
  registered?: { function_id?: string } | null;
  /** Several invocations in one message (only after a hello with `batches`). */
  invokes?: { invokes?: WireInvoke[] | null } | null;
  /** A register_function the engine did not apply, with its status (as EnqueueResult.error). */
  refused?: { function_id?: string; status?: WireRpcStatus | null } | null;
  kind?: 'welcome' | 'invoke' | 'cancel' | 'registered' | 'invokes' | 'refused';
}

// ---- Queues -----------------------------------------------------------------------

export interface WireQueueConfig {
  max_retries?: number;
  backoff_ms?: WireLong;
  concurrency?: number;
  type?: string;
  message_group_field?: string;
  timeout_ms?: WireLong;
  max_backoff_ms?: WireLong;
  jitter?: boolean;
  dedup_window_ms?: WireLong;
  topic?: string;
  result_retention_ms?: WireLong;
  rate_limit?: { per_second?: number; burst?: number } | null;
}

export interface WireQueueStats {
  ready?: WireLong;
  delayed?: WireLong;
  in_flight?: WireLong;
  dead?: WireLong;
  enqueued?: WireLong;
  completed?: WireLong;
  failed?: WireLong;
  dead_lettered?: WireLong;
}

export interface WireListQueuesResponse {
  queues?: { name?: string; config?: WireQueueConfig; stats?: WireQueueStats }[];
}

export interface WireDeadLetter {
  message_receipt_id?: string;
  queue?: string;
  function_id?: string;
  payload?: WireValueBytes;
  group?: string;
  attempts?: number;
  last_error?: WireFunctionError;
  enqueued_at?: WireTimestamp;
  dead_lettered_at?: WireTimestamp;
}

export interface WireListDeadLettersRequest {
  queue: string;
  page_size: number;
  page_token: string;
}

export interface WireListDeadLettersResponse {
  entries?: WireDeadLetter[];
  next_page_token?: string;
}

/** RedriveDeadLettersRequest and DiscardDeadLettersRequest. */
export interface WireDeadLetterIdsRequest {
  queue: string;
  ids: string[];
}

/** RedriveDeadLettersResponse and DiscardDeadLettersResponse. */
export interface WireCountResponse {
  count?: WireLong;
}

export interface WireJobRequest {
  queue: string;
  message_receipt_id: string;
}

/** JobInfo, as proto-loader decodes it (unset fields absent). */
export interface WireJobInfo {
  message_receipt_id?: string;
  queue?: string;
  function_id?: string;
  state?: string;
  attempts?: number;
  max_attempts?: number;
  last_error?: WireFunctionError | null;
  payload?: WireValueBytes;
  group?: string;
  priority?: number;
  enqueued_at?: WireTimestamp | null;
  due_at?: WireTimestamp | null;
  finished_at?: WireTimestamp | null;
  expires_at?: WireTimestamp | null;
  result?: WireValueBytes;
  progress?: WireJobProgress | null;
  cancel_requested?: boolean;
  topic?: string;
}

export interface WireGetJobResponse {
  job?: WireJobInfo | null;
}

export interface WireCancelJobResponse {
  outcome?: string;
  job?: WireJobInfo | null;
}

// ---- google.rpc -------------------------------------------------------------------

export interface WireErrorInfo {
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
}

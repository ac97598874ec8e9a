/**
 * @switchyard/sdk — workers and callers for the Switchyard job engine.
 *
 * Map: `worker.ts` (the Worker facade: registration, trigger, Queues calls, shutdown) over
 * `connection.ts` (the Connect stream and reconnects) and `invocations.ts` (running
 * handlers, reporting results) and `batcher.ts` (concurrent enqueues coalesced into
 * EnqueueBatch calls); `trigger.ts` and `queues.ts` convert requests and answers, `jobs.ts`
 * those of one job (getJob, cancelJob) and polls for its result (waitForResult);
 * `non-retryable.ts` is the handler's "do not retry" error;
 * `errors.ts` types every failure; `security.ts` turns the `token` and `tls` options into
 * the channel's credentials and bearer header; `value.ts` writes and reads payloads as the bytes of
 * protobuf Values; `proto.ts` loads the contract from proto/, whose wire shapes
 * `messages.ts` spells out.
 */
export { registerWorker, Worker } from './worker.js';
export type { WorkerEvents } from './worker.js';
export { TriggerAction } from './trigger.js';
export { FunctionRef, functionRef } from './functions.js';
export {
  SwitchyardError,
  QueueNotFoundError,
  TopicNotFoundError,
  MissingGroupFieldError,
  FunctionNotFoundError,
  FunctionFailedError,
  SwitchyardTimeoutError,
  PayloadTooLargeError,
  InvalidArgumentError,
  JobNotFoundError,
  JobDeadError,
  JobCancelledError,
  UnavailableError,
  InvalidUrlError,
  UnauthenticatedError,
  PermissionDeniedError,
} from './errors.js';
export type { ErrorReason } from './errors.js';
export { NonRetryableError } from './non-retryable.js';
export type * from './types.js';
export { createTestContext, runHandler, startTestEngine } from './testing.js';
export type { HandlerOutcome, TestContext, TestContextFields, TestEngine, TestEngineOptions } from './testing.js';

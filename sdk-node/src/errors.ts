/**
 * Typed errors for every rejection the engine (or the transport) can produce.
 *
 * Invariant: every failed RPC surfaces as exactly one `SwitchyardError` subclass chosen by
 * its reason, and the reason is read in this order — the google.rpc.ErrorInfo in the
 * `grpc-status-details-bin` trailer; else the status message's prefix before the first
 * ": " when it looks like a reason (UPPER_SNAKE); else the gRPC status code's name
 * (UNAVAILABLE when the engine cannot be reached). `details` is the ErrorInfo metadata
 * (for FUNCTION_FAILED: the worker's message, code and stack), `{}` when there is none.
 *
 * One error text in every SDK: the message is the engine's status message verbatim, its
 * `REASON: ` prefix included. A failure the engine did not write (the transport's, or the
 * SDK's own) is given the same form, `REASON: text`; when the engine could not be reached,
 * the text is `cannot reach the Switchyard engine at URL: CAUSE` (reachability.ts).
 * A google.rpc.Status carried in a response (one item's failure in an EnqueueBatch
 * answer) follows the same rules, so it raises the error the lone call would have.
 */
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { decodeErrorInfo, errorInfoOf } from './proto.js';
import { cannotReach, classify } from './reachability.js';
import type { WireErrorInfo, WireRpcStatus, WireValueBytes } from './messages.js';
import type { FunctionErrorInfo, Job } from './types.js';
import { fromValueBytes, type JsonValue } from './value.js';

/** The stable reasons of DESIGN §3; other strings may appear for transport failures. */
export type ErrorReason =
  | 'QUEUE_NOT_FOUND'
  | 'TOPIC_NOT_FOUND'
  | 'CONFLICTING_DELAY'
  | 'INVALID_IDEMPOTENCY_KEY'
  | 'INVALID_PRIORITY'
  | 'PRIORITY_ON_FIFO_QUEUE'
  | 'JOB_NOT_FOUND'
  | 'JOB_DEAD'
  | 'JOB_CANCELLED'
  | 'MISSING_GROUP_FIELD'
  | 'FUNCTION_NOT_FOUND'
  | 'FUNCTION_FAILED'
  | 'TIMEOUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_ARGUMENT'
  | 'UNAVAILABLE'
  | 'INVALID_URL'
  | 'TOKEN_MISSING'
  | 'TOKEN_INVALID'
  | 'PERMISSION_DENIED'
  | (string & {});

export class SwitchyardError extends Error {
  /** Stable machine-readable reason, e.g. "QUEUE_NOT_FOUND". */
  readonly reason: ErrorReason;
  /** The gRPC status code number (5 = NOT_FOUND, …). */
  readonly code: number;
  /** The ErrorInfo metadata; `{}` when the engine sent none. */
  readonly details: Record<string, string>;

  /** `message` gets the `REASON: ` prefix unless it already starts with it (client-side errors take the engine's form). */
  constructor(reason: ErrorReason, message: string, code: number = GrpcStatus.UNKNOWN, details: Record<string, string> = {}) {
    super(message.startsWith(`${reason}: `) ? message : `${reason}: ${message}`);
    this.name = new.target.name;
    this.reason = reason;
    this.code = code;
    this.details = details;
  }
}

/** Enqueue named a queue absent from queue_configs. */
export class QueueNotFoundError extends SwitchyardError {}
/** Publish named a topic absent from topic_configs. */
export class TopicNotFoundError extends SwitchyardError {}
/** A fifo payload lacks its message_group_field (or it is null / not a string or number). */
export class MissingGroupFieldError extends SwitchyardError {}
/** Sync or void call to a function that no connected worker registered. */
export class FunctionNotFoundError extends SwitchyardError {}
/** Sync call whose handler failed; the worker's error is in `details` and the getters. */
export class FunctionFailedError extends SwitchyardError {
  /** The handler's error message as the worker reported it. */
  get remoteMessage(): string {
    return this.details.message ?? '';
  }
  /** The handler's error type, e.g. "TypeError". */
  get remoteCode(): string {
    return this.details.code ?? '';
  }
  /** The handler's stack trace / traceback. */
  get remoteStack(): string {
    return this.details.stack ?? '';
  }
}
/** Sync call not answered within its timeout (named so it does not shadow DOM's TimeoutError). */
export class SwitchyardTimeoutError extends SwitchyardError {}
/** Payload over the engine's max_payload_bytes. */
export class PayloadTooLargeError extends SwitchyardError {}
/**
 * Empty function id or otherwise malformed request; also the enqueue options' reasons
 * CONFLICTING_DELAY (delayMs with notBefore), INVALID_IDEMPOTENCY_KEY (over 256 bytes),
 * INVALID_PRIORITY (above 9; details `priority`, `max`) and PRIORITY_ON_FIFO_QUEUE (any
 * priority on a fifo queue; details `queue`).
 */
export class InvalidArgumentError extends SwitchyardError {}
/**
 * getJob / cancelJob / waitForResult: the queue has no job with this receipt — it never
 * existed, or it completed or was cancelled and is no longer kept (the queue's
 * result_retention_ms). `details.queue` and `details.message_receipt_id` name it.
 */
export class JobNotFoundError extends SwitchyardError {}

/** Raised by waitForResult() (never by the engine): how the job ended, as getJob() last saw it. */
abstract class JobEndedError extends SwitchyardError {
  /** The job as the last getJob() answered it. */
  job: Job | undefined;
}

/**
 * waitForResult(): the job was dead-lettered (reason JOB_DEAD). `lastError` and `details`
 * (`message`, `code`, `stack`, plus `queue`, `message_receipt_id`, `attempts`) carry its
 * last error.
 */
export class JobDeadError extends JobEndedError {
  /** The last attempt's error, as the engine stored it. */
  get lastError(): FunctionErrorInfo | undefined {
    return this.job?.lastError;
  }
}

/** waitForResult(): the job was cancelled (reason JOB_CANCELLED). */
export class JobCancelledError extends JobEndedError {}

/** Engine unreachable, shutting down, or its store failed. */
export class UnavailableError extends SwitchyardError {}
/** The engine URL is outside the grammar (url.ts); raised at construction, before any I/O. */
export class InvalidUrlError extends SwitchyardError {}

/**
 * The engine wants a token and got none (reason TOKEN_MISSING) or one it does not know
 * (TOKEN_INVALID); gRPC status UNAUTHENTICATED. Pass `token` or set SWITCHYARD_TOKEN.
 */
export class UnauthenticatedError extends SwitchyardError {}
/**
 * The token is known but may not do this (reason PERMISSION_DENIED): a role it lacks, or a
 * queue or function outside its globs. `details.token` is the token's name (never its
 * secret); `details` also names what was refused (`role`, `queue` or `function`).
 */
export class PermissionDeniedError extends SwitchyardError {}

type ErrorClass = new (reason: ErrorReason, message: string, code?: number, details?: Record<string, string>) => SwitchyardError;

const CLASS_BY_REASON: Record<string, ErrorClass> = {
  QUEUE_NOT_FOUND: QueueNotFoundError,
  TOPIC_NOT_FOUND: TopicNotFoundError,
  MISSING_GROUP_FIELD: MissingGroupFieldError,
  FUNCTION_NOT_FOUND: FunctionNotFoundError,
  FUNCTION_FAILED: FunctionFailedError,
  TIMEOUT: SwitchyardTimeoutError,
  DEADLINE_EXCEEDED: SwitchyardTimeoutError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  RESOURCE_EXHAUSTED: PayloadTooLargeError,
  INVALID_ARGUMENT: InvalidArgumentError,
  CONFLICTING_DELAY: InvalidArgumentError,
  INVALID_IDEMPOTENCY_KEY: InvalidArgumentError,
  INVALID_PRIORITY: InvalidArgumentError,
  PRIORITY_ON_FIFO_QUEUE: InvalidArgumentError,
  JOB_NOT_FOUND: JobNotFoundError,
  JOB_DEAD: JobDeadError,
  JOB_CANCELLED: JobCancelledError,
  UNAVAILABLE: UnavailableError,
  INVALID_URL: InvalidUrlError,
  TOKEN_MISSING: UnauthenticatedError,
  TOKEN_INVALID: UnauthenticatedError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
};

const REASON_PREFIX = /^([A-Z][A-Z0-9_]*): /;

/** What every call made after shutdown() rejects with. */
export function shutDown(): UnavailableError {
  return new UnavailableError('UNAVAILABLE', 'the worker has been shut down', GrpcStatus.UNAVAILABLE);
}

/** Builds the typed error for a reason (unknown reasons give a plain SwitchyardError). */
export function errorForReason(
  reason: ErrorReason,
  message: string,
  code: number = GrpcStatus.UNKNOWN,
  details: Record<string, string> = {},
): SwitchyardError {
  const Class = CLASS_BY_REASON[reason] ?? SwitchyardError;
  return new Class(reason, message, code, details);
}

/**
 * Converts a failed grpc-js call to the engine at `url` into its typed SwitchyardError.
 * An UNAVAILABLE the engine did not write (no ErrorInfo, no reason prefix) is the
 * transport's: its message names the URL and the cause.
 */
export function fromServiceError(err: ServiceError, url?: string): SwitchyardError {
  const code = typeof err.code === 'number' ? err.code : GrpcStatus.UNKNOWN;
  let message = err.details || err.message;
  const trailer = err.metadata?.get('grpc-status-details-bin')[0];
  const info = trailer instanceof Uint8Array ? decodeErrorInfo(trailer) : undefined;
  if (info === undefined && code === GrpcStatus.UNAVAILABLE && url !== undefined && !REASON_PREFIX.test(message)) {
    message = cannotReach(url, classify(code, message));
  }
  const error = typedError(code, message, info);
  error.cause = err;
  return error;
}

/**
 * Converts a google.rpc.Status carried in a response (one item's failure in an
 * EnqueueBatch answer) into the error a call failing with that status raises: the same
 * reason rules and class as fromServiceError, since the engine puts in it exactly what
 * it would have sent as the call's status and trailer.
 */
export function fromRpcStatus(status: WireRpcStatus): SwitchyardError {
  const code = typeof status.code === 'number' ? status.code : GrpcStatus.UNKNOWN;
  return typedError(code, status.message ?? '', errorInfoOf(status.details));
}

/**
 * A payload from an engine answer (a sync call's result, a dead letter's payload),
 * decoded; bytes that are not a google.protobuf.Value fail the call as INVALID_RESPONSE.
 */
export function answerPayload(bytes: WireValueBytes | null | undefined): JsonValue {
  try {
    return fromValueBytes(bytes);
  } catch (cause) {
    const error = new SwitchyardError('INVALID_RESPONSE', (cause as Error).message);
    error.cause = cause;
    throw error;
  }
}

/**
 * The engine's own words (it sent an ErrorInfo) are kept verbatim, even without the
 * prefix; anything else is given the `REASON: ` form by the constructor.
 */
function typedError(code: number, message: string, info: WireErrorInfo | undefined): SwitchyardError {
  const reason = info?.reason || REASON_PREFIX.exec(message)?.[1] || GrpcStatus[code] || 'UNKNOWN';
  const error = errorForReason(reason, message, code, { ...(info?.metadata ?? {}) });
  if (info !== undefined) error.message = message;
  return error;
}

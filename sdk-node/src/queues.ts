/**
 * Conversion of the Queues service's wire messages into the SDK's plain objects.
 *
 * Invariant: a field the engine left unset reads as its proto3 default (0, "", false),
 * except the fields whose absence means something — `messageGroupField`, `topic`, `group`,
 * `maxBackoffMs`, `rateLimit`, `lastError`, `nextPageToken`, timestamps — which read as undefined.
 */
import { answerPayload } from './errors.js';
import type {
  WireDeadLetter,
  WireFunctionError,
  WireListDeadLettersResponse,
  WireListQueuesResponse,
  WireQueueConfig,
  WireQueueStats,
} from './messages.js';
import type { DeadLetter, DeadLetterPage, FunctionErrorInfo, QueueConfig, QueueInfo, QueueStats } from './types.js';
import { fromTimestamp, toNumber } from './value.js';

const orUndefined = (text: string | undefined): string | undefined => (text ? text : undefined);

export function fromWireQueues(response: WireListQueuesResponse): QueueInfo[] {
  return (response.queues ?? []).map((queue) => ({
    name: queue.name ?? '',
    config: fromWireConfig(queue.config ?? {}),
    stats: fromWireStats(queue.stats ?? {}),
  }));
}

function fromWireConfig(config: WireQueueConfig): QueueConfig {
  return {
    maxRetries: config.max_retries ?? 0,
    backoffMs: toNumber(config.backoff_ms),
    concurrency: config.concurrency ?? 0,
    type: config.type || 'standard',
    messageGroupField: orUndefined(config.message_group_field),
    timeoutMs: toNumber(config.timeout_ms),
    maxBackoffMs: config.max_backoff_ms === undefined || config.max_backoff_ms === null ? undefined : toNumber(config.max_backoff_ms),
    jitter: config.jitter ?? false,
    dedupWindowMs: toNumber(config.dedup_window_ms),
    topic: orUndefined(config.topic),
    resultRetentionMs: toNumber(config.result_retention_ms),
    rateLimit:
      config.rate_limit === null || config.rate_limit === undefined
        ? undefined
        : { perSecond: config.rate_limit.per_second ?? 0, burst: config.rate_limit.burst ?? 0 },
  };
}

function fromWireStats(stats: WireQueueStats): QueueStats {
  return {
    ready: toNumber(stats.ready),
    delayed: toNumber(stats.delayed),
    inFlight: toNumber(stats.in_flight),
    dead: toNumber(stats.dead),
    enqueued: toNumber(stats.enqueued),
    completed: toNumber(stats.completed),
    failed: toNumber(stats.failed),
    deadLettered: toNumber(stats.dead_lettered),
  };
}

export function fromWireFunctionError(error: WireFunctionError | null | undefined): FunctionErrorInfo | undefined {
  if (error === null || error === undefined) return undefined;
  return { message: error.message ?? '', code: error.code ?? '', stack: error.stack ?? '' };
}

function fromWireDeadLetter(entry: WireDeadLetter): DeadLetter {
  return {
    messageReceiptId: entry.message_receipt_id ?? '',
    queue: entry.queue ?? '',
    functionId: entry.function_id ?? '',
    payload: answerPayload(entry.payload),
    group: orUndefined(entry.group),
    attempts: entry.attempts ?? 0,
    lastError: fromWireFunctionError(entry.last_error),
    enqueuedAt: fromTimestamp(entry.enqueued_at),
    deadLetteredAt: fromTimestamp(entry.dead_lettered_at),
  };
}

export function fromWireDeadLetters(response: WireListDeadLettersResponse): DeadLetterPage {
  return {
    entries: (response.entries ?? []).map(fromWireDeadLetter),
    nextPageToken: orUndefined(response.next_page_token),
  };
}

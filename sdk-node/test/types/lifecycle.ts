// Compile-time checks of the job lifecycle API (tsc --noEmit, run by check.sh): each line
// under an expect-error directive must not compile, everything else must.
import {
  JobCancelledError,
  JobDeadError,
  JobNotFoundError,
  NonRetryableError,
  registerWorker,
  SwitchyardError,
  TriggerAction,
  type CancelJobResult,
  type CancelOutcome,
  type FunctionErrorInfo,
  type Job,
  type JobProgress,
  type JobState,
  type JsonValue,
  type RateLimit,
} from '@switchyard/sdk';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_: T) => {};

const sy = registerWorker('127.0.0.1:49134', { handleSignals: false });

async function lifecycle() {
  const job = await sy.getJob('jobs', 'm1');
  expectType<Equal<typeof job, Job>>(true);
  expectType<Equal<typeof job.state, JobState>>(true);
  const state: JobState = 'in_flight';
  void state;
  expectType<Equal<typeof job.attempts, number>>(true);
  expectType<Equal<typeof job.lastError, FunctionErrorInfo | undefined>>(true);
  expectType<Equal<typeof job.enqueuedAt, Date | undefined>>(true);
  expectType<Equal<typeof job.dueAt, Date | undefined>>(true);
  expectType<Equal<typeof job.finishedAt, Date | undefined>>(true);
  expectType<Equal<typeof job.expiresAt, Date | undefined>>(true);
  expectType<Equal<typeof job.result, JsonValue | undefined>>(true);
  expectType<Equal<typeof job.progress, JobProgress | undefined>>(true);
  expectType<Equal<NonNullable<typeof job.progress>['value'], number | undefined>>(true);
  expectType<Equal<typeof job.cancelRequested, boolean>>(true);
  expectType<Equal<typeof job.priority, number>>(true);
  expectType<Equal<typeof job.topic, string | undefined>>(true);
  // @ts-expect-error the fields are camelCase
  void job.message_receipt_id;

  const cancelled = await sy.cancelJob('jobs', job.messageReceiptId);
  expectType<Equal<typeof cancelled, CancelJobResult>>(true);
  expectType<Equal<typeof cancelled.outcome, CancelOutcome>>(true);
  expectType<Equal<typeof cancelled.job, Job>>(true);

  const result = await sy.waitForResult('jobs', 'm1', { timeoutMs: 5_000 });
  expectType<Equal<typeof result, JsonValue>>(true);
  const typed = await sy.waitForResult<{ total: number }>('jobs', 'm1', { signal: AbortSignal.timeout(1_000) });
  expectType<Equal<typeof typed, { total: number }>>(true);
  await sy.waitForResult('jobs', 'm1');
  // @ts-expect-error the option is timeoutMs (camelCase)
  await sy.waitForResult('jobs', 'm1', { timeout_ms: 5_000 });

  try {
    await sy.waitForResult('jobs', 'm1');
  } catch (err) {
    if (err instanceof JobDeadError) {
      expectType<Equal<typeof err.lastError, FunctionErrorInfo | undefined>>(true);
      expectType<Equal<typeof err.job, Job | undefined>>(true);
    }
    if (err instanceof JobCancelledError) expectType<Equal<typeof err.job, Job | undefined>>(true);
    if (err instanceof JobNotFoundError) expectType<Equal<typeof err.details, Record<string, string>>>(true);
    if (err instanceof SwitchyardError && err.reason === 'JOB_DEAD') void err.message;
  }

  // Priority on enqueue; a publish takes none.
  await sy.trigger({ function_id: 'f', payload: {}, action: TriggerAction.Enqueue({ queue: 'jobs', priority: 9 }) });
  await sy.enqueue('jobs', 'f', {}, { priority: 5, delayMs: 10 });
  // @ts-expect-error priority is a number
  TriggerAction.Enqueue({ queue: 'jobs', priority: 'high' });
  // @ts-expect-error a publish takes no priority
  await sy.publish('orders.placed', {}, { priority: 1 });

  const [queue] = await sy.listQueues();
  if (queue !== undefined) {
    expectType<Equal<typeof queue.config.resultRetentionMs, number>>(true);
    expectType<Equal<typeof queue.config.rateLimit, RateLimit | undefined>>(true);
  }
}
void lifecycle;

// The handler side: progress through the context, NonRetryableError to skip retries.
sy.registerFunction('media::transcode', async (_payload: { url: string }, ctx) => {
  ctx.setProgress(50);
  ctx.setProgress(75, { step: 'upload' });
  ctx.setProgress(undefined, { step: 'finishing' });
  ctx.setProgress();
  // @ts-expect-error the value is a number
  ctx.setProgress('50%');
  throw new NonRetryableError('unsupported codec', { cause: new Error('av1') });
});
const permanent = new NonRetryableError('no');
expectType<Equal<typeof permanent.message, string>>(true);
// A NonRetryableError is a handler error, not one the SDK raises.
// @ts-expect-error it has no reason
void permanent.reason;

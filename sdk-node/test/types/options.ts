// Compile-time checks of the enqueue options and publish (tsc --noEmit, run by check.sh):
// each line under an expect-error directive must not compile, everything else must.
import {
  registerWorker,
  TopicNotFoundError,
  TriggerAction,
  type EnqueueReceipt,
  type PublishReceipt,
  type SubscriberReceipt,
} from '@switchyard/sdk';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_: T) => {};

const sy = registerWorker('127.0.0.1:49134', { handleSignals: false });

async function options() {
  const receipt = await sy.trigger({
    function_id: 'billing::charge',
    payload: { orderId: 'o1' },
    action: TriggerAction.Enqueue({ queue: 'q', delayMs: 60_000, idempotencyKey: 'o1' }),
  });
  expectType<Equal<typeof receipt, EnqueueReceipt>>(true);
  expectType<Equal<typeof receipt.duplicate, boolean>>(true);
  await sy.enqueue('q', 'billing::charge', {}, { notBefore: new Date(Date.now() + 1000) });
  // @ts-expect-error notBefore is a Date, not a number
  TriggerAction.Enqueue({ queue: 'q', notBefore: 1000 });
  // @ts-expect-error the option is delayMs (camelCase)
  TriggerAction.Enqueue({ queue: 'q', delay_ms: 10 });
  // @ts-expect-error the key is a string
  await sy.enqueue('q', 'f', {}, { idempotencyKey: 7 });

  const published = await sy.publish('orders.placed', { orderId: 'o1' }, { idempotencyKey: 'o1' });
  expectType<Equal<typeof published, PublishReceipt>>(true);
  const first: SubscriberReceipt | undefined = published.receipts[0];
  expectType<Equal<NonNullable<typeof first>['functionId'], string>>(true);
  // @ts-expect-error the publish options are the enqueue options
  await sy.publish('orders.placed', {}, { queue: 'q' });

  sy.registerFunction('emails::receipt', (_payload: unknown, ctx) => {
    expectType<Equal<typeof ctx.topic, string | undefined>>(true);
    return null;
  });
  const err: unknown = new Error();
  if (err instanceof TopicNotFoundError) expectType<Equal<typeof err, TopicNotFoundError>>(true);
}
void options;

// Quickstart producer: enqueues a payment (fifo by orderId) and a confirmation email,
// makes one synchronous call, shows a typed rejection, prints the queue stats, and exits.
//
//   SWITCHYARD_URL=http://127.0.0.1:49134 node producer.mjs
import { registerWorker, SwitchyardError, TriggerAction } from '@switchyard/sdk';

const url = process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134';
const sy = registerWorker(url, { workerName: 'quickstart-producer' });

try {
  const payment = await sy.trigger({
    function_id: 'orders::process-payment',
    payload: { orderId: 'ord_789', amount: 42 },
    action: TriggerAction.Enqueue({ queue: 'payment' }),
  });
  console.log(`enqueued payment: ${payment.messageReceiptId}`);

  const email = await sy.trigger({
    function_id: 'emails::confirmation',
    payload: { orderId: 'ord_789', to: 'ada@example.com' },
    action: TriggerAction.Enqueue({ queue: 'email' }),
  });
  console.log(`enqueued email: ${email.messageReceiptId}`);

  // No action: a synchronous call that resolves to the function's return value.
  const charged = await sy.trigger({ function_id: 'orders::process-payment', payload: { orderId: 'ord_790', amount: 7 } });
  console.log(`sync call returned: ${JSON.stringify(charged)}`);

  try {
    await sy.trigger({
      function_id: 'orders::process-payment',
      payload: { orderId: 'ord_791', amount: 1 },
      action: TriggerAction.Enqueue({ queue: 'paymnet' }),
    });
  } catch (error) {
    if (!(error instanceof SwitchyardError)) throw error;
    console.log(`typo rejected: ${error.reason} (${error.message})`);
  }

  for (const queue of await sy.listQueues()) {
    const { ready, inFlight, completed, dead } = queue.stats;
    console.log(`queue ${queue.name} (${queue.config.type}): ready ${ready}, in flight ${inFlight}, completed ${completed}, dead ${dead}`);
  }
} finally {
  await sy.shutdown();
}

// Quickstart worker: serves orders::process-payment and emails::confirmation until
// SIGINT/SIGTERM, then drains the jobs it is running and exits.
//
//   SWITCHYARD_URL=http://127.0.0.1:49134 node quickstart-worker.mjs
import { registerWorker } from '@switchyard/sdk';

const url = process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134';
// The SDK logs through `logger` (silent without one): connection trouble at WARN, naming
// the URL and the cause; a failed job at WARN with its queue, receipt id and attempt.
// Leaving out `debug` drops the per-job DEBUG lines.
const logger = { info: console.info, warn: console.warn, error: console.error };
const sy = registerWorker(url, { workerName: 'quickstart-worker', maxInFlight: 64, logger });

sy.registerFunction('orders::process-payment', async (payload, ctx) => {
  console.log(
    `[payment] order ${payload.orderId}: attempt ${ctx.attempt}/${ctx.maxAttempts}` +
      (ctx.queue ? ` from ${ctx.queue} (job ${ctx.messageReceiptId}, group ${ctx.group})` : ' (direct call)'),
  );
  if (typeof payload.amount !== 'number' || payload.amount <= 0) {
    // A thrown error fails this attempt; the engine retries it and finally dead-letters it.
    throw new RangeError(`order ${payload.orderId}: invalid amount ${payload.amount}`);
  }
  return { orderId: payload.orderId, status: 'charged', amount: payload.amount };
});

sy.registerFunction('emails::confirmation', async (payload, ctx) => {
  console.log(`[email] confirmation for ${payload.orderId} to ${payload.to} (attempt ${ctx.attempt})`);
  return { sent: true };
});

sy.on('connected', (workerId) => console.log(`worker ${workerId} connected to ${url}`));

// The SDK drains on SIGINT/SIGTERM by itself; listening here too leaves ending the process
// to this handler, which reports the drain.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    console.log(`${signal}: draining in-flight jobs`);
    await sy.shutdown();
    console.log('worker stopped');
  });
}

// Scenario 1 — HTTP API → queue pipeline (examples/README.md).
//
// POST /orders validates the order, enqueues the payment (fifo queue `payment`, grouped by
// `orderId`) and the confirmation email (standard queue `email`), fires `analytics::track`
// with void, and answers 201 with the order id at once. The same process serves the three
// functions.
//
//   node http-to-queue.mjs              # HTTP on 127.0.0.1:3000
//   curl -i localhost:3000/orders -H 'content-type: application/json' -d '{"email":"ada@example.com","amount":4200}'
//   node http-to-queue.mjs --check      # posts to itself, verifies, exits
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { registerWorker, SwitchyardError, TriggerAction } from '@switchyard/sdk';

const sy = registerWorker(process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134');
const processed = []; // { functionId, orderId, group }, for --check

for (const functionId of ['orders::process-payment', 'emails::confirmation', 'analytics::track']) {
  sy.registerFunction(functionId, async (order, ctx) => {
    console.log(`${functionId}: ${order.orderId} (attempt ${ctx.attempt})`);
    processed.push({ functionId, orderId: order.orderId, group: ctx.group });
    return { ok: true };
  });
}

async function createOrder(body) {
  const { email, amount } = body ?? {};
  if (typeof email !== 'string' || !email.includes('@') || !Number.isInteger(amount) || amount <= 0) {
    return [400, { error: 'need an email and a positive amount' }];
  }
  const job = { orderId: `ord_${randomUUID().slice(0, 12)}`, email, amount };
  await sy.trigger({ function_id: 'orders::process-payment', payload: job, action: TriggerAction.Enqueue({ queue: 'payment' }) });
  await sy.trigger({ function_id: 'emails::confirmation', payload: job, action: TriggerAction.Enqueue({ queue: 'email' }) });
  // Analytics is best effort: fire and forget, never fail the order over it.
  sy.trigger({ function_id: 'analytics::track', payload: { event: 'order_created', orderId: job.orderId }, action: TriggerAction.Void() })
    .catch((error) => console.error(`analytics event dropped: ${error.message}`));
  return [201, { orderId: job.orderId }];
}

const server = createServer(async (req, res) => {
  let status = 404;
  let reply = { error: 'not found' };
  if (req.method === 'POST' && req.url === '/orders') {
    try {
      let text = '';
      for await (const chunk of req) text += chunk;
      [status, reply] = await createOrder(JSON.parse(text));
    } catch (error) {
      [status, reply] = error instanceof SwitchyardError ? [503, { error: error.message }] : [400, { error: 'invalid JSON' }];
    }
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
});

/** One good and one bad order; the good one reaches all three functions. */
async function check(url) {
  const post = (body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const good = await post({ email: 'ada@example.com', amount: 4200 });
  assert.equal(good.status, 201);
  const { orderId } = await good.json();
  assert.equal((await post({ email: 'nobody', amount: -1 })).status, 400, 'an invalid order must be refused with 400');
  const deadline = Date.now() + 10_000;
  while (processed.filter((p) => p.orderId === orderId).length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ran = Object.fromEntries(processed.filter((p) => p.orderId === orderId).map((p) => [p.functionId, p]));
  assert.deepEqual(Object.keys(ran).sort(), ['analytics::track', 'emails::confirmation', 'orders::process-payment']);
  assert.equal(ran['orders::process-payment'].group, orderId, 'payment must be grouped by orderId');
  console.log(`check ok: 201 ${orderId}, 400 for a bad order; payment (group ${orderId}), email and analytics ran`);
}

await sy.ready();
const checking = process.argv.includes('--check');
server.listen(checking ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const url = `http://127.0.0.1:${server.address().port}/orders`;
console.log(`orders API on ${url}`);
if (checking) {
  try {
    await check(url);
  } finally {
    server.close();
    await sy.shutdown();
  }
} else {
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => sy.shutdown()));
}

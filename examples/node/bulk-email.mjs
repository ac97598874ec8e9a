// Scenario 3 — bulk email with rate limiting on the standard queue `bulk-email`
// (`concurrency: 3`, `backoff_ms: 5000`, `max_retries: 5`; examples/README.md).
//
// A fake SMTP server accepts at most 5 messages per second and answers "421 rate limited"
// beyond that. The engine never runs more than 3 sends at once, and retries each refused
// send after backoff_ms × 2^(n−1): 5 s, 10 s, 20 s, 40 s, 80 s. At the end every email is
// delivered, and the observed concurrency and retry gaps are checked.
//
//   node bulk-email.mjs
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerWorker, TriggerAction } from '@switchyard/sdk';

const EMAILS = 12;
const RATE_PER_SECOND = 5;

class RateLimited extends Error { name = 'RateLimited'; }

const smtp = {
  accepted: [],
  inFlight: 0,
  maxInFlight: 0,
  delivered: 0,
  attempts: new Map(), // job id -> [{ attempt, at }]

  async send(to, ctx) {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const seen = this.attempts.get(ctx.messageReceiptId) ?? [];
    this.attempts.set(ctx.messageReceiptId, [...seen, { attempt: ctx.attempt, at: performance.now() }]);
    try {
      await sleep(20); // talking SMTP
      const now = performance.now();
      while (this.accepted.length > 0 && now - this.accepted[0] > 1000) this.accepted.shift();
      if (this.accepted.length >= RATE_PER_SECOND) {
        console.log(`${to}: 421 rate limited (attempt ${ctx.attempt}/${ctx.maxAttempts})`);
        throw new RateLimited('421 rate limited, try again later');
      }
      this.accepted.push(now);
      this.delivered += 1;
      console.log(`${to}: sent (attempt ${ctx.attempt}/${ctx.maxAttempts})`);
    } finally {
      this.inFlight -= 1;
    }
  },
};

const sy = registerWorker(process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134');
sy.registerFunction('emails::send', async (email, ctx) => {
  await smtp.send(email.to, ctx);
  return { sent: true };
});
await sy.ready();

for (let i = 0; i < EMAILS; i++) {
  await sy.trigger({
    function_id: 'emails::send',
    payload: { to: `user${i}@example.com`, subject: 'Our spring newsletter' },
    action: TriggerAction.Enqueue({ queue: 'bulk-email' }),
  });
}
const { backoffMs } = (await sy.listQueues()).find((q) => q.name === 'bulk-email').config;

const deadline = Date.now() + 31 * backoffMs + 30_000; // worst case: 5 retries each
while (smtp.delivered < EMAILS && Date.now() < deadline) await sleep(50);
await sy.shutdown();

assert.equal(smtp.delivered, EMAILS, 'every email is delivered');
assert.ok(smtp.maxInFlight <= 3, `${smtp.maxInFlight} sends were in flight at once`);
let retries = 0;
for (const attempts of smtp.attempts.values()) {
  for (let i = 1; i < attempts.length; i++) {
    const [prev, next] = [attempts[i - 1], attempts[i]];
    const wait = backoffMs * 2 ** (prev.attempt - 1);
    assert.equal(next.attempt, prev.attempt + 1, 'attempt numbers are consecutive');
    // performance.now() has sub-millisecond resolution; allow 1 ms for rounding.
    assert.ok(next.at - prev.at >= wait - 1, `retry ${prev.attempt} came after ${next.at - prev.at} ms, before ${wait} ms`);
    retries += 1;
  }
}
console.log(`check ok: ${EMAILS} delivered, at most ${smtp.maxInFlight} in flight, ${retries} retries each after >= ${backoffMs} ms × 2^(n−1)`);

// Scenario 4 — dead letters (examples/README.md).
//
// `reports::generate` always fails (a missing template), so after its retries (queue
// `reports`: `max_retries: 2`) the job lands in the dead-letter queue. The example lists the
// DLQ, deploys a fix (registers a working handler), redrives the job, and sees it complete —
// with the same receipt id and a fresh retry budget.
//
//   node dead-letters.mjs
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerWorker, TriggerAction } from '@switchyard/sdk';

class TemplateMissing extends Error { name = 'TemplateMissing'; }

const sy = registerWorker(process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134');
sy.registerFunction('reports::generate', async (report, ctx) => {
  console.log(`generating ${report.name} (attempt ${ctx.attempt}/${ctx.maxAttempts}): template missing`);
  throw new TemplateMissing("template 'monthly.html' not found");
});
await sy.ready();

const { messageReceiptId: jobId } = await sy.trigger({
  function_id: 'reports::generate',
  payload: { name: 'monthly', month: '2024-05' },
  action: TriggerAction.Enqueue({ queue: 'reports' }),
});
console.log(`enqueued ${jobId}`);

// 1. Wait (bounded) for the job to exhaust its retries and land in the DLQ.
let dead;
for (const deadline = Date.now() + 15_000; !dead; await sleep(50)) {
  assert.ok(Date.now() < deadline, `job ${jobId} never reached the DLQ`);
  dead = (await sy.listDeadLetters('reports')).entries.find((d) => d.messageReceiptId === jobId);
}
console.log(`dead letter: ${dead.functionId} after ${dead.attempts} attempts, last error ${dead.lastError?.code}: ${dead.lastError?.message}`);
assert.equal(dead.attempts, 3);
assert.equal(dead.lastError?.code, 'TemplateMissing');

// 2. Deploy the fix: the same function id, a working handler.
const completed = new Promise((resolve) => {
  sy.registerFunction('reports::generate', async (report, ctx) => {
    console.log(`generating ${report.name} (attempt ${ctx.attempt}/${ctx.maxAttempts}): done`);
    resolve(ctx);
    return { url: 'https://reports.example.com/monthly-2024-05.pdf' };
  });
});

// 3. Redrive it: it runs again from attempt 1 and completes.
console.log(`redrove ${await sy.redriveDeadLetters('reports', [jobId])} job(s)`);
const ctx = await Promise.race([completed, sleep(20_000, null, { ref: false }).then(() => assert.fail('the redriven job never ran'))]);
assert.equal(ctx.messageReceiptId, jobId);
assert.equal(ctx.attempt, 1, 'a redriven job gets a fresh retry budget');
assert.equal((await sy.listDeadLetters('reports')).entries.length, 0, 'the DLQ is empty');
console.log(`check ok: ${jobId} dead-lettered after 3 attempts, redriven, completed at attempt 1; DLQ empty`);
await sy.shutdown();

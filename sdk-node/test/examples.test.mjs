// The Node quickstart (examples/node) runs as documented: the worker serves the jobs the
// producer enqueues, and stops cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { runNode } from './helpers/child.mjs';
import { startEngine } from './helpers/engine.mjs';
import { eventually, within } from './helpers/wait.mjs';

const examples = fileURLToPath(new URL('../../examples/node/', import.meta.url));
const children = [];
let engine;
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await engine?.stop();
});

function run(script) {
  const running = runNode(script, { cwd: examples, url: engine.url });
  children.push(running.child);
  return running;
}

test('quickstart_worker_serves_what_the_producer_enqueues', { timeout: 40_000 }, async () => {
  assert.ok(
    existsSync(`${examples}node_modules/@switchyard/sdk`),
    'examples/node is not installed: run `npm ci` in examples/node (check.sh does)',
  );
  engine = await startEngine({ config: readFileSync(`${examples}iii-config.yaml`, 'utf8') });
  const worker = run('quickstart-worker.mjs');
  await eventually(() => worker.lines.items.some((l) => /^worker \S+ connected to /.test(l)), {
    timeoutMs: 10_000,
    what: 'the worker to connect',
  });

  const producer = run('producer.mjs');
  const { code, stderr } = await within(producer.exited, 20_000, 'the producer to finish');
  const out = producer.lines.items.join('\n');
  assert.equal(code, 0, `producer failed:\n${out}\n${stderr}`);
  assert.match(out, /^enqueued payment: \S+$/m);
  assert.match(out, /^enqueued email: \S+$/m);
  const returned = /^sync call returned: (.*)$/m.exec(out);
  assert.ok(returned, out);
  assert.deepEqual(JSON.parse(returned[1]), { orderId: 'ord_790', status: 'charged', amount: 7 });
  assert.match(out, /^typo rejected: QUEUE_NOT_FOUND /m);
  assert.match(out, /^queue payment \(fifo\): /m);

  await eventually(
    () =>
      worker.lines.items.some((l) => l.startsWith('[payment] order ord_789: attempt 1/11 from payment')) &&
      worker.lines.items.some((l) => l.startsWith('[email] confirmation for ord_789')),
    { timeoutMs: 10_000, what: 'the worker to run both jobs' },
  );
  worker.child.kill('SIGTERM');
  const stopped = await within(worker.exited, 10_000, 'the worker to stop on SIGTERM');
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(worker.lines.items.includes('worker stopped'));
});

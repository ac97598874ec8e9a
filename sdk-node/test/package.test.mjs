// The package as users get it: `npm pack`, installed into fresh projects of each style —
// CommonJS (`require`), ES modules (`import`), and TypeScript compiled with
// `module: commonjs` — each running a worker and a producer against a live engine.
// The tarball is packed from the current build (check.sh builds first); its dependencies
// come from the npm cache where it has them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runNode } from './helpers/child.mjs';
import { startEngine } from './helpers/engine.mjs';
import { within } from './helpers/wait.mjs';

const sdkRoot = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(sdkRoot, 'node_modules', 'typescript', 'bin', 'tsc');
const work = mkdtempSync(join(tmpdir(), 'switchyard-node-package-'));
const children = [];
let engine;
let tarball;

before(() => {
  execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: sdkRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')));
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await engine?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A fresh project `name` with `files`, the tarball installed into it. */
function project(name, type, files) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `switchyard-${name}`, private: true, type }));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', tarball], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

function run(dir, script) {
  const running = runNode(script, { cwd: dir, url: engine.url });
  children.push(running.child);
  return running;
}

/** Worker and producer sources for `style`, `require` or `import` spelled by `load`. */
function sources(style, load) {
  const worker = `${load}
const sy = registerWorker();
sy.registerFunction('${style}::double', (payload) => ({ doubled: payload.x * 2 }));
sy.registerFunction('${style}::record', (payload, ctx) => { console.log('job ' + ctx.messageReceiptId + ' ' + payload.style); });
sy.ready().then(() => console.log('ready'), (error) => { console.error(error.message); process.exit(1); });
`;
  const producer = `${load}
(async () => {
  const sy = registerWorker();
  const receipt = await sy.trigger({ function_id: '${style}::record', payload: { style: '${style}' }, action: TriggerAction.Enqueue({ queue: 'default' }) });
  const value = await sy.trigger({ function_id: '${style}::double', payload: { x: 21 } });
  let reason;
  try { await sy.trigger({ function_id: 'f', payload: {}, action: TriggerAction.Enqueue({ queue: 'nope' }) }); } catch (error) { reason = error instanceof SwitchyardError && error.reason; }
  console.log(JSON.stringify({ receipt: receipt.messageReceiptId, value, reason }));
  await sy.shutdown();
})().catch((error) => { console.error(error); process.exit(1); });
`;
  return { worker, producer };
}

async function workerAndProducer(dir, style, workerFile, producerFile) {
  engine ??= await startEngine();
  const worker = run(dir, workerFile);
  await within(worker.lines.waitFor(1, 15_000), 20_000, `the ${style} worker to be ready (${worker.stderr()})`);
  assert.equal(worker.lines.items[0], 'ready');
  const producer = run(dir, producerFile);
  const { code, stderr } = await within(producer.exited, 20_000, `the ${style} producer`);
  assert.equal(code, 0, stderr);
  const answer = JSON.parse(producer.lines.items.at(-1));
  assert.deepEqual(answer.value, { doubled: 42 });
  assert.equal(answer.reason, 'QUEUE_NOT_FOUND');
  await worker.lines.waitFor(2, 10_000, `the ${style} job`);
  assert.equal(worker.lines.items[1], `job ${answer.receipt} ${style}`);
  worker.child.kill('SIGTERM');
  await within(worker.exited, 10_000, `the ${style} worker to stop`);
}

test('the_packed_tarball_works_with_require_in_a_commonjs_project', { timeout: 120_000 }, async () => {
  const { worker, producer } = sources('cjs', "const { registerWorker, TriggerAction, SwitchyardError } = require('@switchyard/sdk');");
  const dir = project('cjs', 'commonjs', { 'worker.js': worker, 'producer.js': producer });
  await workerAndProducer(dir, 'cjs', 'worker.js', 'producer.js');
});

test('the_packed_tarball_works_with_import_in_an_esm_project', { timeout: 120_000 }, async () => {
  const { worker, producer } = sources('esm', "import { registerWorker, TriggerAction, SwitchyardError } from '@switchyard/sdk';");
  const dir = project('esm', 'module', { 'worker.js': worker, 'producer.js': producer });
  await workerAndProducer(dir, 'esm', 'worker.js', 'producer.js');
});

test('the_packed_tarball_type_checks_and_runs_from_tsc_module_commonjs_output', { timeout: 120_000 }, async () => {
  const typed = `import { registerWorker, TriggerAction, SwitchyardError, type Context } from '@switchyard/sdk';
const sy = registerWorker();
sy.registerFunction('ts::double', (payload: { x: number }) => ({ doubled: payload.x * 2 }));
sy.registerFunction('ts::record', (payload: { style: string }, ctx: Context) => { console.log('job ' + ctx.messageReceiptId + ' ' + payload.style); });
sy.ready().then(() => console.log('ready'), (error: Error) => { console.error(error.message); process.exit(1); });
`;
  const { producer } = sources('ts', "import { registerWorker, TriggerAction, SwitchyardError } from '@switchyard/sdk';");
  const tsconfig = {
    compilerOptions: {
      module: 'commonjs', target: 'ES2022', strict: true, outDir: 'out', skipLibCheck: false,
      typeRoots: [join(sdkRoot, 'node_modules', '@types')], types: ['node'],
    },
    include: ['*.ts'],
  };
  const dir = project('ts', 'commonjs', { 'worker.ts': typed, 'producer.ts': producer, 'tsconfig.json': JSON.stringify(tsconfig) });
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  await workerAndProducer(dir, 'ts', 'out/worker.js', 'out/producer.js');
});

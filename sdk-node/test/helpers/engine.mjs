// Starts a real `switchyard serve` for a test and stops it afterwards.
//
// Invariant: every engine started here listens on 127.0.0.1 only, is known to be serving
// before startEngine() resolves (its "switchyard listening on 127.0.0.1:PORT" line was
// read), and is killed by stop()/kill() — tests register `after(() => engine.stop())`.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** SWITCHYARD_BIN, else the debug build in the repository's target folder. */
export const engineBinary = process.env.SWITCHYARD_BIN ?? join(repoRoot, 'target', 'debug', 'switchyard');

export const DEFAULT_CONFIG = `
queue_configs:
  default: {max_retries: 2, backoff_ms: 50, concurrency: 10}
  payment: {type: fifo, message_group_field: orderId, max_retries: 3, backoff_ms: 50, concurrency: 4}
  flaky: {max_retries: 1, backoff_ms: 20, concurrency: 10}
  bulk: {max_retries: 0, concurrency: 256}
`;

const START_TIMEOUT_MS = 20_000;

/**
 * Starts an engine with `config` (YAML text) on `port` (0 = any free port).
 * Resolves to { url, port, stop(), kill(), restart(), logs() }.
 */
export async function startEngine({ config = DEFAULT_CONFIG, port = 0 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-node-test-'));
  const configPath = join(dir, 'iii-config.yaml');
  writeFileSync(configPath, config);
  const engine = { url: '', port: 0, child: undefined, stderr: [] };

  async function launch(listenPort) {
    const child = spawn(engineBinary, ['serve', '--config', configPath, '--listen', `127.0.0.1:${listenPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    engine.child = child;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      engine.stderr.push(chunk);
      if (engine.stderr.length > 200) engine.stderr.shift();
      if (process.env.SWITCHYARD_TEST_LOGS) process.stderr.write(chunk);
    });
    const lines = createInterface({ input: child.stdout });
    const listening = await new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => fail(new Error(`engine did not print its address within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onError = (error) => fail(new Error(`cannot start ${engineBinary}: ${error.message}`));
      const onExit = (code, signal) => fail(new Error(`engine exited early (code ${code}, signal ${signal})`));
      function fail(error) {
        clearTimeout(timer);
        child.off('error', onError);
        child.off('exit', onExit);
        child.kill('SIGKILL');
        error.message += `\n--- engine stderr ---\n${engine.stderr.join('')}`;
        reject(error);
      }
      child.once('error', onError);
      child.once('exit', onExit);
      lines.on('line', (line) => {
        const match = /^switchyard listening on 127\.0\.0\.1:(\d+)\s*$/.exec(line);
        if (match === null) return;
        clearTimeout(timer);
        child.off('error', onError);
        child.off('exit', onExit);
        child.on('error', () => {});
        resolvePort(Number(match[1]));
      });
    });
    engine.port = listening;
    engine.url = `http://127.0.0.1:${listening}`;
  }

  async function terminate(signal) {
    const child = engine.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  await launch(port);
  return {
    get url() {
      return engine.url;
    },
    get port() {
      return engine.port;
    },
    get pid() {
      return engine.child?.pid;
    },
    /** Graceful stop (SIGTERM, SIGKILL after 5 s). */
    stop: () => terminate('SIGTERM'),
    /** Crash (SIGKILL). */
    kill: () => terminate('SIGKILL'),
    /** Starts the engine again on the same port and config. */
    restart: () => launch(engine.port),
    logs: () => engine.stderr.join(''),
  };
}

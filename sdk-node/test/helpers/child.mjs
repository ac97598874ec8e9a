// A Node script run as a child process for a test, its stdout collected line by line.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Collector } from './wait.mjs';

/**
 * Runs `script` with node in `cwd`, SWITCHYARD_URL set to `url`. Resolves nothing itself:
 * returns { child, lines (a Collector of stdout lines), exited (resolves to { code, signal,
 * stderr }), stderr() }. The caller kills it when done.
 */
export function runNode(script, { cwd, url }) {
  const child = spawn(process.execPath, [script], { cwd, env: { ...process.env, SWITCHYARD_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = new Collector();
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, lines, exited, stderr: () => stderr };
}

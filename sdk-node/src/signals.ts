/**
 * SIGTERM / SIGINT drain for every serving worker of the process.
 *
 * Invariant: while at least one worker that serves functions (and did not opt out with
 * `handleSignals: false`) is open, this module holds exactly one listener per signal, and
 * none otherwise. A signal then drains every such worker (shutdown(): no new work, running
 * jobs finish and their results are delivered, so a plain `kill` costs no job an attempt).
 *
 * Protocol:
 *   1. The first SIGTERM or SIGINT starts shutdown() on every registered worker.
 *   2. Once they are all closed: if the application has no listener of its own for that
 *      signal, the listener is removed and the signal raised again, so the process ends
 *      as the signal's default would have ended it (exit status 128 + signal number).
 *      If the application listens too, ending the process is left to it.
 *   3. A second signal while draining, with no application listener, ends the process
 *      at once (the default action) — the way out of a handler that never returns.
 *
 * Not done: other signals, and Windows (where Node emulates only SIGINT).
 */

/** What this module needs of a worker. */
export interface Drainable {
  shutdown(): Promise<void>;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type Signal = (typeof SIGNALS)[number];

const workers = new Set<Drainable>();
let draining = false;

const listeners: Record<Signal, () => void> = {
  SIGTERM: () => received('SIGTERM'),
  SIGINT: () => received('SIGINT'),
};

/** Drains `worker` on SIGTERM / SIGINT until forget() is called for it. */
export function drainOnSignals(worker: Drainable): void {
  if (workers.size === 0) for (const signal of SIGNALS) process.on(signal, listeners[signal]);
  workers.add(worker);
}

/** `worker` is closing or closed: it no longer needs the signals. */
export function forgetOnSignals(worker: Drainable): void {
  if (!workers.delete(worker) || workers.size > 0 || draining) return;
  for (const signal of SIGNALS) process.off(signal, listeners[signal]);
}

function received(signal: Signal): void {
  const applicationListens = process.listenerCount(signal) > 1;
  if (draining) {
    if (!applicationListens) reraise(signal);
    return;
  }
  draining = true;
  const all = [...workers];
  workers.clear();
  void Promise.allSettled(all.map((worker) => worker.shutdown())).then(() => {
    draining = false;
    if (!applicationListens) reraise(signal);
    else if (workers.size === 0) for (const s of SIGNALS) process.off(s, listeners[s]);
  });
}

/** The signal's default action: the listeners go, the signal comes again. */
function reraise(signal: Signal): void {
  for (const s of SIGNALS) process.off(s, listeners[s]);
  process.kill(process.pid, signal);
}

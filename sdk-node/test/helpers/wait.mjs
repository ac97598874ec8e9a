// Bounded waiting for tests: every wait here ends, with a message naming what it waited for.

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves like `promise`, or rejects once `ms` pass. */
export async function within(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` every `intervalMs` until it returns a truthy value; returns that value. */
export async function eventually(probe, { timeoutMs = 10_000, intervalMs = 25, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Counts events and resolves waiters once a count is reached. */
export class Collector {
  items = [];
  #waiters = [];

  push(item) {
    this.items.push(item);
    this.#waiters = this.#waiters.filter(({ count, resolve }) => {
      if (this.items.length < count) return true;
      resolve(this.items);
      return false;
    });
  }

  /** Resolves with all items once there are at least `count`, or rejects after `ms`. */
  waitFor(count, ms = 10_000, what = `${count} items`) {
    if (this.items.length >= count) return Promise.resolve(this.items);
    const { promise, resolve } = deferred();
    this.#waiters.push({ count, resolve });
    return within(promise, ms, what);
  }
}

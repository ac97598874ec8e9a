// A logger for tests: records every (level, message, fields) the SDK logs and lets a test
// wait, bounded, for a record matching a predicate.
import { deferred, within } from './wait.mjs';

export function captureLogger() {
  const records = [];
  let waiters = [];
  const record = (level) => (message, fields) => {
    const entry = { level, message, fields };
    records.push(entry);
    waiters = waiters.filter(({ predicate, resolve }) => {
      if (!predicate(entry)) return true;
      resolve(entry);
      return false;
    });
  };
  return {
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    records,
    /** Resolves with the first record (past or future) matching `predicate`. */
    waitFor(predicate, ms = 10_000, what = 'a log record') {
      const found = records.find(predicate);
      if (found) return Promise.resolve(found);
      const { promise, resolve } = deferred();
      waiters.push({ predicate, resolve });
      return within(promise, ms, `${what} (logged so far: ${JSON.stringify(records)})`);
    },
  };
}

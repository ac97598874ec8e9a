/**
 * Reconnect delays with full jitter, the same in every Switchyard SDK.
 *
 * Invariant: the n-th consecutive failed attempt (n ≥ 1) waits a uniform draw from
 * [0, min(cap, 100 × 2^(n−1))) ms, so workers that lost the same engine at the same
 * instant spread their reconnects instead of arriving together. The caller resets n after
 * a successful connection.
 */

export const INITIAL_DELAY_MS = 100;
export const DEFAULT_MAX_DELAY_MS = 5_000;

/** A uniform draw from [0, 1): Math.random (V8's xorshift128+) unless a test injects one. */
export type Random = () => number;

/** The ceiling of the n-th wait: min(maxMs, 100 × 2^(n−1)). */
export function backoffCeilingMs(failures: number, maxMs: number = DEFAULT_MAX_DELAY_MS): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^(n-1) overflows to Infinity for large n, which min() then caps.
  return Math.min(maxMs, INITIAL_DELAY_MS * 2 ** (n - 1));
}

/** The n-th wait, in whole milliseconds: floor(random() × ceiling). */
export function reconnectDelayMs(failures: number, maxMs: number = DEFAULT_MAX_DELAY_MS, random: Random = Math.random): number {
  return Math.floor(random() * backoffCeilingMs(failures, maxMs));
}

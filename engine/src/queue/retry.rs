//! The retry policy: what happens after a failed attempt. Pure and clock-free — the caller
//! passes `now` — so the schedule is testable exactly.
//!
//! Retry *n* (n = 1…max_retries) waits `backoff_ms × 2^(n−1)`, capped by `max_backoff_ms`
//! when set; with `jitter` on, the wait is drawn uniformly from [wait/2, wait]. After
//! `max_retries` retries (so `max_retries + 1` attempts) the job is dead-lettered.

use crate::clock::Millis;
use crate::config::QueueSpec;

/// The decision after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again once `now >= due_at`.
    RetryAt { due_at: Millis },
    /// The budget is spent: move the job to the dead-letter queue.
    DeadLetter,
}

/// The delay before retry `n` (1-based), before jitter.
pub fn backoff_ms(spec: &QueueSpec, retry: u32) -> Millis {
    let exp = retry.saturating_sub(1).min(63);
    let raw = spec.backoff_ms.saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX));
    match spec.max_backoff_ms {
        Some(cap) => raw.min(cap),
        None => raw,
    }
}

/// Decides what follows the failure of attempt number `attempts` (1-based).
/// `jitter_unit` is a number in [0, 1) used only when the queue has jitter on.
pub fn after_failure(spec: &QueueSpec, attempts: u32, now: Millis, jitter_unit: f64) -> AfterFailure {
    if attempts > spec.max_retries {
        return AfterFailure::DeadLetter;
    }
    let mut wait = backoff_ms(spec, attempts);
    if spec.jitter {
        let half = wait / 2;
        wait = half + ((wait - half) as f64 * jitter_unit.clamp(0.0, 1.0)) as Millis;
    }
    AfterFailure::RetryAt { due_at: now.saturating_add(wait) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(backoff_ms: u64, max_retries: u32) -> QueueSpec {
        QueueSpec { backoff_ms, max_retries, ..QueueSpec::default_queue() }
    }

    #[test]
    fn retry_n_waits_backoff_times_two_to_the_n_minus_one() {
        let s = spec(5000, 5);
        let waits: Vec<_> = (1..=5).map(|n| backoff_ms(&s, n)).collect();
        assert_eq!(waits, vec![5000, 10000, 20000, 40000, 80000]);
    }

    #[test]
    fn max_retries_zero_dead_letters_after_first_attempt() {
        assert_eq!(after_failure(&spec(1000, 0), 1, 0, 0.0), AfterFailure::DeadLetter);
    }

    #[test]
    fn last_retry_then_dead_letter() {
        let s = spec(1000, 3);
        assert_eq!(after_failure(&s, 3, 100, 0.0), AfterFailure::RetryAt { due_at: 4100 });
        assert_eq!(after_failure(&s, 4, 100, 0.0), AfterFailure::DeadLetter);
    }

    #[test]
    fn cap_and_jitter_bound_the_wait() {
        let s = QueueSpec { max_backoff_ms: Some(3000), jitter: true, ..spec(1000, 10) };
        assert_eq!(backoff_ms(&s, 5), 3000);
        assert_eq!(after_failure(&s, 5, 0, 0.0), AfterFailure::RetryAt { due_at: 1500 });
        assert_eq!(after_failure(&s, 5, 0, 1.0), AfterFailure::RetryAt { due_at: 3000 });
    }

    #[test]
    fn huge_retry_numbers_saturate() {
        assert_eq!(backoff_ms(&spec(1000, 100), 90), u64::MAX);
    }
}

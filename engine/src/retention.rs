//! The sweepers: dead letters older than their queue's `dlq_retention_ms` are discarded,
//! and finished jobs kept for `GetJob` (completed with `result_retention_ms`, cancelled) are
//! forgotten once their `expires_at` has passed ([`expire`]).
//!
//! Invariant: a dead letter is discarded by the sweeper only once the injected clock says
//! it has been dead for at least its queue's `dlq_retention_ms` (from its
//! `dead_lettered_at`); a queue without the field, and a dead letter without a
//! dead-lettering time, are never touched; a discard always names the ids it removes (the
//! empty list would mean "all").
//!
//! Protocol, per sweep and per queue with a retention:
//! 1. Read the first page of its DLQ — at most [`PAGE`] dead letters, the oldest, since
//!    every store lists its DLQ in dead-letter order ([`Store::dead_letters`]).
//! 2. Discard those dead at or before `now - dlq_retention_ms` through [`Store::discard`],
//!    so every store gets it and `switchyard_jobs_discarded` counts them; log how many.
//! 3. Work per sweep is bounded: one page read and one discard per queue. A queue whose
//!    whole page was old may hold more: the next sweep comes at once (after a yield)
//!    instead of after [`interval`].
//!
//! A store error is logged and the queue is swept again at the next sweep. Every engine
//! sweeps; two engines discarding the same dead letter remove it once (the second finds
//! nothing). Known gap: a dead letter redriven *and* dead again between step 1 and step 2
//! (milliseconds) is discarded by its old age — the store has no conditional discard.

use crate::clock::{Clock, Millis};
use crate::config::EngineConfig;
use crate::store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Most dead letters one sweep reads (and so discards) per queue.
pub const PAGE: usize = 1000;
/// Shortest and longest time between sweeps.
const INTERVAL_MIN_MS: Millis = 1_000;
const INTERVAL_MAX_MS: Millis = 60_000;

/// Time between sweeps: a quarter of the shortest retention, within 1 s..=60 s (a dead
/// letter outlives its retention by at most that, backlog aside). `None` when no queue has
/// a retention: no sweeper runs.
pub fn interval(config: &EngineConfig) -> Option<Millis> {
    let shortest = config.queues.values().filter_map(|q| q.dlq_retention_ms).min()?;
    Some((shortest / 4).clamp(INTERVAL_MIN_MS, INTERVAL_MAX_MS))
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub discarded: u64,
    /// Some queue's whole page was old: more may be waiting.
    pub more: bool,
}

/// One sweep over every queue with a retention, at `now`.
pub async fn sweep(config: &EngineConfig, store: &dyn Store, now: Millis) -> Swept {
    let mut out = Swept::default();
    for (queue, spec) in &config.queues {
        let Some(retention) = spec.dlq_retention_ms else { continue };
        let page = match store.dead_letters(queue, None, PAGE).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "dead-letter sweep: cannot list the DLQ; retrying at the next sweep");
                continue;
            }
        };
        let cutoff = now.saturating_sub(retention);
        let old: Vec<_> = page
            .entries
            .iter()
            .filter(|j| j.dead_lettered_at.is_some_and(|at| at <= cutoff))
            .map(|j| j.id.clone())
            .collect();
        if old.is_empty() {
            continue;
        }
        let whole_page = old.len() == PAGE;
        match store.discard(queue, &old).await {
            Ok(n) => {
                tracing::info!(queue = %queue, discarded = n, dlq_retention_ms = retention, "dead letters past their retention discarded");
                out.discarded += n;
                out.more |= whole_page && n > 0;
            }
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "dead-letter sweep: discard failed; retrying at the next sweep")
            }
        }
    }
    out
}

/// Sweeps every [`interval`] until `stop`; returns at once when no queue has a retention.
pub async fn run(config: Arc<EngineConfig>, store: Arc<dyn Store>, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let Some(every) = interval(&config) else { return };
    let mut next = clock.now() + every;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = clock.sleep_until(next) => {}
        }
        let swept = sweep(&config, &*store, clock.now()).await;
        next = if swept.more {
            tokio::task::yield_now().await;
            clock.now()
        } else {
            clock.now() + every
        };
    }
}

/// How often kept finished jobs past their time are deleted. `GetJob` never shows one
/// past its `expires_at` in between: the stores check it when they read.
pub const EXPIRE_EVERY_MS: Millis = 1_000;

/// Forgets finished jobs past their `expires_at` (by the injected clock), every
/// [`EXPIRE_EVERY_MS`] of real time until `stop`: the cadence is housekeeping, not a time any
/// job waits for, so it stays off the clock's timers (a test stepping a manual clock to the
/// engine's next timer never meets it).
pub async fn expire(store: Arc<dyn Store>, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_millis(EXPIRE_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.expire_finished(clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(forgotten = n, "finished jobs past their retention forgotten"),
            Err(e) => tracing::warn!(error = %e, "could not forget finished jobs past their retention; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::queue::{JobError, NewJob, Payload};
    use crate::store::memory::MemoryStore;
    use crate::store::{Finish, LeaseRequest};

    const DAY: Millis = 86_400_000;

    fn config(retention: Option<Millis>) -> EngineConfig {
        let field = retention.map(|ms| format!("dlq_retention_ms: {ms}")).unwrap_or_default();
        EngineConfig::parse(&format!("queue_configs: {{kept: {{}}, q: {{{field}}}}}")).unwrap()
    }

    /// Dead-letters one job `id` of each of `queues` at `at`.
    async fn dead(store: &dyn Store, queues: &[&str], id: &str, at: Millis) {
        for queue in queues {
            let job = NewJob {
                id: format!("{queue}-{id}"),
                queue: queue.to_string(),
                function_id: "f".into(),
                payload: Payload(bytes::Bytes::from_static(b"{}")),
                group: None,
                enqueued_at: at,
                not_before: None,
                dedup: None,
                priority: 0,
            };
            store.enqueue(vec![job]).await.unwrap();
            let req = LeaseRequest { queue: queue.to_string(), functions: vec![("f".into(), 1)], max: 1, now: at };
            let lease = store.lease(req).await.unwrap().pop().unwrap();
            let error = JobError { message: "boom".into(), code: "E".into(), stack: String::new() };
            assert!(store.finish(&lease.token, Finish::DeadLetter { error, at }).await.unwrap());
        }
    }

    async fn dlq(store: &dyn Store, queue: &str) -> Vec<String> {
        store.dead_letters(queue, None, 100).await.unwrap().entries.into_iter().map(|j| j.id).collect()
    }

    /// What every store must do: only the old dead letters of the queue with a retention go.
    async fn discards_only_what_is_past_its_retention(store: &dyn Store) {
        let c = config(Some(DAY));
        dead(store, &["q", "kept"], "old", 1_000).await;
        dead(store, &["q", "kept"], "young", 1_000 + DAY / 2).await;
        assert_eq!(sweep(&c, store, 1_000 + DAY - 1).await, Swept::default(), "a day less 1 ms: nothing is old");
        assert_eq!(sweep(&c, store, 1_000 + DAY).await, Swept { discarded: 1, more: false });
        assert_eq!(dlq(store, "q").await, vec!["q-young"]);
        assert_eq!(dlq(store, "kept").await, vec!["kept-old", "kept-young"], "no retention: kept");
        assert_eq!(sweep(&c, store, 1_000 + DAY).await, Swept::default(), "swept twice: nothing more");
        assert_eq!(sweep(&c, store, 1_000 + 2 * DAY).await.discarded, 1);
        assert!(dlq(store, "q").await.is_empty());
        assert_eq!(dlq(store, "kept").await.len(), 2);
    }

    #[tokio::test]
    async fn memory_store_dead_letters_past_their_retention_are_discarded() {
        discards_only_what_is_past_its_retention(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn file_store_dead_letters_past_their_retention_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::file::FileStore::open(&dir.path().join("store")).unwrap();
        discards_only_what_is_past_its_retention(&store).await;
        drop(store);
        let store = crate::store::file::FileStore::open(&dir.path().join("store")).unwrap();
        assert!(dlq(&store, "q").await.is_empty(), "the discards are durable");
        assert_eq!(dlq(&store, "kept").await.len(), 2);
    }

    #[tokio::test]
    async fn a_sweep_is_bounded_by_a_page_and_asks_for_the_next_at_once() {
        let store = MemoryStore::new();
        for n in 0..PAGE + 5 {
            dead(&store, &["q"], &format!("{n:05}"), 1_000).await;
        }
        let c = config(Some(10));
        assert_eq!(sweep(&c, &store, 2_000).await, Swept { discarded: PAGE as u64, more: true });
        assert_eq!(dlq(&store, "q").await, (PAGE..PAGE + 5).map(|n| format!("q-{n:05}")).collect::<Vec<_>>());
        assert_eq!(sweep(&c, &store, 2_000).await, Swept { discarded: 5, more: false });
    }

    #[test]
    fn the_interval_is_a_quarter_of_the_shortest_retention_within_bounds() {
        assert_eq!(interval(&config(None)), None, "no retention, no sweeper");
        assert_eq!(interval(&config(Some(DAY))), Some(INTERVAL_MAX_MS));
        assert_eq!(interval(&config(Some(8_000))), Some(2_000));
        assert_eq!(interval(&config(Some(1))), Some(INTERVAL_MIN_MS));
    }

    /// Waits (at most 10 s) until the sweeper sleeps until `at`.
    async fn timer(clock: &ManualClock, at: Millis) {
        let wait = clock.wait_for_timer(|d| d == at);
        tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.expect("the sweeper's next sweep");
    }

    #[tokio::test]
    async fn the_sweeper_runs_on_the_injected_clock_until_stopped() {
        let clock = ManualClock::new(1_000);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        dead(&*store, &["q"], "a", 1_000).await;
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(run(Arc::new(config(Some(8_000))), store.clone(), Arc::new(clock.clone()), stop.clone()));
        // Sweeps at 3_000, 5_000, 7_000 find "a" young; the one at 9_000 discards it.
        for at in [3_000, 5_000, 7_000, 9_000] {
            timer(&clock, at).await;
            assert_eq!(dlq(&*store, "q").await, vec!["q-a"], "before the sweep at {at}");
            clock.advance_to(at);
        }
        timer(&clock, 11_000).await; // the sweep at 9_000 is done
        assert!(dlq(&*store, "q").await.is_empty());
        stop.cancel();
        task.await.unwrap();
    }

    /// Completes one job `id` of `queue` at `at`, its result kept until `until`.
    async fn kept(store: &dyn Store, queue: &str, id: &str, at: Millis, until: Millis) {
        let job = NewJob {
            id: id.into(),
            queue: queue.into(),
            function_id: "f".into(),
            payload: Payload(bytes::Bytes::from_static(b"{}")),
            group: None,
            enqueued_at: at,
            not_before: None,
            dedup: None,
            priority: 0,
        };
        store.enqueue(vec![job]).await.unwrap();
        let req = LeaseRequest { queue: queue.into(), functions: vec![("f".into(), 1)], max: 1, now: at };
        let lease = store.lease(req).await.unwrap().pop().unwrap();
        let result = Payload(bytes::Bytes::from_static(b"{}"));
        assert!(store.finish(&lease.token, Finish::CompleteRetained { result, at, until }).await.unwrap());
    }

    #[tokio::test]
    async fn the_expirer_forgets_kept_jobs_on_the_injected_clock() {
        let clock = ManualClock::new(1_000);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        kept(&*store, "q", "short", 1_000, 2_500).await;
        kept(&*store, "q", "long", 1_000, 60_000).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(expire(store.clone(), Arc::new(clock.clone()), stop.clone()));
        // Asked with an earlier `now`, a job is there until a sweep has forgotten it.
        let there = |id: &'static str| {
            let store = store.clone();
            async move { store.get_job("q", id, 1_500).await.unwrap().is_some() }
        };
        // The cadence is real time (a sweep a second); what is expired, the injected clock's:
        // standing at 2_000, sweeps forget nothing; at 3_000 the next sweep forgets "short".
        clock.advance_to(2_000);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let swept_at_2000 = tokio::time::Instant::now() + std::time::Duration::from_millis(2 * EXPIRE_EVERY_MS);
        tokio::time::sleep_until(swept_at_2000).await;
        assert!(there("short").await, "not past its expiry at 2_000");
        clock.advance_to(3_000);
        while there("short").await {
            assert!(tokio::time::Instant::now() < deadline, "a sweep forgets it within a second or so");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(there("long").await);
        stop.cancel();
        task.await.unwrap();
    }
}

//! The scheduler on the injected clock: one job per tick, the missed-tick policy, time
//! zones, several engines on one store, restarts.

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::config::EngineConfig;
use crate::limits::Guards;
use crate::metrics::Metrics;
use crate::store::memory::MemoryStore;
use crate::store::{LeaseRequest, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// 2026-01-01T00:00:00Z.
const T0: Millis = 1_767_225_600_000;
const MINUTE: Millis = 60_000;

fn config(schedule: &str) -> Arc<EngineConfig> {
    let yaml = format!("queue_configs: {{jobs: {{}}, small: {{max_ready: 2}}}}\nschedules:\n  s: {schedule}\n");
    Arc::new(EngineConfig::parse(&yaml).unwrap_or_else(|e| panic!("{e}")))
}

/// One engine's scheduler: its clock, its metrics, the task, and its stop.
struct Engine {
    clock: ManualClock,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    fn start(config: &Arc<EngineConfig>, store: &Arc<dyn Store>, at: Millis) -> Self {
        let clock = ManualClock::new(at);
        let metrics = Metrics::new(config);
        let guards = Arc::new(Guards::new(&config.limits));
        let scheduler =
            Scheduler::new(config.clone(), store.clone(), Arc::new(clock.clone()), guards, Some(metrics.clone()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(Arc::new(scheduler), stop.clone()));
        Self { clock, metrics, stop, task }
    }

    /// Waits (at most 10 s) until the scheduler sleeps until `at`: everything before is done.
    async fn sleeping_until(&self, at: Millis) {
        let wait = self.clock.wait_for_timer(|d| d == at);
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(_) => {}
            Err(_) => panic!("the scheduler never slept until {at}; its timers: {:?}", self.clock.timers()),
        }
    }

    /// (enqueued, duplicate, failed) as counted.
    fn ticks(&self) -> (u64, u64, u64) {
        let t = self.metrics.schedule("s").expect("schedule s");
        (t.enqueued.load(Relaxed), t.duplicate.load(Relaxed), t.failed.load(Relaxed))
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

async fn enqueued(store: &dyn Store, queue: &str) -> u64 {
    store.stats(queue).await.unwrap().enqueued
}

#[tokio::test]
async fn each_tick_enqueues_one_job_with_the_schedule_s_function_and_payload() {
    let c = config(
        "{cron: '0 * * * * *', queue: jobs, function_id: 'reports::minute', payload: {kind: nightly, n: 3}, missed: skip}",
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::start(&c, &store, T0 - MINUTE / 2);
    for k in 0..5u64 {
        let tick = T0 + k * MINUTE;
        engine.sleeping_until(tick).await;
        assert_eq!(enqueued(&*store, "jobs").await, k, "before tick {k}");
        engine.clock.advance_to(tick);
        engine.sleeping_until(tick + MINUTE).await;
        assert_eq!(enqueued(&*store, "jobs").await, k + 1, "after tick {k}");
    }
    assert_eq!(engine.ticks(), (5, 0, 0));
    let request = LeaseRequest {
        queue: "jobs".into(),
        functions: vec![("reports::minute".into(), 10)],
        max: 10,
        now: T0 + 5 * MINUTE,
    };
    let leased = store.lease(request).await.unwrap();
    assert_eq!(leased.len(), 5);
    let payload = crate::wire::value_to_json(&crate::wire::decode_payload(&leased[0].job.payload));
    assert_eq!(payload, serde_json::json!({"kind": "nightly", "n": 3}));
    engine.stop().await;
}

/// Two engines' schedulers on `a` and `b` (one store, or two connections to one shared
/// store), clocks stepped together a few ms apart, through 20 per-second ticks: each tick
/// is stored once (one engine's fire answers `enqueued`) and seen once as a duplicate.
async fn two_engines_enqueue_each_tick_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let c = config("{cron: '* * * * * *', queue: jobs, function_id: f}");
    let a = Engine::start(&c, &a, T0 + 500);
    let b = Engine::start(&c, &b, T0 + 700);
    // Both fire the start-up tick T0 (missed by nobody: one of them stores it).
    for e in [&a, &b] {
        e.sleeping_until(T0 + 1000).await;
    }
    let stored = |a: &Engine, b: &Engine| (a.ticks().0 + b.ticks().0, a.ticks().1 + b.ticks().1);
    assert_eq!(stored(&a, &b), (1, 1), "the start-up tick");
    for k in 1..=20u64 {
        let tick = T0 + k * 1000;
        // The engines' clocks disagree by a few ms; each fires when its own says so.
        let (early, late) = if k % 2 == 0 { (&a, &b) } else { (&b, &a) };
        early.clock.advance_to(tick + 3);
        late.clock.advance_to(tick + 11);
        for e in [&a, &b] {
            e.sleeping_until(tick + 1000).await;
        }
        assert_eq!(stored(&a, &b), (k + 1, k + 1), "tick {k}: stored once, a duplicate once");
    }
    assert_eq!((a.ticks().2, b.ticks().2), (0, 0), "no failures");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn two_engines_on_one_memory_store_enqueue_each_tick_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    two_engines_enqueue_each_tick_once(store.clone(), store.clone()).await;
    assert_eq!(enqueued(&*store, "jobs").await, 21);
}

/// RabbitMQ at `SWITCHYARD_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`),
/// a fresh prefix; the queues and claim queues declared are deleted at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_rabbitmq_enqueue_each_tick_once() {
    use crate::store::rabbitmq::RabbitStore;
    let url =
        std::env::var("SWITCHYARD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = format!("sytest-sched-{}", uuid::Uuid::now_v7().simple());
    let connect = || async {
        let store = RabbitStore::connect(&url, &prefix).await.expect("RabbitMQ at SWITCHYARD_TEST_AMQP_URL");
        store.declare(&["jobs".to_string()]).await.unwrap();
        Arc::new(store)
    };
    let (a, b) = (connect().await, connect().await);
    two_engines_enqueue_each_tick_once(a.clone(), b.clone()).await;
    let queues: Vec<String> = a.declared_queues().into_iter().chain(b.declared_queues()).collect();
    let claims: Vec<String> = a.claim_queues().into_iter().chain(b.claim_queues()).collect();
    drop((a, b));
    RabbitStore::delete_queues(&url, &claims).await.unwrap();
    RabbitStore::delete_prefix(&url, &prefix, &queues).await.unwrap();
}

#[tokio::test]
async fn run_once_fires_only_the_latest_missed_tick_and_skip_none() {
    // Down from before 01:00 until 05:20: ticks at 01:00 … 05:00 were missed.
    let start = T0 + 5 * 60 * MINUTE + 20 * MINUTE;
    for (missed, expected) in [("run_once", 1), ("skip", 0)] {
        let c = config(&format!("{{cron: '0 0 * * * *', queue: jobs, function_id: f, missed: {missed}}}"));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let engine = Engine::start(&c, &store, start);
        engine.sleeping_until(T0 + 6 * 60 * MINUTE).await;
        assert_eq!(enqueued(&*store, "jobs").await, expected, "missed: {missed}");
        engine.stop().await;
    }
}

#[tokio::test]
async fn a_missed_tick_older_than_a_day_is_not_run() {
    // Weekly on Sundays (2026-01-04 is one); the engine comes back on the Tuesday.
    let c = config("{cron: '@weekly', queue: jobs, function_id: f}");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sunday = T0 + 3 * 24 * 60 * MINUTE;
    let engine = Engine::start(&c, &store, sunday + 2 * 24 * 60 * MINUTE);
    engine.sleeping_until(sunday + 7 * 24 * 60 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 0, "two days late: past the 24 h bound");
    engine.stop().await;
    // A day late, it still runs.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::start(&c, &store, sunday + 24 * 60 * MINUTE);
    engine.sleeping_until(sunday + 7 * 24 * 60 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 1);
    engine.stop().await;
}

#[tokio::test]
async fn a_restart_within_the_window_finds_the_claim_and_does_not_fire_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("{cron: '0 0 * * * *', queue: jobs, function_id: f}");
    let open =
        || -> Arc<dyn Store> { Arc::new(crate::store::file::FileStore::open(&dir.path().join("store")).unwrap()) };
    let store = open();
    let engine = Engine::start(&c, &store, T0 + 59 * MINUTE);
    engine.sleeping_until(T0 + 60 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 1, "the 00:00 tick, missed: run at start-up");
    engine.clock.advance_to(T0 + 60 * MINUTE);
    engine.sleeping_until(T0 + 120 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 2, "and the 01:00 tick");
    engine.stop().await;
    drop(store);

    // Back at 01:30: the 01:00 tick is the latest before now, and its claim is on disk.
    let store = open();
    let engine = Engine::start(&c, &store, T0 + 90 * MINUTE);
    engine.sleeping_until(T0 + 120 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 2, "01:00 not fired again");
    assert_eq!(engine.ticks(), (0, 1, 0), "seen as a duplicate");
    engine.stop().await;
}

#[tokio::test]
async fn in_memory_forgets_and_a_restart_fires_the_latest_tick_again() {
    let c = config("{cron: '0 0 * * * *', queue: jobs, function_id: f}");
    let engine = Engine::start(&c, &(Arc::new(MemoryStore::new()) as Arc<dyn Store>), T0 + 60 * MINUTE);
    engine.sleeping_until(T0 + 120 * MINUTE).await;
    engine.stop().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::start(&c, &store, T0 + 90 * MINUTE);
    engine.sleeping_until(T0 + 120 * MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 1, "documented: in_memory has no record of 01:00");
    engine.stop().await;
}

#[tokio::test]
async fn woken_late_it_fires_the_latest_tick_only() {
    let c = config("{cron: '*/10 * * * * *', queue: jobs, function_id: f}");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::start(&c, &store, T0 + 1);
    engine.sleeping_until(T0 + 10_000).await;
    assert_eq!(enqueued(&*store, "jobs").await, 1, "the start-up tick T0");
    // Suspended for 55 s: ticks at +10 … +50 s have come; only +50 s runs.
    engine.clock.advance_to(T0 + 55_000);
    engine.sleeping_until(T0 + 60_000).await;
    assert_eq!(enqueued(&*store, "jobs").await, 2);
    engine.stop().await;
}

#[tokio::test]
async fn a_nightly_schedule_follows_berlin_time_across_the_spring_change() {
    // 02:30 Berlin; 2026-03-29 has no 02:30 (02:00 CET → 03:00 CEST): it fires at 03:00.
    let c = config("{cron: '0 30 2 * * *', timezone: Europe/Berlin, queue: jobs, function_id: f, missed: skip}");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond() as Millis;
    let engine = Engine::start(&c, &store, at("2026-03-27T12:00:00Z"));
    let expected = ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"];
    for (k, tick) in expected.iter().map(|s| at(s)).enumerate() {
        engine.sleeping_until(tick).await;
        engine.clock.advance_to(tick);
        assert!(engine.clock.now() >= tick);
        let next = expected.get(k + 1).map(|s| at(s)).unwrap_or(at("2026-04-01T00:30:00Z"));
        engine.sleeping_until(next).await;
        assert_eq!(enqueued(&*store, "jobs").await, k as u64 + 1);
    }
    engine.stop().await;
}

#[tokio::test]
async fn a_full_queue_passes_the_tick_over_and_counts_it_failed() {
    let c = config("{cron: '0 * * * * *', queue: small, function_id: f, missed: skip}");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::start(&c, &store, T0 + 1);
    for k in 1..=3u64 {
        engine.sleeping_until(T0 + k * MINUTE).await;
        engine.clock.advance_to(T0 + k * MINUTE);
    }
    engine.sleeping_until(T0 + 4 * MINUTE).await;
    assert_eq!(enqueued(&*store, "small").await, 2, "max_ready: 2");
    assert_eq!(engine.ticks(), (2, 0, 1));
    engine.stop().await;
}

#[test]
fn the_claim_outlives_every_engine_that_may_still_fire_the_tick() {
    let table = Timetable::parse("0 0 9,17 * * *", "UTC").unwrap();
    let nine = T0 + 9 * 60 * MINUTE;
    // The latest instant any engine fires 09:00: its late limit (the 17:00 tick).
    let last_fire = nine + table.late_limit(nine);
    assert_eq!(last_fire, T0 + 17 * 60 * MINUTE);
    // The claim, made at the earliest (09:00 sharp), lives past that by the margin.
    assert_eq!(nine + claim_window(&table, nine), last_fire + CLAIM_MARGIN_MS);
    assert_eq!(catch_up(&table, Missed::RunOnce, last_fire - 1), Some(nine));
    assert_eq!(catch_up(&table, Missed::RunOnce, last_fire + 1), Some(last_fire), "then 17:00 is the latest");
    assert_eq!(tick_key("nightly-report", nine), format!("schedule:nightly-report:{nine}"));
}

/// A memory store whose enqueues fail while `failing` says so.
struct Flaky {
    inner: MemoryStore,
    failing: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl Store for Flaky {
    async fn enqueue(&self, jobs: Vec<crate::queue::NewJob>) -> Result<Vec<crate::queue::Enqueued>, StoreError> {
        let left = self.failing.load(Relaxed);
        if left > 0 {
            self.failing.store(left - 1, Relaxed);
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.enqueue(jobs).await
    }
    async fn lease(&self, request: LeaseRequest) -> Result<Vec<crate::store::Lease>, StoreError> {
        self.inner.lease(request).await
    }
    async fn finish(&self, token: &crate::store::LeaseToken, finish: crate::store::Finish) -> Result<bool, StoreError> {
        self.inner.finish(token, finish).await
    }
    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.inner.next_due(queue).await
    }
    async fn stats(&self, queue: &str) -> Result<crate::store::QueueStats, StoreError> {
        self.inner.stats(queue).await
    }
    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.inner.oldest_ready(queue).await
    }
    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<crate::store::DeadLetterPage, StoreError> {
        self.inner.dead_letters(queue, cursor, limit).await
    }
    async fn redrive(&self, queue: &str, ids: &[crate::queue::JobId], now: Millis) -> Result<u64, StoreError> {
        self.inner.redrive(queue, ids, now).await
    }
    async fn discard(&self, queue: &str, ids: &[crate::queue::JobId]) -> Result<u64, StoreError> {
        self.inner.discard(queue, ids).await
    }
    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<crate::queue::Job>, StoreError> {
        self.inner.get_job(queue, id, now).await
    }
    async fn cancel(
        &self,
        queue: &str,
        id: &str,
        at: Millis,
        until: Millis,
    ) -> Result<crate::store::CancelOutcome, StoreError> {
        self.inner.cancel(queue, id, at, until).await
    }
    async fn set_progress(
        &self,
        token: &crate::store::LeaseToken,
        progress: crate::queue::Progress,
    ) -> Result<bool, StoreError> {
        self.inner.set_progress(token, progress).await
    }
    async fn cancel_requested(
        &self,
        tokens: &[crate::store::LeaseToken],
    ) -> Result<Vec<crate::store::LeaseToken>, StoreError> {
        self.inner.cancel_requested(tokens).await
    }
    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        self.inner.expire_finished(now).await
    }
    fn rate_gate(&self) -> Arc<dyn crate::limits::rate::RateGate> {
        self.inner.rate_gate()
    }
    async fn recover(&self) -> Result<u64, StoreError> {
        self.inner.recover().await
    }
    fn changed(&self) -> Arc<tokio::sync::Notify> {
        self.inner.changed()
    }
}

fn flaky(failures: u64) -> Arc<dyn Store> {
    Arc::new(Flaky { inner: MemoryStore::new(), failing: std::sync::atomic::AtomicU64::new(failures) })
}

#[tokio::test]
async fn a_store_error_is_retried_every_second_within_the_late_limit() {
    let c = config("{cron: '0 * * * * *', queue: jobs, function_id: f, missed: skip}");
    let store = flaky(2);
    let engine = Engine::start(&c, &store, T0 - MINUTE / 2);
    for at in [T0, T0 + RETRY_MS, T0 + 2 * RETRY_MS] {
        engine.sleeping_until(at).await;
        assert_eq!(enqueued(&*store, "jobs").await, 0);
        engine.clock.advance_to(at);
    }
    engine.sleeping_until(T0 + MINUTE).await;
    assert_eq!(enqueued(&*store, "jobs").await, 1, "the third try stored it");
    assert_eq!(engine.ticks(), (1, 0, 0));
    engine.stop().await;
}

#[tokio::test]
async fn a_tick_still_failing_at_its_late_limit_is_given_up_and_counted() {
    let c = config("{cron: '* * * * * *', queue: jobs, function_id: f, missed: skip}");
    let store = flaky(u64::MAX);
    let engine = Engine::start(&c, &store, T0 - 500);
    engine.sleeping_until(T0).await;
    engine.clock.advance_to(T0); // tick T0 fails; its one retry is due with the next tick
    engine.sleeping_until(T0 + 1000).await;
    engine.clock.advance_to(T0 + 1000); // T0's retry fails: given up; T0 + 1 s fails
    engine.sleeping_until(T0 + 2000).await;
    assert_eq!(engine.ticks(), (0, 0, 1), "T0 given up, once");
    assert_eq!(enqueued(&*store, "jobs").await, 0);
    engine.stop().await;
}

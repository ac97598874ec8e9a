//! Schedules on whole engines: two engines on one Redis (`SWITCHYARD_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`; one key prefix per test, deleted at the end) run the
//! same schedule with their injected clocks stepped together. Every tick must yield exactly
//! one job between them — including the start-up tick both fire, and the tick an engine
//! started late fires again — and each job is run once by a worker on either engine.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{TestEngine, WAIT};
use switchyard_engine::clock::{Clock, ManualClock, Millis};
use switchyard_engine::config::EngineConfig;
use switchyard_sdk::RegisterFunction;

fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix, deleted (SCAN + DEL) when dropped.
struct Prefix(String);

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = switchyard_engine::store::redis::delete_all_keys(&redis_url(), &self.0);
    }
}

/// 2026-01-01T00:00:00Z.
const T0: Millis = 1_767_225_600_000;
const MINUTE: Millis = 60_000;

/// Waits until `clock` has a sleeper at exactly `at` (the scheduler's next tick: no other
/// loop of the engine sleeps whole minutes from a whole minute).
async fn sleeping_until(clock: &ManualClock, at: Millis, who: &str) {
    let wait = clock.wait_for_timer(|d| d == at);
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("{who}: the scheduler never slept until {at}; timers {:?}", clock.timers());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_redis_enqueue_each_tick_once() {
    let prefix = Prefix(format!("sytest-sched-{}", uuid::Uuid::now_v7().simple()));
    let yaml = format!(
        "queue_configs:
  ticks: {{}}
schedules:
  every-minute: {{cron: '0 * * * * *', queue: ticks, function_id: 'sched::tick', payload: {{from: schedule}}}}
adapter:
  name: redis
  config: {{redis_url: '{}', key_prefix: '{}'}}
",
        redis_url(),
        prefix.0
    );
    let config = EngineConfig::parse(&yaml).unwrap();
    let reader = switchyard_engine::store::open(&config.adapter).await.expect("Redis at SWITCHYARD_TEST_REDIS_URL");
    let enqueued = || async { reader.stats("ticks").await.unwrap().enqueued };

    // Both start 30 s after the 00:00 tick, which no engine ran: run_once fires it, once.
    let (ca, cb) = (ManualClock::new(T0 + 30_000), ManualClock::new(T0 + 30_000));
    let a = TestEngine::start_with_clock(&yaml, Arc::new(ca.clone())).await;
    let b = TestEngine::start_with_clock(&yaml, Arc::new(cb.clone())).await;
    sleeping_until(&ca, T0 + MINUTE, "a").await;
    sleeping_until(&cb, T0 + MINUTE, "b").await;
    assert_eq!(enqueued().await, 1, "the missed 00:00 tick, once");

    for k in 1..=8u64 {
        let tick = T0 + k * MINUTE;
        // The clocks disagree by a few milliseconds, in either order.
        let (early, late) = if k % 2 == 0 { (&ca, &cb) } else { (&cb, &ca) };
        early.advance_to(tick + 2);
        late.advance_to(tick + 40);
        sleeping_until(&ca, tick + MINUTE, "a").await;
        sleeping_until(&cb, tick + MINUTE, "b").await;
        assert_eq!(enqueued().await, k + 1, "after tick {k}");
    }

    // A third engine starting now (00:08:30) finds the 00:08 claim: no second job.
    let cc = ManualClock::new(T0 + 8 * MINUTE + 30_000);
    let c = TestEngine::start_with_clock(&yaml, Arc::new(cc.clone())).await;
    sleeping_until(&cc, T0 + 9 * MINUTE, "c").await;
    assert_eq!(enqueued().await, 9, "the late starter's run_once is a duplicate");

    // A worker on one engine runs every tick's job, each once.
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = b.worker().await;
    let counter = runs.clone();
    worker.register_function(RegisterFunction::new_async("sched::tick", move |payload: serde_json::Value, _ctx| {
        let counter = counter.clone();
        async move {
            if payload == serde_json::json!({"from": "schedule"}) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(serde_json::json!(true))
        }
    }));
    let deadline = tokio::time::Instant::now() + WAIT;
    while reader.stats("ticks").await.unwrap().completed < 9 {
        assert!(tokio::time::Instant::now() < deadline, "stats {:?}", reader.stats("ticks").await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 9);
    let stats = reader.stats("ticks").await.unwrap();
    assert_eq!((stats.enqueued, stats.completed, stats.ready, stats.in_flight), (9, 9, 0, 0));
    assert_eq!(ca.now().max(cb.now()), T0 + 8 * MINUTE + 40);

    worker.shutdown().await;
    for e in [a, b, c] {
        e.stop().await;
    }
}

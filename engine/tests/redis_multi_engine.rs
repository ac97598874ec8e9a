//! Several engines on one Redis (`adapter: redis`, one key prefix per test), against the
//! Redis at `SWITCHYARD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`;
//! `scripts/services.sh` starts one). Each test deletes its keys at the end.
//!
//! What must hold:
//! - a job enqueued through any engine is processed by a worker on any engine — including
//!   one connected to an engine that serves no worker for its function;
//! - per FIFO group, the *first* processing of each sequence number happens in increasing
//!   order, whichever engine leases;
//! - when an engine is killed (`kill -9`), the jobs it had in flight are completed by the
//!   other engines once their lease expires, and no acknowledged job is lost;
//! - a queue's `rate_limit` holds across engines (one bucket in Redis): with an injected
//!   clock, at most `burst + rate × seconds` attempts start in total;
//! - a cancel answered by one engine reaches the attempt another engine leased: its worker
//!   hears `cancel` and the job ends cancelled, not retried, not failed;
//! - a running job's progress and, on a queue that keeps results, its result are visible
//!   through an engine other than the one that ran it.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::TestEngine;
use support::ledger::{FIFO, LOAD, Ledger, STANDARD, fast_reconnect, serve, wait_drained, wait_until};
use support::logged::EngineProcess;
use switchyard_sdk::RegisterFunction;

fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix, deleted (SCAN + DEL) when dropped.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("sytest-{}", uuid::Uuid::now_v7().simple()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = switchyard_engine::store::redis::delete_all_keys(&redis_url(), &self.0);
    }
}

fn config(prefix: &Prefix) -> String {
    config_with(prefix, "")
}

/// The config with more queues (`queue_configs` entries, each line indented two spaces).
fn config_with(prefix: &Prefix, queues: &str) -> String {
    format!(
        "queue_configs:
  work: {{concurrency: 16, max_retries: 20, backoff_ms: 20}}
  ordered: {{type: fifo, message_group_field: group, concurrency: 8, max_retries: 20, backoff_ms: 20}}
{queues}adapter:
  name: redis
  config: {{redis_url: '{}', key_prefix: '{}'}}
",
        redis_url(),
        prefix.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_engines_share_queues_and_keep_fifo_order() {
    let prefix = Prefix::new();
    let yaml = config(&prefix);
    let engines = vec![TestEngine::start(&yaml).await, TestEngine::start(&yaml).await, TestEngine::start(&yaml).await];
    let ledger = Arc::new(Ledger::default());

    // Workers spread unevenly: engine 0 serves no fifo function and engine 2 no standard
    // one, so their jobs must travel to another engine.
    let mut workers = Vec::new();
    for (i, functions) in [vec![STANDARD], vec![STANDARD, FIFO], vec![FIFO]].into_iter().enumerate() {
        let w = engines[i].worker().await;
        for f in functions {
            serve(&w, i, f.function, &ledger);
        }
        workers.push(w);
    }

    let mut producers = Vec::new();
    for p in 0..3 {
        let mut clients = Vec::new();
        for e in &engines {
            clients.push(e.client().await);
        }
        producers.push(tokio::spawn(LOAD.produce(p, 240, clients, ledger.clone())));
    }
    for p in producers {
        p.await.unwrap();
    }
    ledger.assert_all_processed(Duration::from_secs(60), String::new).await;
    let client = engines[2].client().await;
    wait_drained(&client, &["work", "ordered"]).await;

    assert!(ledger.assert_fifo_order("") > 0, "fifo jobs were processed");
    let work = client.queues().stats("work").await.unwrap();
    assert_eq!((work.enqueued, work.completed, work.failed), (360, 360, 0));
    let ordered = client.queues().stats("ordered").await.unwrap();
    assert_eq!((ordered.enqueued, ordered.completed, ordered.failed), (360, 360, 0));
    let by_worker = |w: usize| ledger.processed().iter().filter(|p| p.worker == w).count();
    assert!(by_worker(0) > 0 && by_worker(1) > 0, "standard jobs ran on two engines");
    assert!(by_worker(1) > 0 && by_worker(2) > 0, "fifo jobs ran on two engines");

    for w in &workers {
        w.shutdown().await;
    }
    for e in engines {
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_engine_hands_its_in_flight_jobs_to_the_others() {
    let started = Instant::now();
    let prefix = Prefix::new();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("iii-config.yaml");
    std::fs::write(&config_path, config(&prefix)).unwrap();
    let engine_log = dir.path().join("engines.log");
    let mut engines: Vec<EngineProcess> = (0..3)
        .map(|_| EngineProcess::start(&config_path, &engine_log, &[("SWITCHYARD_REDIS_LEASE_TTL_MS", "1000")]))
        .collect();
    let ledger = Arc::new(Ledger::default());

    // The worker on engine 0 never finishes a job: whatever engine 0 leases stays in flight
    // until the engine dies, and must then be completed elsewhere.
    let stuck = switchyard_sdk::register_worker(&engines[0].url, fast_reconnect(8)).await.unwrap();
    let in_stuck = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    for route in [STANDARD, FIFO] {
        let (ledger, in_stuck) = (ledger.clone(), in_stuck.clone());
        stuck.register_function(RegisterFunction::new_async(route.function, move |p: Value, ctx| {
            let (ledger, in_stuck) = (ledger.clone(), in_stuck.clone());
            async move {
                ledger.record(0, &ctx, &p);
                in_stuck.lock().push(ctx.message_receipt_id.clone().unwrap_or_default());
                std::future::pending::<()>().await;
                Ok(Value::Null)
            }
        }));
    }
    assert!(stuck.ready(Duration::from_secs(20)).await, "worker 0 connects");
    let mut workers = Vec::new();
    for (i, engine) in engines.iter().enumerate().skip(1) {
        let w = switchyard_sdk::register_worker(&engine.url, fast_reconnect(32)).await.unwrap();
        serve(&w, i, STANDARD.function, &ledger);
        serve(&w, i, FIFO.function, &ledger);
        assert!(w.ready(Duration::from_secs(20)).await, "worker {i} connects");
        workers.push(w);
    }

    let jobs_per_producer = 200;
    let mut producers = Vec::new();
    for p in 0..3 {
        let mut clients = Vec::new();
        for e in &engines {
            clients.push(switchyard_sdk::register_worker(&e.url, fast_reconnect(1)).await.unwrap());
        }
        producers.push(tokio::spawn(LOAD.produce(p, jobs_per_producer, clients, ledger.clone())));
    }

    // Mid-load, once engine 0 holds a full worker's worth of jobs: kill it.
    let total = 3 * jobs_per_producer;
    wait_until("engine 0 holds jobs mid-load", Duration::from_secs(30), || {
        in_stuck.lock().len() >= 8 && ledger.acked() >= total / 3
    })
    .await;
    let held: Vec<String> = in_stuck.lock().clone();
    let acked_at_kill = ledger.acked();
    engines[0].kill();
    let killed_at = Instant::now();
    eprintln!("killed engine 0 holding {} jobs, after {acked_at_kill} acknowledged enqueues", held.len());

    for p in producers {
        p.await.unwrap();
    }
    assert_eq!(ledger.acked(), total);
    let client = switchyard_sdk::register_worker(&engines[1].url, fast_reconnect(1)).await.unwrap();
    wait_drained(&client, &["work", "ordered"]).await;
    let drained_after = killed_at.elapsed();

    // Every acknowledged job ran; the killed engine's jobs ran again on the others.
    let processed = ledger.processed();
    let done_elsewhere: HashSet<&str> =
        processed.iter().filter(|p| p.worker != 0).map(|p| p.receipt.as_str()).collect();
    for r in ledger.receipts().iter() {
        assert!(done_elsewhere.contains(r.as_str()), "acknowledged job {r} was never completed");
    }
    for r in &held {
        assert!(done_elsewhere.contains(r.as_str()), "job {r} held by the killed engine was not completed");
    }
    assert!(ledger.assert_fifo_order("") > 0, "fifo jobs were processed");
    for q in ["work", "ordered"] {
        let s = client.queues().stats(q).await.unwrap();
        assert_eq!((s.failed, s.dead), (0, 0), "{q}: reclaim does not count as a failure");
        assert!(s.enqueued >= total as u64 / 2 && s.completed == s.enqueued, "{q}: everything stored completed: {s:?}");
    }
    eprintln!(
        "held jobs completed elsewhere; drained {:.1} s after the kill; whole test {:.1} s",
        drained_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for w in &workers {
        w.shutdown().await;
    }
    drop(engines);
    if std::env::var("SWITCHYARD_TEST_KEEP_LOGS").is_ok() {
        eprintln!("engine logs: {}", std::fs::read_to_string(&engine_log).unwrap_or_default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_agree_on_an_idempotency_key_and_publish_to_shared_subscriber_queues() {
    let prefix = Prefix::new();
    let yaml = format!("{}topic_configs:\n  orders.placed:\n    subscribers: [billing::charge]\n", config(&prefix));
    let engines = [TestEngine::start(&yaml).await, TestEngine::start(&yaml).await];
    let (a, b) = (engines[0].client().await, engines[1].client().await);
    let keyed = || switchyard_sdk::EnqueueOptions::default().idempotency_key("charge-ord_1");
    let first = a.enqueue_with("work", "jobs::charge", serde_json::json!({"n": 1}), keyed()).await.unwrap();
    let again = b.enqueue_with("work", "jobs::charge", serde_json::json!({"n": 2}), keyed()).await.unwrap();
    assert!(!first.duplicate && again.duplicate, "the second engine sees the first's key");
    assert_eq!(again.message_receipt_id, first.message_receipt_id);
    let published = a.publish_with("orders.placed", serde_json::json!({}), keyed()).await.unwrap();
    let republished = b.publish_with("orders.placed", serde_json::json!({}), keyed()).await.unwrap();
    assert_eq!(republished.receipts[0].message_receipt_id, published.receipts[0].message_receipt_id);
    assert!(republished.receipts[0].duplicate);
    let stats = b.queues().stats("orders.placed/billing::charge").await.unwrap();
    assert_eq!(stats.enqueued, 1, "one job on the shared subscriber queue");
    for e in engines {
        e.stop().await;
    }
}

/// Starts of one function's attempts, as the handlers saw them: (engine, clock time).
type Starts = Arc<parking_lot::Mutex<Vec<(usize, u64)>>>;

fn record_starts(
    w: &switchyard_sdk::Worker,
    function: &'static str,
    engine: usize,
    clock: &switchyard_engine::clock::ManualClock,
    starts: &Starts,
    seen: &Arc<tokio::sync::watch::Sender<usize>>,
) {
    use switchyard_engine::clock::Clock;
    let (clock, starts, seen) = (clock.clone(), starts.clone(), seen.clone());
    w.register_function(RegisterFunction::new_async(function, move |_p: Value, _ctx| {
        let (clock, starts, seen) = (clock.clone(), starts.clone(), seen.clone());
        async move {
            let n = {
                let mut s = starts.lock();
                s.push((engine, clock.now()));
                s.len()
            };
            seen.send_replace(n);
            Ok(Value::Null)
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_two_engines() {
    use switchyard_engine::clock::ManualClock;
    const RATE: usize = 4; // per second, and the burst
    const WINDOWS: usize = 4;
    let prefix = Prefix::new();
    let yaml = config_with(
        &prefix,
        &format!("  limited: {{concurrency: 50, rate_limit: {{per_second: {RATE}, burst: {RATE}}}}}\n"),
    );
    let clock = ManualClock::new(1_000_000);
    let engines = [
        TestEngine::start_with_clock(&yaml, Arc::new(clock.clone())).await,
        TestEngine::start_with_clock(&yaml, Arc::new(clock.clone())).await,
    ];
    // Each engine serves its own function, so both must take tokens to run their jobs; with
    // a bucket per engine each would start RATE per second.
    let starts: Starts = Arc::default();
    let (seen, mut seen_rx) = tokio::sync::watch::channel(0usize);
    let seen = Arc::new(seen);
    let mut workers = Vec::new();
    for (i, function) in ["rate::a", "rate::b"].into_iter().enumerate() {
        let w = engines[i].worker().await;
        record_starts(&w, function, i, &clock, &starts, &seen);
        workers.push(w);
    }
    // More jobs of each function than the windows let start, so no engine runs out.
    let client = engines[0].client().await;
    for n in 0..RATE * WINDOWS {
        for function in ["rate::a", "rate::b"] {
            client.enqueue("limited", function, serde_json::json!({ "n": n })).await.unwrap();
        }
    }

    let t0 = clock_now(&clock);
    for window in 0..WINDOWS {
        let due = RATE * (window + 1);
        tokio::time::timeout(support::WAIT, seen_rx.wait_for(|n| *n >= due))
            .await
            .unwrap_or_else(|_| panic!("window {window}: {due} starts expected, saw {}", starts.lock().len()))
            .unwrap();
        let now = clock_now(&clock);
        let so_far = starts.lock().iter().filter(|(_, at)| *at <= now).count();
        assert!(so_far <= due, "window {window}: {so_far} attempts started by {} ms, at most {due}", now - t0);
        clock.advance(1_000);
    }
    let stats = client.queues().stats("limited").await.unwrap();
    let started = stats.completed + stats.in_flight;
    assert!(started as usize <= RATE * (WINDOWS + 1), "{started} started in {} windows", WINDOWS + 1);
    let by = |e: usize| starts.lock().iter().filter(|(engine, _)| *engine == e).count();
    eprintln!("starts by engine: {} and {}", by(0), by(1));
    for w in &workers {
        w.shutdown().await;
    }
    for e in engines {
        e.stop().await;
    }
}

fn clock_now(clock: &switchyard_engine::clock::ManualClock) -> u64 {
    use switchyard_engine::clock::Clock;
    clock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_one_engine_stops_the_attempt_the_other_engine_leased() {
    use switchyard_proto::v1::queues_client::QueuesClient;
    use switchyard_proto::v1::{CancelJobRequest, GetJobRequest, engine_message};
    let prefix = Prefix::new();
    let yaml = config(&prefix);
    let (holder, other) = (TestEngine::start(&yaml).await, TestEngine::start(&yaml).await);
    // Only the holder serves the function: the job runs there.
    let mut worker = support::RawWorker::connect(&holder, 4, &["jobs::slow"]).await;
    let producer = other.client().await;
    let receipt = producer.enqueue("work", "jobs::slow", serde_json::json!({})).await.unwrap();
    let invoke = worker.next_invoke().await;
    assert_eq!(invoke.delivery.as_ref().unwrap().message_receipt_id, receipt.message_receipt_id);

    let mut queues = QueuesClient::new(other.channel().await);
    let id = receipt.message_receipt_id.clone();
    let cancel = || CancelJobRequest { queue: "work".into(), message_receipt_id: id.clone() };
    let answer = queues.cancel_job(cancel()).await.unwrap().into_inner();
    assert_eq!(answer.outcome, "cancelling", "the other engine holds the lease");
    assert!(answer.job.unwrap().cancel_requested);

    // The holder's watch loop finds the request and tells its worker.
    match worker.next().await.kind {
        Some(engine_message::Kind::Cancel(c)) => assert_eq!(c.invocation_id, invoke.invocation_id),
        other => panic!("expected cancel, got {other:?}"),
    }
    let get = || GetJobRequest { queue: "work".into(), message_receipt_id: id.clone() };
    support::eventually("the job ends cancelled", || {
        let (mut queues, get) = (queues.clone(), get());
        async move { queues.get_job(get).await.unwrap().into_inner().job.unwrap().state == "cancelled" }
    })
    .await;
    // A result after the cancel changes nothing; a second cancel says it was done.
    worker.reply_ok(&invoke.invocation_id, serde_json::json!("late"));
    assert_eq!(queues.cancel_job(cancel()).await.unwrap().into_inner().outcome, "already_cancelled");
    let info = queues.get_job(get()).await.unwrap().into_inner().job.unwrap();
    assert_eq!((info.state.as_str(), info.result), ("cancelled", None), "the late result is not kept");
    let s = producer.queues().stats("work").await.unwrap();
    assert_eq!((s.in_flight, s.ready, s.delayed, s.completed, s.failed, s.dead), (0, 0, 0, 0, 0, 0));
    holder.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_a_kept_result_are_seen_through_the_other_engine() {
    use switchyard_sdk::JobState;
    let prefix = Prefix::new();
    let yaml = config_with(&prefix, "  reports: {result_retention_ms: 60000}\n");
    let (runner, reader) = (TestEngine::start(&yaml).await, TestEngine::start(&yaml).await);
    let worker = runner.worker().await;
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    worker.register_function(RegisterFunction::new_async("reports::build", move |_p: Value, ctx| {
        let mut go = go_rx.clone();
        async move {
            ctx.set_progress(Some(0.5), Some(serde_json::json!({"step": "rows"})));
            go.wait_for(|g| *g).await.unwrap();
            Ok(serde_json::json!({"rows": 42}))
        }
    }));
    let client = reader.client().await;
    let id = client.enqueue("reports", "reports::build", serde_json::json!({})).await.unwrap().message_receipt_id;
    let queues = client.queues();
    support::eventually("the other engine shows the progress", || {
        let (queues, id) = (queues.clone(), id.clone());
        async move {
            let job = queues.get_job("reports", &id).await.unwrap();
            job.state == Some(JobState::InFlight) && job.progress.is_some_and(|p| p.value == Some(0.5))
        }
    })
    .await;
    go_tx.send_replace(true);
    let result = queues.wait_for_result("reports", &id, support::WAIT).await.unwrap();
    assert_eq!(result, serde_json::json!({"rows": 42}));
    let job = queues.get_job("reports", &id).await.unwrap();
    assert_eq!(job.state, Some(JobState::Completed));
    assert!(job.finished_at.is_some() && job.expires_at > job.finished_at);
    worker.shutdown().await;
    runner.stop().await;
    reader.stop().await;
}

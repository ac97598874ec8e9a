//! Workers over real gRPC: timeouts, disconnects, backpressure, waiting for a worker,
//! competing workers, reconnects, graceful shutdown.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{RawWorker, TestEngine, WAIT, eventually, recv};
use switchyard_proto::v1::engine_message;
use switchyard_sdk::{Reason, RegisterFunction};
use tokio::sync::mpsc;

#[tokio::test]
async fn timeout_cancels_the_attempt_and_it_is_retried() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {timeout_ms: 150, backoff_ms: 0, max_retries: 2}\n").await;
    let mut raw = RawWorker::connect(&engine, 4, &["slow"]).await;
    let client = engine.client().await;
    let receipt = client.enqueue("jobs", "slow", json!({})).await.unwrap();
    let first = raw.next_invoke().await;
    assert_eq!(first.delivery.as_ref().unwrap().attempt, 1);
    // Never answered: the engine cancels it…
    match raw.next().await.kind {
        Some(engine_message::Kind::Cancel(c)) => assert_eq!(c.invocation_id, first.invocation_id),
        other => panic!("expected cancel, got {other:?}"),
    }
    // …and counts it as a failed attempt: attempt 2 follows.
    let second = raw.next_invoke().await;
    let delivery = second.delivery.as_ref().unwrap();
    assert_eq!((delivery.attempt, delivery.message_receipt_id.as_str()), (2, receipt.message_receipt_id.as_str()));
    raw.reply_ok(&first.invocation_id, json!("late")); // a late answer is ignored
    raw.reply_ok(&second.invocation_id, json!("ok"));
    let queues = client.queues();
    eventually("completed", || async { queues.stats("jobs").await.unwrap().completed == 1 }).await;
    let stats = queues.stats("jobs").await.unwrap();
    assert_eq!((stats.failed, stats.in_flight, stats.dead), (1, 0, 0));
    engine.stop().await;
}

#[tokio::test]
async fn a_disconnecting_worker_fails_its_attempt_and_another_worker_completes_it() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {backoff_ms: 0, max_retries: 3}\n").await;
    let mut doomed = RawWorker::connect(&engine, 4, &["orders::process"]).await;
    let client = engine.client().await;
    let receipt = client.enqueue("jobs", "orders::process", json!({"orderId": "o1"})).await.unwrap();
    let first = doomed.next_invoke().await;
    assert_eq!(first.delivery.unwrap().attempt, 1);

    let survivor = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    survivor.register_function(RegisterFunction::new_async("orders::process", move |p, ctx| {
        let tx = tx.clone();
        async move {
            tx.send((p, ctx.attempt, ctx.message_receipt_id)).unwrap();
            Ok(Value::Null)
        }
    }));
    assert!(survivor.ready(WAIT).await);
    drop(doomed); // the stream ends mid-attempt

    let (payload, attempt, id) = recv(&mut rx).await;
    assert_eq!(payload, json!({"orderId": "o1"}));
    assert_eq!(attempt, 2, "the disconnect spent attempt 1");
    assert_eq!(id, Some(receipt.message_receipt_id));
    engine.stop().await;
}

#[tokio::test]
async fn a_job_enqueued_before_any_worker_waits_and_is_delivered_on_attempt_one() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {max_retries: 0}\n").await;
    let client = engine.client().await;
    client.enqueue("jobs", "late::worker", json!({"n": 1})).await.unwrap();
    let queues = client.queues();
    let stats = queues.stats("jobs").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight, stats.failed), (1, 0, 0), "no attempt is spent waiting");

    let worker = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("late::worker", move |p, ctx| {
        let tx = tx.clone();
        async move {
            tx.send((p, ctx.attempt)).unwrap();
            Ok(Value::Null)
        }
    }));
    assert_eq!(recv(&mut rx).await, (json!({"n": 1}), 1));
    engine.stop().await;
}

#[tokio::test]
async fn a_worker_never_has_more_than_max_in_flight_outstanding() {
    // Two invocations are still outstanding at the end: a short grace ends the test quickly.
    let engine = TestEngine::start("shutdown_grace_ms: 100\n").await;
    let mut raw = RawWorker::connect(&engine, 2, &["f"]).await;
    let client = engine.client().await;
    for i in 0..5 {
        client.enqueue("default", "f", json!({"i": i})).await.unwrap();
    }
    let a = raw.next_invoke().await;
    let _b = raw.next_invoke().await;
    assert!(raw.next_within(Duration::from_millis(200)).await.is_none(), "a third invoke would exceed max_in_flight 2");
    raw.reply_ok(&a.invocation_id, json!(null));
    let _c = raw.next_invoke().await;
    assert!(raw.next_within(Duration::from_millis(200)).await.is_none(), "still at most 2 outstanding");
    engine.stop().await;
}

#[tokio::test]
async fn competing_workers_share_the_work() {
    let engine = TestEngine::start("").await;
    let mut a = RawWorker::connect(&engine, 1, &["f"]).await;
    let mut b = RawWorker::connect(&engine, 1, &["f"]).await;
    let client = engine.client().await;
    client.enqueue("default", "f", json!({"i": 1})).await.unwrap();
    client.enqueue("default", "f", json!({"i": 2})).await.unwrap();
    let (ia, ib) = (a.next_invoke().await, b.next_invoke().await);
    let mut got = [ia.payload.clone(), ib.payload.clone()];
    got.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(got.len(), 2);
    a.reply_ok(&ia.invocation_id, json!(null));
    b.reply_ok(&ib.invocation_id, json!(null));
    let queues = client.queues();
    eventually("both completed", || async { queues.stats("default").await.unwrap().completed == 2 }).await;
    engine.stop().await;
}

#[tokio::test]
async fn the_sdk_worker_reconnects_and_reregisters_after_an_engine_restart() {
    let engine = TestEngine::start("").await;
    let addr = engine.addr();
    let options = switchyard_sdk::InitOptions { reconnect_max: Duration::from_millis(200), ..Default::default() };
    let worker = switchyard_sdk::register_worker(&engine.url, options).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("f", move |p, _ctx| {
        let tx = tx.clone();
        async move {
            tx.send(p).unwrap();
            Ok(Value::Null)
        }
    }));
    assert!(worker.ready(WAIT).await);
    worker.enqueue("default", "f", json!({"before": true})).await.unwrap();
    assert_eq!(recv(&mut rx).await, json!({"before": true}));

    engine.stop().await;
    let engine = TestEngine::start_at("", addr).await;
    assert!(worker.ready(WAIT).await, "reconnected and re-registered");
    worker.enqueue("default", "f", json!({"after": true})).await.unwrap();
    assert_eq!(recv(&mut rx).await, json!({"after": true}));
    worker.shutdown().await;
    engine.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_refuses_new_work_and_lets_in_flight_attempts_finish() {
    let engine = TestEngine::start("").await;
    let worker = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (finished_tx, mut finished) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    worker.register_function(RegisterFunction::new_async("work", move |_p, _ctx| {
        let (g, started_tx, finished_tx) = (g.clone(), started_tx.clone(), finished_tx.clone());
        async move {
            started_tx.send(()).unwrap();
            let _permit = g.acquire().await.unwrap();
            finished_tx.send(()).unwrap();
            Ok(Value::Null)
        }
    }));
    let client = engine.client().await;
    client.enqueue("default", "work", json!({})).await.unwrap();
    recv(&mut started).await;

    let url = engine.url.clone();
    let stopping = tokio::spawn(engine.stop());
    let late = switchyard_sdk::register_worker(&url, Default::default()).await.unwrap();
    eventually("new work is refused while draining", || async {
        matches!(late.enqueue("default", "work", json!({})).await, Err(e) if e.reason == Reason::Unavailable)
    })
    .await;
    assert!(!stopping.is_finished(), "the engine waits for the running attempt");
    gate.add_permits(1);
    recv(&mut finished).await;
    tokio::time::timeout(WAIT, stopping).await.expect("stops once drained").unwrap();
}

#[tokio::test]
async fn a_batching_worker_gets_several_invokes_in_one_message_and_answers_in_one() {
    let engine = TestEngine::start("").await;
    let client = engine.client().await;
    for i in 0..5 {
        client.enqueue("default", "f", json!({"i": i})).await.unwrap();
    }
    // The jobs wait; the worker's hello makes one lease of all five, sent as one batch.
    let mut raw = RawWorker::connect_with(&engine, 10, &["f"], true).await;
    let batch = match raw.next().await.kind {
        Some(engine_message::Kind::Invokes(batch)) => batch.invokes,
        other => panic!("expected an invokes batch, got {other:?}"),
    };
    let mut seen: Vec<i64> = batch
        .iter()
        .map(|i| switchyard_sdk::json::from_proto(i.payload.as_ref().unwrap())["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    assert!(batch.iter().all(|i| i.delivery.as_ref().unwrap().attempt == 1));
    raw.reply_all_ok(&batch.iter().map(|i| i.invocation_id.clone()).collect::<Vec<_>>());
    let queues = client.queues();
    eventually("all five completed", || async { queues.stats("default").await.unwrap().completed == 5 }).await;
    engine.stop().await;
}

#[tokio::test]
async fn a_worker_without_batches_gets_one_invoke_per_message() {
    let engine = TestEngine::start("").await;
    let client = engine.client().await;
    for i in 0..3 {
        client.enqueue("default", "f", json!({"i": i})).await.unwrap();
    }
    let mut raw = RawWorker::connect(&engine, 10, &["f"]).await;
    for _ in 0..3 {
        let invoke = raw.next_invoke().await;
        raw.reply_ok(&invoke.invocation_id, json!(null));
    }
    let queues = client.queues();
    eventually("all three completed", || async { queues.stats("default").await.unwrap().completed == 3 }).await;
    engine.stop().await;
}

#[tokio::test]
async fn list_workers_shows_each_worker_its_functions_and_what_it_has_in_flight() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {}\n").await;
    let mut raw = RawWorker::connect(&engine, 4, &["b::two", "a::one"]).await;
    let queues = engine.client().await.queues();
    let listed = queues.list_workers().await.unwrap();
    // The client itself holds a worker stream too; the raw worker connected first.
    let w = &listed[0];
    assert_eq!((w.worker_name.as_str(), w.sdk_name.as_str(), w.sdk_version.as_str()), ("raw", "test", "0"));
    assert_eq!(w.functions, ["a::one", "b::two"], "sorted");
    assert_eq!((w.max_in_flight, w.in_flight), (4, 0));
    assert!(w.worker_id.starts_with('w') && w.connected_at.is_some());

    engine.client().await.enqueue("jobs", "a::one", json!({})).await.unwrap();
    let invoke = raw.next_invoke().await;
    assert_eq!(queues.list_workers().await.unwrap()[0].in_flight, 1, "the attempt is outstanding");
    raw.reply_ok(&invoke.invocation_id, Value::Null);
    drop(raw);
    eventually("the raw worker is gone", || async {
        queues.list_workers().await.unwrap().iter().all(|w| w.worker_name != "raw")
    })
    .await;
    engine.stop().await;
}

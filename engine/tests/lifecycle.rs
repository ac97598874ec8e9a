//! The job lifecycle over real gRPC, through the Rust SDK: non-retryable failures, rate
//! limits (with the injected clock), GetJob with results, cancel before and during a run,
//! progress.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{TestEngine, WAIT, eventually, recv};
use switchyard_engine::clock::{Clock, ManualClock};
use switchyard_sdk::{CancelOutcome, EnqueueOptions, HandlerError, JobState, Reason, RegisterFunction};
use tokio::sync::mpsc;

#[tokio::test]
async fn a_non_retryable_failure_dead_letters_at_once_whatever_budget_is_left() {
    let engine = TestEngine::start("queue_configs:\n  cards: {max_retries: 5, backoff_ms: 10}\n").await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    worker.register_function(RegisterFunction::new_async("cards::charge", move |_p, ctx| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.attempt).unwrap();
            Err::<Value, _>(HandlerError::permanent("card number is invalid"))
        }
    }));
    let receipt = worker.enqueue("cards", "cards::charge", json!({"card": "0"})).await.unwrap();
    assert_eq!(recv(&mut rx).await, 1);
    let queues = worker.queues();
    eventually("the job is dead", || async { queues.stats("cards").await.unwrap().dead == 1 }).await;
    let page = queues.list_dead_letters("cards", 10, None).await.unwrap();
    let dead = &page.entries[0];
    assert_eq!((dead.message_receipt_id.as_str(), dead.attempts), (receipt.message_receipt_id.as_str(), 1));
    let error = dead.last_error.clone().unwrap();
    assert_eq!((error.code.as_str(), error.message.as_str()), ("NonRetryableError", "card number is invalid"));
    assert!(rx.try_recv().is_err(), "no second attempt");
    let stats = queues.stats("cards").await.unwrap();
    assert_eq!((stats.failed, stats.dead_lettered, stats.delayed), (1, 1, 0));
    engine.stop().await;
}

#[tokio::test]
async fn a_rate_limit_starts_the_burst_then_one_job_per_interval_of_the_injected_clock() {
    let start = 1_700_000_000_000;
    let clock = ManualClock::new(start);
    let engine = TestEngine::start_with_clock(
        "queue_configs:\n  email: {concurrency: 10, rate_limit: {per_second: 10, burst: 2}}\n",
        Arc::new(clock.clone()),
    )
    .await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let handler_clock = clock.clone();
    worker.register_function(RegisterFunction::new_async("emails::send", move |_p, _ctx| {
        let (tx, clock) = (tx.clone(), handler_clock.clone());
        async move {
            tx.send(clock.now()).unwrap();
            Ok(Value::Null)
        }
    }));
    for i in 0..6 {
        worker.enqueue("email", "emails::send", json!({"i": i})).await.unwrap();
    }
    // The burst: two start at once, and no more while the clock stands still.
    assert_eq!([recv(&mut rx).await, recv(&mut rx).await], [start, start]);
    let queues = worker.queues();
    eventually("both completed", || async { queues.stats("email").await.unwrap().completed == 2 }).await;
    assert!(rx.try_recv().is_err(), "a third start needs a token");
    assert_eq!(queues.stats("email").await.unwrap().ready, 4, "the rest wait, ready");
    // Then one per 100 ms: the engine sleeps until the next token, and takes it then.
    for n in 1..=4u64 {
        let at = tokio::time::timeout(WAIT, clock.wait_for_timer(|t| t <= start + 100 * n)).await.unwrap();
        assert_eq!(at, start + 100 * n, "the engine waits for the next token");
        clock.advance_to(at);
        assert_eq!(recv(&mut rx).await, start + 100 * n);
        let done = 2 + n;
        eventually("completed", || async { queues.stats("email").await.unwrap().completed == done }).await;
        assert!(rx.try_recv().is_err(), "one token, one start");
    }
    let stats = queues.stats("email").await.unwrap();
    assert_eq!((stats.completed, stats.failed, stats.ready), (6, 0, 0));
    engine.stop().await;
}

#[tokio::test]
async fn get_job_follows_a_job_to_its_retained_result_and_wait_for_result_answers_it() {
    let engine = TestEngine::start("queue_configs:\n  reports: {result_retention_ms: 60000, backoff_ms: 10}\n").await;
    let worker = engine.worker().await;
    let queues = worker.queues();
    let receipt = worker.enqueue("reports", "reports::build", json!({"month": "2026-11"})).await.unwrap();
    let id = receipt.message_receipt_id;
    let job = queues.get_job("reports", &id).await.unwrap();
    assert_eq!((job.state, job.attempts, job.max_attempts), (Some(JobState::Ready), 0, 4));
    assert_eq!(job.payload, json!({"month": "2026-11"}));
    worker.register_function(RegisterFunction::new_async("reports::build", |p: Value, ctx| async move {
        if ctx.attempt < 2 {
            return Err(HandlerError::new("warehouse busy").with_code("Busy"));
        }
        Ok(json!({"rows": 42, "month": p["month"]}))
    }));
    let result = queues.wait_for_result("reports", &id, WAIT).await.unwrap();
    assert_eq!(result, json!({"rows": 42, "month": "2026-11"}));
    let job = queues.get_job("reports", &id).await.unwrap();
    assert_eq!((job.state, job.attempts), (Some(JobState::Completed), 2));
    assert_eq!(job.last_error.map(|e| e.code), Some("Busy".into()), "the failed attempt's error is kept");
    assert!(job.finished_at.is_some() && job.expires_at > job.finished_at);
    let err = queues.get_job("reports", "00000000-0000-7000-8000-000000000000").await.unwrap_err();
    assert_eq!(err.reason, Reason::JobNotFound);
    engine.stop().await;
}

#[tokio::test]
async fn cancel_before_start_and_during_a_run() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {max_retries: 3, backoff_ms: 10}\n").await;
    let worker = engine.worker().await;
    let queues = worker.queues();
    // Before it starts: it never runs.
    let later = worker
        .enqueue_with("jobs", "jobs::slow", &json!({"n": 1}), EnqueueOptions::default().delay_ms(60_000))
        .await
        .unwrap();
    let (outcome, job) = queues.cancel_job("jobs", &later.message_receipt_id).await.unwrap();
    assert_eq!((outcome, job.state), (CancelOutcome::Cancelled, Some(JobState::Cancelled)));
    let (again, _) = queues.cancel_job("jobs", &later.message_receipt_id).await.unwrap();
    assert_eq!(again, CancelOutcome::AlreadyCancelled);
    let err = queues.wait_for_result("jobs", &later.message_receipt_id, WAIT).await.unwrap_err();
    assert_eq!(err.reason, Reason::JobCancelled);
    // During a run: the handler sees the cancel, reports progress before, and the job ends
    // cancelled — not retried, not dead-lettered.
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel::<()>();
    worker.register_function(RegisterFunction::new_async("jobs::slow", move |_p, ctx| {
        let (started_tx, stopped_tx) = (started_tx.clone(), stopped_tx.clone());
        async move {
            ctx.set_progress(Some(40.0), Some(json!({"step": "upload"})));
            started_tx.send(()).unwrap();
            tokio::select! {
                _ = ctx.cancelled.cancelled() => stopped_tx.send(()).unwrap(),
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            Ok(Value::Null)
        }
    }));
    let running = worker.enqueue("jobs", "jobs::slow", json!({"n": 2})).await.unwrap();
    let id = running.message_receipt_id;
    recv(&mut started).await;
    eventually("progress shows", || async {
        let job = queues.get_job("jobs", &id).await.unwrap();
        job.progress.is_some_and(|p| p.value == Some(40.0) && p.detail == Some(json!({"step": "upload"})))
    })
    .await;
    let (outcome, _) = queues.cancel_job("jobs", &id).await.unwrap();
    assert_eq!(outcome, CancelOutcome::Cancelling);
    recv(&mut stopped).await;
    let job = queues.get_job("jobs", &id).await.unwrap();
    assert_eq!((job.state, job.attempts), (Some(JobState::Cancelled), 1));
    let stats = queues.stats("jobs").await.unwrap();
    assert_eq!((stats.in_flight, stats.failed, stats.dead, stats.delayed), (0, 0, 0, 0));
    engine.stop().await;
}

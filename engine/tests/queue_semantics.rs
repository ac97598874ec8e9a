//! Queue semantics over real gRPC: concurrency, FIFO groups, retries, the DLQ.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use support::{TestEngine, WAIT, eventually, recv};
use switchyard_engine::clock::{Clock, ManualClock};
use switchyard_sdk::{HandlerError, RegisterFunction};
use tokio::sync::mpsc;

#[tokio::test]
async fn standard_queue_never_exceeds_concurrency_and_reaches_it() {
    let engine = TestEngine::start("queue_configs:\n  email: {concurrency: 3}\n").await;
    let worker = engine.worker().await;
    let current = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (c, p) = (current.clone(), peak.clone());
    worker.register_function(RegisterFunction::new_async("emails::send", move |_p, _ctx| {
        let (c, p, done_tx) = (c.clone(), p.clone(), done_tx.clone());
        async move {
            let now = c.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            c.fetch_sub(1, Ordering::SeqCst);
            done_tx.send(()).unwrap();
            Ok(Value::Null)
        }
    }));
    for i in 0..24 {
        worker.enqueue("email", "emails::send", json!({"i": i})).await.unwrap();
    }
    for _ in 0..24 {
        recv(&mut done).await;
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3, "in flight never above concurrency, and reaches it");
    engine.stop().await;
}

#[tokio::test]
async fn fifo_keeps_group_order_while_a_failing_head_retries_and_other_groups_progress() {
    let engine = TestEngine::start(
        "queue_configs:\n  ledger: {type: fifo, message_group_field: account, concurrency: 4, backoff_ms: 30, max_retries: 5}\n",
    )
    .await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u64, u32)>();
    let others_done = Arc::new(AtomicU32::new(0));
    let others_changed = Arc::new(tokio::sync::Notify::new());
    let (done, changed) = (others_done.clone(), others_changed.clone());
    worker.register_function(RegisterFunction::new_async("ledger::apply", move |p, ctx| {
        let (tx, done, changed) = (tx.clone(), done.clone(), changed.clone());
        async move {
            let (account, seq) = (p["account"].as_str().unwrap().to_string(), p["seq"].as_u64().unwrap());
            if account == "A" && seq == 0 {
                // A's head fails twice; its third attempt goes through only once B and C
                // are completely done — which they can be only if A's retries block no one else.
                if ctx.attempt < 3 {
                    return Err(HandlerError::new("transient"));
                }
                tokio::time::timeout(WAIT, async {
                    while done.load(Ordering::SeqCst) < 10 {
                        let wait = changed.notified();
                        if done.load(Ordering::SeqCst) >= 10 {
                            break;
                        }
                        wait.await;
                    }
                })
                .await
                .map_err(|_| HandlerError::new("other groups were blocked by A's retries"))?;
            }
            if account != "A" {
                done.fetch_add(1, Ordering::SeqCst);
                changed.notify_waiters();
            }
            tx.send((account, seq, ctx.attempt)).unwrap();
            Ok(Value::Null)
        }
    }));
    for seq in 0..5u64 {
        for account in ["A", "B", "C"] {
            worker.enqueue("ledger", "ledger::apply", json!({"account": account, "seq": seq})).await.unwrap();
        }
    }
    let mut order: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for _ in 0..15 {
        let (account, seq, attempt) = recv(&mut rx).await;
        if account == "A" && seq == 0 {
            assert_eq!(attempt, 3, "retried in place until it succeeded");
            assert_eq!(others_done.load(Ordering::SeqCst), 10, "B and C finished while A's head was retrying");
        }
        order.entry(account.clone()).or_default().push(seq);
    }
    for account in ["A", "B", "C"] {
        assert_eq!(order[account], vec![0, 1, 2, 3, 4], "group {account} in enqueue order");
    }
    engine.stop().await;
}

/// Waits until the engine sleeps on a timer earlier than the attempt timeouts, and jumps
/// the clock there. Returns the new time.
async fn advance_to_next_retry(clock: &ManualClock, before: u64) -> u64 {
    let t = tokio::time::timeout(WAIT, clock.wait_for_timer(|t| t < before)).await.expect("a retry timer appears");
    clock.advance_to(t);
    t
}

#[tokio::test]
async fn retry_schedule_matches_the_formula_then_the_job_is_dead_lettered() {
    let start = 1_700_000_000_000;
    let clock = ManualClock::new(start);
    let engine = TestEngine::start_with_clock(
        "queue_configs:\n  email: {backoff_ms: 1000, max_retries: 3, timeout_ms: 3600000}\n",
        Arc::new(clock.clone()),
    )
    .await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, u64)>();
    let handler_clock = clock.clone();
    worker.register_function(RegisterFunction::new_async("emails::send", move |_p, ctx| {
        let (tx, clock) = (tx.clone(), handler_clock.clone());
        async move {
            tx.send((ctx.attempt, clock.now())).unwrap();
            Err::<Value, _>(HandlerError {
                message: format!("smtp 451 on attempt {}", ctx.attempt),
                code: "SmtpError".into(),
                stack: "send()".into(),
                non_retryable: false,
            })
        }
    }));
    let receipt = worker.enqueue("email", "emails::send", json!({"to": "a@b.c"})).await.unwrap();
    let mut attempts = vec![recv(&mut rx).await];
    for _ in 0..3 {
        advance_to_next_retry(&clock, start + 3_600_000).await;
        attempts.push(recv(&mut rx).await);
    }
    let numbers: Vec<u32> = attempts.iter().map(|a| a.0).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4], "max_retries + 1 attempts");
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert_eq!(gaps, vec![1000, 2000, 4000], "retry n waits backoff_ms × 2^(n−1)");

    let queues = worker.queues();
    eventually("the job is dead-lettered", || async { queues.stats("email").await.unwrap().dead == 1 }).await;
    let page = queues.list_dead_letters("email", 10, None).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    let dead = &page.entries[0];
    assert_eq!(dead.message_receipt_id, receipt.message_receipt_id);
    assert_eq!((dead.function_id.as_str(), dead.attempts), ("emails::send", 4));
    assert_eq!(dead.payload, json!({"to": "a@b.c"}));
    let last = dead.last_error.as_ref().unwrap();
    assert_eq!(
        (last.message.as_str(), last.code.as_str(), last.stack.as_str()),
        ("smtp 451 on attempt 4", "SmtpError", "send()")
    );
    // No fifth attempt: nothing else is scheduled before the far future.
    assert!(clock.timers().iter().all(|t| *t >= start + 3_600_000), "no retry after the last attempt");
    let stats = queues.stats("email").await.unwrap();
    assert_eq!((stats.failed, stats.dead_lettered, stats.completed), (4, 1, 0));
    engine.stop().await;
}

#[tokio::test]
async fn max_retries_zero_means_one_attempt_then_the_dlq() {
    let engine = TestEngine::start("queue_configs:\n  once: {max_retries: 0}\n").await;
    let worker = engine.worker().await;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    worker.register_function(RegisterFunction::new_async("f", move |_p, _ctx| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Err::<Value, _>(HandlerError::new("no")) }
    }));
    worker.enqueue("once", "f", json!({})).await.unwrap();
    let queues = worker.queues();
    eventually("dead-lettered", || async { queues.stats("once").await.unwrap().dead == 1 }).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    engine.stop().await;
}

#[tokio::test]
async fn redrive_gives_a_fresh_budget_and_discard_removes() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {max_retries: 1, backoff_ms: 0}\n").await;
    let worker = engine.worker().await;
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
    let f = fixed.clone();
    worker.register_function(RegisterFunction::new_async("flaky", move |p, ctx| {
        let (f, tx) = (f.clone(), tx.clone());
        async move {
            if !f.load(Ordering::SeqCst) {
                return Err(HandlerError::new("bug"));
            }
            tx.send((p["name"].as_str().unwrap().to_string(), ctx.attempt)).unwrap();
            Ok(Value::Null)
        }
    }));
    let keep = worker.enqueue("jobs", "flaky", json!({"name": "keep"})).await.unwrap();
    let drop = worker.enqueue("jobs", "flaky", json!({"name": "drop"})).await.unwrap();
    let queues = worker.queues();
    eventually("both dead-lettered", || async { queues.stats("jobs").await.unwrap().dead == 2 }).await;

    fixed.store(true, Ordering::SeqCst);
    assert_eq!(queues.discard_dead_letters("jobs", std::slice::from_ref(&drop.message_receipt_id)).await.unwrap(), 1);
    assert_eq!(queues.redrive_dead_letters("jobs", std::slice::from_ref(&keep.message_receipt_id)).await.unwrap(), 1);
    assert_eq!(recv(&mut rx).await, ("keep".to_string(), 1), "redriven with a fresh budget");
    eventually("completed", || async { queues.stats("jobs").await.unwrap().completed == 1 }).await;
    let stats = queues.stats("jobs").await.unwrap();
    assert_eq!((stats.dead, stats.ready, stats.in_flight), (0, 0, 0));
    assert!(queues.list_dead_letters("jobs", 10, None).await.unwrap().entries.is_empty());
    // Redrive-all and discard-all on an empty DLQ are no-ops.
    assert_eq!(queues.redrive_dead_letters("jobs", &[]).await.unwrap(), 0);
    assert_eq!(queues.discard_dead_letters("jobs", &[]).await.unwrap(), 0);
    engine.stop().await;
}

#[tokio::test]
async fn dead_letter_listing_pages_and_rejects_unknown_queues_and_bad_tokens() {
    let engine = TestEngine::start("queue_configs:\n  jobs: {max_retries: 0}\n").await;
    let worker = engine.worker().await;
    worker.register_function(RegisterFunction::new_async("fail", |_p, _c| async {
        Err::<Value, _>(HandlerError::new("x"))
    }));
    for i in 0..5 {
        worker.enqueue("jobs", "fail", json!({"i": i})).await.unwrap();
    }
    let queues = worker.queues();
    eventually("five dead letters", || async { queues.stats("jobs").await.unwrap().dead == 5 }).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = queues.list_dead_letters("jobs", 2, token.as_deref()).await.unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.into_iter().map(|e| e.payload["i"].as_i64().unwrap()));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    let err = queues.list_dead_letters("nope", 10, None).await.unwrap_err();
    assert_eq!(err.reason, switchyard_sdk::Reason::QueueNotFound);
    let err = queues.redrive_dead_letters("nope", &[]).await.unwrap_err();
    assert_eq!(err.reason, switchyard_sdk::Reason::QueueNotFound);
    let err = queues.list_dead_letters("jobs", 10, Some("garbage")).await.unwrap_err();
    assert_eq!(err.reason, switchyard_sdk::Reason::InvalidArgument);
    engine.stop().await;
}

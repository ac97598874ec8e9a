//! Issue 17 end to end over gRPC with the Rust SDK: delayed enqueue (injected clock),
//! idempotency keys, and topic fan-out (one subscriber failing into its own DLQ while the
//! other completes — fan-out is engine-level: one job per subscriber queue, stored in one
//! `enqueue`, so this is where it is tested; each subscriber queue is a normal queue the
//! store conformance suite covers).

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use support::{TestEngine, WAIT, eventually, recv};
use switchyard_engine::clock::{Clock, ManualClock};
use switchyard_sdk::{EnqueueOptions, HandlerError, Reason, RegisterFunction};
use tokio::sync::mpsc;

const TOPICS: &str = "\
queue_configs:
  email: {}
topic_configs:
  orders.placed:
    subscribers: [billing::charge, emails::receipt]
    max_retries: 0
  orders.quiet:
    subscribers: []
";

#[tokio::test]
async fn a_delayed_job_runs_no_earlier_than_due() {
    let start = 1_700_000_000_000;
    let clock = ManualClock::new(start);
    let engine = TestEngine::start_with_clock(TOPICS, Arc::new(clock.clone())).await;
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
    assert!(worker.ready(WAIT).await);
    let receipt = worker
        .enqueue_with("email", "emails::send", json!({}), EnqueueOptions::default().delay_ms(60_000))
        .await
        .unwrap();
    assert!(!receipt.duplicate);
    let queues = worker.queues();
    let stats = queues.stats("email").await.unwrap();
    assert_eq!((stats.delayed, stats.ready), (1, 0), "listed as delayed");
    let due = tokio::time::timeout(WAIT, clock.wait_for_timer(|t| t <= start + 60_000)).await.expect("a timer");
    assert_eq!(due, start + 60_000, "the engine sleeps until the job is due");
    clock.advance_to(due - 1);
    assert!(rx.try_recv().is_err(), "not run before its time");
    clock.advance_to(due);
    assert!(recv(&mut rx).await >= start + 60_000);

    // not_before, absolute; and one in the past runs at once.
    let at = UNIX_EPOCH + Duration::from_millis(due + 5_000);
    let options = EnqueueOptions::default().not_before(at);
    worker.enqueue_with("email", "emails::send", json!({}), options).await.unwrap();
    let past = EnqueueOptions::default().not_before(UNIX_EPOCH + Duration::from_millis(start));
    worker.enqueue_with("email", "emails::send", json!({}), past).await.unwrap();
    assert_eq!(recv(&mut rx).await, due, "a not_before in the past runs now");
    let t = tokio::time::timeout(WAIT, clock.wait_for_timer(|t| t <= due + 5_000)).await.expect("a timer");
    clock.advance_to(t);
    assert_eq!(recv(&mut rx).await, due + 5_000);
    engine.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_receipt_and_bad_options_are_refused() {
    let engine = TestEngine::start(TOPICS).await;
    let client = engine.client().await;
    let keyed = || EnqueueOptions::default().idempotency_key("charge-ord_1");
    let first = client.enqueue_with("email", "emails::send", json!({"n": 1}), keyed()).await.unwrap();
    let again = client.enqueue_with("email", "emails::send", json!({"n": 2}), keyed()).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.message_receipt_id, first.message_receipt_id, "the first job's receipt");
    assert_eq!(client.queues().stats("email").await.unwrap().ready, 1, "one job");

    let both = EnqueueOptions::default().delay_ms(10).not_before(UNIX_EPOCH + Duration::from_secs(1));
    let e = client.enqueue_with("email", "emails::send", json!({}), both).await.unwrap_err();
    assert_eq!(e.reason, Reason::ConflictingDelay, "{e}");
    let long = EnqueueOptions::default().idempotency_key("k".repeat(257));
    let e = client.enqueue_with("email", "emails::send", json!({}), long).await.unwrap_err();
    assert_eq!(e.reason, Reason::InvalidIdempotencyKey, "{e}");
    assert!(e.message.starts_with("INVALID_IDEMPOTENCY_KEY: "), "{e}");
    engine.stop().await;
}

#[tokio::test]
async fn a_publish_fans_out_and_a_failing_subscriber_dead_letters_alone() {
    let engine = TestEngine::start(TOPICS).await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Option<String>, Option<String>)>();
    let seen = tx.clone();
    worker.register_function(RegisterFunction::new_async("emails::receipt", move |_p, ctx| {
        let tx = seen.clone();
        async move {
            tx.send((ctx.function_id.clone(), ctx.queue.clone(), ctx.topic.clone())).unwrap();
            Ok(Value::Null)
        }
    }));
    worker.register_function(RegisterFunction::new_async("billing::charge", move |_p, _ctx| async move {
        Err::<Value, _>(HandlerError {
            message: "card declined".into(),
            code: "Declined".into(),
            stack: String::new(),
            non_retryable: false,
        })
    }));
    assert!(worker.ready(WAIT).await);
    let published = worker.publish("orders.placed", json!({"orderId": "ord_1"})).await.unwrap();
    let got: Vec<(&str, &str, bool)> =
        published.receipts.iter().map(|r| (r.function_id.as_str(), r.queue.as_str(), r.duplicate)).collect();
    assert_eq!(
        got,
        vec![
            ("billing::charge", "orders.placed/billing::charge", false),
            ("emails::receipt", "orders.placed/emails::receipt", false)
        ],
        "one receipt per subscriber, in config order"
    );
    let (function, queue, topic) = recv(&mut rx).await;
    assert_eq!(function, "emails::receipt");
    assert_eq!(queue.as_deref(), Some("orders.placed/emails::receipt"));
    assert_eq!(topic.as_deref(), Some("orders.placed"), "the delivery names its topic");
    let queues = worker.queues();
    let billing = "orders.placed/billing::charge";
    eventually("billing's job is dead-lettered", || async { queues.stats(billing).await.unwrap().dead == 1 }).await;
    let page = queues.list_dead_letters(billing, 10, None).await.unwrap();
    assert_eq!(page.entries[0].message_receipt_id, published.receipts[0].message_receipt_id);
    let emails = queues.stats("orders.placed/emails::receipt").await.unwrap();
    assert_eq!((emails.completed, emails.dead), (1, 0), "the other subscriber completed, nothing dead");

    // The key applies per subscriber queue: a repeated publish creates no jobs.
    let keyed = || EnqueueOptions::default().idempotency_key("ord_2");
    let once = worker.publish_with("orders.placed", json!({"orderId": "ord_2"}), keyed()).await.unwrap();
    let twice = worker.publish_with("orders.placed", json!({"orderId": "ord_2"}), keyed()).await.unwrap();
    assert!(twice.receipts.iter().all(|r| r.duplicate));
    let ids = |p: &switchyard_sdk::PublishReceipt| {
        p.receipts.iter().map(|r| r.message_receipt_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&once), ids(&twice));

    let quiet = worker.publish("orders.quiet", json!({})).await.unwrap();
    assert!(quiet.receipts.is_empty(), "no subscribers: accepted, nothing stored");
    let e = worker.publish("orders.placd", json!({})).await.unwrap_err();
    assert_eq!(e.reason, Reason::TopicNotFound);
    assert!(e.message.contains("did you mean 'orders.placed'?"), "{e}");
    let infos = queues.list_queues().await.unwrap();
    assert!(infos.iter().any(|q| q.name == billing), "subscriber queues are listed");
    engine.stop().await;
}

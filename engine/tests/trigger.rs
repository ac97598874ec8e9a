//! `Engine.Trigger` over real gRPC: validation errors, enqueue receipts, sync and void calls.

mod support;

use serde_json::{Value, json};
use support::{TestEngine, recv};
use switchyard_sdk::{HandlerError, Reason, RegisterFunction, TriggerAction, TriggerRequest};
use tokio::sync::mpsc;

const CONFIG: &str = "
queue_configs:
  default: {backoff_ms: 0}
  payment: {type: fifo, message_group_field: orderId, backoff_ms: 0}
";

fn enqueue(function: &str, queue: &str, payload: Value) -> TriggerRequest {
    TriggerRequest {
        function_id: function.into(),
        payload,
        action: Some(TriggerAction::Enqueue { queue: queue.into() }),
        timeout_ms: None,
    }
}

#[tokio::test]
async fn enqueue_returns_a_receipt_before_the_handler_runs() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = engine.worker().await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    worker.register_function(RegisterFunction::new_async("slow", move |_p, ctx| {
        let (g, started_tx) = (g.clone(), started_tx.clone());
        async move {
            started_tx.send(ctx.message_receipt_id.clone()).unwrap();
            let _permit = g.acquire().await.unwrap();
            Ok(Value::Null)
        }
    }));
    let out = worker.trigger(enqueue("slow", "default", json!({}))).await.unwrap();
    let receipt = out["messageReceiptId"].as_str().expect("receipt id").to_string();
    assert!(!receipt.is_empty());
    // The handler is blocked on the gate, yet the receipt came back; the delivery names it.
    assert_eq!(recv(&mut started).await, Some(receipt));
    gate.add_permits(1);
    engine.stop().await;
}

#[tokio::test]
async fn enqueue_to_unknown_queue_is_not_found() {
    let engine = TestEngine::start(CONFIG).await;
    let client = engine.client().await;
    let err = client.trigger(enqueue("f", "paymnet", json!({}))).await.unwrap_err();
    assert_eq!(err.reason, Reason::QueueNotFound);
    assert_eq!(err.code, tonic::Code::NotFound);
    assert_eq!(
        err.message,
        "QUEUE_NOT_FOUND: queue 'paymnet' is not defined (defined: default, payment); did you mean 'payment'?"
    );
    assert_eq!(err.details["queue"], "paymnet");
    assert_eq!(err.details["defined"], "default, payment");
    assert_eq!(err.details["suggestion"], "payment");
    engine.stop().await;
}

#[tokio::test]
async fn fifo_payload_without_group_field_is_invalid_argument() {
    let engine = TestEngine::start(CONFIG).await;
    let client = engine.client().await;
    for payload in [json!({"other": 1}), json!({"orderId": null}), json!({"orderId": true}), json!("text")] {
        let err = client.trigger(enqueue("f", "payment", payload.clone())).await.unwrap_err();
        assert_eq!(err.reason, Reason::MissingGroupField, "{payload}");
        assert_eq!(err.code, tonic::Code::InvalidArgument);
        assert!(err.message.contains("orderId"), "{}", err.message);
    }
    // Strings and numbers are groups.
    client.trigger(enqueue("f", "payment", json!({"orderId": "o1"}))).await.unwrap();
    client.trigger(enqueue("f", "payment", json!({"orderId": 42}))).await.unwrap();
    engine.stop().await;
}

#[tokio::test]
async fn empty_function_id_is_invalid_argument() {
    let engine = TestEngine::start(CONFIG).await;
    let client = engine.client().await;
    let err = client.trigger(enqueue("  ", "default", json!({}))).await.unwrap_err();
    assert_eq!(err.reason, Reason::InvalidArgument);
    assert_eq!(err.code, tonic::Code::InvalidArgument);
    engine.stop().await;
}

#[tokio::test]
async fn payload_over_the_limit_is_resource_exhausted() {
    let engine = TestEngine::start("max_payload_bytes: 1000\n").await;
    let client = engine.client().await;
    let big = json!({"blob": "x".repeat(2000)});
    let err = client.trigger(enqueue("f", "default", big)).await.unwrap_err();
    assert_eq!(err.reason, Reason::PayloadTooLarge);
    assert_eq!(err.code, tonic::Code::ResourceExhausted);
    client.trigger(enqueue("f", "default", json!({"blob": "small"}))).await.unwrap();
    engine.stop().await;
}

#[tokio::test]
async fn payload_arrives_unchanged() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = engine.worker().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("echo", move |p, _ctx| {
        let tx = tx.clone();
        async move {
            tx.send(p).unwrap();
            Ok(Value::Null)
        }
    }));
    let payload = json!({
        "orderId": "ord_789", "amount": 12.5, "count": 3, "big": 9_007_199_254_740_991_i64,
        "flags": [true, false, null], "nested": {"s": "ünïcødé ✓", "empty": {}, "list": []}
    });
    worker.trigger(enqueue("echo", "payment", payload.clone())).await.unwrap();
    assert_eq!(recv(&mut rx).await, payload);
    engine.stop().await;
}

#[tokio::test]
async fn sync_call_returns_the_value() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = engine.worker().await;
    worker.register_function(RegisterFunction::new_async("math::add", |p, ctx| async move {
        assert_eq!((ctx.attempt, ctx.queue.as_deref()), (1, None));
        Ok(json!({"sum": p["a"].as_f64().unwrap() + p["b"].as_f64().unwrap()}))
    }));
    assert!(worker.ready(support::WAIT).await, "math::add is live");
    let client = engine.client().await;
    let request = TriggerRequest {
        function_id: "math::add".into(),
        payload: json!({"a": 1, "b": 2}),
        action: None,
        timeout_ms: None,
    };
    let value = client.trigger(request).await.unwrap();
    assert_eq!(value, json!({"sum": 3}));
    let typed: Value = worker.call("math::add", json!({"a": 2, "b": 5})).await.unwrap();
    assert_eq!(typed["sum"], 7);
    engine.stop().await;
}

#[tokio::test]
async fn sync_call_to_a_raising_handler_is_function_failed_with_the_workers_error() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    worker.register_function(RegisterFunction::new_async("boom", |_p, _ctx| async move {
        Err::<Value, _>(HandlerError {
            message: "card declined".into(),
            code: "PaymentError".into(),
            stack: "at charge()".into(),
            non_retryable: false,
        })
    }));
    assert!(worker.ready(support::WAIT).await);
    let err = worker.call::<Value>("boom", json!({})).await.unwrap_err();
    assert_eq!(err.reason, Reason::FunctionFailed);
    assert_eq!(err.code, tonic::Code::Unknown);
    assert!(err.message.starts_with("FUNCTION_FAILED: "), "{}", err.message);
    let handler_error = err.function_error().unwrap();
    assert_eq!(
        handler_error,
        HandlerError {
            message: "card declined".into(),
            code: "PaymentError".into(),
            stack: "at charge()".into(),
            non_retryable: false
        }
    );
    engine.stop().await;
}

#[tokio::test]
async fn sync_call_to_an_unknown_function_is_not_found() {
    let engine = TestEngine::start(CONFIG).await;
    let client = engine.client().await;
    let err = client.call::<Value>("nobody::home", json!({})).await.unwrap_err();
    assert_eq!(err.reason, Reason::FunctionNotFound);
    assert_eq!(err.code, tonic::Code::NotFound);
    let err = client.void("nobody::home", json!({})).await.unwrap_err();
    assert_eq!(err.reason, Reason::FunctionNotFound);
    engine.stop().await;
}

#[tokio::test]
async fn sync_call_times_out_with_timeout() {
    // The deadline runs on the engine's clock: a manual one makes this independent of load.
    let clock = switchyard_engine::clock::ManualClock::new(1_000_000);
    let engine = TestEngine::start_with_clock(CONFIG, std::sync::Arc::new(clock.clone())).await;
    let worker = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (cancelled_tx, mut cancelled) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("hang", move |_p, ctx| {
        let (started_tx, cancelled_tx) = (started_tx.clone(), cancelled_tx.clone());
        async move {
            started_tx.send(()).unwrap();
            ctx.cancelled.cancelled().await;
            cancelled_tx.send(()).unwrap();
            Ok(Value::Null)
        }
    }));
    assert!(worker.ready(support::WAIT).await);
    let caller = worker.clone();
    let call = tokio::spawn(async move {
        let req =
            TriggerRequest { function_id: "hang".into(), payload: json!({}), action: None, timeout_ms: Some(100) };
        caller.trigger(req).await
    });
    recv(&mut started).await;
    clock.advance(100);
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.reason, Reason::Timeout);
    assert_eq!(err.code, tonic::Code::DeadlineExceeded);
    recv(&mut cancelled).await; // the worker was told to stop
    engine.stop().await;
}

#[tokio::test]
async fn void_is_accepted_and_runs() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = switchyard_sdk::register_worker(&engine.url, Default::default()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("analytics::track", move |p, _ctx| {
        let tx = tx.clone();
        async move {
            tx.send(p).unwrap();
            Ok(Value::Null)
        }
    }));
    assert!(worker.ready(support::WAIT).await);
    let out = worker
        .trigger(TriggerRequest {
            function_id: "analytics::track".into(),
            payload: json!({"e": "signup"}),
            action: Some(TriggerAction::Void),
            timeout_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(out, Value::Null);
    assert_eq!(recv(&mut rx).await, json!({"e": "signup"}));
    engine.stop().await;
}

#[tokio::test]
async fn enqueue_batch_answers_each_item_on_its_own_and_stores_the_valid_ones() {
    use switchyard_proto::v1::engine_client::EngineClient;
    use switchyard_proto::v1::{EnqueueBatchRequest, EnqueueItem, enqueue_result};
    let engine = TestEngine::start(CONFIG).await;
    let item = |queue: &str, payload: Value| EnqueueItem {
        function_id: "f".into(),
        payload: Some(switchyard_sdk::json::to_proto(&payload)),
        queue: queue.into(),
        ..Default::default()
    };
    let items = vec![
        item("default", json!({"n": 1})),
        item("paymnet", json!({})),
        item("payment", json!({"amount": 1})),
        item("payment", json!({"orderId": "o1"})),
    ];
    let mut client = EngineClient::new(engine.channel().await);
    let results = client.enqueue_batch(EnqueueBatchRequest { items }).await.unwrap().into_inner().results;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.outcome.unwrap()).collect();
    assert!(matches!(&outcomes[0], enqueue_result::Outcome::Receipt(r) if !r.message_receipt_id.is_empty()));
    match &outcomes[1] {
        enqueue_result::Outcome::Error(s) => {
            assert_eq!(s.code, tonic::Code::NotFound as i32);
            assert!(s.message.starts_with("QUEUE_NOT_FOUND: queue 'paymnet'"), "{}", s.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(&outcomes[2], enqueue_result::Outcome::Error(s) if s.message.starts_with("MISSING_GROUP_FIELD")));
    assert!(matches!(&outcomes[3], enqueue_result::Outcome::Receipt(_)));
    let stats = engine.client().await.queues().list_queues().await.unwrap();
    let enqueued: u64 = stats.iter().map(|q| q.stats.enqueued).sum();
    assert_eq!(enqueued, 2, "only the valid items are stored");
    engine.stop().await;
}

#[tokio::test]
async fn sync_call_whose_worker_answers_bytes_that_are_not_a_value_fails_with_invalid_result() {
    use switchyard_proto::wire::{
        Hello, InvocationResult, RegisterFunction, WorkerMessage, engine_client::EngineClient, engine_message,
        invocation_result, worker_message,
    };
    let engine = TestEngine::start(CONFIG).await;
    // A worker on the wire view of the contract, where a result's value is raw bytes.
    let (tx, out) = mpsc::unbounded_channel();
    let register = RegisterFunction { function_id: "bad::result".into(), description: String::new() };
    tx.send(WorkerMessage { kind: Some(worker_message::Kind::RegisterFunction(register)) }).unwrap();
    let hello = Hello {
        worker_name: "raw".into(),
        sdk_name: "test".into(),
        sdk_version: "0".into(),
        max_in_flight: 1,
        batches: false,
    };
    tx.send(WorkerMessage { kind: Some(worker_message::Kind::Hello(hello)) }).unwrap();
    let mut stream = EngineClient::new(engine.channel().await)
        .connect(tokio_stream::wrappers::UnboundedReceiverStream::new(out))
        .await
        .unwrap()
        .into_inner();
    let client = engine.client().await;
    let call = tokio::spawn(async move { client.call::<Value>("bad::result", json!({})).await });
    let invocation_id = loop {
        let message = tokio::time::timeout(support::WAIT, stream.message()).await.expect("in time").unwrap().unwrap();
        if let Some(engine_message::Kind::Invoke(invoke)) = message.kind {
            break invoke.invocation_id;
        }
    };
    // A string field whose length runs past the end: no Value.
    let value = bytes::Bytes::from_static(&[0x1a, 0x05, b'a']);
    let result = InvocationResult { invocation_id, outcome: Some(invocation_result::Outcome::Value(value)) };
    tx.send(WorkerMessage { kind: Some(worker_message::Kind::Result(result)) }).unwrap();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.reason, Reason::FunctionFailed);
    let handler_error = err.function_error().unwrap();
    assert_eq!(handler_error.code, "INVALID_RESULT");
    assert!(handler_error.message.contains("not a google.protobuf.Value"), "{}", handler_error.message);
    engine.stop().await;
}

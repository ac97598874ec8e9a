//! The resource bounds (`limits` block, per-queue `max_ready`) over real gRPC: each hit is
//! answered with its typed error (RESOURCE_EXHAUSTED and a stable reason) or, for peers
//! that no longer speak, by closing their connection; every other client carries on.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{RawWorker, TestEngine, WAIT, recv};
use switchyard_proto::v1::engine_client::EngineClient;
use switchyard_proto::v1::{Hello, WorkerMessage, engine_message, worker_message};
use switchyard_sdk::{Reason, RegisterFunction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn assert_exhausted(e: &switchyard_sdk::Error, reason: &str) {
    assert_eq!(e.reason, Reason::Other(reason.into()), "{e:?}");
    assert_eq!(e.code, tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message.starts_with(&format!("{reason}: ")), "{}", e.message);
}

/// A worker stream opened by hand: its sender (dropping it ends the stream) and the
/// engine's answer (a stream or a refusal).
type Opened = (
    mpsc::UnboundedSender<WorkerMessage>,
    Result<tonic::Streaming<switchyard_proto::v1::EngineMessage>, tonic::Status>,
);

async fn open_stream(engine: &TestEngine) -> Opened {
    let (tx, rx) = mpsc::unbounded_channel();
    let hello = Hello {
        worker_name: "w".into(),
        sdk_name: "test".into(),
        sdk_version: "0".into(),
        max_in_flight: 1,
        batches: false,
    };
    tx.send(WorkerMessage { kind: Some(worker_message::Kind::Hello(hello)) }).unwrap();
    let mut client = EngineClient::new(engine.channel().await);
    let answer = client.connect(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)).await.map(|r| r.into_inner());
    (tx, answer)
}

/// Enqueues to `default` over a bare `Trigger` call; the receipt.
async fn raw_enqueue(engine: &TestEngine, function: &str) -> String {
    use switchyard_proto::v1::{EnqueueAction, TriggerRequest, trigger_request, trigger_response};
    let request = TriggerRequest {
        function_id: function.into(),
        payload: Some(switchyard_sdk::json::to_proto(&json!({}))),
        action: Some(trigger_request::Action::Enqueue(EnqueueAction { queue: "default".into(), ..Default::default() })),
        timeout_ms: None,
    };
    let out = EngineClient::new(engine.channel().await).trigger(request).await.unwrap().into_inner();
    match out.outcome {
        Some(trigger_response::Outcome::Receipt(r)) => r.message_receipt_id,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

#[tokio::test]
async fn worker_streams_past_the_limit_are_refused_and_open_ones_keep_working() {
    let engine = TestEngine::start("limits: {max_worker_streams: 2}").await;
    let mut serving = RawWorker::connect(&engine, 4, &["f"]).await;
    let (second_tx, second) = open_stream(&engine).await;
    let mut second = second.expect("second stream fits");
    assert!(matches!(second.message().await.unwrap().unwrap().kind, Some(engine_message::Kind::Welcome(_))));

    let refused = open_stream(&engine).await.1.expect_err("third stream is refused");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().starts_with("TOO_MANY_WORKER_STREAMS: 2 worker streams are open"),
        "{}",
        refused.message()
    );

    // The open worker still gets work (enqueued by hand: an SDK client would open a stream).
    let receipt = raw_enqueue(&engine, "f").await;
    let invoke = serving.next_invoke().await;
    assert_eq!(invoke.delivery.unwrap().message_receipt_id, receipt);
    serving.reply_ok(&invoke.invocation_id, Value::Null);

    // A stream that ends gives its slot back.
    drop((second_tx, second));
    let (_kept, reopened) = open_stream(&engine).await;
    let mut reopened = reopened.expect("a closed stream's slot is free again");
    assert!(matches!(reopened.message().await.unwrap().unwrap().kind, Some(engine_message::Kind::Welcome(_))));
    engine.stop().await;
}

#[tokio::test]
async fn calls_past_the_per_connection_limit_are_refused_and_other_connections_are_not() {
    let engine = TestEngine::start("limits: {max_calls_per_connection: 2}").await;
    let mut worker = RawWorker::connect(&engine, 8, &["slow"]).await;
    let busy = engine.client().await;
    let mut calls = Vec::new();
    for n in 0..2 {
        let c = busy.clone();
        calls.push(tokio::spawn(async move { c.call::<Value>("slow", json!({"n": n})).await }));
    }
    let held = [worker.next_invoke().await, worker.next_invoke().await]; // both calls are in flight

    let refused = busy.call::<Value>("slow", json!({"n": 3})).await.unwrap_err();
    assert_exhausted(&refused, "TOO_MANY_CALLS");
    assert_eq!(refused.details["max"], "2");

    // Another connection is not limited by the first one's calls.
    let other = engine.client().await;
    other.enqueue("default", "slow", json!({})).await.expect("another connection enqueues");

    for i in &held {
        worker.reply_ok(&i.invocation_id, json!("done"));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), json!("done"));
    }
    let queued = worker.next_invoke().await; // the enqueued job
    worker.reply_ok(&queued.invocation_id, Value::Null);
    let c = busy.clone();
    let again = tokio::spawn(async move { c.call::<Value>("slow", json!({"n": 4})).await });
    let i = worker.next_invoke().await;
    worker.reply_ok(&i.invocation_id, json!("again"));
    assert_eq!(again.await.unwrap().expect("slots come back when calls end"), json!("again"));
    engine.stop().await;
}

/// A JSON value nested `levels` lists deep around a number: `levels + 1` Value levels.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |v, _| json!([v]))
}

#[tokio::test]
async fn a_payload_deeper_than_max_payload_depth_is_refused() {
    let engine = TestEngine::start("limits: {max_payload_depth: 5}").await;
    let client = engine.client().await;
    client.enqueue("default", "f", nested(4)).await.expect("five levels fit");
    let refused = client.enqueue("default", "f", nested(5)).await.unwrap_err();
    assert_exhausted(&refused, "PAYLOAD_TOO_DEEP");
    assert_eq!(refused.details["max"], "5");
    client.enqueue("default", "f", json!({"flat": true})).await.expect("the same client carries on");
    engine.stop().await;
}

#[tokio::test]
async fn a_full_queue_refuses_enqueues_until_its_jobs_complete() {
    let engine = TestEngine::start("queue_configs: {small: {max_ready: 3}, big: {}}").await;
    let client = engine.client().await;
    for n in 0..3 {
        client.enqueue("small", "f", json!({"n": n})).await.unwrap();
    }
    let refused = client.enqueue("small", "f", json!({"n": 3})).await.unwrap_err();
    assert_exhausted(&refused, "QUEUE_FULL");
    assert_eq!((refused.details["queue"].as_str(), refused.details["waiting"].as_str()), ("small", "3"));
    client.enqueue("big", "f", json!({})).await.expect("another queue is not full");

    // A worker drains the queue; then it takes jobs again.
    let worker = engine.worker().await;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("f", move |p: Value, _| {
        let done_tx = done_tx.clone();
        async move {
            done_tx.send(p).unwrap();
            Ok(Value::Null)
        }
    }));
    for _ in 0..4 {
        recv(&mut done).await;
    }
    support::eventually("the small queue has drained", || async {
        client.queues().stats("small").await.is_ok_and(|s| s.ready + s.in_flight == 0)
    })
    .await;
    client.enqueue("small", "f", json!({"n": 4})).await.expect("room again once jobs completed");
    engine.stop().await;
}

/// A loopback proxy that can freeze: it stops forwarding (both ways) but keeps both
/// sockets open, as a peer that died without closing looks.
async fn freezing_proxy(upstream: std::net::SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let up = TcpStream::connect(upstream).await.unwrap();
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            for (mut r, mut w) in [
                (
                    Box::new(dr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(uw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                ),
                (Box::new(ur), Box::new(dw)),
            ] {
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if f.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await; // hold the sockets, forward nothing
                        }
                        if w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (url, frozen)
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped_and_its_job_goes_to_another_worker() {
    let yaml = "limits: {http2_keepalive_interval_ms: 200, http2_keepalive_timeout_ms: 200}
queue_configs: {default: {backoff_ms: 0}}";
    let engine = TestEngine::start(yaml).await;
    let (url, frozen) = freezing_proxy(engine.addr()).await;
    let mut behind = RawWorker::connect_url(&url, 1, &["f"]).await;
    let client = engine.client().await;
    let receipt = client.enqueue("default", "f", json!({})).await.unwrap().message_receipt_id;
    let first = behind.next_invoke().await;
    assert_eq!(first.delivery.as_ref().unwrap().message_receipt_id, receipt);

    frozen.store(true, Ordering::SeqCst); // the peer goes silent mid-job
    let mut healthy = RawWorker::connect(&engine, 1, &["f"]).await;
    let again = healthy.next_invoke().await;
    let delivery = again.delivery.unwrap();
    assert_eq!((delivery.message_receipt_id.as_str(), delivery.attempt), (receipt.as_str(), 2), "the job came back");
    healthy.reply_ok(&again.invocation_id, Value::Null);
    client.enqueue("default", "f", json!({"after": true})).await.expect("other clients carry on");
    let after = healthy.next_invoke().await;
    healthy.reply_ok(&after.invocation_id, Value::Null);
    engine.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_no_preface_is_closed_and_others_are_served() {
    let engine = TestEngine::start("limits: {handshake_timeout_ms: 200}").await;
    let mut silent = TcpStream::connect(engine.addr()).await.unwrap();
    let mut partial = TcpStream::connect(engine.addr()).await.unwrap();
    partial.write_all(b"PRI * HTTP/2").await.unwrap();

    let client = engine.client().await;
    client.enqueue("default", "f", json!({})).await.expect("a speaking client is served meanwhile");
    for (what, socket) in [("silent", &mut silent), ("partial preface", &mut partial)] {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(WAIT, socket.read(&mut buf)).await.expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{what}: the engine closed it (read {n:?})");
    }
    engine.stop().await;
}

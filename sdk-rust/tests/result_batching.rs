//! The worker batches results only for an engine that batches invocations, and a batch
//! never loses or repeats a result. Runs against a fake engine that records every message
//! the worker sends.

use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use switchyard_sdk::proto::engine_server::{Engine, EngineServer};
use switchyard_sdk::proto::{
    EngineMessage, EnqueueBatchRequest, EnqueueBatchResponse, InvocationResult, Invoke, InvokeBatch, Registered,
    TriggerRequest, TriggerResponse, Welcome, WorkerMessage, engine_message, invocation_result, worker_message,
};
use switchyard_sdk::{InitOptions, RegisterFunction};
use tokio::sync::{Barrier, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// What the fake engine saw from the worker.
#[derive(Default)]
struct Seen {
    /// Plain `result` messages.
    singles: usize,
    /// `results` messages.
    batches: usize,
    results: Vec<InvocationResult>,
}

type ToWorker = mpsc::UnboundedSender<Result<EngineMessage, Status>>;

#[derive(Default, Clone)]
struct FakeEngine {
    outbound: Arc<Mutex<Option<ToWorker>>>,
    seen: Arc<Mutex<Seen>>,
}

#[tonic::async_trait]
impl Engine for FakeEngine {
    async fn trigger(&self, _: Request<TriggerRequest>) -> Result<Response<TriggerResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type ConnectStream = Pin<Box<dyn futures::Stream<Item = Result<EngineMessage, Status>> + Send>>;

    async fn connect(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.outbound.lock() = Some(tx.clone());
        let mut inbound = request.into_inner();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                let reply = match m.kind {
                    Some(worker_message::Kind::Hello(_)) => {
                        engine_message::Kind::Welcome(Welcome { worker_id: "w1".into(), max_in_flight: 1000 })
                    }
                    Some(worker_message::Kind::RegisterFunction(r)) => {
                        engine_message::Kind::Registered(Registered { function_id: r.function_id })
                    }
                    Some(worker_message::Kind::Result(r)) => {
                        let mut seen = seen.lock();
                        seen.singles += 1;
                        seen.results.push(r);
                        continue;
                    }
                    Some(worker_message::Kind::Results(b)) => {
                        let mut seen = seen.lock();
                        seen.batches += 1;
                        seen.results.extend(b.results);
                        continue;
                    }
                    _ => continue,
                };
                let _ = tx.send(Ok(EngineMessage { kind: Some(reply) }));
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn enqueue_batch(&self, _: Request<EnqueueBatchRequest>) -> Result<Response<EnqueueBatchResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

impl FakeEngine {
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = EngineServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        url
    }

    fn send(&self, kind: engine_message::Kind) {
        let tx = self.outbound.lock().clone().expect("a worker is connected");
        tx.send(Ok(EngineMessage { kind: Some(kind) })).unwrap();
    }

    /// Waits until `n` results arrived, then for stragglers (a repeat would show up here).
    async fn results(&self, n: usize) {
        for _ in 0..1000 {
            if self.seen.lock().results.len() >= n {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} results arrived", self.seen.lock().results.len());
    }
}

fn invoke(i: usize) -> Invoke {
    Invoke {
        invocation_id: format!("inv-{i}"),
        function_id: "echo".into(),
        payload: Some(switchyard_sdk::json::to_proto(&json!({"i": i, "name": format!("job {i}")}))),
        delivery: None,
    }
}

/// A worker whose `echo` handler returns its payload once all `n` invocations have started,
/// so their results are ready at about the same moment.
async fn echo_worker(url: &str, n: usize) -> switchyard_sdk::Worker {
    let worker = switchyard_sdk::register_worker(url, InitOptions { max_in_flight: n as u32, ..Default::default() })
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(n));
    worker.register_function(RegisterFunction::new_async("echo", move |payload: Value, _ctx| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            Ok(payload)
        }
    }));
    assert!(worker.ready(Duration::from_secs(10)).await, "worker did not become ready");
    worker
}

/// Every invocation got exactly one result, carrying its own value.
fn assert_each_answered_once(seen: &Seen, n: usize) {
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for r in &seen.results {
        *by_id.entry(&r.invocation_id).or_default() += 1;
        let Some(invocation_result::Outcome::Value(v)) = &r.outcome else {
            panic!("{} failed: {:?}", r.invocation_id, r.outcome)
        };
        let v = switchyard_sdk::json::from_proto(v);
        assert_eq!(format!("inv-{}", v["i"]), r.invocation_id);
        assert_eq!(v["name"], json!(format!("job {}", v["i"])));
    }
    assert_eq!(seen.results.len(), n, "a result was lost or repeated");
    assert_eq!(by_id.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_ready_together_go_out_as_one_batch_and_all_arrive() {
    const N: usize = 300;
    let engine = FakeEngine::default();
    let url = engine.serve().await;
    let worker = echo_worker(&url, N).await;
    engine.send(engine_message::Kind::Invokes(InvokeBatch { invokes: (0..N).map(invoke).collect() }));
    engine.results(N).await;
    {
        let seen = engine.seen.lock();
        assert_each_answered_once(&seen, N);
        assert!(seen.batches >= 1, "no results batch was sent");
        let messages = seen.singles + seen.batches;
        assert!(messages < N / 2, "results were barely batched: {messages} messages");
    }
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_never_batches_invocations_gets_single_results() {
    const N: usize = 100;
    let engine = FakeEngine::default();
    let url = engine.serve().await;
    let worker = echo_worker(&url, N).await;
    for i in 0..N {
        engine.send(engine_message::Kind::Invoke(invoke(i)));
    }
    engine.results(N).await;
    {
        let seen = engine.seen.lock();
        assert_each_answered_once(&seen, N);
        assert_eq!(seen.batches, 0, "an engine that sent no `invokes` got a `results` message");
    }
    worker.shutdown().await;
}

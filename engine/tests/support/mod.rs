//! Test harness: an engine served on 127.0.0.1:0 in-process, SDK workers against it, and
//! a raw worker that speaks the stream protocol by hand for precise control; [`ledger`]
//! holds the producers, handlers and checks of the tests that kill engines under load.
#![allow(dead_code)]

pub mod ledger;
pub mod logged;

use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::clock::{Clock, SystemClock};
use switchyard_engine::config::EngineConfig;
use switchyard_engine::store::Store;
use switchyard_proto::v1::engine_client::EngineClient;
use switchyard_proto::v1::{
    EngineMessage, FunctionError, Hello, InvocationResult, Invoke, RegisterFunction, WorkerMessage, engine_message,
    invocation_result, worker_message,
};
use switchyard_sdk::InitOptions;
use tokio::sync::{mpsc, oneshot};
use tonic::Streaming;
use tonic::transport::Channel;

/// Generous bound for "this must happen"; never a timed assertion of speed.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestEngine {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestEngine {
    pub async fn start(yaml: &str) -> Self {
        Self::start_with_clock(yaml, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(yaml: &str, clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(yaml, clock, listener).await
    }

    /// Starts on a given address (e.g. the one a stopped engine had).
    pub async fn start_at(yaml: &str, addr: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::start_on(yaml, Arc::new(SystemClock), listener).await
    }

    /// Starts on a store the test made (its config's adapter is not opened).
    pub async fn start_with_store(yaml: &str, store: Arc<dyn Store>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(yaml, Arc::new(SystemClock), listener, store)
    }

    async fn start_on(yaml: &str, clock: Arc<dyn Clock>, listener: tokio::net::TcpListener) -> Self {
        let config = EngineConfig::parse(yaml).expect("test config is valid");
        let store = switchyard_engine::store::open(&config.adapter).await.unwrap();
        let queues: Vec<String> = config.queue_names().into_iter().map(String::from).collect();
        store.declare(&queues).await.unwrap();
        Self::serve(yaml, clock, listener, store)
    }

    fn serve(yaml: &str, clock: Arc<dyn Clock>, listener: tokio::net::TcpListener, store: Arc<dyn Store>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let config = EngineConfig::parse(yaml).expect("test config is valid");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move {
            switchyard_engine::server::serve(listener, Arc::new(config), store, clock, shutdown).await.unwrap();
        });
        Self { url, stop: Some(stop), task }
    }

    /// An SDK worker, connected and welcomed.
    pub async fn worker(&self) -> switchyard_sdk::Worker {
        self.worker_with(InitOptions { max_in_flight: 64, ..Default::default() }).await
    }

    pub async fn worker_with(&self, options: InitOptions) -> switchyard_sdk::Worker {
        let w = switchyard_sdk::register_worker(&self.url, options).await.unwrap();
        assert!(w.ready(WAIT).await, "worker connects");
        w
    }

    /// An SDK client that serves nothing.
    pub async fn client(&self) -> switchyard_sdk::Worker {
        self.worker().await
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone()).unwrap().connect().await.unwrap()
    }

    /// Stops the engine (graceful) and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task).await.expect("engine stops").unwrap();
    }
}

/// A worker speaking the stream protocol directly.
pub struct RawWorker {
    tx: mpsc::UnboundedSender<WorkerMessage>,
    rx: Streaming<EngineMessage>,
}

impl RawWorker {
    /// Registers `functions`, says hello, and waits for the welcome.
    pub async fn connect(engine: &TestEngine, max_in_flight: u32, functions: &[&str]) -> Self {
        Self::connect_with(engine, max_in_flight, functions, false).await
    }

    /// As [`RawWorker::connect`], saying whether it takes `invokes` batches.
    pub async fn connect_with(engine: &TestEngine, max_in_flight: u32, functions: &[&str], batches: bool) -> Self {
        Self::open(&engine.url, max_in_flight, functions, batches).await
    }

    /// As [`RawWorker::connect`], to the engine at `url` (e.g. through a proxy).
    pub async fn connect_url(url: &str, max_in_flight: u32, functions: &[&str]) -> Self {
        Self::open(url, max_in_flight, functions, false).await
    }

    async fn open(url: &str, max_in_flight: u32, functions: &[&str], batches: bool) -> Self {
        let (tx, out) = mpsc::unbounded_channel();
        for f in functions {
            let register = RegisterFunction { function_id: f.to_string(), description: String::new() };
            tx.send(WorkerMessage { kind: Some(worker_message::Kind::RegisterFunction(register)) }).unwrap();
        }
        let hello = Hello {
            worker_name: "raw".into(),
            sdk_name: "test".into(),
            sdk_version: "0".into(),
            max_in_flight,
            batches,
        };
        tx.send(WorkerMessage { kind: Some(worker_message::Kind::Hello(hello)) }).unwrap();
        let channel = Channel::from_shared(url.to_string()).unwrap().connect().await.unwrap();
        let mut client = EngineClient::new(channel);
        let rx = client.connect(tokio_stream::wrappers::UnboundedReceiverStream::new(out)).await.unwrap().into_inner();
        let mut me = Self { tx, rx };
        match me.next().await.kind {
            Some(engine_message::Kind::Welcome(_)) => me,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// The next message, skipping registration acknowledgements.
    pub async fn next(&mut self) -> EngineMessage {
        loop {
            let m = tokio::time::timeout(WAIT, self.rx.message())
                .await
                .expect("a message in time")
                .unwrap()
                .expect("stream open");
            if !matches!(m.kind, Some(engine_message::Kind::Registered(_))) {
                return m;
            }
        }
    }

    /// The next message if one arrives within `d` (for "nothing more arrives" checks).
    pub async fn next_within(&mut self, d: Duration) -> Option<EngineMessage> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let m = tokio::time::timeout_at(deadline, self.rx.message()).await.ok().and_then(|r| r.ok().flatten())?;
            if !matches!(m.kind, Some(engine_message::Kind::Registered(_))) {
                return Some(m);
            }
        }
    }

    pub async fn next_invoke(&mut self) -> Invoke {
        match self.next().await.kind {
            Some(engine_message::Kind::Invoke(i)) => i,
            other => panic!("expected invoke, got {other:?}"),
        }
    }

    pub fn reply_ok(&self, invocation_id: &str, value: serde_json::Value) {
        self.reply(invocation_id, invocation_result::Outcome::Value(switchyard_sdk::json::to_proto(&value)));
    }

    pub fn reply_err(&self, invocation_id: &str, message: &str) {
        let e = FunctionError {
            message: message.into(),
            code: "RawError".into(),
            stack: "raw stack".into(),
            non_retryable: false,
        };
        self.reply(invocation_id, invocation_result::Outcome::Error(e));
    }

    /// Answers several invocations with one `results` message.
    pub fn reply_all_ok(&self, invocation_ids: &[String]) {
        let results = invocation_ids
            .iter()
            .map(|id| InvocationResult {
                invocation_id: id.clone(),
                outcome: Some(invocation_result::Outcome::Value(switchyard_sdk::json::to_proto(
                    &serde_json::Value::Null,
                ))),
            })
            .collect();
        let batch = switchyard_proto::v1::ResultBatch { results };
        self.tx.send(WorkerMessage { kind: Some(worker_message::Kind::Results(batch)) }).unwrap();
    }

    fn reply(&self, invocation_id: &str, outcome: invocation_result::Outcome) {
        let result = InvocationResult { invocation_id: invocation_id.into(), outcome: Some(outcome) };
        self.tx.send(WorkerMessage { kind: Some(worker_message::Kind::Result(result)) }).unwrap();
    }
}

/// Receives the next value from a handler channel, bounded by [`WAIT`].
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("event in time").expect("channel open")
}

/// Polls an async condition until it holds (bounded by [`WAIT`]); for state only visible
/// through the API (stats), where no event can be awaited.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

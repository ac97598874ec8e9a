//! The worker: one `Engine.Connect` stream, kept up for the life of the [`Worker`].
//!
//! Invariants:
//! - every registered function is registered on the engine whenever a stream is up: a new
//!   stream (first connect or reconnect after an engine restart) re-sends hello and every
//!   registration before anything else;
//! - every invocation received is answered with exactly one result on the stream it came
//!   from, unless the engine cancelled it or that stream is gone (the engine has then
//!   already failed the attempt — the SDK never counts attempts);
//! - shutdown unregisters every function first, so no new work arrives, then waits for
//!   running handlers (up to the grace period) before closing the stream.
//!
//! Results ready at the same moment leave together: the outbound stream, when the
//! transport asks for its next message, takes every result already queued and sends them
//! as one `results` batch (a lone result stays a plain `result`). Nothing waits on a timer
//! to fill a batch. Batching starts only once the engine has sent an `invokes` batch on
//! that stream, so an engine that predates batches never sees `results`.

use crate::handler::{Context, HandlerFn, RegisterFunction};
use crate::{Error, InitOptions};
use futures::FutureExt;
use parking_lot::Mutex;
use prost::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, ready};
use std::time::{Duration, UNIX_EPOCH};
// The stream's messages as the engine serves them, payloads as `google.protobuf.Value`
// wire bytes, handed to the handler as they are (`crate::handler::HandlerFn`).
use switchyard_proto::wire::switchyard::v1::engine_client::EngineClient;
use switchyard_proto::wire::switchyard::v1::{
    EngineMessage, FunctionError, Hello, InvocationResult, Invoke, RegisterFunction as PbRegister, ResultBatch,
    UnregisterFunction, WorkerMessage, engine_message, invocation_result, worker_message,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

const SDK_NAME: &str = "switchyard-rust";
/// How long a cancelled handler may run on before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(2);
/// A `results` batch closes at about this many encoded bytes (the engine accepts 4 MiB).
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Queued items the outbound stream takes at once.
const MAX_TAKE: usize = 1024;

/// What goes out on a stream: a message as is, or a result that may share a batch.
pub(crate) enum Outgoing {
    Message(WorkerMessage),
    Result(InvocationResult),
}

type Outbox = mpsc::UnboundedSender<Outgoing>;

/// The outbound half of one stream: queued items become messages in order; each run of
/// results already queued together becomes one `results` batch once `batch` is set.
struct Outbound {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    batch: Arc<AtomicBool>,
    taken: Vec<Outgoing>,
    ready: VecDeque<WorkerMessage>,
}

impl Outbound {
    fn coalesce(&mut self) {
        let batch = self.batch.load(Ordering::Relaxed);
        let mut run: Vec<InvocationResult> = Vec::new();
        let mut bytes = 0;
        for item in self.taken.drain(..) {
            match item {
                Outgoing::Result(r) if batch => {
                    let len = r.encoded_len();
                    if !run.is_empty() && bytes + len > MAX_BATCH_BYTES {
                        self.ready.push_back(results_message(std::mem::take(&mut run)));
                        bytes = 0;
                    }
                    bytes += len;
                    run.push(r);
                }
                Outgoing::Result(r) => {
                    self.ready.push_back(WorkerMessage { kind: Some(worker_message::Kind::Result(r)) })
                }
                Outgoing::Message(m) => {
                    if !run.is_empty() {
                        self.ready.push_back(results_message(std::mem::take(&mut run)));
                        bytes = 0;
                    }
                    self.ready.push_back(m);
                }
            }
        }
        if !run.is_empty() {
            self.ready.push_back(results_message(run));
        }
    }
}

fn results_message(mut run: Vec<InvocationResult>) -> WorkerMessage {
    let kind = if run.len() == 1 {
        worker_message::Kind::Result(run.pop().expect("one result"))
    } else {
        worker_message::Kind::Results(ResultBatch { results: run })
    };
    WorkerMessage { kind: Some(kind) }
}

impl futures::Stream for Outbound {
    type Item = WorkerMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<WorkerMessage>> {
        let this = &mut *self;
        if let Some(m) = this.ready.pop_front() {
            return Poll::Ready(Some(m));
        }
        if ready!(this.rx.poll_recv_many(cx, &mut this.taken, MAX_TAKE)) == 0 {
            return Poll::Ready(None);
        }
        this.coalesce();
        Poll::Ready(this.ready.pop_front())
    }
}

pub(crate) struct Shared {
    pub channel: Channel,
    pub batcher: crate::batcher::Batcher,
    pub options: InitOptions,
    functions: Mutex<BTreeMap<String, RegisterFunction>>,
    /// The sender of the current stream, if one is up.
    session: Mutex<Option<Outbox>>,
    running: Mutex<HashMap<String, CancellationToken>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    draining: std::sync::atomic::AtomicBool,
    /// Bumped on every welcome, acknowledgement and stream loss.
    readiness: watch::Sender<u64>,
    /// Welcomed on the current stream.
    welcomed: std::sync::atomic::AtomicBool,
    /// Functions the engine acknowledged on the current stream.
    acked: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    pub fn new(channel: Channel, options: InitOptions) -> Arc<Self> {
        Arc::new(Self {
            batcher: crate::batcher::Batcher::new(channel.clone()),
            channel,
            options,
            functions: Mutex::new(BTreeMap::new()),
            session: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            draining: false.into(),
            readiness: watch::Sender::new(0),
            welcomed: false.into(),
            acked: Mutex::new(Default::default()),
        })
    }

    pub fn register(&self, f: RegisterFunction) {
        let message = register_message(&f);
        // One lock order (functions, then session) so a new stream cannot miss it.
        let mut functions = self.functions.lock();
        functions.insert(f.id.clone(), f);
        if let Some(tx) = self.session.lock().as_ref() {
            let _ = tx.send(Outgoing::Message(message));
        }
    }

    pub fn unregister(&self, id: &str) {
        let mut functions = self.functions.lock();
        if functions.remove(id).is_some()
            && let Some(tx) = self.session.lock().as_ref()
        {
            let _ = tx.send(Outgoing::Message(unregister_message(id)));
        }
    }

    /// True once the current stream is welcomed and every registered function is live.
    fn is_ready(&self) -> bool {
        if !self.welcomed.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let functions = self.functions.lock();
        let acked = self.acked.lock();
        functions.keys().all(|f| acked.contains(f))
    }

    pub async fn ready(&self) {
        let mut rx = self.readiness.subscribe();
        loop {
            if self.is_ready() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn set_stream_state(&self, welcomed: bool) {
        self.welcomed.store(welcomed, std::sync::atomic::Ordering::SeqCst);
        if !welcomed {
            self.acked.lock().clear();
        }
        self.readiness.send_modify(|v| *v += 1);
    }

    /// Keeps a stream up until shutdown, reconnecting with exponential backoff.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = self.options.reconnect_initial;
        while !self.stop.is_cancelled() {
            match self.clone().session().await {
                Ok(()) => backoff = self.options.reconnect_initial,
                Err(e) => tracing::debug!(error = %e, "worker stream ended"),
            }
            *self.session.lock() = None;
            self.set_stream_state(false);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => {}
            }
            backoff = (backoff * 2).min(self.options.reconnect_max);
        }
    }

    async fn session(self: Arc<Self>) -> Result<(), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let hello = Hello {
            worker_name: self.options.worker_name.clone(),
            sdk_name: SDK_NAME.into(),
            sdk_version: env!("CARGO_PKG_VERSION").into(),
            max_in_flight: self.options.max_in_flight,
            batches: true,
        };
        {
            let functions = self.functions.lock();
            for f in functions.values() {
                tx.send(Outgoing::Message(register_message(f))).expect("receiver alive");
            }
            *self.session.lock() = Some(tx.clone());
        }
        tx.send(Outgoing::Message(WorkerMessage { kind: Some(worker_message::Kind::Hello(hello)) }))
            .expect("receiver alive");
        let batch = Arc::new(AtomicBool::new(false));
        let outbound = Outbound { rx, batch: batch.clone(), taken: Vec::new(), ready: VecDeque::new() };
        let mut client = EngineClient::new(self.channel.clone());
        let mut inbound = client.connect(outbound).await?.into_inner();
        loop {
            let message = tokio::select! {
                m = inbound.message() => m?,
                _ = self.stop.cancelled() => return Ok(()),
            };
            let Some(EngineMessage { kind: Some(kind) }) = message else {
                if message.is_none() {
                    return Ok(()); // the engine closed the stream (e.g. it is shutting down)
                }
                continue;
            };
            match kind {
                engine_message::Kind::Welcome(_) => self.set_stream_state(true),
                engine_message::Kind::Registered(r) => {
                    self.acked.lock().insert(r.function_id);
                    self.readiness.send_modify(|v| *v += 1);
                }
                engine_message::Kind::Invoke(invoke) => self.start(invoke, &tx),
                engine_message::Kind::Invokes(invokes) => {
                    // This engine reads `results`.
                    batch.store(true, Ordering::Relaxed);
                    for invoke in invokes.invokes {
                        self.start(invoke, &tx);
                    }
                }
                engine_message::Kind::Cancel(cancel) => {
                    if let Some(token) = self.running.lock().remove(&cancel.invocation_id) {
                        token.cancel();
                    }
                }
            }
        }
    }

    /// Runs one invocation in its own task and answers on the stream it came from.
    fn start(self: &Arc<Self>, invoke: Invoke, tx: &Outbox) {
        let handler: Option<HandlerFn> = self.functions.lock().get(&invoke.function_id).map(|f| f.handler.clone());
        let token = CancellationToken::new();
        let id = invoke.invocation_id;
        self.running.lock().insert(id.clone(), token.clone());
        let delivery = invoke.delivery.unwrap_or_default();
        let has_delivery = !delivery.message_receipt_id.is_empty();
        let missing = handler.is_none().then(|| invoke.function_id.clone());
        let ctx = Context {
            invocation_id: id.clone(),
            function_id: invoke.function_id,
            attempt: delivery.attempt.max(1),
            max_attempts: delivery.max_attempts.max(1),
            message_receipt_id: has_delivery.then_some(delivery.message_receipt_id),
            queue: has_delivery.then_some(delivery.queue),
            group: (!delivery.group.is_empty()).then_some(delivery.group),
            enqueued_at: delivery.enqueued_at.map(|t| {
                UNIX_EPOCH + Duration::from_secs(t.seconds.max(0) as u64) + Duration::from_nanos(t.nanos.max(0) as u64)
            }),
            cancelled: token.clone(),
        };
        let payload = invoke.payload;
        let shared = self.clone();
        let tx = tx.clone();
        self.tasks.spawn(async move {
            let outcome = match handler {
                None => Err(crate::HandlerError::new(format!(
                    "function '{}' is not registered on this worker",
                    missing.unwrap_or_default()
                ))
                .with_code("FunctionNotRegistered")),
                Some(handler) => {
                    let run = std::panic::AssertUnwindSafe(handler(payload, ctx)).catch_unwind();
                    tokio::select! {
                        r = run => r.unwrap_or_else(|_| Err(crate::HandlerError::new("handler panicked").with_code("Panic"))),
                        // The engine gave up and expects no result: the handler may notice
                        // `ctx.cancelled` and stop; one that does not is dropped after a grace.
                        _ = async { token.cancelled().await; tokio::time::sleep(CANCEL_GRACE).await } => return,
                    }
                }
            };
            if shared.running.lock().remove(&id).is_none() {
                return; // cancelled meanwhile
            }
            let outcome = match outcome {
                Ok(bytes) => invocation_result::Outcome::Value(bytes.into()),
                Err(e) => invocation_result::Outcome::Error(FunctionError { message: e.message, code: e.code, stack: e.stack }),
            };
            let result = InvocationResult { invocation_id: id, outcome: Some(outcome) };
            let _ = tx.send(Outgoing::Result(result));
        });
    }

    /// Stops taking work, waits for running handlers (up to the grace period), then closes.
    pub async fn shutdown(&self) {
        if self.draining.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        {
            let mut functions = self.functions.lock();
            if let Some(tx) = self.session.lock().as_ref() {
                for id in functions.keys() {
                    let _ = tx.send(Outgoing::Message(unregister_message(id)));
                }
            }
            functions.clear();
        }
        self.tasks.close();
        if tokio::time::timeout(self.options.shutdown_grace, self.tasks.wait()).await.is_err() {
            tracing::warn!("shutdown grace elapsed with handlers still running; the engine will retry them");
        }
        self.stop.cancel();
        *self.session.lock() = None;
    }
}

fn register_message(f: &RegisterFunction) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::RegisterFunction(PbRegister {
            function_id: f.id.clone(),
            description: f.description.clone(),
        })),
    }
}

fn unregister_message(id: &str) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::UnregisterFunction(UnregisterFunction { function_id: id.into() })),
    }
}

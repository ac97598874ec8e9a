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
//! that stream, so an engine that predates batches never sees `results` ([`outbound`]).

use crate::handler::{Context, HandlerError, HandlerFn, RegisterFunction};
use crate::job_log::Job;
use crate::{Error, InitOptions};
use futures::FutureExt;
use parking_lot::Mutex;
use prost::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};
// The stream's messages as the engine serves them, payloads as `google.protobuf.Value`
// wire bytes, handed to the handler as they are (`crate::handler::HandlerFn`).
use crate::connection::{Cause, Connection, Unreachable, reconnect_delay};
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchyard_proto::wire::switchyard::v1::engine_client::EngineClient;
use switchyard_proto::wire::switchyard::v1::{
    EngineMessage, FunctionError, Hello, InvocationResult, Invoke, WorkerMessage, engine_message, invocation_result,
    worker_message,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod outbound;

use outbound::{Outbound, Outbox, Outgoing, progress_reporter, register_message, unregister_message};

const SDK_NAME: &str = "switchyard-rust";
/// How long a cancelled handler may run on before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(2);
/// How long a shutdown waits for the engine to end the stream once the results are sent.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// An invocation whose handler runs: cancelling the token tells it the engine gave up, for
/// the reason kept beside it.
struct Running {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

/// How a stream attempt ended.
enum Ended {
    /// The worker is shutting down.
    Stopped,
    /// The engine never welcomed the worker: a failed connection attempt.
    NotConnected(Unreachable),
    /// The stream was up and is gone.
    Lost(Unreachable),
    /// The engine refused the stream for its token (UNAUTHENTICATED, PERMISSION_DENIED).
    Refused(Error),
}

pub(crate) struct Shared {
    pub conn: Connection,
    pub batcher: crate::batcher::Batcher,
    pub options: InitOptions,
    functions: Mutex<BTreeMap<String, RegisterFunction>>,
    /// The sender of the current stream, if one is up.
    session: Mutex<Option<Outbox>>,
    running: Mutex<HashMap<String, Running>>,
    tasks: TaskTracker,
    /// Set once running handlers are done (or the grace is over): the stream sends what is
    /// queued, ends its half, and waits for the engine to end the other.
    closing: CancellationToken,
    /// Set when the stream must stop at once.
    stop: CancellationToken,
    /// Set when [`Shared::run`] has returned.
    done: CancellationToken,
    draining: std::sync::atomic::AtomicBool,
    /// Bumped on every welcome, acknowledgement and stream loss.
    readiness: watch::Sender<u64>,
    /// Welcomed on the current stream.
    welcomed: std::sync::atomic::AtomicBool,
    /// Functions the engine acknowledged on the current stream.
    acked: Mutex<std::collections::HashSet<String>>,
    /// Functions the engine refused on the current stream, with its typed refusal.
    refused: Mutex<HashMap<String, Error>>,
}

impl Shared {
    pub fn new(conn: Connection, options: InitOptions) -> Arc<Self> {
        Arc::new(Self {
            batcher: crate::batcher::Batcher::new(conn.clone()),
            conn,
            options,
            functions: Mutex::new(BTreeMap::new()),
            session: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
            stop: CancellationToken::new(),
            done: CancellationToken::new(),
            draining: false.into(),
            readiness: watch::Sender::new(0),
            welcomed: false.into(),
            acked: Mutex::new(Default::default()),
            refused: Mutex::new(HashMap::new()),
        })
    }

    pub fn register(&self, f: RegisterFunction) {
        let message = register_message(&f);
        // One lock order (functions, then session) so a new stream cannot miss it.
        let mut functions = self.functions.lock();
        self.refused.lock().remove(&f.id);
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

    /// The engine's refusal of a registered function on the current stream, if any.
    fn first_refusal(&self) -> Option<Error> {
        let functions = self.functions.lock();
        let refused = self.refused.lock();
        functions.keys().find_map(|f| refused.get(f).cloned())
    }

    /// Waits until the worker is ready or one of its functions is refused (the refusal).
    pub async fn ready(&self) -> Result<(), Error> {
        let mut rx = self.readiness.subscribe();
        loop {
            if let Some(e) = self.first_refusal() {
                return Err(e);
            }
            if self.is_ready() {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// Waits until the engine has acknowledged `id` on the current stream (`Ok`) or refused
    /// it (its typed error, e.g. `PermissionDenied`).
    pub async fn registered(&self, id: &str) -> Result<(), Error> {
        let mut rx = self.readiness.subscribe();
        loop {
            if let Some(e) = self.refused.lock().get(id) {
                return Err(e.clone());
            }
            if self.welcomed.load(Ordering::SeqCst) && self.acked.lock().contains(id) {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    fn set_stream_state(&self, welcomed: bool) {
        self.welcomed.store(welcomed, std::sync::atomic::Ordering::SeqCst);
        if !welcomed {
            self.acked.lock().clear();
            self.refused.lock().clear();
        }
        self.readiness.send_modify(|v| *v += 1);
    }

    /// Keeps a stream up until shutdown, reconnecting with full-jitter backoff and saying
    /// at WARN, each time, why the engine cannot be reached. With `first` (fail fast), the
    /// first attempt's outcome is sent there instead: a failure ends the worker.
    pub async fn run(self: Arc<Self>, first: Option<oneshot::Sender<Result<(), Error>>>) {
        let _done = self.done.clone().drop_guard();
        self.reconnect(first).await;
    }

    async fn reconnect(self: &Arc<Self>, mut first: Option<oneshot::Sender<Result<(), Error>>>) {
        let mut rng = StdRng::from_os_rng();
        let mut failures = 0u32;
        loop {
            let ended = self.clone().session(&mut first).await;
            *self.session.lock() = None;
            self.set_stream_state(false);
            let failure = match ended {
                Ended::Stopped => return,
                Ended::Refused(e) => {
                    failures += 1;
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(e));
                        self.stop.cancel();
                        return;
                    }
                    let delay =
                        reconnect_delay(failures, self.options.reconnect_initial, self.options.reconnect_max, &mut rng);
                    let retry_in_ms = delay.as_millis() as u64;
                    tracing::warn!(url = %self.conn.url, reason = %e.reason, retry_in_ms, "the engine refused this worker: {e}; retrying in {retry_in_ms} ms");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => return,
                        _ = self.closing.cancelled() => return,
                    }
                    continue;
                }
                Ended::NotConnected(u) => {
                    failures += 1;
                    u
                }
                Ended::Lost(u) => {
                    failures = 1;
                    u
                }
            };
            if self.stop.is_cancelled() || self.closing.is_cancelled() {
                return;
            }
            let url = &self.conn.url;
            if let Some(first) = first.take() {
                let _ = first.send(Err(failure.error(url)));
                self.stop.cancel();
                return;
            }
            let delay = reconnect_delay(failures, self.options.reconnect_initial, self.options.reconnect_max, &mut rng);
            let retry_in_ms = delay.as_millis() as u64;
            tracing::warn!(
                url = %url,
                cause = failure.cause.as_str(),
                retry_in_ms,
                "cannot reach the Switchyard engine at {url}: {}; retrying in {retry_in_ms} ms",
                failure.text
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => return,
                _ = self.closing.cancelled() => return,
            }
        }
    }

    /// One stream, from hello to its end. The engine must welcome the worker within
    /// `connect_timeout`; until then a failure is a failed attempt, after it a lost stream.
    async fn session(self: Arc<Self>, first: &mut Option<oneshot::Sender<Result<(), Error>>>) -> Ended {
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
        let mut client = EngineClient::new(self.conn.channel.clone());
        let timeout = self.options.connect_timeout;
        let no_welcome = || {
            Ended::NotConnected(Unreachable::new(
                Cause::TimedOut,
                format!("no welcome within {} ms", timeout.as_millis()),
            ))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut inbound = tokio::select! {
            r = client.connect(outbound) => match r {
                Ok(response) => response.into_inner(),
                // The engine's own refusal of the token: typed, not "cannot reach".
                Err(status) if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                    return Ended::Refused(self.conn.error(status));
                }
                Err(status) => return Ended::NotConnected(Unreachable::of_status(&status)),
            },
            _ = tokio::time::sleep_until(deadline) => return no_welcome(),
            _ = self.stop.cancelled() => return Ended::Stopped,
            _ = self.closing.cancelled() => return Ended::Stopped,
        };
        let mut welcomed = false;
        let mut tx = Some(tx);
        loop {
            let message = tokio::select! {
                m = inbound.message() => m,
                _ = tokio::time::sleep_until(deadline), if !welcomed => return no_welcome(),
                // Drained: once every sender is gone, the outbound stream sends what is queued
                // and ends, and the engine ends its side.
                _ = self.closing.cancelled(), if tx.is_some() => {
                    tx = None;
                    continue;
                }
                _ = self.stop.cancelled() => return Ended::Stopped,
            };
            if self.closing.is_cancelled() && !matches!(message, Ok(Some(_))) {
                return Ended::Stopped;
            }
            let kind = match message {
                Ok(Some(EngineMessage { kind: Some(kind) })) => kind,
                Ok(Some(_)) => continue,
                Ok(None) if welcomed => {
                    // The engine closed the stream (e.g. it is shutting down).
                    return Ended::Lost(Unreachable::new(Cause::ConnectionLost, "the engine closed the stream"));
                }
                Ok(None) => {
                    return Ended::NotConnected(Unreachable::new(
                        Cause::Other,
                        "the engine closed the stream before welcoming this worker",
                    ));
                }
                Err(status) if welcomed => {
                    return Ended::Lost(Unreachable::new(Cause::ConnectionLost, Unreachable::of_status(&status).text));
                }
                // The engine's own refusal of the token: typed, not "cannot reach".
                Err(status)
                    if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) =>
                {
                    return Ended::Refused(self.conn.error(status));
                }
                Err(status) => return Ended::NotConnected(Unreachable::of_status(&status)),
            };
            match kind {
                engine_message::Kind::Welcome(_) => {
                    welcomed = true;
                    self.set_stream_state(true);
                    tracing::info!(url = %self.conn.url, "connected to the Switchyard engine at {}", self.conn.url);
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                }
                engine_message::Kind::Registered(r) => {
                    self.refused.lock().remove(&r.function_id);
                    self.acked.lock().insert(r.function_id);
                    self.readiness.send_modify(|v| *v += 1);
                }
                // Not registered: the function's callers get no work here. Said at ERROR
                // (function and reason); `ready` and `wait_registered` answer it.
                engine_message::Kind::Refused(r) => {
                    let e = self.refusal(&r);
                    tracing::error!(
                        function_id = %r.function_id,
                        reason = %e.reason,
                        "the engine refused to register function '{}': {e}",
                        r.function_id
                    );
                    self.acked.lock().remove(&r.function_id);
                    self.refused.lock().insert(r.function_id, e);
                    self.readiness.send_modify(|v| *v += 1);
                }
                // While closing, nothing new starts: the engine fails what it sent meanwhile
                // when the stream ends, as for any worker that leaves.
                engine_message::Kind::Invoke(invoke) => {
                    if let Some(tx) = &tx {
                        self.start(invoke, tx);
                    }
                }
                engine_message::Kind::Invokes(invokes) => {
                    // This engine reads `results`.
                    batch.store(true, Ordering::Relaxed);
                    for invoke in invokes.invokes.into_iter().filter(|_| tx.is_some()) {
                        self.start(invoke, tx.as_ref().expect("checked"));
                    }
                }
                engine_message::Kind::Cancel(cancel) => {
                    if let Some(running) = self.running.lock().remove(&cancel.invocation_id) {
                        let _ = running.reason.set(cancel.reason);
                        running.token.cancel();
                    }
                }
            }
        }
    }

    /// The typed error of a `refused` message: its status, as a call failing with it would.
    fn refusal(&self, r: &switchyard_proto::wire::RegistrationRefused) -> Error {
        let status = r.status.clone().unwrap_or_default();
        let details = status.encode_to_vec();
        let mut e = self.conn.error(tonic::Status::with_details(
            tonic::Code::from(status.code),
            status.message,
            details.into(),
        ));
        e.details.entry("function_id".into()).or_insert_with(|| r.function_id.clone());
        e
    }

    /// Runs one invocation in its own task and answers on the stream it came from.
    fn start(self: &Arc<Self>, invoke: Invoke, tx: &Outbox) {
        let handler: Option<HandlerFn> = self.functions.lock().get(&invoke.function_id).map(|f| f.handler.clone());
        let token = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        let id = invoke.invocation_id;
        self.running.lock().insert(id.clone(), Running { token: token.clone(), reason: reason.clone() });
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
            topic: (!delivery.topic.is_empty()).then_some(delivery.topic),
            enqueued_at: delivery.enqueued_at.map(|t| {
                UNIX_EPOCH + Duration::from_secs(t.seconds.max(0) as u64) + Duration::from_nanos(t.nanos.max(0) as u64)
            }),
            cancelled: token.clone(),
            progress: match has_delivery {
                true => progress_reporter(id.clone(), tx.clone()),
                false => crate::handler::Reporter::none(),
            },
        };
        let payload = invoke.payload;
        let shared = self.clone();
        let tx = tx.clone();
        let job = Job::of(&ctx);
        self.tasks.spawn(async move {
            let started = Instant::now();
            job.started();
            let outcome = match handler {
                None => Err(HandlerError::new(format!(
                    "function '{}' is not registered on this worker",
                    missing.unwrap_or_default()
                ))
                .with_code("FunctionNotRegistered")),
                Some(handler) => {
                    let run = std::panic::AssertUnwindSafe(handler(payload, ctx)).catch_unwind();
                    tokio::select! {
                        r = run => r.unwrap_or_else(|panic| Err(panicked(panic))),
                        // The engine gave up and expects no result: the handler may notice
                        // `ctx.cancelled` and stop; one that does not is dropped after a grace.
                        _ = async { token.cancelled().await; tokio::time::sleep(CANCEL_GRACE).await } => {
                            return job.cancelled(reason.get().map(String::as_str), started.elapsed());
                        }
                    }
                }
            };
            if shared.running.lock().remove(&id).is_none() {
                // Cancelled meanwhile: the engine expects no result.
                return job.cancelled(reason.get().map(String::as_str), started.elapsed());
            }
            job.finished(&outcome, started.elapsed());
            let outcome = match outcome {
                Ok(bytes) => invocation_result::Outcome::Value(bytes.into()),
                Err(e) => invocation_result::Outcome::Error(FunctionError {
                    message: e.message,
                    code: e.code,
                    stack: e.stack,
                    non_retryable: e.non_retryable,
                }),
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
        // Results still queued go out before the stream ends: a drained job must not be
        // failed by the disconnect.
        *self.session.lock() = None;
        self.closing.cancel();
        let _ = tokio::time::timeout(CLOSE_WITHIN, self.done.cancelled()).await;
        self.stop.cancel();
    }
}

/// A panicking handler's failure, with the panic's message when it has one.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> HandlerError {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    let message = match text {
        Some(text) => format!("handler panicked: {text}"),
        None => "handler panicked".into(),
    };
    HandlerError::new(message).with_code("Panic")
}

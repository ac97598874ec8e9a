//! Switchyard's Rust SDK: one [`Worker`] object serves functions *and* calls the engine.
//!
//! ```no_run
//! use switchyard_sdk::{InitOptions, RegisterFunction, TriggerAction, TriggerRequest};
//! use serde_json::json;
//! # async fn demo() -> Result<(), switchyard_sdk::Error> {
//! let sy = switchyard_sdk::register_worker("http://127.0.0.1:49134", InitOptions::default()).await?;
//! sy.register_function(RegisterFunction::new_async("orders::process-payment", |payload, ctx| async move {
//!     println!("attempt {} of {:?}: {payload}", ctx.attempt, ctx.message_receipt_id);
//!     Ok(json!({"charged": true}))
//! }));
//! let receipt = sy.trigger(TriggerRequest {
//!     function_id: "orders::process-payment".into(),
//!     payload: json!({"orderId": "ord_789"}),
//!     action: Some(TriggerAction::Enqueue { queue: "payment".into() }),
//!     timeout_ms: None,
//! }).await?;
//! println!("{}", receipt["messageReceiptId"]);
//! sy.shutdown().await; // drains in-flight work
//! # Ok(()) }
//! ```
//!
//! Modules: [`url`] (the engine URL grammar), [`testing`] (running handlers without an
//! engine), [`handler`] (functions, context, handler errors), [`caller`] (trigger),
//! [`queues`] (operator calls), [`error`] (typed errors with the engine's reason),
//! [`json`] (JSON ⇄ `google.protobuf.Value`); payloads from and into serde types go
//! straight to and from the wire bytes (`wire_serde`).
//!
//! Logging goes through `tracing`, targets under `switchyard_sdk` (silent until the
//! application installs a subscriber): WARN when the engine cannot be reached (fields
//! `url`, `cause`, `retry_in_ms`) and when a handler fails (`queue`, `function_id`,
//! `message_receipt_id`, `attempt`, `outcome`, `duration_ms`, `error_code`, `error`), INFO
//! on connecting, DEBUG one line per job start and end. Payloads are never logged.

#![warn(missing_docs)]

mod batcher;
pub mod caller;
mod connection;
pub mod error;
pub mod handler;
mod job_log;
pub mod jobs;
pub mod json;
pub mod queues;
mod signal;
pub mod testing;
pub mod url;
mod wire_serde;
mod worker;

pub use caller::{EnqueueOptions, EnqueueReceipt, PublishReceipt, SubscriberReceipt, TriggerAction, TriggerRequest};
pub use error::{Error, Reason};
pub use handler::{Context, HandlerError, Progress, RegisterFunction};
pub use jobs::{CancelOutcome, Job, JobState};
pub use queues::{DeadLetter, DeadLetterPage, QueueInfo, QueueStats, Queues};
pub use switchyard_proto::v1 as proto;
pub use url::{DEFAULT_URL, url_from_env};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Worker settings.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Shown in engine logs.
    pub worker_name: String,
    /// Most invocations the engine sends this worker at once.
    pub max_in_flight: u32,
    /// The first reconnect waits up to this long (full jitter; 100 ms).
    pub reconnect_initial: Duration,
    /// No reconnect waits longer than this (5 s).
    pub reconnect_max: Duration,
    /// How long [`Worker::shutdown`] waits for running handlers (30 s).
    pub shutdown_grace: Duration,
    /// How long one connection attempt may take, TCP connect to the engine's welcome (5 s).
    pub connect_timeout: Duration,
    /// Return the first connection attempt's failure from [`register_worker`] instead of
    /// retrying in the background (false): for a process that should not start without
    /// its engine.
    pub fail_fast: bool,
    /// On SIGTERM, drain (as [`Worker::shutdown`]) and then let the signal end the process
    /// (true). Turn it off to handle signals yourself.
    pub drain_on_sigterm: bool,
    /// Sent as `authorization: Bearer <token>` on every call; `None` reads
    /// `SWITCHYARD_TOKEN` (unset or empty: no token).
    pub token: Option<String>,
    /// TLS settings for an `https://` URL (without them, `https://` checks the engine
    /// against the system's roots); an error with an `http://` URL.
    pub tls: Option<TlsOptions>,
}

/// TLS for an `https://` engine URL.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of the CA that signed the engine's certificate, instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// With `key_file`: the client certificate presented to an engine that asks for one (mTLS).
    pub cert_file: Option<std::path::PathBuf>,
    /// The private key of `cert_file` (PEM).
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            worker_name: format!("rust-{}", std::process::id()),
            max_in_flight: 64,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            fail_fast: false,
            drain_on_sigterm: true,
            token: None,
            tls: None,
        }
    }
}

/// A connection to the engine: serves registered functions and calls the engine.
/// Cheap to clone; every clone is the same worker.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<worker::Shared>,
}

/// Connects a worker to the engine at `url`: `http://HOST:PORT` or `HOST:PORT` (plaintext
/// gRPC), `https://HOST:PORT` (TLS, see [`InitOptions::tls`]); the port defaults to 49134.
/// Any other form is an `INVALID_URL` error before any I/O. The token is
/// [`InitOptions::token`], else `SWITCHYARD_TOKEN`.
///
/// The stream is kept up in the background — started now, re-established after engine
/// restarts, each failed attempt logged at WARN with the cause — so this returns at once,
/// unless [`InitOptions::fail_fast`] is set: then it waits for the first attempt and
/// returns its failure (`UNAVAILABLE: cannot reach the Switchyard engine at URL: …`).
pub async fn register_worker(url: &str, options: InitOptions) -> Result<Worker, Error> {
    let conn = connection::open(url::parse(url)?, &options)?;
    let (fail_fast, drain_on_sigterm) = (options.fail_fast, options.drain_on_sigterm);
    let shared = worker::Shared::new(conn, options);
    let (first, connected) = match fail_fast {
        true => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    tokio::spawn(shared.clone().run(first));
    if let Some(connected) = connected {
        connected.await.unwrap_or_else(|_| Err(Error::local(Reason::Unavailable, "the worker stopped")))?;
    }
    if drain_on_sigterm {
        signal::drain_on_sigterm(&shared);
    }
    Ok(Worker { shared })
}

/// [`register_worker`] at the URL in `SWITCHYARD_URL`, else `http://127.0.0.1:49134`.
pub async fn register_worker_from_env(options: InitOptions) -> Result<Worker, Error> {
    register_worker(&url_from_env(), options).await
}

impl Worker {
    /// Serves `function` from now on (and after every reconnect).
    pub fn register_function(&self, function: RegisterFunction) {
        self.shared.register(function);
    }

    /// Stops serving `function_id`.
    pub fn unregister_function(&self, function_id: &str) {
        self.shared.unregister(function_id);
    }

    /// `Engine.Trigger`: the function's value (sync), `{"messageReceiptId": …}` (enqueue)
    /// or `null` (void).
    pub async fn trigger(&self, request: TriggerRequest) -> Result<Value, Error> {
        caller::trigger(&self.shared.conn, &self.shared.batcher, request).await
    }

    /// Enqueues `payload` for `function_id` on `queue`.
    pub async fn enqueue(
        &self,
        queue: &str,
        function_id: &str,
        payload: impl Serialize,
    ) -> Result<EnqueueReceipt, Error> {
        caller::enqueue(&self.shared.batcher, queue, function_id, payload, &EnqueueOptions::default()).await
    }

    /// Enqueues with options: delayed (`delay_ms` / `not_before`) or with an
    /// `idempotency_key` (a duplicate answers the first job's receipt, `duplicate: true`).
    pub async fn enqueue_with(
        &self,
        queue: &str,
        function_id: &str,
        payload: impl Serialize,
        options: EnqueueOptions,
    ) -> Result<EnqueueReceipt, Error> {
        caller::enqueue(&self.shared.batcher, queue, function_id, payload, &options).await
    }

    /// Publishes `payload` to `topic`: one durable job per subscriber (`topic_configs`),
    /// one receipt each, in config order.
    pub async fn publish(&self, topic: &str, payload: impl Serialize) -> Result<PublishReceipt, Error> {
        caller::publish(&self.shared.conn, topic, payload, &EnqueueOptions::default()).await
    }

    /// [`Worker::publish`] with options (applied to each subscriber's job; the key per
    /// subscriber queue).
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: impl Serialize,
        options: EnqueueOptions,
    ) -> Result<PublishReceipt, Error> {
        caller::publish(&self.shared.conn, topic, payload, &options).await
    }

    /// Calls `function_id` synchronously and deserializes its value.
    pub async fn call<T: DeserializeOwned>(&self, function_id: &str, payload: impl Serialize) -> Result<T, Error> {
        caller::call(&self.shared.conn, function_id, payload).await
    }

    /// Fire-and-forget.
    pub async fn void(&self, function_id: &str, payload: impl Serialize) -> Result<(), Error> {
        caller::void(&self.shared.conn, function_id, payload).await
    }

    /// The operator calls.
    pub fn queues(&self) -> Queues {
        Queues::new(self.shared.conn.clone())
    }

    /// Waits until the worker stream is up and every registered function is live on the
    /// engine (acknowledged), or `timeout` passes. Returns whether it is ready: false at
    /// once when the engine refused one of its functions (see [`Worker::wait_registered`]).
    pub async fn ready(&self, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, self.shared.ready()).await, Ok(Ok(())))
    }

    /// Waits until the engine has registered every function of this worker: `Ok`, or the
    /// engine's refusal of one of them as its typed error (`PermissionDenied` for a
    /// function outside the token's `functions`, `InvalidArgument` for an invalid id; the
    /// message names the function), or `UNAVAILABLE` once `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        tokio::time::timeout(timeout, self.shared.ready()).await.unwrap_or_else(|_| {
            Err(Error::local(Reason::Unavailable, format!("the worker was not ready within {timeout:?}")))
        })
    }

    /// Waits until the engine has registered `function_id` on this worker: `Ok`, or its
    /// refusal as the typed error (`PermissionDenied`, `InvalidArgument`), or
    /// `UNAVAILABLE` once `timeout` passes.
    pub async fn wait_registered(&self, function_id: &str, timeout: Duration) -> Result<(), Error> {
        tokio::time::timeout(timeout, self.shared.registered(function_id)).await.unwrap_or_else(|_| {
            Err(Error::local(
                Reason::Unavailable,
                format!("function '{function_id}' was not registered within {timeout:?}"),
            ))
        })
    }

    /// The engine URL this worker talks to, as `http://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.shared.conn.url
    }

    /// Stops taking work, lets running handlers finish (up to `shutdown_grace`), closes.
    pub async fn shutdown(&self) {
        self.shared.shutdown().await;
    }
}

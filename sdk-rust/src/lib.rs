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
//! Modules: [`handler`] (functions, context, handler errors), [`caller`] (trigger),
//! [`queues`] (operator calls), [`error`] (typed errors with the engine's reason),
//! [`json`] (JSON ⇄ `google.protobuf.Value`); payloads from and into serde types go
//! straight to and from the wire bytes (`wire_serde`).

mod batcher;
pub mod caller;
pub mod error;
pub mod handler;
pub mod json;
pub mod queues;
mod wire_serde;
mod worker;

pub use caller::{EnqueueReceipt, TriggerAction, TriggerRequest};
pub use error::{Error, Reason};
pub use handler::{Context, HandlerError, RegisterFunction};
pub use queues::{DeadLetter, DeadLetterPage, QueueInfo, QueueStats, Queues};
pub use switchyard_proto::v1 as proto;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Endpoint;

/// Worker settings.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Shown in engine logs.
    pub worker_name: String,
    /// Most invocations the engine sends this worker at once.
    pub max_in_flight: u32,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// How long [`Worker::shutdown`] waits for running handlers.
    pub shutdown_grace: Duration,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            worker_name: format!("rust-{}", std::process::id()),
            max_in_flight: 64,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A connection to the engine: serves registered functions and calls the engine.
/// Cheap to clone; every clone is the same worker.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<worker::Shared>,
}

/// Connects a worker to the engine at `url` (`http://host:port`). The stream is kept up in
/// the background — started now, re-established after engine restarts — so this returns
/// at once; only a malformed url is an error.
pub async fn register_worker(url: &str, options: InitOptions) -> Result<Worker, Error> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::local(Reason::InvalidArgument, format!("bad engine url '{url}': {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    let shared = worker::Shared::new(endpoint.connect_lazy(), options);
    tokio::spawn(shared.clone().run());
    Ok(Worker { shared })
}

impl Worker {
    /// Serves `function` from now on (and after every reconnect).
    pub fn register_function(&self, function: RegisterFunction) {
        self.shared.register(function);
    }

    pub fn unregister_function(&self, function_id: &str) {
        self.shared.unregister(function_id);
    }

    /// `Engine.Trigger`: the function's value (sync), `{"messageReceiptId": …}` (enqueue)
    /// or `null` (void).
    pub async fn trigger(&self, request: TriggerRequest) -> Result<Value, Error> {
        caller::trigger(&self.shared.channel, &self.shared.batcher, request).await
    }

    /// Enqueues `payload` for `function_id` on `queue`.
    pub async fn enqueue(
        &self,
        queue: &str,
        function_id: &str,
        payload: impl Serialize,
    ) -> Result<EnqueueReceipt, Error> {
        caller::enqueue(&self.shared.batcher, queue, function_id, payload).await
    }

    /// Calls `function_id` synchronously and deserializes its value.
    pub async fn call<T: DeserializeOwned>(&self, function_id: &str, payload: impl Serialize) -> Result<T, Error> {
        caller::call(&self.shared.channel, function_id, payload).await
    }

    /// Fire-and-forget.
    pub async fn void(&self, function_id: &str, payload: impl Serialize) -> Result<(), Error> {
        caller::void(&self.shared.channel, function_id, payload).await
    }

    /// The operator calls.
    pub fn queues(&self) -> Queues {
        Queues::new(self.shared.channel.clone())
    }

    /// Waits until the worker stream is up and every registered function is live on the
    /// engine (acknowledged), or `timeout` passes. Returns whether it is ready.
    pub async fn ready(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.shared.ready()).await.is_ok()
    }

    /// Stops taking work, lets running handlers finish (up to `shutdown_grace`), closes.
    pub async fn shutdown(&self) {
        self.shared.shutdown().await;
    }
}

//! Unit-testing handlers without an engine: a fake delivery context and a way to run a
//! [`RegisterFunction`] exactly as a worker would.
//!
//! ```
//! use serde_json::json;
//! use switchyard_sdk::testing::{Delivery, invoke};
//! use switchyard_sdk::{HandlerError, RegisterFunction};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let charge = RegisterFunction::new_async("orders::charge", |payload, ctx| async move {
//!     if ctx.attempt < 2 {
//!         return Err(HandlerError::new("card network busy").with_code("Busy"));
//!     }
//!     Ok(json!({"charged": payload["orderId"]}))
//! });
//! let first = Delivery::job("payment", "orders::charge");
//! let err = invoke(&charge, json!({"orderId": "ord_1"}), first.context()).await.unwrap_err();
//! assert_eq!(err.code, "Busy");
//! let retry = Delivery::job("payment", "orders::charge").attempt(2);
//! assert_eq!(invoke(&charge, json!({"orderId": "ord_1"}), retry.context()).await.unwrap(), json!({"charged": "ord_1"}));
//! # }
//! ```
//!
//! Invariant: [`invoke`] goes through the same path as a delivery — the payload is written
//! to the wire form and read back into the handler's input (so a typed handler's
//! `InvalidPayload` shows here too), and the result is read back as the caller would.
//!
//! Deliberately not here: an engine. To run workers against a real one in your own tests,
//! serve `switchyard_engine::server::serve` on `127.0.0.1:0` (see the SDK's README,
//! "Testing"): retries, FIFO and the DLQ are the engine's, and a fake of them would lie.

use crate::handler::{Context, HandlerError, Progress, RegisterFunction};
use crate::json::decode_value;
use crate::wire_serde::to_wire;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// Builds the [`Context`] a handler receives, for a queued job or a direct call.
#[derive(Clone, Debug)]
pub struct Delivery {
    ctx: Context,
    progress: Arc<parking_lot::Mutex<Vec<Progress>>>,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl Delivery {
    /// A direct (sync or void) call of `function_id`: attempt 1 of 1, no queue fields.
    pub fn call(function_id: impl Into<String>) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(parking_lot::Mutex::new(Vec::new()));
        Self {
            ctx: Context {
                invocation_id: format!("test-invocation-{n}"),
                function_id: function_id.into(),
                attempt: 1,
                max_attempts: 1,
                message_receipt_id: None,
                queue: None,
                group: None,
                topic: None,
                enqueued_at: None,
                cancelled: CancellationToken::new(),
                progress: {
                    let seen = progress.clone();
                    crate::handler::Reporter::to(move |p| seen.lock().push(p))
                },
            },
            progress,
        }
    }

    /// A job of `queue` for `function_id`: attempt 1 of 4 (the default queue's budget), a
    /// fresh receipt id, enqueued now.
    pub fn job(queue: impl Into<String>, function_id: impl Into<String>) -> Self {
        let mut d = Self::call(function_id);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        d.ctx.message_receipt_id = Some(format!("test-receipt-{n}"));
        d.ctx.queue = Some(queue.into());
        d.ctx.max_attempts = 4;
        d.ctx.enqueued_at = Some(SystemTime::now());
        d
    }

    /// This attempt number (1-based).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.ctx.attempt = attempt;
        self
    }

    /// This many attempts in all (`max_retries + 1`).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.ctx.max_attempts = max_attempts;
        self
    }

    /// This receipt id.
    pub fn receipt(mut self, id: impl Into<String>) -> Self {
        self.ctx.message_receipt_id = Some(id.into());
        self
    }

    /// A topic subscriber's job: published to `topic` (the queue becomes
    /// `<topic>/<function_id>`).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        self.ctx.queue = Some(format!("{topic}/{}", self.ctx.function_id));
        self.ctx.topic = Some(topic);
        self
    }

    /// A FIFO job of this message group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.ctx.group = Some(group.into());
        self
    }

    /// The token the handler sees as `ctx.cancelled`: cancel it to play the engine giving up.
    pub fn cancel_token(&self) -> CancellationToken {
        self.ctx.cancelled.clone()
    }

    /// The progress reports the handler made through its context, oldest first.
    pub fn progress(&self) -> Vec<Progress> {
        self.progress.lock().clone()
    }

    /// The context to pass to a handler (every call gives the same one).
    pub fn context(&self) -> Context {
        self.ctx.clone()
    }
}

/// Runs `function` on `payload` with `ctx`, as a worker would run a delivery: the result as
/// the engine would pass it on, or the handler's failure as the engine would record it.
pub async fn invoke(function: &RegisterFunction, payload: impl Serialize, ctx: Context) -> Result<Value, HandlerError> {
    let bytes = to_wire(&payload).map_err(|e| HandlerError::new(format!("payload is not JSON: {e}")))?;
    let out = (function.handler)(bytes.into(), ctx).await?;
    decode_value(&out).map_err(|e| HandlerError::new(format!("the handler's result is not JSON: {e}")))
}

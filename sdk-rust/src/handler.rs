//! Functions a worker serves: [`RegisterFunction`], the delivery [`Context`] a handler
//! receives, and the [`HandlerError`] it returns.

use crate::json::{DecodeError, decode_value, value_bytes};
use crate::wire_serde::{FromWireError, from_wire, to_wire};
use futures::future::BoxFuture;
use prost::bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// What the engine says about one invocation. Built by the worker (or, in tests, by
/// [`crate::testing::Delivery`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Context {
    /// The engine's id of this invocation (one per attempt).
    pub invocation_id: String,
    /// The function invoked.
    pub function_id: String,
    /// 1-based attempt number (1 for direct calls).
    pub attempt: u32,
    /// `max_retries + 1` of the queue (1 for direct calls).
    pub max_attempts: u32,
    /// Queued jobs only: the id the producer got back.
    pub message_receipt_id: Option<String>,
    /// Queued jobs only.
    pub queue: Option<String>,
    /// FIFO jobs only: the message group.
    pub group: Option<String>,
    /// A topic subscriber's jobs only: the topic it was published to (its queue is
    /// `<topic>/<function_id>`).
    pub topic: Option<String>,
    /// Queued jobs only: when the producer enqueued it.
    pub enqueued_at: Option<SystemTime>,
    /// Cancelled when the engine gives up on this invocation (timeout, shutdown, or the job
    /// was cancelled with `CancelJob`). The handler should stop soon after; it is dropped 2 s
    /// later, and its result is not sent.
    pub cancelled: CancellationToken,
    /// Where [`Context::set_progress`] reports go (the worker's stream; a test's record).
    pub(crate) progress: Reporter,
}

/// A progress report: the number and the small JSON value a handler sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// A number the handler chose (e.g. percent done).
    pub value: Option<f64>,
    /// A small JSON value (e.g. the current step).
    pub detail: Option<Value>,
}

/// Sends a context's progress reports on.
#[derive(Clone)]
pub(crate) struct Reporter(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl Reporter {
    pub(crate) fn none() -> Self {
        Self(None)
    }

    pub(crate) fn to(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Reporter(on)" } else { "Reporter(off)" })
    }
}

impl Context {
    /// Reports this job's progress: a number (e.g. percent done) and/or a small JSON value
    /// (at most 4 KiB encoded). `GetJob` shows the latest report while the job runs; the
    /// engine writes one per 500 ms per job to its store, so reporting often is cheap. A
    /// direct (sync or void) call has no job: its reports go nowhere.
    pub fn set_progress(&self, value: Option<f64>, detail: Option<Value>) {
        if let Some(report) = &self.progress.0 {
            report(Progress { value, detail });
        }
    }
}

/// A handler's failure, reported to the engine (and shown in the DLQ).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandlerError {
    /// What went wrong, for people.
    pub message: String,
    /// A short machine-readable code, e.g. the error type.
    pub code: String,
    /// Where it went wrong: the error's causes or a backtrace; may be empty.
    pub stack: String,
    /// This will never succeed: the engine dead-letters the job at once, whatever retry
    /// budget is left ([`HandlerError::permanent`]).
    pub non_retryable: bool,
}

impl HandlerError {
    /// A failure with this message and the code `Error`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: "Error".into(), stack: String::new(), non_retryable: false }
    }

    /// A failure that retrying cannot fix (bad input, a refused card): the job goes straight
    /// to the dead-letter queue with this error. Code `NonRetryableError`.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { non_retryable: true, ..Self::new(message).with_code("NonRetryableError") }
    }

    /// The same failure with this code (what the DLQ and the logs show as `error_code`).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Every `std::error::Error` (`Send + Sync + 'static`) and every `anyhow::Error` converts, so
/// `?` works in handlers: the message is the error with its causes (`{:#}`: `loading
/// order: connection reset`), the code the error's type name (`Error` for an
/// `anyhow::Error`), the stack its debug form (causes, and a backtrace when captured).
///
/// (`HandlerError` itself does not implement `std::error::Error`: that would make this
/// impl overlap `From<T> for T`, as for `anyhow::Error`.)
impl<E: Into<anyhow::Error>> From<E> for HandlerError {
    fn from(e: E) -> Self {
        let full = std::any::type_name::<E>();
        let code = full.rsplit("::").next().unwrap_or(full).to_string();
        let e: anyhow::Error = e.into();
        Self { message: format!("{e:#}"), code, stack: format!("{e:?}"), non_retryable: false }
    }
}

/// What a worker runs for an invocation: the payload's `google.protobuf.Value` wire bytes
/// in, the result's out. [`RegisterFunction::new_async`] reads the bytes into JSON (bytes
/// that are not a `Value` fail the attempt with code `BadPayload`);
/// [`RegisterFunction::typed`] reads them straight into its input type.
pub(crate) type HandlerFn =
    Arc<dyn Fn(Bytes, Context) -> BoxFuture<'static, Result<Vec<u8>, HandlerError>> + Send + Sync>;

/// A function to register on a worker.
#[derive(Clone)]
pub struct RegisterFunction {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) handler: HandlerFn,
}

fn bad_payload(e: DecodeError) -> HandlerError {
    HandlerError::new(e.to_string()).with_code("BadPayload")
}

impl RegisterFunction {
    /// An async handler on raw JSON.
    pub fn new_async<F, Fut>(id: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Value, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Self::on_wire(id, move |payload, ctx| {
            let handler = handler.clone();
            async move {
                let payload = decode_value(&payload).map_err(bad_payload)?;
                let out = handler(payload, ctx).await?;
                Ok(value_bytes(&out))
            }
        })
    }

    /// An async handler on serde types: the payload is deserialized into `I` (a payload
    /// that does not fit fails the attempt with code `InvalidPayload`), the output is
    /// serialized from `O`. Both go straight between the wire bytes and the types, exactly
    /// as `serde_json::from_value` and `to_value` would have them (`crate::wire_serde`).
    pub fn typed<I, O, F, Fut>(id: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Self::on_wire(id, move |payload, ctx| {
            let handler = handler.clone();
            async move {
                let input: I = from_wire(&payload).map_err(|e| match e {
                    FromWireError::NotAValue(e) => bad_payload(e),
                    FromWireError::DoesNotFit(e) => {
                        HandlerError::new(format!("payload does not fit: {e}")).with_code("InvalidPayload")
                    }
                })?;
                let out = handler(input, ctx).await?;
                to_wire(&out).map_err(HandlerError::from)
            }
        })
    }

    fn on_wire<F, Fut>(id: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Bytes, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, HandlerError>> + Send + 'static,
    {
        Self { id: id.into(), description: String::new(), handler: Arc::new(move |p, c| Box::pin(handler(p, c))) }
    }

    /// A description the engine shows beside the function.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The function id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for RegisterFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterFunction").field("id", &self.id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn parse(text: &str) -> Result<u32, HandlerError> {
        Ok(text.parse::<u32>()?)
    }

    fn load(text: &str) -> anyhow::Result<u32> {
        let n = text.parse::<u32>().context("reading the order count")?;
        anyhow::ensure!(n > 0, "no orders");
        Ok(n)
    }

    fn handle(text: &str) -> Result<u32, HandlerError> {
        Ok(load(text)?)
    }

    #[test]
    fn question_mark_turns_a_std_error_into_a_handler_error_named_after_its_type() {
        let e = parse("x").unwrap_err();
        assert_eq!(e.code, "ParseIntError");
        assert_eq!(e.message, "invalid digit found in string");
    }

    #[test]
    fn question_mark_turns_an_anyhow_error_into_a_handler_error_with_its_causes() {
        let e = handle("x").unwrap_err();
        assert_eq!(e.code, "Error");
        assert_eq!(e.message, "reading the order count: invalid digit found in string");
        assert!(e.stack.contains("Caused by"), "{}", e.stack);
        assert_eq!(handle("0").unwrap_err().message, "no orders");
        assert_eq!(handle("3").unwrap(), 3);
    }
}

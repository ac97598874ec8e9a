//! The one mapping from failures to gRPC statuses.
//!
//! Invariant: every status the engine returns carries a stable reason, both as the first
//! word of its message (`QUEUE_NOT_FOUND: queue 'paymnet' is not defined (…)`, readable
//! in grpcurl) and as a `google.rpc.ErrorInfo` (domain `switchyard`) in its details, which
//! the SDKs turn into typed errors. Adding a variant forces a decision on its status code.

use crate::queue::JobError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every Switchyard error.
pub const DOMAIN: &str = "switchyard";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("queue '{queue}' is not defined (defined: {defined}){}", did_you_mean(suggestion))]
    QueueNotFound { queue: String, defined: String, suggestion: Option<String> },
    #[error("queue '{queue}' is fifo: payload field '{field}' names the message group, but {why}")]
    MissingGroupField { queue: String, field: String, why: String },
    #[error("no connected worker has registered function '{0}'")]
    FunctionNotFound(String),
    #[error("function '{function}' failed: {}", error.message)]
    FunctionFailed { function: String, error: JobError },
    #[error("function '{function}' did not answer within {timeout_ms} ms")]
    Timeout { function: String, timeout_ms: u64 },
    #[error("payload is {size} bytes; the limit is {max} bytes (max_payload_bytes)")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("payload nests deeper than {max} levels (limits.max_payload_depth)")]
    PayloadTooDeep { max: u32 },
    #[error("queue '{queue}' has {waiting} jobs waiting; the limit is {max} (max_ready): retry later")]
    QueueFull { queue: String, waiting: u64, max: u64 },
    #[error("{max} worker streams are open, the most this engine takes (limits.max_worker_streams)")]
    TooManyWorkerStreams { max: usize },
    #[error("this connection has {max} calls in flight, the most it may (limits.max_calls_per_connection)")]
    TooManyCalls { max: usize },
    #[error("topic '{topic}' is not defined (defined: {defined}){}", did_you_mean(suggestion))]
    TopicNotFound { topic: String, defined: String, suggestion: Option<String> },
    #[error("set delay_ms or not_before, not both")]
    ConflictingDelay,
    #[error("idempotency_key is {len} bytes; the limit is {max} bytes")]
    InvalidIdempotencyKey { len: usize, max: usize },
    #[error("priority {priority} is out of range: 0 (default, lowest) to {max} (highest)")]
    InvalidPriority { priority: u32, max: u8 },
    #[error("queue '{queue}' is fifo: its jobs run in group order, so they take no priority")]
    PriorityOnFifoQueue { queue: String },
    #[error(
        "queue '{queue}' has no job '{id}' (it never existed, or it completed or was cancelled and is no longer kept: see result_retention_ms)"
    )]
    JobNotFound { queue: String, id: String },
    #[error("no 'authorization: Bearer <token>' metadata: this engine requires a token")]
    TokenMissing,
    #[error("the bearer token is not one this engine knows")]
    TokenInvalid,
    #[error("{}", .0.message)]
    PermissionDenied(crate::auth::Denied),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unavailable(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default()
}

impl ApiError {
    /// `QUEUE_NOT_FOUND` for `queue`, listing the `defined` ones and suggesting the
    /// closest if one is clearly meant.
    pub fn queue_not_found(queue: &str, defined: &[&str]) -> Self {
        ApiError::QueueNotFound {
            queue: queue.to_string(),
            defined: defined.join(", "),
            suggestion: crate::suggest::closest(queue, defined.iter().copied()).map(str::to_string),
        }
    }

    /// `TOPIC_NOT_FOUND` for `topic`, like [`ApiError::queue_not_found`].
    pub fn topic_not_found(topic: &str, defined: &[&str]) -> Self {
        ApiError::TopicNotFound {
            topic: topic.to_string(),
            defined: if defined.is_empty() { "none".into() } else { defined.join(", ") },
            suggestion: crate::suggest::closest(topic, defined.iter().copied()).map(str::to_string),
        }
    }

    /// New work refused while the engine drains.
    pub fn shutting_down() -> Self {
        ApiError::Unavailable("the engine is shutting down".into())
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::QueueNotFound { .. } => "QUEUE_NOT_FOUND",
            ApiError::MissingGroupField { .. } => "MISSING_GROUP_FIELD",
            ApiError::FunctionNotFound(_) => "FUNCTION_NOT_FOUND",
            ApiError::FunctionFailed { .. } => "FUNCTION_FAILED",
            ApiError::Timeout { .. } => "TIMEOUT",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::PayloadTooDeep { .. } => "PAYLOAD_TOO_DEEP",
            ApiError::QueueFull { .. } => "QUEUE_FULL",
            ApiError::TooManyWorkerStreams { .. } => "TOO_MANY_WORKER_STREAMS",
            ApiError::TooManyCalls { .. } => "TOO_MANY_CALLS",
            ApiError::TopicNotFound { .. } => "TOPIC_NOT_FOUND",
            ApiError::ConflictingDelay => "CONFLICTING_DELAY",
            ApiError::InvalidIdempotencyKey { .. } => "INVALID_IDEMPOTENCY_KEY",
            ApiError::InvalidPriority { .. } => "INVALID_PRIORITY",
            ApiError::PriorityOnFifoQueue { .. } => "PRIORITY_ON_FIFO_QUEUE",
            ApiError::JobNotFound { .. } => "JOB_NOT_FOUND",
            ApiError::TokenMissing => "TOKEN_MISSING",
            ApiError::TokenInvalid => "TOKEN_INVALID",
            ApiError::PermissionDenied(_) => "PERMISSION_DENIED",
            ApiError::InvalidArgument(_) => "INVALID_ARGUMENT",
            ApiError::Unavailable(_) => "UNAVAILABLE",
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::QueueNotFound { .. }
            | ApiError::TopicNotFound { .. }
            | ApiError::FunctionNotFound(_)
            | ApiError::JobNotFound { .. } => Code::NotFound,
            ApiError::MissingGroupField { .. }
            | ApiError::InvalidPriority { .. }
            | ApiError::PriorityOnFifoQueue { .. }
            | ApiError::ConflictingDelay
            | ApiError::InvalidIdempotencyKey { .. }
            | ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::FunctionFailed { .. } => Code::Unknown,
            ApiError::Timeout { .. } => Code::DeadlineExceeded,
            ApiError::PayloadTooLarge { .. }
            | ApiError::PayloadTooDeep { .. }
            | ApiError::QueueFull { .. }
            | ApiError::TooManyWorkerStreams { .. }
            | ApiError::TooManyCalls { .. } => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::TokenMissing | ApiError::TokenInvalid => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            ApiError::QueueNotFound { queue, defined, suggestion } => {
                let mut pairs = vec![("queue", queue.clone()), ("defined", defined.clone())];
                pairs.extend(suggestion.clone().map(|s| ("suggestion", s)));
                pairs
            }
            ApiError::TopicNotFound { topic, defined, suggestion } => {
                let mut pairs = vec![("topic", topic.clone()), ("defined", defined.clone())];
                pairs.extend(suggestion.clone().map(|s| ("suggestion", s)));
                pairs
            }
            ApiError::InvalidIdempotencyKey { len, max } => vec![("length", len.to_string()), ("max", max.to_string())],
            ApiError::ConflictingDelay => vec![],
            ApiError::InvalidPriority { priority, max } => {
                vec![("priority", priority.to_string()), ("max", max.to_string())]
            }
            ApiError::PriorityOnFifoQueue { queue } => vec![("queue", queue.clone())],
            ApiError::JobNotFound { queue, id } => vec![("queue", queue.clone()), ("message_receipt_id", id.clone())],
            ApiError::MissingGroupField { queue, field, .. } => {
                vec![("queue", queue.clone()), ("field", field.clone())]
            }
            ApiError::FunctionNotFound(f) => vec![("function_id", f.clone())],
            ApiError::FunctionFailed { function, error } => vec![
                ("function_id", function.clone()),
                ("message", error.message.clone()),
                ("code", error.code.clone()),
                ("stack", error.stack.clone()),
            ],
            ApiError::Timeout { function, timeout_ms } => {
                vec![("function_id", function.clone()), ("timeout_ms", timeout_ms.to_string())]
            }
            ApiError::PayloadTooLarge { size, max } => {
                vec![("size", size.to_string()), ("max", max.to_string())]
            }
            ApiError::PayloadTooDeep { max } => vec![("max", max.to_string())],
            ApiError::QueueFull { queue, waiting, max } => {
                vec![("queue", queue.clone()), ("waiting", waiting.to_string()), ("max", max.to_string())]
            }
            ApiError::TooManyWorkerStreams { max } | ApiError::TooManyCalls { max } => vec![("max", max.to_string())],
            ApiError::PermissionDenied(d) => vec![("token", d.token.clone()), (d.what, d.value.clone())],
            ApiError::InvalidArgument(_)
            | ApiError::Unavailable(_)
            | ApiError::TokenMissing
            | ApiError::TokenInvalid => {
                vec![]
            }
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

impl ApiError {
    /// The same error as a `google.rpc.Status` message, for per-item results.
    pub fn to_rpc_status(&self) -> switchyard_proto::google::rpc::Status {
        use prost::Message;
        let info = switchyard_proto::google::rpc::ErrorInfo {
            reason: self.reason().to_string(),
            domain: DOMAIN.to_string(),
            metadata: self.metadata(),
        };
        switchyard_proto::google::rpc::Status {
            code: self.code() as i32,
            message: format!("{}: {self}", self.reason()),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: info.encode_to_vec(),
            }],
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let details = ErrorDetails::with_error_info(e.reason(), DOMAIN, e.metadata());
        Status::with_error_details(e.code(), format!("{}: {e}", e.reason()), details)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::BadCursor(c) => ApiError::InvalidArgument(format!("invalid page_token '{c}'")),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_message_starts_with_reason_and_details_carry_it() {
        let status: Status = ApiError::queue_not_found("orders", &["default", "email", "payment"]).into();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "QUEUE_NOT_FOUND: queue 'orders' is not defined (defined: default, email, payment)"
        );
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("QUEUE_NOT_FOUND", DOMAIN));
        assert_eq!(info.metadata["queue"], "orders");
        assert_eq!(info.metadata["defined"], "default, email, payment");
        assert!(!info.metadata.contains_key("suggestion"));
    }

    #[test]
    fn a_queue_name_close_to_a_defined_one_gets_did_you_mean() {
        let status: Status = ApiError::queue_not_found("paymnet", &["default", "email", "payment"]).into();
        assert_eq!(
            status.message(),
            "QUEUE_NOT_FOUND: queue 'paymnet' is not defined (defined: default, email, payment); did you mean 'payment'?"
        );
        assert_eq!(status.get_details_error_info().unwrap().metadata["suggestion"], "payment");
    }
}

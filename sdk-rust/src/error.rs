//! Typed errors. Every rejection from the engine carries a stable reason (see DESIGN §3),
//! read from the status' `google.rpc.ErrorInfo`, else from the message prefix.

use std::collections::HashMap;
use std::fmt;
use tonic_types::StatusExt;

/// The stable reason of an error: the engine's `google.rpc.ErrorInfo.reason`, or the SDK's
/// own for what it refuses before any call (`INVALID_URL`) or cannot reach (`UNAVAILABLE`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `QUEUE_NOT_FOUND`: the queue is not in `queue_configs` (details: `queue`, `defined`).
    QueueNotFound,
    /// `MISSING_GROUP_FIELD`: a fifo payload lacks its group field, or it is not a string or
    /// number (details: `queue`, `field`).
    MissingGroupField,
    /// `FUNCTION_NOT_FOUND`: a sync or void call to a function no worker serves.
    FunctionNotFound,
    /// `FUNCTION_FAILED`: a sync call whose handler failed (details: `message`, `code`, `stack`).
    FunctionFailed,
    /// `TIMEOUT`: a sync call not answered in time.
    Timeout,
    /// `PAYLOAD_TOO_LARGE`: a payload over the engine's `max_payload_bytes`.
    PayloadTooLarge,
    /// `TOPIC_NOT_FOUND`: a publish to a topic not in `topic_configs` (details: `topic`,
    /// `defined`).
    TopicNotFound,
    /// `CONFLICTING_DELAY`: an enqueue with both `delay_ms` and `not_before`.
    ConflictingDelay,
    /// `INVALID_IDEMPOTENCY_KEY`: an idempotency key over 256 bytes (details: `length`, `max`).
    InvalidIdempotencyKey,
    /// `INVALID_ARGUMENT`: an empty function id, a malformed request, a payload that is not JSON.
    InvalidArgument,
    /// `INVALID_URL`: the engine URL is not one the SDK supports (details: `url`); refused
    /// before any I/O.
    InvalidUrl,
    /// `UNAVAILABLE`: the engine cannot be reached (details: `url`, `cause`), its store failed,
    /// or it is shutting down.
    Unavailable,
    /// `TOKEN_MISSING`: the engine requires a token and none was sent (status
    /// UNAUTHENTICATED): set [`crate::InitOptions::token`] or `SWITCHYARD_TOKEN`.
    TokenMissing,
    /// `TOKEN_INVALID`: the token sent is not one the engine knows (status UNAUTHENTICATED).
    TokenInvalid,
    /// `PERMISSION_DENIED`: the token is known but may not do this (details: `token` and the
    /// `role`, `queue` or `function` refused).
    PermissionDenied,
    /// `JOB_NOT_FOUND`: `GetJob`/`CancelJob` of an id the queue does not have (any more)
    /// (details: `queue`, `message_receipt_id`).
    JobNotFound,
    /// `INVALID_PRIORITY`: an enqueue priority above 9 (details: `priority`, `max`).
    InvalidPriority,
    /// `PRIORITY_ON_FIFO_QUEUE`: an enqueue priority on a fifo queue (details: `queue`).
    PriorityOnFifoQueue,
    /// `JOB_DEAD`: [`crate::Queues::wait_for_result`] of a job that was dead-lettered
    /// (details: its last error's `message`, `code`).
    JobDead,
    /// `JOB_CANCELLED`: [`crate::Queues::wait_for_result`] of a cancelled job.
    JobCancelled,
    /// A reason this SDK version does not know, or a status without one.
    Other(String),
}

impl Reason {
    /// The reason named by `s` (as the engine spells it, `QUEUE_NOT_FOUND`).
    pub fn parse(s: &str) -> Self {
        match s {
            "QUEUE_NOT_FOUND" => Reason::QueueNotFound,
            "MISSING_GROUP_FIELD" => Reason::MissingGroupField,
            "FUNCTION_NOT_FOUND" => Reason::FunctionNotFound,
            "FUNCTION_FAILED" => Reason::FunctionFailed,
            "TIMEOUT" => Reason::Timeout,
            "PAYLOAD_TOO_LARGE" => Reason::PayloadTooLarge,
            "TOPIC_NOT_FOUND" => Reason::TopicNotFound,
            "CONFLICTING_DELAY" => Reason::ConflictingDelay,
            "INVALID_IDEMPOTENCY_KEY" => Reason::InvalidIdempotencyKey,
            "INVALID_ARGUMENT" => Reason::InvalidArgument,
            "INVALID_URL" => Reason::InvalidUrl,
            "UNAVAILABLE" => Reason::Unavailable,
            "TOKEN_MISSING" => Reason::TokenMissing,
            "TOKEN_INVALID" => Reason::TokenInvalid,
            "PERMISSION_DENIED" => Reason::PermissionDenied,
            "JOB_NOT_FOUND" => Reason::JobNotFound,
            "INVALID_PRIORITY" => Reason::InvalidPriority,
            "PRIORITY_ON_FIFO_QUEUE" => Reason::PriorityOnFifoQueue,
            "JOB_DEAD" => Reason::JobDead,
            "JOB_CANCELLED" => Reason::JobCancelled,
            other => Reason::Other(other.to_string()),
        }
    }

    /// The reason as the engine spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::QueueNotFound => "QUEUE_NOT_FOUND",
            Reason::MissingGroupField => "MISSING_GROUP_FIELD",
            Reason::FunctionNotFound => "FUNCTION_NOT_FOUND",
            Reason::FunctionFailed => "FUNCTION_FAILED",
            Reason::Timeout => "TIMEOUT",
            Reason::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Reason::TopicNotFound => "TOPIC_NOT_FOUND",
            Reason::ConflictingDelay => "CONFLICTING_DELAY",
            Reason::InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::InvalidUrl => "INVALID_URL",
            Reason::Unavailable => "UNAVAILABLE",
            Reason::TokenMissing => "TOKEN_MISSING",
            Reason::TokenInvalid => "TOKEN_INVALID",
            Reason::PermissionDenied => "PERMISSION_DENIED",
            Reason::JobNotFound => "JOB_NOT_FOUND",
            Reason::InvalidPriority => "INVALID_PRIORITY",
            Reason::PriorityOnFifoQueue => "PRIORITY_ON_FIFO_QUEUE",
            Reason::JobDead => "JOB_DEAD",
            Reason::JobCancelled => "JOB_CANCELLED",
            Reason::Other(s) => s,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the engine (or from reaching it).
///
/// `message` is the engine's status message verbatim, reason prefix included
/// (`QUEUE_NOT_FOUND: queue 'x' is not defined (defined: …)`); the SDK's own errors have the
/// same form (`INVALID_URL: …`, `UNAVAILABLE: cannot reach the Switchyard engine at …`).
#[derive(Clone, Debug)]
pub struct Error {
    /// The stable reason.
    pub reason: Reason,
    /// The status message, reason prefix included.
    pub message: String,
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The ErrorInfo metadata, e.g. `queue`, or `message`/`code`/`stack` for FUNCTION_FAILED.
    pub details: HashMap<String, String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    pub(crate) fn local(reason: Reason, message: impl Into<String>) -> Self {
        let code = match reason {
            Reason::InvalidArgument | Reason::InvalidUrl => tonic::Code::InvalidArgument,
            Reason::Timeout => tonic::Code::DeadlineExceeded,
            Reason::JobDead | Reason::JobCancelled => tonic::Code::FailedPrecondition,
            _ => tonic::Code::Unavailable,
        };
        Self { message: format!("{reason}: {}", message.into()), reason, code, details: HashMap::new() }
    }

    /// The engine refused the caller for its token: none sent or unknown (`TOKEN_MISSING`,
    /// `TOKEN_INVALID`; status UNAUTHENTICATED). The SDK's `Unauthenticated` kind.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self.reason, Reason::TokenMissing | Reason::TokenInvalid) || self.code == tonic::Code::Unauthenticated
    }

    /// The engine knows the token but it may not do this (`PERMISSION_DENIED`). The SDK's
    /// `PermissionDenied` kind.
    pub fn is_permission_denied(&self) -> bool {
        self.reason == Reason::PermissionDenied
    }

    /// For `FUNCTION_FAILED`: the handler's error as the worker reported it.
    pub fn function_error(&self) -> Option<crate::HandlerError> {
        (self.reason == Reason::FunctionFailed).then(|| crate::HandlerError {
            message: self.details.get("message").cloned().unwrap_or_default(),
            code: self.details.get("code").cloned().unwrap_or_default(),
            stack: self.details.get("stack").cloned().unwrap_or_default(),
            non_retryable: false,
        })
    }
}

impl Error {
    /// A per-item error of a batch: the same shape as a failed call's status.
    pub(crate) fn from_rpc_status(status: switchyard_proto::google::rpc::Status) -> Self {
        use prost::Message;
        let info = status
            .details
            .iter()
            .find(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
            .and_then(|d| switchyard_proto::google::rpc::ErrorInfo::decode(d.value.as_slice()).ok());
        let code = tonic::Code::from_i32(status.code);
        match info {
            Some(info) => {
                Self { reason: Reason::parse(&info.reason), message: status.message, code, details: info.metadata }
            }
            None => Error::from(tonic::Status::new(code, status.message)),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let (reason, details) = match status.get_details_error_info() {
            Some(info) if !info.reason.is_empty() => (Reason::parse(&info.reason), info.metadata),
            _ => {
                let prefix = status.message().split_once(": ").map(|(p, _)| p).unwrap_or("");
                let known = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                let reason = if known {
                    Reason::parse(prefix)
                } else if status.code() == tonic::Code::Unavailable {
                    Reason::Unavailable
                } else {
                    Reason::Other(format!("{:?}", status.code()))
                };
                (reason, HashMap::new())
            }
        };
        Self { reason, message: status.message().to_string(), code: status.code(), details }
    }
}

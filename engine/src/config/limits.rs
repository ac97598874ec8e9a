//! The engine's resource bounds (the `limits` block): what one misbehaving or dead client
//! may hold before it is refused or dropped, so it cannot starve the others.
//!
//! Each bound has a default meant for production and a typed answer when it is hit (see
//! `crate::limits` for where each is enforced).

/// The validated `limits` block, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open worker streams (`Engine.Connect`) per engine; the next one is refused with
    /// `TOO_MANY_WORKER_STREAMS`.
    pub max_worker_streams: usize,
    /// `Trigger` and `EnqueueBatch` calls in flight at once on one client connection; the
    /// next one is refused with `TOO_MANY_CALLS`.
    pub max_calls_per_connection: usize,
    /// `google.protobuf.Value` levels a payload may nest (at most
    /// [`switchyard_proto::value_wire::MAX_DEPTH`]); deeper is `PAYLOAD_TOO_DEEP`.
    pub max_payload_depth: u32,
    /// The engine pings every connection this often (HTTP/2 PING)…
    pub http2_keepalive_interval_ms: u64,
    /// …and closes one whose peer has not answered within this: a dead peer's worker
    /// stream ends and its jobs go back to their queues.
    pub http2_keepalive_timeout_ms: u64,
    /// A connection that has not sent the HTTP/2 preface within this is closed.
    pub handshake_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_worker_streams: 1024,
            max_calls_per_connection: 256,
            max_payload_depth: switchyard_proto::value_wire::MAX_DEPTH,
            http2_keepalive_interval_ms: 15_000,
            http2_keepalive_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// The default of a queue's `max_ready`: jobs waiting (ready or delayed) before enqueues to
/// it are refused with `QUEUE_FULL`.
pub const DEFAULT_MAX_READY: u64 = 5_000_000;

//! Resource bounds: what one client may hold of the engine, so that a misbehaving or dead
//! one is refused or dropped while every other client carries on.
//!
//! Invariant: each bound is counted where the resource is taken and released by a guard
//! (dropped on every path: answer, error, disconnect), so a refused or vanished client
//! never leaves a slot taken.
//!
//! The bounds (config: the `limits` block and each queue's `max_ready`):
//! 1. open worker streams per engine ([`slots::Slots`]) → `TOO_MANY_WORKER_STREAMS`;
//! 2. `Trigger`/`EnqueueBatch` calls in flight per client connection
//!    ([`slots::PerConnection`]) → `TOO_MANY_CALLS`;
//! 3. payload nesting depth (checked with the payload, `crate::wire`) → `PAYLOAD_TOO_DEEP`;
//! 4. jobs waiting in a queue ([`ready::ReadyGate`]) → `QUEUE_FULL`, backpressure to
//!    producers instead of unbounded memory;
//! 5. HTTP/2 keepalive (the server's PINGs): a peer that stops answering is dropped, which
//!    ends its worker stream and returns its jobs;
//! 6. a connection that sends no HTTP/2 preface in time is closed ([`incoming`]).
//!
//! Deliberately not done: no limit on connections as such (each costs a socket and, until
//! its preface or its keepalive fails, little else); the operating system's file limit is
//! that bound.

pub mod incoming;
pub mod rate;
pub mod ready;
pub mod slots;

use crate::config::Limits;

/// The engine's counters, one set per engine.
pub struct Guards {
    pub worker_streams: slots::Slots,
    pub calls: slots::PerConnection,
    pub ready: ready::ReadyGate,
}

impl Guards {
    pub fn new(limits: &Limits) -> Self {
        Self {
            worker_streams: slots::Slots::new(limits.max_worker_streams),
            calls: slots::PerConnection::new(limits.max_calls_per_connection),
            ready: ready::ReadyGate::default(),
        }
    }
}

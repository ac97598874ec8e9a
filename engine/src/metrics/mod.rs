//! Prometheus metrics: what this engine process did, and what its store holds.
//!
//! Invariant: recording costs a job atomic adds and nothing else — no allocation, and no
//! lock that another recorder could hold for writing. Every queue's counters exist from
//! start-up (the config fixes the queues) and are found by name in a map that never
//! changes; a (queue, function)'s histograms are created the first time the pair is seen
//! (one write lock, once) and are then found under a shared read lock.
//!
//! The protocol:
//! 1. [`Metrics::new`] at start-up, only when `metrics_listen` is set: with metrics off
//!    nothing is recorded at all.
//! 2. Events are counted where they happen: enqueues, redrives, discards and store errors
//!    by [`counted::Counted`] around the store; completions, retries, dead-letterings and
//!    the two timings by the dispatcher ([`Recorder`]).
//! 3. A scrape ([`http`]) reads the gauges — jobs per state, the oldest ready job, workers
//!    — from the store and the dispatcher at that moment, then encodes everything with
//!    `prometheus-client`'s Prometheus text encoder ([`exposition`]).
//!
//! Counters are per engine process and start at zero with it (Prometheus' `rate()` and
//! `increase()` handle the reset); a dashboard sums them over engines. Gauges come from the
//! store, so engines sharing one (Redis) all report the same value: take `max`, not `sum`.
//! Deliberately not done: no per-job labels or exemplars (a label per job id would be
//! unbounded), and times have the injected clock's resolution, one millisecond.

pub mod counted;
mod exposition;
pub mod http;

use crate::clock::Millis;
use crate::config::EngineConfig;
use crate::logging::jobs::Outcome;
use foldhash::HashMap;
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of both histograms' buckets: 1 ms to an hour.
pub const BUCKETS: [f64; 20] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

/// Everything this engine records.
pub struct Metrics {
    queues: HashMap<String, QueueMetrics>,
    store_errors: HashMap<&'static str, AtomicU64>,
    /// Publishes accepted per configured topic (`switchyard_topic_published_total`),
    /// counted also when the topic has no subscribers.
    topics: HashMap<String, AtomicU64>,
}

/// One queue's counters (events this engine saw) and its (function → timings).
#[derive(Default)]
pub struct QueueMetrics {
    pub enqueued: AtomicU64,
    pub completed: AtomicU64,
    /// Failed attempts: each retry and each dead-lettering.
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub redriven: AtomicU64,
    pub discarded: AtomicU64,
    /// Jobs cancelled: before a run (by `CancelJob` here), or in flight (the attempt
    /// stopped here).
    pub cancelled: AtomicU64,
    functions: RwLock<std::collections::BTreeMap<String, Arc<Timings>>>,
}

/// The two histograms of one (queue, function).
#[derive(Default)]
pub struct Timings {
    /// From a job's enqueue to the start of its first attempt.
    pub enqueue_to_start: Histogram,
    /// From an attempt's start (the invocation sent) to its end (result, timeout or the
    /// worker gone).
    pub attempt: Histogram,
}

/// A histogram of millisecond observations over [`BUCKETS`], in atomics.
pub struct Histogram {
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ms: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_ms: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn observe_ms(&self, ms: Millis) {
        let seconds = ms as f64 / 1000.0;
        let i = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts) as the encoder takes them (it sums
    /// the buckets up itself).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), b.load(Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (self.sum_ms.load(Relaxed) as f64 / 1000.0, count, buckets)
    }
}

/// The store operations whose failures are counted (`operation` label).
pub const STORE_OPERATIONS: [&str; 10] = [
    "enqueue",
    "lease",
    "finish",
    "next_due",
    "stats",
    "oldest_ready",
    "dead_letters",
    "redrive",
    "discard",
    "recover",
];

impl Metrics {
    pub fn new(config: &EngineConfig) -> Arc<Self> {
        Arc::new(Self {
            queues: config.queues.keys().map(|q| (q.clone(), QueueMetrics::default())).collect(),
            store_errors: STORE_OPERATIONS.iter().map(|op| (*op, AtomicU64::new(0))).collect(),
            topics: config.topics.keys().map(|t| (t.clone(), AtomicU64::new(0))).collect(),
        })
    }

    /// One accepted publish to a configured topic.
    pub fn published(&self, topic: &str) {
        if let Some(c) = self.topics.get(topic) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The counters of a configured queue.
    pub fn queue(&self, name: &str) -> Option<&QueueMetrics> {
        self.queues.get(name)
    }

    pub fn store_error(&self, operation: &'static str) {
        if let Some(c) = self.store_errors.get(operation) {
            c.fetch_add(1, Relaxed);
        }
    }
}

impl QueueMetrics {
    /// Runs `f` on the function's timings, creating them the first time.
    pub fn timings(&self, function: &str, f: impl FnOnce(&Timings)) {
        if let Some(t) = self.functions.read().get(function) {
            return f(t);
        }
        let t = self.functions.write().entry(function.to_string()).or_default().clone();
        f(&t)
    }
}

/// How the dispatcher records: a no-op when metrics are off.
#[derive(Clone, Default)]
pub struct Recorder(Option<Arc<Metrics>>);

impl Recorder {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Self(metrics)
    }

    fn queue(&self, queue: &str) -> Option<&QueueMetrics> {
        self.0.as_ref()?.queue(queue)
    }

    /// An attempt was sent to a worker at `now`; the first attempt's wait since enqueue
    /// goes in the histogram.
    pub fn started(&self, job: &crate::queue::Job, now: Millis) {
        if job.attempts != 1 {
            return;
        }
        if let Some(q) = self.queue(&job.queue) {
            q.timings(&job.function_id, |t| t.enqueue_to_start.observe_ms(now.saturating_sub(job.enqueued_at)));
        }
    }

    /// An attempt sent at `sent_at` (`None`: never sent) ended at `now` (answered, timed out,
    /// or its worker left).
    pub fn attempt_ended(&self, job: &crate::queue::Job, sent_at: Option<Millis>, now: Millis) {
        let Some(sent_at) = sent_at else { return };
        if let Some(q) = self.queue(&job.queue) {
            q.timings(&job.function_id, |t| t.attempt.observe_ms(now.saturating_sub(sent_at)));
        }
    }

    /// The store applied an attempt's end.
    pub fn ended(&self, queue: &str, ended: Outcome) {
        let Some(q) = self.queue(queue) else { return };
        let counters: &[&AtomicU64] = match ended {
            Outcome::Completed => &[&q.completed],
            Outcome::Retried => &[&q.retried, &q.failed],
            Outcome::DeadLettered => &[&q.dead_lettered, &q.failed],
            Outcome::Cancelled => &[&q.cancelled],
            Outcome::Released => &[],
        };
        for c in counters {
            c.fetch_add(1, Relaxed);
        }
    }
}

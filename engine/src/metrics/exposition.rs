//! One scrape: the gauges read at that moment beside the recorded counters and
//! histograms, encoded by `prometheus-client` in the Prometheus text format (0.0.4).
//!
//! Names follow the Prometheus conventions: base units (`_seconds`), counters end in
//! `_total` (the encoder appends it), labels `queue`, `function`, `operation`.

use super::{Histogram, Metrics, STORE_OPERATIONS};
use crate::store::QueueStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the store and the dispatcher said at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per queue: its gauges, and the age in seconds of its oldest ready job (0 if none).
    /// A queue whose store read failed is absent.
    pub queues: Vec<(String, QueueStats, f64)>,
    pub streams_open: usize,
    pub workers_connected: usize,
    pub functions_registered: usize,
}

/// Encodes `snapshot` and everything `metrics` recorded.
pub fn encode(metrics: Arc<Metrics>, snapshot: Snapshot) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition { metrics, snapshot }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

struct Exposition {
    metrics: Arc<Metrics>,
    snapshot: Snapshot,
}

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposition").field("snapshot", &self.snapshot).finish_non_exhaustive()
    }
}

type QueueCounter = fn(&super::QueueMetrics) -> &AtomicU64;

const QUEUE_COUNTERS: [(&str, &str, QueueCounter); 8] = [
    ("switchyard_jobs_enqueued", "Jobs enqueued through this engine.", |q| &q.enqueued),
    ("switchyard_jobs_completed", "Jobs whose attempt on this engine succeeded.", |q| &q.completed),
    ("switchyard_jobs_failed", "Failed attempts on this engine (each retry and each dead-lettering).", |q| &q.failed),
    ("switchyard_jobs_retried", "Retries scheduled by this engine (a job retried twice counts twice).", |q| &q.retried),
    ("switchyard_jobs_dead_lettered", "Jobs this engine moved to the dead-letter queue.", |q| &q.dead_lettered),
    ("switchyard_jobs_redriven", "Dead letters redriven through this engine.", |q| &q.redriven),
    ("switchyard_jobs_discarded", "Dead letters discarded through this engine.", |q| &q.discarded),
    ("switchyard_jobs_cancelled", "Jobs cancelled through this engine (before or during a run).", |q| &q.cancelled),
];

type QueueGauge = fn(&QueueStats) -> u64;
type TimingsHistogram = fn(&super::Timings) -> &Histogram;

const QUEUE_GAUGES: [(&str, &str, QueueGauge); 4] = [
    (
        "switchyard_jobs_ready",
        "Jobs due now, including FIFO jobs waiting behind their group's head (store-wide).",
        |s| s.ready,
    ),
    ("switchyard_jobs_delayed", "Retries scheduled for later (store-wide).", |s| s.delayed),
    ("switchyard_jobs_in_flight", "Jobs leased to a worker (store-wide).", |s| s.in_flight),
    ("switchyard_jobs_dead", "Jobs in the dead-letter queue (store-wide).", |s| s.dead),
];

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut queues: Vec<(&String, &super::QueueMetrics)> = self.metrics.queues.iter().collect();
        queues.sort_by(|a, b| a.0.cmp(b.0));
        let snap = &self.snapshot;

        for (name, help, gauge) in QUEUE_GAUGES {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (queue, stats, _) in &snap.queues {
                m.encode_family(&[("queue", queue.as_str())])?.encode_gauge(&gauge(stats))?;
            }
        }
        let help =
            "Seconds since the first enqueue of the queue's oldest ready job; 0 when none is ready (store-wide).";
        let mut m = enc.encode_descriptor("switchyard_oldest_ready_job_age_seconds", help, None, MetricType::Gauge)?;
        for (queue, _, age) in &snap.queues {
            m.encode_family(&[("queue", queue.as_str())])?.encode_gauge(age)?;
        }

        for (name, help, counter) in QUEUE_COUNTERS {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (queue, q) in &queues {
                let v = counter(q).load(Relaxed);
                m.encode_family(&[("queue", queue.as_str())])?.encode_counter::<NoLabelSet, u64, f64>(&v, None)?;
            }
        }

        let histograms: [(&str, &str, TimingsHistogram); 2] = [
            (
                "switchyard_job_enqueue_to_start_seconds",
                "From a job's enqueue to the start of its first attempt (1 ms resolution).",
                |t| &t.enqueue_to_start,
            ),
            (
                "switchyard_attempt_duration_seconds",
                "From an attempt's start to its result, timeout or the worker's disconnect (1 ms resolution).",
                |t| &t.attempt,
            ),
        ];
        for (name, help, histogram) in histograms {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (queue, q) in &queues {
                for (function, timings) in q.functions.read().iter() {
                    let (sum, count, buckets) = histogram(timings).snapshot();
                    let labels = [("queue", queue.as_str()), ("function", function.as_str())];
                    m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }

        let engine: [(&str, &str, usize); 3] = [
            ("switchyard_worker_streams_open", "Worker streams open on this engine.", snap.streams_open),
            ("switchyard_workers_connected", "Workers on this engine that have said hello.", snap.workers_connected),
            (
                "switchyard_functions_registered",
                "Distinct functions registered by this engine's workers.",
                snap.functions_registered,
            ),
        ];
        for (name, help, v) in engine {
            enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&(v as u64))?;
        }
        let help = "Store calls by this engine that failed, by operation.";
        let mut m = enc.encode_descriptor("switchyard_store_errors", help, None, MetricType::Counter)?;
        for op in STORE_OPERATIONS {
            let v = self.metrics.store_errors[op].load(Relaxed);
            m.encode_family(&[("operation", op)])?.encode_counter::<NoLabelSet, u64, f64>(&v, None)?;
        }
        if !self.metrics.topics.is_empty() {
            let help = "Publishes accepted per topic (also those to a topic without subscribers).";
            let mut m = enc.encode_descriptor("switchyard_topic_published", help, None, MetricType::Counter)?;
            let mut topics: Vec<_> = self.metrics.topics.iter().collect();
            topics.sort_by(|a, b| a.0.cmp(b.0));
            for (topic, v) in topics {
                let v = v.load(Relaxed);
                m.encode_family(&[("topic", topic.as_str())])?.encode_counter::<NoLabelSet, u64, f64>(&v, None)?;
            }
        }
        Ok(())
    }
}

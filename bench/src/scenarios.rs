//! The scenarios, each measured the way a user would: through the SDK, over gRPC.
//!
//! - `enqueue`: N jobs from P concurrent producers → acknowledged jobs/s.
//! - `e2e`: a no-op worker runs while N jobs are enqueued → completed jobs/s from the first
//!   enqueue to the last completion.
//! - `drain`: N jobs enqueued first, then the worker starts → completed jobs/s.
//! - `latency`: a fixed rate for a fixed time → enqueue-ack and enqueue-to-handler-start
//!   percentiles.
//! - `fifo`: G groups × J jobs → completed jobs/s, and whether order per group held.
//! - `memory`: N small jobs (`{"n": i}`, ~20 bytes encoded) queued with no worker → the
//!   engine's RSS.

use crate::engine::{FIFO_QUEUE, QUEUE};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchyard_sdk::{InitOptions, RegisterFunction, Worker};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Enqueue,
    E2e,
    Drain,
    Latency,
    Fifo,
    Memory,
}

#[derive(Clone, Debug)]
pub struct Params {
    pub jobs: u64,
    pub producers: usize,
    pub max_in_flight: u32,
    pub rate: u64,
    pub duration: Duration,
    pub groups: u64,
    pub jobs_per_group: u64,
    pub memory_jobs: u64,
    pub quiet: bool,
    /// Runtime threads of the engine and of this process, when set (else one per core).
    pub engine_threads: Option<usize>,
    pub client_threads: Option<usize>,
}

/// What one scenario measured (engine CPU and RSS are added by the caller).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub jobs: u64,
    pub seconds: f64,
    pub jobs_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_ms: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_held: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self { p50: ms(0.5), p99: ms(0.99), p999: ms(0.999) }
    }
}

/// ~100 bytes of JSON, like a small real job, typed the way a producer would write it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    order_id: String,
    customer: &'static str,
    amount: u64,
    currency: &'static str,
    note: &'static str,
}

fn payload(i: u64) -> Order {
    Order { order_id: format!("ord_{i:08}"), customer: "cus_4f9a2b", amount: 4200, currency: "EUR", note: "bench" }
}

/// A small job (~20 bytes encoded), for the memory scenario.
fn small_payload(i: u64) -> Value {
    json!({"n": i})
}

fn micros_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn bar(p: &Params, len: u64, what: &str) -> ProgressBar {
    if p.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {per_sec} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Counts completions and wakes the waiter when `target` is reached.
#[derive(Default)]
struct Completions {
    done: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Completions {
    fn tick(&self) -> u64 {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.target.load(Ordering::Relaxed) {
            self.reached.notify_one();
        }
        n
    }

    async fn wait(&self, target: u64, bar: &ProgressBar) {
        self.target.store(target, Ordering::Relaxed);
        loop {
            let n = self.done.load(Ordering::Relaxed);
            bar.set_position(n);
            if n >= target {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), self.reached.notified()).await;
        }
    }
}

async fn noop_worker(url: &str, p: &Params, function: &str, completions: Arc<Completions>) -> anyhow::Result<Worker> {
    let w = switchyard_sdk::register_worker(
        url,
        InitOptions { max_in_flight: p.max_in_flight, worker_name: "bench".into(), ..Default::default() },
    )
    .await?;
    w.register_function(RegisterFunction::new_async(function, move |_payload, _ctx| {
        completions.tick();
        async { Ok(Value::Null) }
    }));
    anyhow::ensure!(w.ready(Duration::from_secs(10)).await, "worker did not connect");
    Ok(w)
}

/// Enqueues `jobs` jobs from `producers` tasks; returns when all are acknowledged.
async fn produce<T: serde::Serialize + Send + 'static>(
    client: &Worker,
    p: &Params,
    jobs: u64,
    queue: &str,
    function: &str,
    bar: &ProgressBar,
    payload: fn(u64) -> T,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..p.producers {
        let (client, next, bar, queue, function) =
            (client.clone(), next.clone(), bar.clone(), queue.to_string(), function.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return Ok::<_, anyhow::Error>(());
                }
                client.enqueue(&queue, &function, payload(i)).await?;
                bar.inc(1);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub async fn run(url: &str, scenario: Scenario, p: &Params) -> anyhow::Result<Outcome> {
    let client = switchyard_sdk::register_worker(url, InitOptions::default()).await?;
    let outcome = match scenario {
        Scenario::Enqueue => {
            let bar = bar(p, p.jobs, "enqueue");
            let start = Instant::now();
            produce(&client, p, p.jobs, QUEUE, "bench::noop", &bar, payload).await?;
            bar.finish_and_clear();
            rate(p.jobs, start.elapsed())
        }
        Scenario::E2e => {
            let completions = Arc::new(Completions::default());
            let worker = noop_worker(url, p, "bench::noop", completions.clone()).await?;
            let bar = bar(p, p.jobs, "end-to-end");
            let start = Instant::now();
            let hidden = ProgressBar::hidden();
            let (produced, ()) = tokio::join!(
                produce(&client, p, p.jobs, QUEUE, "bench::noop", &hidden, payload),
                completions.wait(p.jobs, &bar)
            );
            produced?;
            let elapsed = start.elapsed();
            bar.finish_and_clear();
            worker.shutdown().await;
            rate(p.jobs, elapsed)
        }
        Scenario::Drain => {
            let bar = bar(p, p.jobs, "drain: backlog");
            produce(&client, p, p.jobs, QUEUE, "bench::noop", &bar, payload).await?;
            bar.finish_and_clear();
            let completions = Arc::new(Completions::default());
            let bar = self::bar(p, p.jobs, "drain: worker");
            let start = Instant::now();
            let worker = noop_worker(url, p, "bench::noop", completions.clone()).await?;
            completions.wait(p.jobs, &bar).await;
            let elapsed = start.elapsed();
            bar.finish_and_clear();
            worker.shutdown().await;
            rate(p.jobs, elapsed)
        }
        Scenario::Latency => latency(url, &client, p).await?,
        Scenario::Fifo => fifo(url, &client, p).await?,
        Scenario::Memory => {
            let bar = bar(p, p.memory_jobs, "memory: queue jobs");
            let start = Instant::now();
            produce(&client, p, p.memory_jobs, QUEUE, "bench::nobody", &bar, small_payload).await?;
            bar.finish_and_clear();
            rate(p.memory_jobs, start.elapsed())
        }
    };
    client.shutdown().await;
    Ok(outcome)
}

fn rate(jobs: u64, elapsed: Duration) -> Outcome {
    let seconds = elapsed.as_secs_f64();
    Outcome { jobs, seconds, jobs_per_sec: jobs as f64 / seconds.max(1e-9), ..Default::default() }
}

async fn latency(url: &str, client: &Worker, p: &Params) -> anyhow::Result<Outcome> {
    let starts = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let completions = Arc::new(Completions::default());
    let w = switchyard_sdk::register_worker(url, InitOptions { max_in_flight: p.max_in_flight, ..Default::default() })
        .await?;
    let (s, c) = (starts.clone(), completions.clone());
    w.register_function(RegisterFunction::new_async("bench::latency", move |payload: Value, _ctx| {
        let sent = payload["t"].as_u64().unwrap_or(0);
        let _ = s.lock().record(micros_now().saturating_sub(sent).max(1));
        c.tick();
        async { Ok(Value::Null) }
    }));
    anyhow::ensure!(w.ready(Duration::from_secs(10)).await, "worker did not connect");

    let total = p.rate * p.duration.as_secs().max(1);
    let acks = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let bar = bar(p, total, "latency");
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(total as usize);
    let start = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let (client, acks, bar) = (client.clone(), acks.clone(), bar.clone());
        sends.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut body = serde_json::to_value(payload(i))?;
            body["t"] = json!(micros_now());
            client.enqueue(QUEUE, "bench::latency", body).await?;
            let _ = acks.lock().record((t0.elapsed().as_micros() as u64).max(1));
            bar.inc(1);
            Ok::<_, anyhow::Error>(())
        }));
    }
    for s in sends {
        s.await??;
    }
    completions.wait(total, &ProgressBar::hidden()).await;
    bar.finish_and_clear();
    w.shutdown().await;
    let mut out = rate(total, start.elapsed());
    out.ack_ms = Some(Percentiles::of(&acks.lock()));
    out.start_ms = Some(Percentiles::of(&starts.lock()));
    Ok(out)
}

async fn fifo(url: &str, client: &Worker, p: &Params) -> anyhow::Result<Outcome> {
    let total = p.groups * p.jobs_per_group;
    let completions = Arc::new(Completions::default());
    let last_seen: Arc<Mutex<HashMap<u64, i64>>> = Arc::default();
    let violations = Arc::new(AtomicU64::new(0));
    let w = switchyard_sdk::register_worker(url, InitOptions { max_in_flight: p.max_in_flight, ..Default::default() })
        .await?;
    let (c, seen, bad) = (completions.clone(), last_seen.clone(), violations.clone());
    w.register_function(RegisterFunction::new_async("bench::fifo", move |payload: Value, _ctx| {
        let (g, seq) = (payload["g"].as_u64().unwrap_or(0), payload["seq"].as_i64().unwrap_or(0));
        let mut seen = seen.lock();
        let last = seen.entry(g).or_insert(-1);
        if seq != *last + 1 {
            bad.fetch_add(1, Ordering::Relaxed);
        }
        *last = seq;
        drop(seen);
        c.tick();
        async { Ok(Value::Null) }
    }));
    anyhow::ensure!(w.ready(Duration::from_secs(10)).await, "worker did not connect");
    let bar = bar(p, total, "fifo");
    let start = Instant::now();
    let producers = p.producers.min(p.groups as usize).max(1);
    let mut tasks = Vec::new();
    for k in 0..producers as u64 {
        let (client, per_group, groups) = (client.clone(), p.jobs_per_group, p.groups);
        tasks.push(tokio::spawn(async move {
            // Each producer owns some groups and enqueues each group's jobs in order,
            // interleaving its groups.
            let mine: Vec<u64> = (0..groups).filter(|g| g % producers as u64 == k).collect();
            for seq in 0..per_group {
                for g in &mine {
                    client.enqueue(FIFO_QUEUE, "bench::fifo", json!({"g": g, "seq": seq, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})).await?;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let (produced, ()) = tokio::join!(
        async {
            for t in tasks {
                t.await??;
            }
            Ok::<_, anyhow::Error>(())
        },
        completions.wait(total, &bar)
    );
    produced?;
    let mut out = rate(total, start.elapsed());
    bar.finish_and_clear();
    w.shutdown().await;
    out.order_held = Some(violations.load(Ordering::Relaxed) == 0);
    Ok(out)
}

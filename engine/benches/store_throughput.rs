//! Store throughput through the real gRPC API, in-memory vs file-based, in one run:
//!
//! 1. **enqueue** — 32 concurrent producers (one connection each) enqueue to a standard
//!    queue nobody serves; jobs/s of acknowledged enqueues (for `file_based`, each one
//!    committed with fsync).
//! 2. **end-to-end** — the same producers, plus one Rust SDK worker (`max_in_flight` 64,
//!    no-op handler, queue `concurrency` 64); jobs/s from the first enqueue until the last
//!    job completed.
//!
//! `cargo bench -p switchyard-engine --bench store_throughput` (release). `BENCH_JOBS`
//! sets the jobs per measurement (default 16000), `BENCH_ROUNDS` the rounds (default 3;
//! the medians are reported).

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard::{InitOptions, RegisterFunction};
use switchyard_engine::clock::SystemClock;
use switchyard_engine::config::EngineConfig;
use tokio::sync::{Notify, oneshot};

const PRODUCERS: usize = 32;

struct Engine {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(adapter_yaml: &str) -> Engine {
    let yaml = format!("queue_configs:\n  bench: {{concurrency: 64}}\n{adapter_yaml}");
    let config = EngineConfig::parse(&yaml).expect("bench config is valid");
    let store = switchyard_engine::store::open(&config.adapter).await.expect("store opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        switchyard_engine::server::serve(listener, Arc::new(config), store, Arc::new(SystemClock), shutdown)
            .await
            .expect("engine serves");
    });
    Engine { url, stop, task }
}

impl Engine {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn clients(url: &str) -> Vec<switchyard::Worker> {
    let mut out = Vec::new();
    for _ in 0..PRODUCERS {
        out.push(switchyard::register_worker(url, InitOptions::default()).await.unwrap());
    }
    out
}

/// Enqueues `jobs` for `function` from [`PRODUCERS`] concurrent clients; returns the time taken.
async fn produce(clients: &[switchyard::Worker], function: &str, jobs: usize) -> Duration {
    let started = Instant::now();
    let per = jobs / clients.len();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(p, c)| {
            let function = function.to_string();
            tokio::spawn(async move {
                for n in 0..per {
                    c.enqueue("bench", &function, json!({"producer": p, "n": n})).await.expect("enqueue");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

struct Figures {
    enqueue: f64,
    end_to_end: f64,
}

async fn measure(name: &str, adapter_yaml: &str, jobs: usize) -> Figures {
    let engine = start(adapter_yaml).await;
    let producers = clients(&engine.url).await;
    let jobs = jobs / PRODUCERS * PRODUCERS;

    // Warm-up (connections, page cache), then enqueue only: nobody serves the function.
    produce(&producers, "bench::nobody", PRODUCERS * 20).await;
    let took = produce(&producers, "bench::nobody", jobs).await;
    let enqueue = jobs as f64 / took.as_secs_f64();
    println!("{name:>11} enqueue     {jobs:>6} jobs in {:>6.2}s = {enqueue:>8.0} jobs/s", took.as_secs_f64());

    // End to end: a no-op worker completes every job.
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let worker = switchyard::register_worker(&engine.url, InitOptions { max_in_flight: 64, ..Default::default() })
        .await
        .unwrap();
    let (d, n) = (done.clone(), all_done.clone());
    worker.register_function(RegisterFunction::new_async("bench::noop", move |_p: Value, _ctx| {
        let (d, n) = (d.clone(), n.clone());
        async move {
            if d.fetch_add(1, Ordering::SeqCst) + 1 == jobs {
                n.notify_one();
            }
            Ok(Value::Null)
        }
    }));
    assert!(worker.ready(Duration::from_secs(20)).await, "worker connects");
    let started = Instant::now();
    let finished = all_done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    produce(&producers, "bench::noop", jobs).await;
    tokio::time::timeout(Duration::from_secs(300), finished).await.expect("every job completes");
    let took = started.elapsed();
    let end_to_end = jobs as f64 / took.as_secs_f64();
    println!("{name:>11} end-to-end  {jobs:>6} jobs in {:>6.2}s = {end_to_end:>8.0} jobs/s", took.as_secs_f64());

    worker.shutdown().await;
    for p in &producers {
        p.shutdown().await;
    }
    engine.stop().await;
    Figures { enqueue, end_to_end }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let jobs = env("BENCH_JOBS", 16_000);
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "store throughput: {PRODUCERS} producers, {jobs} jobs per measurement, {rounds} rounds, {cores} cores"
        );
        // Rounds alternate the stores, so a busy neighbour on a shared machine skews both alike;
        // the medians are the figures.
        let (mut memory, mut file) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            memory.push(measure("in_memory", "", jobs).await);
            let dir = tempfile::tempdir().unwrap();
            let adapter = format!(
                "adapter:\n  name: builtin\n  config: {{store_method: file_based, file_path: '{}'}}\n",
                dir.path().join("queue_store").display()
            );
            file.push(measure("file_based", &adapter, jobs).await);
        }
        let m = |fs: &[Figures], f: fn(&Figures) -> f64| median(fs.iter().map(f).collect());
        let (me, mx) = (m(&memory, |f| f.enqueue), m(&memory, |f| f.end_to_end));
        let (fe, fx) = (m(&file, |f| f.enqueue), m(&file, |f| f.end_to_end));
        println!("median      in_memory: enqueue {me:>8.0} jobs/s, end-to-end {mx:>8.0} jobs/s");
        println!("median     file_based: enqueue {fe:>8.0} jobs/s, end-to-end {fx:>8.0} jobs/s");
        println!("file_based / in_memory: enqueue {:.0}%, end-to-end {:.0}%", 100.0 * fe / me, 100.0 * fx / mx);
    });
}

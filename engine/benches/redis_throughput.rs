//! End-to-end throughput on Redis — one engine and two engines sharing one key prefix —
//! against `in_memory`, in one run, all through the real gRPC API:
//!
//! 32 concurrent producers (one connection each, spread evenly over the engines) enqueue to
//! a standard queue (`concurrency` 64 per engine) while one no-op Rust SDK worker per
//! engine (`max_in_flight` 64) completes the jobs; jobs/s from the first enqueue until the
//! last job completed, plus the rate of acknowledged enqueues during that time.
//!
//! `cargo bench -p switchyard-engine --bench redis_throughput` (release). Needs Redis at
//! `SWITCHYARD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`; `scripts/services.sh`
//! starts one); uses a fresh key prefix and deletes it afterwards. `BENCH_JOBS` changes the
//! jobs per measurement (default 16000). Engines, workers, producers and Redis share the
//! machine, so the two-engine figure shows the store's cost under contention, not scaling
//! across hosts.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard_engine::clock::SystemClock;
use switchyard_engine::config::EngineConfig;
use switchyard_sdk::{InitOptions, RegisterFunction};
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
    let store = switchyard_engine::store::open(&config.adapter).await.expect("store opens (is Redis running?)");
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

/// Enqueues `jobs` from the producers concurrently; returns the time taken.
async fn produce(clients: &[switchyard_sdk::Worker], jobs: usize) -> Duration {
    let started = Instant::now();
    let per = jobs / clients.len();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(p, c)| {
            tokio::spawn(async move {
                for n in 0..per {
                    c.enqueue("bench", "bench::noop", json!({"producer": p, "n": n})).await.expect("enqueue");
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

async fn measure(name: &str, adapter_yaml: &str, engines: usize, jobs: usize) -> Figures {
    let mut running = Vec::new();
    for _ in 0..engines {
        running.push(start(adapter_yaml).await);
    }
    let jobs = jobs / PRODUCERS * PRODUCERS;
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let mut workers = Vec::new();
    for e in &running {
        let w = switchyard_sdk::register_worker(&e.url, InitOptions { max_in_flight: 64, ..Default::default() })
            .await
            .unwrap();
        let (d, n) = (done.clone(), all_done.clone());
        w.register_function(RegisterFunction::new_async("bench::noop", move |_p: Value, _ctx| {
            let (d, n) = (d.clone(), n.clone());
            async move {
                if d.fetch_add(1, Ordering::SeqCst) + 1 == jobs {
                    n.notify_one();
                }
                Ok(Value::Null)
            }
        }));
        assert!(w.ready(Duration::from_secs(20)).await, "worker connects");
        workers.push(w);
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let url = &running[p % engines].url;
        producers.push(switchyard_sdk::register_worker(url, InitOptions::default()).await.unwrap());
    }

    // Warm-up (connections, scripts), not counted.
    let warm = PRODUCERS * 10;
    produce(&producers, warm).await;
    while done.load(Ordering::SeqCst) < warm {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(0, Ordering::SeqCst);

    let started = Instant::now();
    let finished = all_done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let enqueued_in = produce(&producers, jobs).await;
    tokio::time::timeout(Duration::from_secs(300), finished).await.expect("every job completes");
    let took = started.elapsed();
    let end_to_end = jobs as f64 / took.as_secs_f64();
    let enqueue = jobs as f64 / enqueued_in.as_secs_f64();
    println!(
        "{name:>16}  {jobs:>6} jobs in {:>6.2}s = {end_to_end:>7.0} jobs/s end-to-end  (enqueue acks {enqueue:>7.0}/s)",
        took.as_secs_f64()
    );

    for w in workers.iter().chain(&producers) {
        w.shutdown().await;
    }
    for e in running {
        let _ = e.stop.send(());
        let _ = e.task.await;
    }
    Figures { enqueue, end_to_end }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let jobs: usize = std::env::var("BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(16_000);
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("sybench-{}", uuid::Uuid::now_v7().simple());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("redis throughput: {PRODUCERS} producers, no-op worker per engine, {jobs} jobs per measurement, {cores} cores");
        let memory = measure("in_memory", "", 1, jobs).await;
        let adapter = format!("adapter:\n  name: redis\n  config: {{redis_url: '{url}', key_prefix: '{prefix}'}}\n");
        let one = measure("redis, 1 engine", &adapter, 1, jobs).await;
        let two = measure("redis, 2 engines", &adapter, 2, jobs).await;
        println!(
            "end-to-end vs in_memory: redis 1 engine {:.0}%, 2 engines {:.0}%; enqueue acks {:.0}% / {:.0}%",
            100.0 * one.end_to_end / memory.end_to_end,
            100.0 * two.end_to_end / memory.end_to_end,
            100.0 * one.enqueue / memory.enqueue,
            100.0 * two.enqueue / memory.enqueue,
        );
    });
    drop(runtime);
    if let Err(e) = switchyard_engine::store::redis::delete_all_keys(&url, &prefix) {
        eprintln!("could not delete the bench keys under {prefix}: {e}");
    }
}

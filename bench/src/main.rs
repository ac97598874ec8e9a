//! `switchyard-bench`: measures Switchyard the way users run it — a real engine process, the
//! Rust SDK over gRPC, producers and a no-op worker on the same machine — and prints a table
//! (or `--json`) with the engine's CPU time and peak RSS, and this process's CPU time, beside each figure.
//!
//! ```text
//! cargo run --release -p switchyard-bench -- --stores in-memory,file-based
//! cargo run --release -p switchyard-bench -- --repeat 5 --scenarios e2e   # median of 5 rounds
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod engine;
mod report;
mod scenarios;

use clap::Parser;
use engine::{EngineProcess, StoreKind, Variant};
use scenarios::{Params, Scenario};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "switchyard-bench", about = "Benchmark a Switchyard engine")]
struct Args {
    /// Stores to run each scenario on (each gets a fresh engine process).
    #[arg(long, value_delimiter = ',', default_values = ["in-memory", "file-based"])]
    stores: Vec<StoreKind>,
    /// Bench-queue variants to run on each store (`plain`, `retain`: result retention on,
    /// `rate-limit`: a rate limit far above the load); each is its own engine, in the same
    /// rounds, so the figures compare.
    #[arg(long, value_delimiter = ',', default_values = ["plain"])]
    variants: Vec<Variant>,
    /// Scenarios to run.
    #[arg(long, value_delimiter = ',', default_values = ["enqueue", "e2e", "drain", "latency", "fifo"])]
    scenarios: Vec<Scenario>,
    /// Jobs per throughput scenario.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    jobs: u64,
    /// Concurrent producers.
    #[arg(short, long, default_value_t = 32)]
    producers: usize,
    /// The worker's max_in_flight.
    #[arg(long, default_value_t = 256)]
    max_in_flight: u32,
    /// Latency scenario: jobs per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Latency scenario: seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// FIFO scenario: groups × jobs per group.
    #[arg(long, default_value_t = 100)]
    groups: u64,
    #[arg(long, default_value_t = 200)]
    jobs_per_group: u64,
    /// Memory scenario: jobs left queued.
    #[arg(long, default_value_t = 1_000_000)]
    memory_jobs: u64,
    /// The engine binary (default: `switchyard` next to this binary).
    #[arg(long)]
    engine_bin: Option<PathBuf>,
    /// Benchmark an engine that is already running instead (no CPU/RSS figures).
    #[arg(long)]
    url: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Runtime threads of the engine it starts (`TOKIO_WORKER_THREADS`; default: one per core).
    #[arg(long)]
    engine_threads: Option<usize>,
    /// Runtime threads of this process: producers, worker and SDK (default: one per core).
    #[arg(long)]
    client_threads: Option<usize>,
    /// Run every (store, scenario) this many times, in interleaved rounds (each store and
    /// scenario once per round, so all of them see the same noise), and report the median
    /// run (by jobs/s; by start p99 for latency), with every run's figure below it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.client_threads {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let params = Params {
        jobs: args.jobs,
        producers: args.producers,
        max_in_flight: args.max_in_flight,
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        groups: args.groups,
        jobs_per_group: args.jobs_per_group,
        memory_jobs: args.memory_jobs,
        quiet: args.json,
        engine_threads: args.engine_threads,
        client_threads: args.client_threads,
    };
    let bin = match args.engine_bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("switchyard"),
    };
    let mut runs: Vec<report::Row> = Vec::new();
    for _round in 0..args.repeat {
        if let Some(url) = &args.url {
            for &scenario in &args.scenarios {
                let client_before = engine::cpu_seconds("self");
                let outcome = scenarios::run(url, scenario, &params).await?;
                runs.push(report::Row {
                    store: "external".into(),
                    scenario,
                    outcome,
                    client_cpu_s: engine::cpu_seconds("self") - client_before,
                    engine_cpu_s: None,
                    engine_peak_rss_mib: None,
                    engine_threads: None,
                    client_threads: args.client_threads,
                    runs: Vec::new(),
                    runs_of: String::new(),
                });
            }
            continue;
        }
        for (store, variant) in args.stores.iter().flat_map(|s| args.variants.iter().map(move |v| (*s, *v))) {
            for &scenario in &args.scenarios {
                let engine = match EngineProcess::start(&bin, store, variant, args.engine_threads) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("skipping {} / {scenario:?}: {e:#}", store.name());
                        continue;
                    }
                };
                let cpu_before = engine.cpu_seconds();
                let client_before = engine::cpu_seconds("self");
                let outcome = scenarios::run(&engine.url, scenario, &params).await?;
                runs.push(report::Row {
                    store: format!("{}{}", store.name(), variant.suffix()),
                    scenario,
                    outcome,
                    client_cpu_s: engine::cpu_seconds("self") - client_before,
                    engine_cpu_s: Some(engine.cpu_seconds() - cpu_before),
                    engine_peak_rss_mib: Some(engine.peak_rss_mib()),
                    engine_threads: args.engine_threads,
                    client_threads: args.client_threads,
                    runs: Vec::new(),
                    runs_of: String::new(),
                });
            }
        }
    }
    let rows = report::medians(runs);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        report::table(&rows, &params);
    }
    Ok(())
}

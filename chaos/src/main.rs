//! `switchyard-chaos`: the chaos harness (see `run` for one run's protocol, `check` for what
//! is proven at the end, `plan` for what the seed decides).
//!
//! ```text
//! switchyard-chaos --store file-based --seconds 60          # a short run, seed drawn and printed
//! switchyard-chaos --store redis --minutes 30 --seed 7      # a long run, reproducing seed 7's plan
//! ```
//! Exits 1 when a check fails (or the queues never drained), printing the seed to rerun.

mod check;
mod events;
mod plan;
mod procs;
mod proxy;
mod run;
mod worker;

use clap::{Parser, Subcommand};
use run::mib;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "switchyard-chaos",
    about = "Seeded load with faults against real engines; then 0 lost, FIFO order, concurrency"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[arg(long, value_enum, default_value = "file-based")]
    store: run::StoreKind,
    /// The seed of the plan (faults, payloads, failures); drawn at random if absent.
    #[arg(long)]
    seed: Option<u64>,
    /// How long the load runs, in seconds (default 60).
    #[arg(long, conflicts_with = "minutes")]
    seconds: Option<u64>,
    /// How long the load runs, in minutes.
    #[arg(long)]
    minutes: Option<u64>,
    /// Enqueues per second, all producers together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// The share of attempts a handler fails.
    #[arg(long, default_value_t = 0.2)]
    fail_rate: f64,
    /// A handler works up to this many milliseconds.
    #[arg(long, default_value_t = 20)]
    work_ms: u64,
    /// Seconds between faults: drawn uniformly from MIN..=MAX.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [4, 9])]
    gap: Vec<u64>,
    /// Leave out faults whose kind contains this text (e.g. `engine` for a steady RSS figure).
    #[arg(long)]
    skip: Vec<String>,
    /// The engine binary (default: $SWITCHYARD_BIN, else `switchyard` beside this binary).
    #[arg(long)]
    engine_bin: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// A worker process (started by the harness).
    Worker(worker::WorkerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Worker(args)) = cli.command {
        return worker::run(args).await;
    }
    let seed = cli.seed.unwrap_or_else(rand::random);
    let duration = Duration::from_secs(cli.minutes.map_or(cli.seconds.unwrap_or(60), |m| m * 60));
    let store = cli.store;
    eprintln!(
        "chaos: store {store}, seed {seed}, load {duration:?} at {}/s (rerun: --store {store} --seed {seed})",
        cli.rate
    );
    let settings = run::Settings {
        store,
        seed,
        duration,
        rate: cli.rate,
        fail_rate: cli.fail_rate,
        work_ms: cli.work_ms,
        gap: (Duration::from_secs(cli.gap[0]), Duration::from_secs(cli.gap[1])),
        skip: cli.skip,
        engine_bin: run::engine_bin(cli.engine_bin)?,
    };
    let out = run::run(settings).await?;
    let r = &out.report;
    println!("chaos {store} seed {seed}: {:.0}s", out.elapsed.as_secs_f64());
    for (kind, n) in &out.faults {
        println!("  faults: {n} × {kind}");
    }
    println!("  receipts acknowledged: {} (completed {}, in the DLQ {})", r.acked, r.completed, r.dead_lettered);
    println!("  lost: {}", r.lost.len());
    println!(
        "  handler runs: {}; duplicates: {} receipts succeeded more than once ({} extra successes); {} stored jobs a failed enqueue left behind (sent again)",
        r.runs, r.duplicated_receipts, r.duplicate_successes, r.unacknowledged_stored
    );
    println!(
        "  FIFO order violations: {}; groups with overlapping runs: {}",
        r.order_violations.len(),
        r.group_overlaps.len()
    );
    for ((engine, queue), (most, limit)) in &r.concurrency {
        println!("  concurrency engine {engine} queue {queue}: at most {most} in flight (limit {limit})");
    }
    println!("  engine RSS: {} at start, {} peak, {} at end", mib(out.rss_start), mib(out.rss_peak), mib(out.rss_end));
    println!("  store at start: {}", out.store_start);
    println!("  store at end: {}", out.store_end);
    let problems: Vec<String> = r
        .lost
        .iter()
        .take(10)
        .map(|l| format!("lost receipt {l}"))
        .chain(r.order_violations.iter().take(10).cloned())
        .chain(r.group_overlaps.iter().take(10).cloned())
        .chain(r.concurrency_violations.iter().cloned())
        .chain((!out.drained).then(|| "the queues did not drain".to_string()))
        .collect();
    if problems.is_empty() && r.passed() {
        println!("chaos: PASS");
        Ok(())
    } else {
        for p in &problems {
            println!("  FAIL: {p}");
        }
        println!("chaos: FAIL (rerun: --store {store} --seed {seed})");
        std::process::exit(1);
    }
}

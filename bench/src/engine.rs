//! The engine under test: a child process started per (store, scenario) on a fresh config,
//! so each figure comes with that engine's own CPU time and peak RSS (from `/proc`).

use anyhow::{Context as _, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Which store the engine runs on. Every engine runs with `/metrics` and the console off,
/// except `in-memory-metrics`: the in-memory store with `/metrics` on, so that one run
/// shows what recording the metrics costs (nothing scrapes them meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    InMemory,
    InMemoryMetrics,
    FileBased,
    Redis,
    Rabbitmq,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::InMemory => "in_memory",
            StoreKind::InMemoryMetrics => "in_memory+metrics",
            StoreKind::FileBased => "file_based",
            StoreKind::Redis => "redis",
            StoreKind::Rabbitmq => "rabbitmq",
        }
    }
}

/// What the bench queue keeps on top of the plain config: each variant is one engine
/// process, beside the plain one in the same run, so their figures compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The queues as they are.
    Plain,
    /// `result_retention_ms` on: every completed job is kept with its result (10 minutes,
    /// longer than any run) — the cost of retention, memory included.
    Retain,
    /// A `rate_limit` far above the load (a million per second, burst 100,000): the cost
    /// of taking tokens on every lease.
    RateLimit,
}

impl Variant {
    /// The suffix of the store's name in the report (`in_memory+retain`).
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Plain => "",
            Variant::Retain => "+retain",
            Variant::RateLimit => "+rate_limit",
        }
    }

    /// The bench queue's extra fields.
    fn queue_fields(self) -> &'static str {
        match self {
            Variant::Plain => "",
            Variant::Retain => ", result_retention_ms: 600000",
            Variant::RateLimit => ", rate_limit: {per_second: 1000000, burst: 100000}",
        }
    }
}

pub const QUEUE: &str = "bench";
pub const FIFO_QUEUE: &str = "bench-fifo";

pub struct EngineProcess {
    child: Child,
    pub url: String,
    dir: PathBuf,
    /// The Redis URL and key prefix of a `redis` engine: its keys are deleted when it stops,
    /// so runs do not pile jobs up in a shared Redis.
    redis: Option<(String, String)>,
    /// The AMQP URL and key prefix of a `rabbitmq` engine: its queues are deleted when it stops.
    rabbitmq: Option<(String, String)>,
}

impl EngineProcess {
    /// Starts `bin` on `store` with the bench queue as `variant` says, with `threads`
    /// runtime threads if set.
    pub fn start(bin: &Path, store: StoreKind, variant: Variant, threads: Option<usize>) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("switchyard-bench-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir)?;
        let mut redis = None;
        let mut rabbitmq = None;
        let adapter = match store {
            StoreKind::InMemory | StoreKind::InMemoryMetrics => {
                "adapter: {name: builtin, config: {store_method: in_memory}}".to_string()
            }
            StoreKind::FileBased => format!(
                "adapter: {{name: builtin, config: {{store_method: file_based, file_path: {}}}}}",
                dir.join("store").display()
            ),
            StoreKind::Redis => {
                let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let prefix = format!("bench-{}", nanos());
                let adapter =
                    format!("adapter: {{name: redis, config: {{redis_url: \"{url}\", key_prefix: {prefix}}}}}");
                redis = Some((url, prefix));
                adapter
            }
            StoreKind::Rabbitmq => {
                let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
                let prefix = format!("bench-{}", nanos());
                let adapter =
                    format!("adapter: {{name: rabbitmq, config: {{amqp_url: \"{url}\", key_prefix: {prefix}}}}}");
                rabbitmq = Some((url, prefix));
                adapter
            }
        };
        let metrics = if store == StoreKind::InMemoryMetrics { "127.0.0.1:0" } else { "\"\"" };
        let config = format!(
            "metrics_listen: {metrics}\nconsole_listen: \"\"\nqueue_configs:\n  {QUEUE}: {{concurrency: 4096, max_retries: 3{}}}\n  {FIFO_QUEUE}: {{type: fifo, message_group_field: g, concurrency: 100}}\n{adapter}\n",
            variant.queue_fields()
        );
        let path = dir.join("iii-config.yaml");
        std::fs::write(&path, config)?;
        let mut command = Command::new(bin);
        if let Some(n) = threads {
            command.env("TOKIO_WORKER_THREADS", n.to_string());
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("switchyard listening on ") else {
            let _ = child.kill();
            bail!("engine on {} did not start (first line: {line:?})", store.name());
        };
        Ok(Self { url: format!("http://{addr}"), child, dir, redis, rabbitmq })
    }

    /// CPU seconds (user + system) the engine has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }

    /// Peak resident set size in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> f64 {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())) else { return 0.0 };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, prefix)) = &self.redis
            && let Err(e) = switchyard_engine::store::redis::delete_all_keys(url, prefix)
        {
            eprintln!("could not delete the bench's Redis keys under {prefix}: {e}");
        }
        if let Some((url, prefix)) = &self.rabbitmq {
            let queues = vec!["default".to_string(), QUEUE.to_string(), FIFO_QUEUE.to_string()];
            let deleted =
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                        Some(rt.block_on(switchyard_engine::store::rabbitmq::RabbitStore::delete_prefix(
                            url, prefix, &queues,
                        )))
                    })
                    .join()
                });
            if let Ok(Some(Err(e))) = deleted {
                eprintln!("could not delete the bench's RabbitMQ queues under {prefix}: {e}");
            }
        }
    }
}

/// CPU seconds (user + system) process `pid` (or `self`) has used so far; 0 if unknown.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

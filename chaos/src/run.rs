//! One chaos run: engines (and, on redis, a private `redis-server`; on rabbitmq, a private
//! RabbitMQ node), worker processes —
//! one of them behind a cuttable proxy — and in-process producers, a seeded fault schedule
//! played against them, then the drain and the checks.
//!
//! Invariant: the run is bounded — the load lasts `duration`, the drain at most
//! [`DRAIN_LIMIT`], each enqueue is retried for at most [`ENQUEUE_LIMIT`] — and every process
//! it started is killed when it returns.
//!
//! Protocol:
//! 1. Start the store's processes and the engines; write a config with a standard queue
//!    (`concurrency` [`STD_CONCURRENCY`]) and a FIFO queue ([`FIFO_CONCURRENCY`] groups),
//!    `max_retries` 3, so handler failures also reach the DLQ.
//! 2. Start the worker processes (three slots; the last through the proxy) and the
//!    producers. A producer paces its enqueues, records each acknowledged receipt once,
//!    and retries a failed enqueue with the same payload on the next engine.
//!    (`file_based`: one engine; `redis` and `rabbitmq`: two, sharing the store.)
//! 3. Play the faults at their offsets, recording when each worker's connection was severed.
//! 4. Stop the producers, wait until no queue holds a ready, delayed or leased job, kill the
//!    workers (so every line they wrote is read), list the DLQ, and check (`check`).

use crate::check::{Acked, Inputs, Report, check};
use crate::events::now_ns;
use crate::plan::{Fault, Shape, faults};
use crate::procs::{Engine, Rabbit, Recorder, Redis, WorkerProc, file_bytes, free_port, rss_bytes};
use crate::proxy::Proxy;
use crate::worker::{FIFO_FN, STANDARD_FN};
use anyhow::{Context as _, bail};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_sdk::{InitOptions, Worker};

pub const STD_CONCURRENCY: usize = 4;
pub const FIFO_CONCURRENCY: usize = 3;
const PRODUCERS: usize = 4;
const GROUPS_PER_PRODUCER: u64 = 4;
const DRAIN_LIMIT: Duration = Duration::from_secs(180);
const ENQUEUE_LIMIT: Duration = Duration::from_secs(60);
/// How long an engine gets to start (retries included).
const ENGINE_START_LIMIT: Duration = Duration::from_secs(30);
/// Queues count as drained once empty through every engine for this long.
const DRAINED_APART: Duration = Duration::from_millis(1500);
/// How long after a severing a worker may still start what its old connection delivered.
const SETTLE: Duration = Duration::from_millis(500);
/// The redis lease TTL the engines run with: a killed engine's jobs return after this.
const REDIS_LEASE_TTL_MS: u64 = 3000;
/// How often a run logs the engines' RSS and the store's size (a long run's growth curve).
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    FileBased,
    Redis,
    Rabbitmq,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::FileBased => "file-based",
            StoreKind::Redis => "redis",
            StoreKind::Rabbitmq => "rabbitmq",
        })
    }
}

pub struct Settings {
    pub store: StoreKind,
    pub seed: u64,
    pub duration: Duration,
    /// Enqueues per second, all producers together.
    pub rate: f64,
    pub fail_rate: f64,
    pub work_ms: u64,
    pub gap: (Duration, Duration),
    /// Fault kinds to leave out of the plan (e.g. engine kills, for an RSS figure).
    pub skip: Vec<String>,
    pub engine_bin: PathBuf,
}

/// What a run measured, beside the checks.
pub struct Outcome {
    pub report: Report,
    pub faults: BTreeMap<&'static str, usize>,
    pub drained: bool,
    pub elapsed: Duration,
    pub rss_start: u64,
    pub rss_peak: u64,
    pub rss_end: u64,
    pub store_start: StoreFigures,
    pub store_end: StoreFigures,
}

/// The store's size, by part (`file_based`: the SQLite file and its WAL; `redis`: its
/// `used_memory` and its AOF), in bytes.
pub struct StoreFigures(pub Vec<(&'static str, u64)>);

impl std::fmt::Display for StoreFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(what, b)| format!("{what} {}", mib(*b))).collect();
        f.write_str(&parts.join(", "))
    }
}

struct Slot {
    engine: usize,
    proxied: bool,
    proc: Option<WorkerProc>,
}

struct World {
    s: Settings,
    config: PathBuf,
    redis: Option<Redis>,
    rabbit: Option<Rabbit>,
    engines: Vec<Option<Engine>>,
    ports: Vec<u16>,
    proxy: Proxy,
    slots: Vec<Slot>,
    recorder: Arc<Recorder>,
    severed: HashMap<usize, Vec<u64>>,
    /// Last, so it is removed after every process above is dead (fields drop in order).
    dir: tempfile::TempDir,
}

pub async fn run(s: Settings) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut w = World::start(s).await?;
    let shape = Shape {
        engines: w.ports.len(),
        workers: w.slots.len(),
        redis: w.redis.is_some(),
        broker: w.rabbit.is_some(),
        load: w.s.duration,
        gap: w.s.gap,
        quiet: Duration::from_secs(3),
    };
    let plan: Vec<(Duration, Fault)> = faults(w.s.seed, &shape)
        .into_iter()
        .filter(|(_, f)| !w.s.skip.iter().any(|k| f.kind().contains(k.as_str())))
        .collect();
    eprintln!(
        "chaos: {} faults planned: {}",
        plan.len(),
        plan.iter().map(|(t, f)| format!("{:.1}s {f}", t.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );

    let clients = w.clients().await?;
    let acked: Arc<parking_lot::Mutex<Vec<Acked>>> = Default::default();
    let load_start = Instant::now();
    let load_end = load_start + w.s.duration;
    let rss_start = w.engine_rss();
    let store_start = w.store_bytes();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let pace = Duration::from_secs_f64(PRODUCERS as f64 / w.s.rate);
        producers.push(tokio::spawn(produce(p, pace, load_end, clients.clone(), acked.clone())));
    }

    eprintln!("chaos: at start: engine RSS {}, store {store_start}", mib(rss_start));
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut rss_peak = rss_start;
    let mut sampled = Instant::now();
    for (at, fault) in plan {
        while Instant::now() < load_start + at {
            rss_peak = rss_peak.max(w.engine_rss());
            if sampled.elapsed() >= SAMPLE_EVERY {
                sampled = Instant::now();
                eprintln!(
                    "chaos: {:.0}s: engine RSS {}, store {} ({} acknowledged so far)",
                    load_start.elapsed().as_secs_f64(),
                    mib(w.engine_rss()),
                    w.store_bytes(),
                    acked.lock().len()
                );
            }
            tokio::time::sleep((load_start + at - Instant::now()).min(Duration::from_secs(1))).await;
        }
        eprintln!(
            "chaos: {:.1}s: {fault} ({} acknowledged so far)",
            load_start.elapsed().as_secs_f64(),
            acked.lock().len()
        );
        w.inject(fault).await?;
        *counts.entry(fault.kind()).or_default() += 1;
    }
    for p in producers {
        p.await??;
    }
    eprintln!("chaos: load done, {} acknowledged; draining", acked.lock().len());

    let drained = wait_drained(&clients).await;
    rss_peak = rss_peak.max(w.engine_rss());
    let (rss_end, store_end) = (w.engine_rss(), w.store_bytes());
    let dead = dead_letters(&clients[0]).await?;
    for slot in &mut w.slots {
        if let Some(p) = slot.proc.take() {
            p.kill();
        }
    }
    let runs = w.recorder.runs();
    let acked = acked.lock().clone();
    let concurrency: HashMap<String, usize> =
        [("std".to_string(), STD_CONCURRENCY), ("fifo".to_string(), FIFO_CONCURRENCY)].into();
    let report = check(&Inputs {
        acked: &acked,
        runs: &runs,
        severed: &w.severed,
        dead_letters: &dead,
        concurrency: &concurrency,
        settle_ns: SETTLE.as_nanos() as u64,
    });
    for c in clients {
        c.shutdown().await;
    }
    for e in &mut w.engines {
        drop(e.take());
    }
    if let Some(node) = w.rabbit.take() {
        node.stop();
    }
    Ok(Outcome {
        report,
        faults: counts,
        drained,
        elapsed: started.elapsed(),
        rss_start,
        rss_peak,
        rss_end,
        store_start,
        store_end,
    })
}

impl World {
    async fn start(s: Settings) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("switchyard-chaos-").tempdir()?;
        let mut rabbit = None;
        let (redis, adapter, engines) = match s.store {
            StoreKind::FileBased => {
                let store = dir.path().join("store");
                (
                    None,
                    format!(
                        "{{name: builtin, config: {{store_method: file_based, file_path: '{}'}}}}",
                        store.display()
                    ),
                    1,
                )
            }
            StoreKind::Redis => {
                let rdir = dir.path().join("redis");
                std::fs::create_dir_all(&rdir)?;
                let redis = Redis::start(free_port(), &rdir)?;
                let adapter = format!("{{name: redis, config: {{redis_url: '{}', key_prefix: chaos}}}}", redis.url());
                (Some(redis), adapter, 2)
            }
            StoreKind::Rabbitmq => {
                let node = Rabbit::start(free_port(), free_port(), &dir.path().join("rabbitmq"))?;
                let adapter = format!("{{name: rabbitmq, config: {{amqp_url: '{}', key_prefix: chaos}}}}", node.url());
                rabbit = Some(node);
                (None, adapter, 2)
            }
        };
        let yaml = format!(
            "queue_configs:
  std: {{concurrency: {STD_CONCURRENCY}, max_retries: 3, backoff_ms: 20, timeout_ms: 120000}}
  fifo: {{type: fifo, message_group_field: group, concurrency: {FIFO_CONCURRENCY}, max_retries: 3, backoff_ms: 20, timeout_ms: 120000}}
adapter: {adapter}
"
        );
        let config = dir.path().join("iii-config.yaml");
        std::fs::write(&config, yaml)?;
        let ports: Vec<u16> = (0..engines).map(|_| free_port()).collect();
        let mut started = Vec::new();
        for (n, port) in ports.iter().enumerate() {
            started.push(Some(spawn_engine(
                &s.engine_bin,
                &config,
                *port,
                &dir.path().join(format!("engine-{n}.log")),
            )?));
        }
        let last = engines - 1;
        let proxy = Proxy::start(([127, 0, 0, 1], ports[last]).into()).await?;
        let slots = [(0, false), (last, false), (last, true)]
            .into_iter()
            .map(|(engine, proxied)| Slot { engine, proxied, proc: None })
            .collect();
        let mut w = World {
            s,
            dir,
            config,
            redis,
            rabbit,
            engines: started,
            ports,
            proxy,
            slots,
            recorder: Arc::new(Recorder::default()),
            severed: HashMap::new(),
        };
        for i in 0..w.slots.len() {
            w.start_worker(i)?;
        }
        Ok(w)
    }

    fn restart_engine(&mut self, n: usize) -> anyhow::Result<()> {
        let log = self.dir.path().join(format!("engine-{n}.log"));
        self.engines[n] = Some(spawn_engine(&self.s.engine_bin, &self.config, self.ports[n], &log)?);
        Ok(())
    }

    fn start_worker(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = &self.slots[i];
        let url = if slot.proxied {
            format!("http://{}", self.proxy.addr)
        } else {
            format!("http://127.0.0.1:{}", self.ports[slot.engine])
        };
        let args: Vec<String> = [
            "--url".into(),
            url,
            "--seed".into(),
            self.s.seed.to_string(),
            "--fail-rate".into(),
            self.s.fail_rate.to_string(),
            "--work-ms".into(),
            self.s.work_ms.to_string(),
            "--max-in-flight".into(),
            "8".into(),
        ]
        .into();
        let log = self.dir.path().join(format!("worker-{i}.log"));
        let p = WorkerProc::start(&args, i, slot.engine, self.recorder.clone(), &log)?;
        self.slots[i].proc = Some(p);
        Ok(())
    }

    /// An SDK client per engine (serving nothing), for the producers and the operator calls.
    async fn clients(&self) -> anyhow::Result<Vec<Worker>> {
        let mut out = Vec::new();
        for port in &self.ports {
            let options = InitOptions {
                reconnect_initial: Duration::from_millis(20),
                reconnect_max: Duration::from_millis(250),
                ..Default::default()
            };
            out.push(switchyard_sdk::register_worker(&format!("http://127.0.0.1:{port}"), options).await?);
        }
        Ok(out)
    }

    fn sever(&mut self, at: u64, which: impl Fn(&Slot) -> bool) {
        for (i, slot) in self.slots.iter().enumerate() {
            if which(slot) {
                self.severed.entry(i).or_default().push(at);
            }
        }
    }

    async fn inject(&mut self, fault: Fault) -> anyhow::Result<()> {
        match fault {
            Fault::EngineKill(n) => {
                self.sever(now_ns(), |s| s.engine == n);
                drop(self.engines[n].take()); // SIGKILL
                self.restart_engine(n)?;
            }
            Fault::RedisRestart => {
                let redis = self.redis.take().context("redis restart without redis")?;
                let (port, dir) = (redis.port, redis.dir.clone());
                drop(redis); // SIGKILL
                tokio::time::sleep(Duration::from_millis(300)).await; // an outage the engines notice
                self.redis = Some(Redis::start(port, &dir)?);
            }
            Fault::BrokerRestart => {
                let node = self.rabbit.take().context("broker restart without a broker")?;
                let (port, dist, dir) = (node.port, node.dist_port, node.dir.clone());
                drop(node); // SIGKILL of its process group
                self.rabbit = Some(Rabbit::start(port, dist, &dir)?);
            }
            Fault::WorkerKill(i) => {
                // mid-job: wait (bounded) until it runs something
                let deadline = Instant::now() + Duration::from_secs(5);
                while self.recorder.open_on(i) == 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                self.severed.entry(i).or_default().push(now_ns());
                if let Some(p) = self.slots[i].proc.take() {
                    p.kill();
                }
                self.start_worker(i)?;
            }
            Fault::StreamCut => {
                self.sever(now_ns(), |s| s.proxied);
                self.proxy.cut();
            }
        }
        Ok(())
    }

    fn engine_rss(&self) -> u64 {
        self.engines.iter().flatten().map(|e| rss_bytes(e.pid())).sum()
    }

    fn store_bytes(&self) -> StoreFigures {
        if let Some(node) = &self.rabbit {
            return StoreFigures(vec![("broker data dir", node.data_bytes())]);
        }
        match &self.redis {
            Some(r) => StoreFigures(vec![("used_memory", r.used_memory().unwrap_or(0)), ("AOF", r.aof_bytes())]),
            None => {
                let db = self.dir.path().join("store").join("switchyard.sqlite3");
                let wal = db.with_file_name("switchyard.sqlite3-wal");
                StoreFigures(vec![("SQLite file", file_bytes(&db)), ("WAL", file_bytes(&wal))])
            }
        }
    }
}

/// Starts an engine on `port`, retrying for up to [`ENGINE_START_LIMIT`]: after a kill the
/// port may linger, and after a broker restart the store may not open at once. A failure
/// carries the end of the engine's log (the run's directory is removed on return).
fn spawn_engine(bin: &Path, config: &Path, port: u16, log: &Path) -> anyhow::Result<Engine> {
    let env = [("SWITCHYARD_REDIS_LEASE_TTL_MS", REDIS_LEASE_TTL_MS.to_string())];
    let deadline = Instant::now() + ENGINE_START_LIMIT;
    let mut tries = 0;
    loop {
        tries += 1;
        match Engine::start(bin, config, port, &env, log) {
            Ok(e) => return Ok(e),
            Err(e) if Instant::now() > deadline => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!("{e} (after {tries} tries in {ENGINE_START_LIMIT:?}); its log ends:\n{}", tail.join("\n"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Producer `id`: one job per `pace` until `until`, alternating the standard queue and its
/// own FIFO groups (`p{id}-g{n}`, each `seq` counting from 0).
async fn produce(
    id: usize,
    pace: Duration,
    until: Instant,
    clients: Vec<Worker>,
    acked: Arc<parking_lot::Mutex<Vec<Acked>>>,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(pace);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_seq = [0u64; GROUPS_PER_PRODUCER as usize];
    let mut at = id % clients.len();
    for n in 0u64.. {
        ticks.tick().await;
        if Instant::now() >= until {
            return Ok(());
        }
        let job = format!("p{id}-{n}");
        let (queue, function, payload) = if n % 2 == 0 {
            ("std", STANDARD_FN, json!({"job": job, "seq": n}))
        } else {
            let g = (n / 2) % GROUPS_PER_PRODUCER;
            let seq = next_seq[g as usize];
            next_seq[g as usize] += 1;
            ("fifo", FIFO_FN, json!({"job": job, "group": format!("p{id}-g{g}"), "seq": seq}))
        };
        let deadline = Instant::now() + ENQUEUE_LIMIT;
        let receipt = loop {
            match clients[at].enqueue(queue, function, &payload).await {
                Ok(r) => break r,
                Err(_) if Instant::now() < deadline => {
                    at = (at + 1) % clients.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => bail!("producer {id} could not enqueue for {ENQUEUE_LIMIT:?}: {e}"),
            }
        };
        acked.lock().push(Acked { receipt: receipt.message_receipt_id });
    }
    Ok(())
}

/// Waits until, asked through every engine twice [`DRAINED_APART`] apart, no queue holds a
/// ready, delayed or leased job (an engine's figures for jobs another owns may lag: on
/// rabbitmq they are the owner's last announcement); false after [`DRAIN_LIMIT`].
async fn wait_drained(clients: &[Worker]) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut empty_since: Option<Instant> = None;
    while Instant::now() < deadline {
        let mut left = 0u64;
        for client in clients {
            match client.queues().list_queues().await {
                Ok(queues) => {
                    left += queues.iter().map(|q| q.stats.ready + q.stats.delayed + q.stats.in_flight).sum::<u64>()
                }
                Err(_) => left += 1,
            }
        }
        match (left, empty_since) {
            (0, Some(at)) if at.elapsed() >= DRAINED_APART => return true,
            (0, None) => empty_since = Some(Instant::now()),
            (0, Some(_)) => {}
            _ => empty_since = None,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn dead_letters(client: &Worker) -> anyhow::Result<HashSet<String>> {
    let mut out = HashSet::new();
    for queue in ["std", "fifo"] {
        let mut token: Option<String> = None;
        loop {
            let page = client.queues().list_dead_letters(queue, 1000, token.as_deref()).await?;
            out.extend(page.entries.into_iter().map(|d| d.message_receipt_id));
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The engine binary: `--engine-bin`, else `$SWITCHYARD_BIN`, else `switchyard` beside this
/// binary (the same `target/` profile directory).
pub fn engine_bin(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match arg.or_else(|| std::env::var_os("SWITCHYARD_BIN").map(PathBuf::from)) {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("switchyard"),
    };
    if !Path::new(&path).exists() {
        bail!(
            "engine binary {} not found: build it (cargo build -p switchyard-engine --bin switchyard) or pass --engine-bin",
            path.display()
        );
    }
    Ok(path)
}

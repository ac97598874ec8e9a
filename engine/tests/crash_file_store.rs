//! Crash safety of `builtin/file_based`, against the real binary: producers enqueue to a
//! standard and a FIFO queue while an SDK worker processes, and the engine is killed with
//! SIGKILL at three random moments and restarted on the same directory and port.
//!
//! What must hold once everything has drained:
//! - every receipt a producer received was processed at least once (acknowledged means
//!   durable);
//! - per FIFO group, the *first* processing of each sequence number happens in increasing
//!   order: a job may run again after a crash (at-least-once), but never before an earlier
//!   job of its group ran at least once.

mod support;

use rand::Rng;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ledger::{GROUPS_PER_PRODUCER, Ledger, Load, Route, fast_reconnect, serve};

const PRODUCERS: usize = 8;
const JOBS_PER_PRODUCER: usize = 400;
const KILLS: usize = 3;
const LOAD: Load = Load {
    standard: Route { queue: "std", function: "crash::std" },
    fifo: Route { queue: "fifo", function: "crash::fifo" },
    retry_pause: Duration::from_millis(20),
};

/// The engine binary, running; killed on drop so a failing test leaves nothing behind.
struct Engine {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Engine {
    fn start(config: &Path, port: u16, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("engine binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let want = format!("switchyard listening on 127.0.0.1:{port}");
        assert_eq!(line.trim(), want, "engine announces its address");
        Self { child, _stdout: stdout }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown path runs
        self.child.wait().unwrap();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path) -> PathBuf {
    let store = dir.join("queue_store");
    let yaml = format!(
        "queue_configs:
  std: {{type: standard, concurrency: 32, max_retries: 20, backoff_ms: 20}}
  fifo: {{type: fifo, message_group_field: group, concurrency: 32, max_retries: 20, backoff_ms: 20}}
adapter:
  name: builtin
  config: {{store_method: file_based, file_path: '{}'}}
",
        store.display()
    );
    let path = dir.join("iii-config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_survive_kill_9_and_fifo_order_holds() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let engine_log = dir.path().join("engine.log");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut engine = Engine::start(&config, port, &engine_log);

    let ledger = Arc::new(Ledger::default());
    let worker = switchyard_sdk::register_worker(&url, fast_reconnect(64)).await.unwrap();
    serve(&worker, 0, LOAD.standard.function, &ledger);
    serve(&worker, 0, LOAD.fifo.function, &ledger);
    assert!(worker.ready(Duration::from_secs(20)).await, "worker connects");

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let client = switchyard_sdk::register_worker(&url, fast_reconnect(64)).await.unwrap();
        producers.push(tokio::spawn(LOAD.produce(p, JOBS_PER_PRODUCER, vec![client], ledger.clone())));
    }

    // Kill points: a random number of acknowledged enqueues within each third of the run.
    let total = PRODUCERS * JOBS_PER_PRODUCER;
    let mut kill_points = Vec::new();
    for k in 0..KILLS {
        let lo = total * (4 * k + 1) / (4 * KILLS + 1);
        let hi = total * (4 * k + 3) / (4 * KILLS + 1);
        let at = rand::rng().random_range(lo..hi);
        let deadline = Instant::now() + Duration::from_secs(30);
        while ledger.acked() < at {
            assert!(Instant::now() < deadline, "producers stalled before kill point {k} ({at})");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let acked = ledger.acked();
        let processed = ledger.processed().len();
        engine.kill();
        kill_points.push((at, acked, processed));
        eprintln!("kill {}: after {acked} acknowledged enqueues, {processed} processings", k + 1);
        engine = Engine::start(&config, port, &engine_log);
    }

    for p in producers {
        p.await.unwrap();
    }
    assert_eq!(ledger.acked(), total);

    // Drain: every acknowledged receipt processed at least once.
    ledger
        .assert_all_processed(Duration::from_secs(60), || {
            let tail = std::fs::read_to_string(&engine_log).unwrap_or_default();
            format!("kill points {kill_points:?}\nengine log:\n{tail}")
        })
        .await;

    // FIFO: first processings per group in increasing seq order, and none skipped.
    let groups = ledger.assert_fifo_order(&format!("kill points {kill_points:?}"));
    assert_eq!(groups, PRODUCERS * GROUPS_PER_PRODUCER, "every group was processed");
    let processed = ledger.processed();
    let redelivered = processed.len() - processed.iter().map(|p| &p.receipt).collect::<HashSet<_>>().len();
    eprintln!(
        "{} jobs acknowledged, {} processings ({redelivered} repeats after crashes), kill points \
         (target, acked, processed) {kill_points:?}, {:.1}s",
        ledger.acked(),
        processed.len(),
        started.elapsed().as_secs_f64()
    );
    worker.shutdown().await;
    engine.kill();
    assert!(started.elapsed() < Duration::from_secs(120), "bounded: the test took {:?}", started.elapsed());
}

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

use rand::Rng;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard::{InitOptions, RegisterFunction};

const PRODUCERS: usize = 8;
const JOBS_PER_PRODUCER: usize = 400;
const GROUPS_PER_PRODUCER: usize = 3;
const KILLS: usize = 3;

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

/// One processing of a job, in the order handlers started.
#[derive(Clone, Debug)]
struct Processed {
    receipt: String,
    group: Option<String>,
    seq: u64,
}

#[derive(Default)]
struct Log {
    processed: parking_lot::Mutex<Vec<Processed>>,
    receipts: parking_lot::Mutex<Vec<String>>,
    acked: AtomicUsize,
}

async fn produce(url: String, producer: usize, log: Arc<Log>) {
    let client = switchyard::register_worker(&url, fast_reconnect()).await.unwrap();
    let mut next_seq = [0u64; GROUPS_PER_PRODUCER];
    for n in 0..JOBS_PER_PRODUCER {
        let (queue, function, payload) = if n % 2 == 0 {
            ("std", "crash::std", json!({"producer": producer, "seq": n}))
        } else {
            let g = (n / 2) % GROUPS_PER_PRODUCER;
            let seq = next_seq[g];
            next_seq[g] += 1;
            ("fifo", "crash::fifo", json!({"group": format!("p{producer}-g{g}"), "seq": seq}))
        };
        // An enqueue that fails (the engine is down) is retried with the same seq: if the
        // failed attempt was stored after all, that seq is simply processed twice.
        let deadline = Instant::now() + Duration::from_secs(30);
        let receipt = loop {
            match client.enqueue(queue, function, &payload).await {
                Ok(r) => break r,
                Err(e) => {
                    assert!(Instant::now() < deadline, "producer {producer} cannot enqueue: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        log.receipts.lock().push(receipt.message_receipt_id);
        log.acked.fetch_add(1, Ordering::SeqCst);
    }
}

fn fast_reconnect() -> InitOptions {
    InitOptions {
        max_in_flight: 64,
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..Default::default()
    }
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

    let log = Arc::new(Log::default());
    let worker = switchyard::register_worker(&url, fast_reconnect()).await.unwrap();
    for function in ["crash::std", "crash::fifo"] {
        let log = log.clone();
        worker.register_function(RegisterFunction::new_async(function, move |p: Value, ctx| {
            let log = log.clone();
            async move {
                log.processed.lock().push(Processed {
                    receipt: ctx.message_receipt_id.clone().unwrap_or_default(),
                    group: ctx.group.clone(),
                    seq: p["seq"].as_u64().unwrap(),
                });
                // A little work, so some jobs are in flight whenever the engine dies.
                let ms = rand::rng().random_range(0..3);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Value::Null)
            }
        }));
    }
    assert!(worker.ready(Duration::from_secs(20)).await, "worker connects");

    let producers: Vec<_> = (0..PRODUCERS).map(|p| tokio::spawn(produce(url.clone(), p, log.clone()))).collect();

    // Kill points: a random number of acknowledged enqueues within each third of the run.
    let total = PRODUCERS * JOBS_PER_PRODUCER;
    let mut kill_points = Vec::new();
    for k in 0..KILLS {
        let lo = total * (4 * k + 1) / (4 * KILLS + 1);
        let hi = total * (4 * k + 3) / (4 * KILLS + 1);
        let at = rand::rng().random_range(lo..hi);
        let deadline = Instant::now() + Duration::from_secs(30);
        while log.acked.load(Ordering::SeqCst) < at {
            assert!(Instant::now() < deadline, "producers stalled before kill point {k} ({at})");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let acked = log.acked.load(Ordering::SeqCst);
        let processed = log.processed.lock().len();
        engine.kill();
        kill_points.push((at, acked, processed));
        eprintln!("kill {}: after {acked} acknowledged enqueues, {processed} processings", k + 1);
        engine = Engine::start(&config, port, &engine_log);
    }

    for p in producers {
        p.await.unwrap();
    }
    let receipts: Vec<String> = log.receipts.lock().clone();
    assert_eq!(receipts.len(), total);

    // Drain: every acknowledged receipt processed at least once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = log.processed.lock().iter().map(|p| p.receipt.clone()).collect();
        let missing: Vec<&String> = receipts.iter().filter(|r| !seen.contains(*r)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(&engine_log).unwrap_or_default();
            panic!(
                "{} acknowledged jobs never processed (e.g. {:?}); kill points {kill_points:?}\nengine log:\n{tail}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // FIFO: first processings per group in increasing seq order, and none skipped.
    let processed = log.processed.lock().clone();
    let mut first_seen: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen_seq: HashSet<(String, u64)> = HashSet::new();
    for p in processed.iter().filter(|p| p.group.is_some()) {
        let g = p.group.clone().unwrap();
        if seen_seq.insert((g.clone(), p.seq)) {
            first_seen.entry(g).or_default().push(p.seq);
        }
    }
    assert_eq!(first_seen.len(), PRODUCERS * GROUPS_PER_PRODUCER, "every group was processed");
    for (g, seqs) in &first_seen {
        let want: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(seqs, &want, "group {g}: first processings out of order; kill points {kill_points:?}");
    }
    let redelivered = processed.len() - processed.iter().map(|p| &p.receipt).collect::<HashSet<_>>().len();
    eprintln!(
        "{} jobs acknowledged, {} processings ({redelivered} repeats after crashes), kill points \
         (target, acked, processed) {kill_points:?}, {:.1}s",
        receipts.len(),
        processed.len(),
        started.elapsed().as_secs_f64()
    );
    worker.shutdown().await;
    engine.kill();
    assert!(started.elapsed() < Duration::from_secs(120), "bounded: the test took {:?}", started.elapsed());
}

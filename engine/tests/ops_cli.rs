//! The operator commands end to end: the `switchyard` binary against a live engine —
//! tables, JSON, the dead-letter round trip, and the errors and exit codes scripts rely on.

mod support;

#[path = "support/process.rs"]
mod process;

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{TestEngine, eventually, recv};
use switchyard_sdk::{HandlerError, RegisterFunction};
use tokio::sync::mpsc;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `switchyard ARGS` (stdin not a terminal) off the runtime's threads.
async fn switchyard(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .env_remove("SWITCHYARD_ADDR")
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `switchyard ARGS --addr ENGINE`.
async fn ctl(engine: &TestEngine, args: &[&str]) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--addr".to_string(), engine.url.clone()]);
    switchyard(all).await
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

const CONFIG: &str = "queue_configs:\n  jobs: {max_retries: 0}\n  fifo: {type: fifo, message_group_field: k}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_and_workers_print_tables_and_json() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = engine.worker().await;
    worker.register_function(RegisterFunction::new_async("jobs::noop", |_p, _ctx| async { Ok(Value::Null) }));
    worker.register_function(RegisterFunction::new_async("jobs::other", |_p, _ctx| async { Ok(Value::Null) }));
    let queues = worker.queues();
    worker.enqueue("jobs", "jobs::noop", json!({})).await.unwrap();
    eventually("the job ran", || async { queues.stats("jobs").await.unwrap().completed == 1 }).await;

    let table = ctl(&engine, &["queues"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table.stdout.lines().next().unwrap();
    assert!(header.starts_with("QUEUE") && header.contains("DEAD_LETTERED"), "{}", table.stdout);
    let row = table.stdout.lines().find(|l| l.starts_with("jobs ")).expect("a row for jobs");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["jobs", "standard", "0", "0", "0", "0", "1", "1", "0", "0"], "{}", table.stdout);

    let listed = json_of(&ctl(&engine, &["queues", "--json"]).await);
    let fifo = listed.as_array().unwrap().iter().find(|q| q["name"] == "fifo").unwrap();
    assert_eq!(
        (fifo["config"]["type"].as_str(), fifo["config"]["messageGroupField"].as_str()),
        (Some("fifo"), Some("k"))
    );
    let jobs = listed.as_array().unwrap().iter().find(|q| q["name"] == "jobs").unwrap();
    assert_eq!(jobs["stats"]["completed"], 1);

    let workers = json_of(&ctl(&engine, &["workers", "--json"]).await);
    let [w] = workers.as_array().unwrap().as_slice() else { panic!("one worker: {workers}") };
    assert_eq!(w["functions"], json!(["jobs::noop", "jobs::other"]));
    assert!(w["workerId"].as_str().unwrap().starts_with('w') && w["maxInFlight"].as_u64().unwrap() > 0, "{w}");
    let table = ctl(&engine, &["workers"]).await;
    assert!(table.stdout.lines().nth(1).unwrap().ends_with("jobs::noop, jobs::other"), "{}", table.stdout);

    // Without --addr, the address is the config's `listen`.
    let config = process::temp_config(&format!("listen: {}\n", engine.addr()));
    let from_config = switchyard(vec!["queues".into(), "--config".into(), config.display().to_string()]).await;
    assert_eq!((from_config.code, from_config.stdout.clone()), (0, table_of(&engine).await), "{}", from_config.stderr);
    let _ = std::fs::remove_file(config);
    engine.stop().await;
}

async fn table_of(engine: &TestEngine) -> String {
    ctl(engine, &["queues"]).await.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_then_dead_letters_list_redrive_and_discard() {
    let engine = TestEngine::start(CONFIG).await;
    let worker = engine.worker().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let (tx, mut ran) = mpsc::unbounded_channel::<String>();
    let f = fixed.clone();
    worker.register_function(RegisterFunction::new_async("jobs::flaky", move |p, _ctx| {
        let (f, tx) = (f.clone(), tx.clone());
        async move {
            if !f.load(Ordering::SeqCst) {
                return Err(HandlerError::new("downstream refused"));
            }
            tx.send(p["name"].as_str().unwrap().to_string()).unwrap();
            Ok(Value::Null)
        }
    }));
    let queues = worker.queues();

    let a = ctl(&engine, &["enqueue", "jobs", "jobs::flaky", r#"{"name":"a"}"#]).await;
    assert_eq!(a.code, 0, "{}", a.stderr);
    let a_id = a.stdout.trim().to_string();
    let b = json_of(&ctl(&engine, &["enqueue", "jobs", "jobs::flaky", r#"{"name":"b"}"#, "--json"]).await);
    let b_id = b["messageReceiptId"].as_str().unwrap().to_string();
    eventually("both dead-lettered", || async { queues.stats("jobs").await.unwrap().dead == 2 }).await;

    let listed = json_of(&ctl(&engine, &["dlq", "list", "jobs", "--json"]).await);
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["messageReceiptId"], a_id.as_str());
    assert_eq!(entries[0]["payload"], json!({"name": "a"}));
    assert_eq!(
        (entries[0]["attempts"].as_u64(), entries[0]["lastError"]["message"].as_str()),
        (Some(1), Some("downstream refused"))
    );
    let limited = json_of(&ctl(&engine, &["dlq", "list", "jobs", "--limit", "1", "--json"]).await);
    assert_eq!(limited.as_array().unwrap().len(), 1);
    let table = ctl(&engine, &["dlq", "list", "jobs"]).await;
    assert!(table.stdout.lines().nth(1).unwrap().contains(&a_id), "{}", table.stdout);
    assert!(table.stdout.contains("downstream refused"), "{}", table.stdout);

    fixed.store(true, Ordering::SeqCst);
    let redriven = ctl(&engine, &["dlq", "redrive", "jobs", "--id", &a_id]).await;
    assert_eq!((redriven.code, redriven.stdout.as_str()), (0, "redriven 1 dead letter of queue 'jobs'\n"));
    assert_eq!(recv(&mut ran).await, "a", "the redriven job runs");

    // Discard asks first; without a terminal it needs --yes, and nothing is discarded.
    let refused = ctl(&engine, &["dlq", "discard", "jobs", "--id", &b_id]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(queues.stats("jobs").await.unwrap().dead, 1);
    let discarded = json_of(&ctl(&engine, &["dlq", "discard", "jobs", "--id", &b_id, "--yes", "--json"]).await);
    assert_eq!(discarded, json!({"count": 1}));
    assert_eq!(queues.stats("jobs").await.unwrap().dead, 0);
    assert_eq!(ctl(&engine, &["dlq", "list", "jobs"]).await.stdout, "no dead letters\n");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_their_reason_with_stable_exit_codes() {
    let engine = TestEngine::start(CONFIG).await;

    let missing = ctl(&engine, &["dlq", "list", "nope"]).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.starts_with("error: QUEUE_NOT_FOUND: queue 'nope' is not defined"), "{}", missing.stderr);
    let as_json = json_of(&ctl(&engine, &["dlq", "redrive", "nope", "--json"]).await);
    assert_eq!(as_json["error"]["reason"], "QUEUE_NOT_FOUND");

    let group = ctl(&engine, &["enqueue", "fifo", "f", r#"{"other":1}"#]).await;
    assert_eq!(group.code, 1);
    assert!(group.stderr.starts_with("error: MISSING_GROUP_FIELD: "), "{}", group.stderr);

    let not_json = ctl(&engine, &["enqueue", "jobs", "f", "{oops"]).await;
    assert_eq!(not_json.code, 2);
    assert!(not_json.stderr.contains("PAYLOAD_JSON is not JSON"), "{}", not_json.stderr);

    let no_ids = ctl(&engine, &["dlq", "discard", "jobs"]).await;
    assert_eq!(no_ids.code, 2, "discard names its ids or says --all: {}", no_ids.stderr);

    // A port nobody listens on: the listener is bound then dropped, so the port is free.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = switchyard(vec!["queues".into(), "--addr".into(), free.to_string()]).await;
    assert_eq!(unreachable.code, 3);
    assert!(
        unreachable.stderr.starts_with(&format!("error: cannot connect to http://{free}")),
        "{}",
        unreachable.stderr
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_takes_a_delay_and_an_idempotency_key_and_publish_fans_out() {
    let engine = TestEngine::start(
        "queue_configs:\n  jobs: {}\ntopic_configs:\n  orders.placed:\n    subscribers: [billing::charge, emails::receipt]\n",
    )
    .await;
    let delayed = ctl(&engine, &["enqueue", "jobs", "f", "{}", "--delay-ms", "600000"]).await;
    assert_eq!(delayed.code, 0, "{}", delayed.stderr);
    let keyed = ["enqueue", "jobs", "f", "{}", "--idempotency-key", "k1", "--json"];
    let first = json_of(&ctl(&engine, &keyed).await);
    let again = json_of(&ctl(&engine, &keyed).await);
    assert_eq!(again["messageReceiptId"], first["messageReceiptId"]);
    assert_eq!((first.get("duplicate"), &again["duplicate"]), (None, &Value::Bool(true)));
    let stats = engine.client().await.queues().stats("jobs").await.unwrap();
    assert_eq!((stats.delayed, stats.ready), (1, 1));

    let published = ctl(&engine, &["publish", "orders.placed", r#"{"orderId":"ord_1"}"#]).await;
    assert_eq!(published.code, 0, "{}", published.stderr);
    let lines: Vec<&str> = published.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", published.stdout);
    assert!(
        lines[0].starts_with("orders.placed/billing::charge ")
            && lines[1].starts_with("orders.placed/emails::receipt ")
    );
    let unknown = ctl(&engine, &["publish", "orders.shipped", "{}"]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.starts_with("error: TOPIC_NOT_FOUND: "), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_get_and_cancel_follow_one_job_by_its_receipt() {
    let engine = TestEngine::start(CONFIG).await;
    let enqueued =
        ctl(&engine, &["enqueue", "jobs", "jobs::later", r#"{"n":1}"#, "--delay-ms", "600000", "--priority", "7"])
            .await;
    assert_eq!(enqueued.code, 0, "{}", enqueued.stderr);
    let id = enqueued.stdout.trim().to_string();
    let got = ctl(&engine, &["job", "get", "jobs", &id, "--json"]).await;
    assert_eq!(got.code, 0, "{}", got.stderr);
    let job = json_of(&got);
    assert_eq!(
        (job["state"].as_str(), job["priority"].as_u64(), job["payload"].clone()),
        (Some("delayed"), Some(7), json!({"n": 1}))
    );
    let table = ctl(&engine, &["job", "get", "jobs", &id]).await;
    assert!(table.stdout.lines().any(|l| l.starts_with("state") && l.ends_with("delayed")), "{}", table.stdout);
    let cancelled = ctl(&engine, &["job", "cancel", "jobs", &id, "--json"]).await;
    assert_eq!(json_of(&cancelled)["outcome"], "cancelled", "{}", cancelled.stdout);
    let again = ctl(&engine, &["job", "cancel", "jobs", &id]).await;
    assert!(
        again.stdout.lines().any(|l| l.starts_with("outcome") && l.ends_with("already_cancelled")),
        "{}",
        again.stdout
    );
    let unknown = ctl(&engine, &["job", "get", "jobs", "nope"]).await;
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("JOB_NOT_FOUND: "), "{}", unknown.stderr);
    let bad = ctl(&engine, &["enqueue", "fifo", "f", r#"{"k":"a"}"#, "--priority", "1"]).await;
    assert!(bad.stderr.contains("PRIORITY_ON_FIFO_QUEUE: "), "{}", bad.stderr);
    engine.stop().await;
}

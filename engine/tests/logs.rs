//! What the engine binary writes to stderr: no terminal escape codes off a terminal, one
//! JSON object per line with `log_format: json`, and one line per job event with stable
//! field names — never the payload.

#[path = "support/process.rs"]
mod process;
mod support;

use process::{LoggedEngine, temp_config};
use serde_json::{Value, json};
use support::{WAIT, eventually};
use switchyard_sdk::{HandlerError, InitOptions, RegisterFunction};

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Every line of `log` as a JSON object; panics naming the first line that is not one.
fn json_lines(log: &[u8]) -> Vec<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(log).expect("logs are UTF-8");
    assert!(!text.trim().is_empty(), "the engine logged something");
    text.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {line:?} ({other:?})"),
        })
        .collect()
}

async fn worker(url: &str) -> switchyard_sdk::Worker {
    let w = switchyard_sdk::register_worker(url, InitOptions::default()).await.unwrap();
    assert!(w.ready(WAIT).await, "worker connects");
    w
}

#[tokio::test]
async fn text_logs_written_to_a_file_carry_no_escape_codes() {
    let dir = scratch();
    let config = temp_config("queue_configs:\n  email: {max_retries: 0}\n");
    // Debug, so that job events and every level's label are written too.
    let engine = LoggedEngine::start(&config, dir.path(), &[("SWITCHYARD_LOG", "debug")]);
    let w = worker(&engine.url()).await;
    w.register_function(RegisterFunction::new_async("emails::send", |_p, _ctx| async {
        Err::<Value, _>(HandlerError::new("smtp 451").with_code("SmtpError"))
    }));
    w.enqueue("email", "emails::send", json!({"to": "a@example.com"})).await.unwrap();
    let queues = w.queues();
    eventually("dead-lettered", || async { queues.stats("email").await.unwrap().dead == 1 }).await;
    w.shutdown().await;
    let log = engine.stop();
    let text = String::from_utf8_lossy(&log);
    for expected in ["INFO", "WARN", "DEBUG", "serving", "worker connected", "job dead-lettered", "stopped"] {
        assert!(text.contains(expected), "{expected:?} is logged:\n{text}");
    }
    assert!(!log.contains(&0x1b), "no escape byte in a log file:\n{text}");
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn json_logs_parse_line_by_line_and_name_the_dead_lettered_job() {
    let dir = scratch();
    let config = temp_config("log_format: json\nqueue_configs:\n  payments: {max_retries: 1, backoff_ms: 10}\n");
    let engine = LoggedEngine::start(&config, dir.path(), &[("SWITCHYARD_LOG", "debug")]);
    let w = worker(&engine.url()).await;
    w.register_function(RegisterFunction::new_async("payments::charge", |_p, _ctx| async {
        Err::<Value, _>(HandlerError::new("card declined for secret-in-the-message").with_code("CardDeclined"))
    }));
    let receipt = w.enqueue("payments", "payments::charge", json!({"card": "secret-in-the-payload"})).await.unwrap();
    let id = receipt.message_receipt_id.clone();
    let queues = w.queues();
    eventually("dead-lettered", || async { queues.stats("payments").await.unwrap().dead == 1 }).await;
    w.shutdown().await;
    let log = engine.stop();

    let lines = json_lines(&log);
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.contains_key(key), "{key} in {line:?}");
        }
    }
    let events: Vec<_> = lines.iter().filter(|l| l.get("message_receipt_id") == Some(&json!(id))).collect();
    let outcomes: Vec<&str> = events.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["enqueued", "started", "retried", "started", "dead_lettered"], "{events:#?}");
    for event in &events {
        assert_eq!(
            (event["queue"].as_str(), event["function_id"].as_str()),
            (Some("payments"), Some("payments::charge"))
        );
        assert_eq!(event["target"], "switchyard::job");
    }
    let dead = events.last().unwrap();
    assert_eq!(dead["level"], "WARN");
    assert_eq!(dead["error_code"], "CardDeclined");
    assert_eq!(dead["attempt"], 2);
    assert!(dead["duration_ms"].is_u64(), "{dead:?}");
    assert_eq!(events[2]["error_code"], "CardDeclined");
    assert!(lines.iter().any(|l| l["message"] == "worker connected" && l["level"] == "INFO"));
    let text = String::from_utf8_lossy(&log);
    assert!(!text.contains("secret-in-the-payload"), "the payload is never logged");
    assert!(!text.contains("secret-in-the-message"), "nor the worker's error message");
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn the_log_format_variable_overrides_the_config() {
    let dir = scratch();
    let config = temp_config("log_format: text\n");
    let engine = LoggedEngine::start(&config, dir.path(), &[("SWITCHYARD_LOG_FORMAT", "json")]);
    let lines = json_lines(&engine.stop());
    assert!(lines.iter().any(|l| l["message"] == "serving"), "{lines:?}");
    let _ = std::fs::remove_file(config);
}

#[test]
fn an_unknown_log_format_refuses_the_start_naming_where_it_came_from() {
    let config = temp_config("log_format: yaml\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("log_format: expected 'text' or 'json', got 'yaml' (line 1)"), "{err}");
    let _ = std::fs::remove_file(&config);

    let config = temp_config("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("SWITCHYARD_LOG_FORMAT", "logfmt")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SWITCHYARD_LOG_FORMAT: expected 'text' or 'json', got 'logfmt'"), "{err}");
    let _ = std::fs::remove_file(&config);
}

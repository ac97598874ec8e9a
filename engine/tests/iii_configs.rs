//! iii configs load unchanged. Every fixture under `fixtures/iii/` goes through
//! `check-config`, whose output must be the fixture's `.expected` (warnings with path and
//! line, then the effective queues), and each fixture on a builtin store is served: the
//! queues the running engine reports (`ListQueues`) and the warnings on its stderr must be
//! the same.

#[path = "support/process.rs"]
mod process;
mod support;

use process::{LoggedEngine, SUBSTITUTED};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::WAIT;
use switchyard_engine::config::EngineConfig;
use switchyard_sdk::InitOptions;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/iii")
}

/// Every `NAME.yaml` in the fixtures, sorted.
fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(format!("{name}.expected")))
        .unwrap_or_else(|e| panic!("{name}.expected: {e}"))
}

/// `switchyard check-config NAME.yaml` in the fixtures directory, without the variables
/// the fixtures substitute (their defaults apply).
fn check_config(name: &str) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(["check-config", &format!("{name}.yaml")]).current_dir(fixtures());
    for var in SUBSTITUTED {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

/// The lines of an expected output that are warnings, and those that are queues.
fn warnings_and_queues(output: &str) -> (Vec<String>, Vec<String>) {
    let warnings = output.lines().filter_map(|l| l.strip_prefix("warning: ")).map(str::to_string).collect();
    let queues = output.lines().filter(|l| l.starts_with("  ")).map(str::to_string).collect();
    (warnings, queues)
}

#[test]
fn there_are_fixtures_of_every_iii_shape() {
    let names = names();
    for shape in [
        "v0_10_modules",
        "v0_10_production",
        "v0_10_rabbitmq",
        "v0_11_workers",
        "queue_worker",
        "queue_worker_seed",
        "modules_by_name",
    ] {
        assert!(names.iter().any(|n| n == shape), "fixture {shape}.yaml");
    }
}

#[test]
fn iii_fixtures_load_to_their_expected_queues_and_warnings() {
    for name in names() {
        let text = std::fs::read_to_string(fixtures().join(format!("{name}.yaml"))).unwrap();
        let config = EngineConfig::parse_with_env(&text, |_| None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let warnings: Vec<String> = config.warnings.clone();
        let queues: Vec<String> = config.queues.iter().map(|(n, q)| format!("  {n}: {}", q.describe())).collect();
        assert_eq!((warnings, queues), warnings_and_queues(&expected(&name)), "{name}");
    }
}

#[test]
fn iii_fixtures_through_check_config_print_their_expected_output() {
    for name in names() {
        let (code, out) = check_config(&name);
        assert_eq!((code, out.as_str()), (0, expected(&name).as_str()), "{name}");
    }
}

#[tokio::test]
async fn iii_fixtures_on_a_builtin_store_serve_their_expected_queues_and_log_their_warnings() {
    let mut served = 0;
    for name in names() {
        let expected = expected(&name);
        if !expected.lines().any(|l| l.contains(": ok — ") && l.contains("adapter builtin/")) {
            continue; // redis and rabbitmq are shared services: checked above, not served
        }
        let dir = tempfile::tempdir().unwrap();
        let engine = LoggedEngine::start(&fixtures().join(format!("{name}.yaml")), dir.path(), &[]);
        let client = switchyard_sdk::register_worker(&engine.url(), InitOptions::default()).await.unwrap();
        assert!(client.ready(WAIT).await, "{name}: client connects");
        let queues: Vec<String> = client
            .queues()
            .list_queues()
            .await
            .unwrap()
            .into_iter()
            .map(|q| {
                let c = q.config;
                let group = if c.message_group_field.is_empty() {
                    String::new()
                } else {
                    format!(" message_group_field={}", c.message_group_field)
                };
                format!(
                    "  {}: type={} max_retries={} backoff_ms={} concurrency={} timeout_ms={}{group}",
                    q.name,
                    c.r#type,
                    c.max_retries.unwrap_or_default(),
                    c.backoff_ms,
                    c.concurrency,
                    c.timeout_ms
                )
            })
            .collect();
        client.shutdown().await;
        let log = String::from_utf8(engine.stop()).unwrap();
        let (warnings, expected_queues) = warnings_and_queues(&expected);
        assert_eq!(queues, expected_queues, "{name}");
        for w in &warnings {
            assert!(log.lines().any(|l| l.contains(" WARN ") && l.ends_with(w.as_str())), "{name}: {w:?} in\n{log}");
        }
        served += 1;
    }
    assert!(served >= 5, "the builtin fixtures were served ({served})");
}

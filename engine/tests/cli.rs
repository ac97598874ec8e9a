//! The `switchyard` command: `check-config` and a refused start list every problem.

#[path = "support/process.rs"]
mod process;

use std::process::Command;

fn switchyard(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

const BAD: &str = "\
queue_configs:
  payment:
    type: fifo
    concurrency: 0
adapter:
  name: kafka
";

#[test]
fn check_config_prints_every_problem_and_fails() {
    let path = process::temp_config(BAD);
    let (code, out) = switchyard(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("3 problems"), "{out}");
    assert!(out.contains("queue_configs.payment.message_group_field: required when type is fifo (line 3)"), "{out}");
    assert!(out.contains("queue_configs.payment.concurrency: must be at least 1 (line 4)"), "{out}");
    assert!(out.contains("adapter.name: unknown adapter 'kafka'"), "{out}");
}

#[test]
fn serve_refuses_a_bad_config_with_every_problem() {
    let path = process::temp_config(BAD);
    let (code, out) = switchyard(&["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("refusing to start") && out.contains("3 problems"), "{out}");
}

#[test]
fn check_config_prints_the_effective_queues_of_the_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/iii-config.yaml");
    let (code, out) = switchyard(&["check-config", example]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("payment: type=fifo max_retries=10 backoff_ms=1000 concurrency=2"), "{out}");
    assert!(out.contains("email: type=standard max_retries=8 backoff_ms=2000 concurrency=5"), "{out}");
}

#[test]
fn a_missing_explicit_config_is_an_error() {
    let (code, out) = switchyard(&["serve", "--config", "/nonexistent/iii-config.yaml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot read file"), "{out}");
}

#[test]
fn listen_takes_a_host_name() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", "/dev/null", "--listen", "localhost:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("switchyard listening on 127.0.0.1:"), "{line:?}");
}

#[test]
fn a_bad_listen_address_names_where_it_came_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", "/dev/null"])
        .env("SWITCHYARD_LISTEN", "127.0.0.1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SWITCHYARD_LISTEN: expected IP:PORT or HOST:PORT (e.g. 127.0.0.1:49134), got '127.0.0.1'"),
        "{err}"
    );
    let (code, out) = switchyard(&["serve", "--config", "/dev/null", "--listen", "no-such-host.invalid:1"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--listen: expected IP:PORT or HOST:PORT"), "{out}");
}

#[test]
fn dev_certs_writes_six_files_and_check_config_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let (code, text) = switchyard(&["dev-certs", "--out", out.to_str().unwrap(), "--host", "engine.internal"]);
    assert_eq!(code, 0, "{text}");
    for f in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"] {
        assert!(out.join(f).exists(), "{f}: {text}");
    }
    let secret = dir.path().join("token");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let o = out.display();
    let yaml = format!(
        "listen: 0.0.0.0:0\ntls:\n  cert_file: {o}/server.pem\n  key_file: {o}/server-key.pem\n  client_ca_file: {o}/ca.pem\nauth:\n  tokens:\n    - name: ops\n      secret_file: {}\n      roles: [admin]\n",
        secret.display()
    );
    let path = process::temp_config(&yaml);
    let (code, text) = switchyard(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("token ops: roles=admin queues=* functions=*"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn auth_on_a_public_address_without_tls_refuses_to_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "s3cret").unwrap();
    let auth =
        format!("auth:\n  tokens:\n    - name: ops\n      secret_file: {}\n      roles: [admin]\n", secret.display());
    let path = process::temp_config(&format!("listen: 0.0.0.0:0\n{auth}"));
    let (code, text) = switchyard(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("set allow_plaintext: true"), "{text}");
    let (code, text) = switchyard(&["serve", "--config", path.to_str().unwrap(), "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("refusing to start") && text.contains("no tls block"), "{text}");
    let allowed = process::temp_config(&format!("listen: 0.0.0.0:0\nallow_plaintext: true\n{auth}"));
    let (code, text) = switchyard(&["check-config", allowed.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning: listening on 0.0.0.0:0 without TLS"), "{text}");
}

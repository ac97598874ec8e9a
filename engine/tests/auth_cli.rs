//! The operator CLI against an engine with TLS and tokens (issue 16): `--token` and
//! `--ca-file` for an `https://` address.

#[path = "support/in_process.rs"]
mod in_process;

use in_process::InProcessEngine;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "admin-secret-0123456789";

fn switchyard(args: &[String]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("SWITCHYARD_TOKEN")
        .env_remove("SWITCHYARD_CA_FILE")
        .output()
        .expect("switchyard runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_operator_cli_takes_a_token_and_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    switchyard_engine::tls::dev_certs::write(&certs, &[]).unwrap();
    let secret = dir.path().join("admin.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let c = certs.display();
    let yaml = format!(
        "queue_configs:\n  orders: {{}}\n  orders-eu: {{}}\n  payments: {{}}\ntls:\n  cert_file: {c}/server.pem\n  key_file: {c}/server-key.pem\nauth:\n  tokens:\n    - name: orders-admin\n      secret_file: {}\n      roles: [admin]\n      queues: [\"orders*\"]\n",
        secret.display()
    );
    let engine = InProcessEngine::start(&yaml).await;
    let addr = engine.https();

    let ca = certs.join("ca.pem").display().to_string();
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["queues".into(), "--json".into(), "--addr".into(), addr.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || switchyard(&args))
    };
    let (code, out) = run(&["--ca-file", &ca, "--token", SECRET]).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"orders-eu\"") && !out.contains("\"payments\""), "{out}");
    let (code, out) = run(&["--ca-file", &ca]).await.unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TOKEN_MISSING"), "{out}");
    let (code, out) = run(&["--token", SECRET]).await.unwrap();
    assert_eq!(code, 2, "an https address without --ca-file is a usage error: {out}");

    engine.stop(WAIT).await;
}

//! Certificate reload on SIGHUP (issue 16): new connections get the new certificate, the
//! worker connected before keeps its stream and goes on serving. Its own test binary,
//! because it signals its own process.

#[path = "support/in_process.rs"]
mod in_process;

use in_process::InProcessEngine;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use switchyard_engine::tls::dev_certs;
use switchyard_sdk::{InitOptions, RegisterFunction, TlsOptions};

const WAIT: Duration = Duration::from_secs(20);

fn options(ca: &Path) -> InitOptions {
    InitOptions {
        tls: Some(TlsOptions { ca_file: Some(ca.join("ca.pem")), ..Default::default() }),
        fail_fast: true,
        drain_on_sigterm: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connected_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, live) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("live"));
    dev_certs::write(&a, &[]).unwrap();
    dev_certs::write(&b, &[]).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    let copy = |from: &Path| {
        for f in ["server.pem", "server-key.pem"] {
            std::fs::copy(from.join(f), live.join(f)).unwrap();
        }
    };
    copy(&a);
    let l = live.display();
    let yaml = format!("tls:\n  cert_file: {l}/server.pem\n  key_file: {l}/server-key.pem\n");
    let engine = InProcessEngine::start(&yaml).await;
    let url = engine.https();

    let before = switchyard_sdk::register_worker(&url, options(&a)).await.expect("trusting CA a");
    before.register_function(RegisterFunction::new_async("echo", |p, _| async move { Ok(p) }));
    assert!(before.ready(WAIT).await);

    copy(&b);
    // SAFETY: kill(2) on our own pid; the engine installed its SIGHUP handler before serving.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    let mut after = None;
    for _ in 0..100 {
        match switchyard_sdk::register_worker(&url, options(&b)).await {
            Ok(w) => {
                after = Some(w);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let after = after.expect("after SIGHUP, a client trusting CA b connects");
    // The new client reaches the function of the worker connected before the reload.
    let echoed: Value = after.call("echo", json!({"still": "here"})).await.unwrap();
    assert_eq!(echoed, json!({"still": "here"}));
    assert!(switchyard_sdk::register_worker(&url, options(&a)).await.is_err(), "new connections use b");

    after.shutdown().await;
    before.shutdown().await;
    engine.stop(WAIT).await;
}

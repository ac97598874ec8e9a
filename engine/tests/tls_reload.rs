//! Certificate reload on SIGHUP (issue 16): new connections get the new certificate, the
//! worker connected before keeps its stream and goes on serving. Its own test binary,
//! because it signals its own process.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::clock::SystemClock;
use switchyard_engine::config::EngineConfig;
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
    let config = EngineConfig::parse(&yaml).unwrap();
    let store = switchyard_engine::store::open(&config.adapter).await.unwrap();
    store.declare(&["default".to_string()]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        switchyard_engine::server::serve(listener, Arc::new(config), store, Arc::new(SystemClock), shutdown)
            .await
            .unwrap();
    });

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
    let _ = stop.send(());
    tokio::time::timeout(WAIT, engine).await.expect("engine stops").unwrap();
}

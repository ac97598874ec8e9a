//! An engine served in-process on `127.0.0.1:0`, for tests that run real workers — the way
//! the SDK's README ("Testing") shows for an application's own tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;
use switchyard_engine::clock::SystemClock;
use switchyard_engine::config::EngineConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for "this must happen"; never a timed assertion of speed.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running engine; dropped, it stops.
pub struct TestEngine {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestEngine {
    /// Serves `yaml` (an `iii-config.yaml`; `""` is the default queue only) with its store.
    pub async fn start(yaml: &str) -> Self {
        let config = EngineConfig::parse(yaml).expect("a valid config");
        let store = switchyard_engine::store::open(&config.adapter).await.expect("the store opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            switchyard_engine::server::serve(listener, Arc::new(config), store, Arc::new(SystemClock), shutdown)
                .await
                .expect("the engine serves");
        });
        Self { url, stop: Some(stop), task: Some(task) }
    }

    /// Stops the engine (draining) and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("the engine stops").unwrap();
        }
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

/// Waits until `probe` holds (bounded by [`WAIT`]).
pub async fn eventually<F, Fut>(what: &str, probe: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !probe().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

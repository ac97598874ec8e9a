//! A durable store that can no longer write stops the engine from acknowledging anything,
//! and the engine says so on its health service, so that a supervisor restarts it.

mod support;

use serde_json::json;
use std::sync::{Arc, Mutex};
use support::{TestEngine, eventually};
use switchyard_engine::limits::rate::RateGate;
use switchyard_engine::queue::{Enqueued, Job, NewJob, Progress};
use switchyard_engine::store::memory::MemoryStore;
use switchyard_engine::store::{
    CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError,
};
use tokio::sync::Notify;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn a_failed_write_answers_unavailable_and_turns_health_not_serving() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "queue_configs:\n  jobs: {{}}\nadapter:\n  name: builtin\n  config: {{store_method: file_based, file_path: '{}'}}\n",
        dir.path().display()
    );
    let engine = TestEngine::start(&yaml).await;
    let client = engine.client().await;
    client.enqueue("jobs", "f", json!({"n": 1})).await.expect("a healthy store acknowledges");

    // Inject a failure: another connection adds a trigger that refuses every new row.
    let other = rusqlite::Connection::open(dir.path().join(switchyard_engine::store::file::DB_FILE)).unwrap();
    other
        .execute_batch("CREATE TRIGGER refuse BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected'); END;")
        .unwrap();

    let e = client.enqueue("jobs", "f", json!({"n": 2})).await.expect_err("a failed write is never acknowledged");
    assert_eq!(e.reason, switchyard_sdk::Reason::Unavailable, "{e}");

    let channel = tonic::transport::Endpoint::from_shared(engine.url.clone()).unwrap().connect().await.unwrap();
    let health = HealthClient::new(channel);
    let status = |service: &str| {
        let (mut health, service) = (health.clone(), service.to_string());
        async move { health.check(HealthCheckRequest { service }).await.map(|r| r.into_inner().status) }
    };
    eventually("health turns NOT_SERVING", || async {
        status("switchyard.v1.Engine").await.ok() == Some(ServingStatus::NotServing as i32)
    })
    .await;
    assert_eq!(status("switchyard.v1.Queues").await.unwrap(), ServingStatus::NotServing as i32);
}

/// A memory store whose stall the test turns on and off: what a durable store reports while
/// its disk does not answer (`Store::stall`).
struct Stalling {
    inner: MemoryStore,
    stall: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Store for Stalling {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        self.inner.enqueue(jobs).await
    }
    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        self.inner.lease(request).await
    }
    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        self.inner.finish(token, finish).await
    }
    async fn next_due(&self, queue: &str) -> Result<Option<u64>, StoreError> {
        self.inner.next_due(queue).await
    }
    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        self.inner.stats(queue).await
    }
    async fn oldest_ready(&self, queue: &str) -> Result<Option<u64>, StoreError> {
        self.inner.oldest_ready(queue).await
    }
    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        self.inner.dead_letters(queue, cursor, limit).await
    }
    async fn redrive(&self, queue: &str, ids: &[String], now: u64) -> Result<u64, StoreError> {
        self.inner.redrive(queue, ids, now).await
    }
    async fn discard(&self, queue: &str, ids: &[String]) -> Result<u64, StoreError> {
        self.inner.discard(queue, ids).await
    }
    async fn recover(&self) -> Result<u64, StoreError> {
        self.inner.recover().await
    }
    async fn get_job(&self, queue: &str, id: &str, now: u64) -> Result<Option<Job>, StoreError> {
        self.inner.get_job(queue, id, now).await
    }
    async fn cancel(&self, queue: &str, id: &str, at: u64, until: u64) -> Result<CancelOutcome, StoreError> {
        self.inner.cancel(queue, id, at, until).await
    }
    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        self.inner.set_progress(token, progress).await
    }
    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        self.inner.cancel_requested(tokens).await
    }
    async fn expire_finished(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.expire_finished(now).await
    }
    fn rate_gate(&self) -> Arc<dyn RateGate> {
        self.inner.rate_gate()
    }
    fn changed(&self) -> Arc<Notify> {
        self.inner.changed()
    }
    fn stall(&self) -> Option<String> {
        self.stall.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_stalled_store_turns_health_not_serving_while_it_lasts() {
    let store = Arc::new(Stalling { inner: MemoryStore::new(), stall: Mutex::new(None) });
    let engine = TestEngine::start_with_store("queue_configs:\n  jobs: {}\n", store.clone()).await;
    let channel = engine.channel().await;
    let status = |service: &'static str| {
        let mut health = HealthClient::new(channel.clone());
        async move { health.check(HealthCheckRequest { service: service.into() }).await.map(|r| r.into_inner().status).ok() }
    };
    let serving = |yes: bool| {
        let want = Some(if yes { ServingStatus::Serving } else { ServingStatus::NotServing } as i32);
        move || async move { status("switchyard.v1.Engine").await == want && status("switchyard.v1.Queues").await == want }
    };
    eventually("health starts SERVING", serving(true)).await;

    *store.stall.lock().unwrap() = Some("one commit has taken 12 s so far".into());
    eventually("a stall turns health NOT_SERVING", serving(false)).await;

    *store.stall.lock().unwrap() = None;
    eventually("health is SERVING again once the stall passes", serving(true)).await;
    let client = engine.client().await;
    client.enqueue("jobs", "f", json!({"n": 1})).await.expect("the engine takes work again");
}

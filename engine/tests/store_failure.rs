//! A durable store that can no longer write stops the engine from acknowledging anything,
//! and the engine says so on its health service, so that a supervisor restarts it.

mod support;

use serde_json::json;
use support::{TestEngine, eventually};
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
    assert_eq!(e.reason, switchyard::Reason::Unavailable, "{e}");

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

//! A worker against an engine served in-process: what an application's own tests can do
//! (README, "Testing"), here with a retry so the engine's rules are the real ones.

mod support;

use serde_json::{Value, json};
use support::{TestEngine, WAIT, eventually};
use switchyard_sdk::{HandlerError, InitOptions, RegisterFunction};

#[tokio::test]
async fn a_job_fails_once_then_succeeds_against_an_in_process_engine() {
    let engine = TestEngine::start("queue_configs:\n  payment:\n    max_retries: 2\n    backoff_ms: 10\n").await;
    let sy =
        switchyard_sdk::register_worker(&engine.url, InitOptions { drain_on_sigterm: false, ..Default::default() })
            .await
            .unwrap();
    sy.register_function(RegisterFunction::new_async("orders::charge", |_payload: Value, ctx| async move {
        match ctx.attempt {
            1 => Err(HandlerError::new("card network busy").with_code("Busy")),
            _ => Ok(json!({"charged": true})),
        }
    }));
    assert!(sy.ready(WAIT).await, "the worker connects");
    sy.enqueue("payment", "orders::charge", json!({"orderId": "ord_1"})).await.unwrap();
    let queues = sy.queues();
    eventually("the job completes", || async { queues.stats("payment").await.unwrap().completed == 1 }).await;
    let stats = queues.stats("payment").await.unwrap();
    assert_eq!((stats.failed, stats.dead), (1, 0));
    sy.shutdown().await;
    engine.stop().await;
}

//! The RabbitMQ store against the broker on `SWITCHYARD_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`; `scripts/services.sh` starts one). Every store
//! here uses a fresh key prefix and deletes the queues it declared when dropped.

use super::RabbitStore;
use std::sync::Arc;

pub fn url() -> String {
    std::env::var("SWITCHYARD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn fresh_prefix() -> String {
    format!("sytest-{}", uuid::Uuid::now_v7().simple())
}

/// Deletes the queues of the stores it watches when dropped (after the stores).
pub struct Cleanup {
    prefix: String,
    stores: Vec<Arc<RabbitStore>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut queues: Vec<String> = self.stores.iter().flat_map(|s| s.declared_queues()).collect();
        queues.sort();
        queues.dedup();
        self.stores.clear();
        let prefix = self.prefix.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(RabbitStore::delete_prefix(&url(), &prefix, &queues))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not clean up rabbitmq prefix {}: {e}", self.prefix);
        }
    }
}

pub async fn connect(prefix: &str) -> Arc<RabbitStore> {
    Arc::new(
        RabbitStore::connect(&url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("these tests need RabbitMQ at {} (scripts/services.sh starts one): {e}", url())),
    )
}

mod conformance {
    crate::store_conformance_tests!(|| async {
        let prefix = super::fresh_prefix();
        let store = super::connect(&prefix).await;
        let guard = super::Cleanup { prefix, stores: vec![store.clone()] };
        crate::store::conformance::Fixture::with_guard(store, guard)
    });
}

//! Removing what a store declared: the tests' (and the bench's) clean-up. Production
//! engines keep their topology; every call here is bounded by the broker-answer deadline.

use super::{RabbitStore, session, topology, unavailable};
use crate::store::StoreError;
use topology::Names;

impl RabbitStore {
    /// Deletes `queues`' broker queues under `key_prefix`, and the prefix's presence
    /// exchange (tests clean up with it).
    pub async fn delete_prefix(url: &str, key_prefix: &str, queues: &[String]) -> Result<(), StoreError> {
        let names = Names { prefix: key_prefix.to_string() };
        let mut all = Vec::new();
        for q in queues {
            all.extend((0..topology::SHARDS).map(|i| names.shard(q, i)));
            all.push(names.dead(q));
        }
        let deleting = Self::delete_objects(url, &all, Some(names.presence()));
        session::answered("deleting a prefix's queues", deleting).await
    }

    /// The idempotency claim queues this store has declared (tests delete them with
    /// [`RabbitStore::delete_queues`]; otherwise the broker expires them).
    pub fn claim_queues(&self) -> Vec<String> {
        self.inner.claims.lock().iter().cloned().collect()
    }

    /// Deletes broker queues by name, best effort (tests clean up with it).
    pub async fn delete_queues(url: &str, names: &[String]) -> Result<(), StoreError> {
        session::answered("deleting queues", Self::delete_objects(url, names, None)).await
    }

    async fn delete_objects(url: &str, queues: &[String], exchange: Option<String>) -> Result<(), StoreError> {
        let conn =
            lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.map_err(unavailable)?;
        for name in queues {
            let ch = conn.create_channel().await.map_err(unavailable)?;
            let _ = ch.queue_delete(name.as_str().into(), Default::default()).await;
        }
        if let Some(exchange) = exchange {
            let ch = conn.create_channel().await.map_err(unavailable)?;
            let _ = ch.exchange_delete(exchange.as_str().into(), Default::default()).await;
        }
        let _ = conn.close(200, "cleaned up".into()).await;
        Ok(())
    }

    /// The queues this store has declared (tests clean up with it).
    pub fn declared_queues(&self) -> Vec<String> {
        self.inner.queues.lock().iter().cloned().collect()
    }
}

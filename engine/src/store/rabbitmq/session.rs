//! One connection to the broker and everything that lives and dies with it.
//!
//! Invariant: a session's shards, mirrors and leases are valid only while its connection
//! is; the first error on it fails the session for good (the broker has returned every
//! unacked message by then), and the store starts a new one. Nothing of a failed session
//! is reused, so a lease token from before an outage is stale.
//!
//! Protocol: publishes go over one confirm-mode channel (`mandatory`, persistent: a
//! message no queue takes is an error, not a receipt); each shard consumes on a channel of
//! its own, which carries its acks; a passive declare or a lock attempt, which the broker
//! answers with a channel error when it fails, gets a fresh channel.

use super::codec::{self, Msg};
use super::control;
use super::presence::{self, Presence};
use super::shard::{self, Shard};
use super::topology::{self, Names, SHARDS};
use super::unavailable;
use crate::store::{LeaseToken, StoreError};
use foldhash::HashMap;
use futures::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a first use of a queue waits for this engine's shards to catch up.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// How long opening a session (AMQP handshake, publish channel, presence) may take. A
/// broker that accepts the TCP connection and then never completes the handshake — one
/// still booting or just killed — would otherwise hang the engine's start-up (it never
/// prints `switchyard listening`) or its reconnect loop for good; lapin's `connect` has no
/// deadline of its own before heartbeats are negotiated.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the store waits for the broker to answer one step (declaring
/// and subscribing a queue, confirming a publish). A broker that takes longer is treated
/// as down: the step answers `UNAVAILABLE`, the session fails and the store reconnects —
/// a call never hangs on a broker that stopped answering.
pub const BROKER_ANSWER: Duration = Duration::from_secs(20);

/// `step` within [`BROKER_ANSWER`], or `UNAVAILABLE` naming what the broker did not answer.
pub async fn answered<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(BROKER_ANSWER, step).await {
        Ok(result) => result,
        Err(_) => {
            Err(StoreError::Unavailable(format!("RabbitMQ did not answer in {} s ({what})", BROKER_ANSWER.as_secs())))
        }
    }
}

pub type Shards = Arc<Vec<Arc<Shard>>>;

pub struct Session {
    /// This session's engine id, in its markers.
    pub id: String,
    pub names: Names,
    conn: Connection,
    publish: Channel,
    queues: Mutex<HashMap<String, Shards>>,
    declaring: tokio::sync::Mutex<()>,
    pub leases: Mutex<HashMap<u64, (Arc<Shard>, LeaseToken)>>,
    next: AtomicU64,
    changed: Arc<Notify>,
    failed: Mutex<Option<String>>,
    pub failed_notify: Notify,
    pub dead_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub presence: Presence,
    /// Requests to other engines (see `control`).
    asker: control::Asker,
}

impl Session {
    /// Opens a session, or fails with `Unavailable` within [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str, names: Names, changed: Arc<Notify>) -> Result<Arc<Self>, StoreError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::open(url, names, changed)).await {
            Ok(opened) => opened,
            Err(_) => Err(unavailable(format!(
                "the broker did not complete the connection within {CONNECT_TIMEOUT:?} (still starting?)"
            ))),
        }
    }

    async fn open(url: &str, names: Names, changed: Arc<Notify>) -> Result<Arc<Self>, StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let props = ConnectionProperties::default().with_connection_name(format!("switchyard-{id}").into());
        let conn = Connection::connect(url, props).await.map_err(unavailable)?;
        let publish = conn.create_channel().await.map_err(unavailable)?;
        publish.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
        let asker = control::Asker::open(conn.create_channel().await.map_err(unavailable)?).await?;
        let session = Arc::new(Self {
            id,
            names,
            conn,
            publish,
            queues: Mutex::new(HashMap::default()),
            declaring: tokio::sync::Mutex::new(()),
            leases: Mutex::new(HashMap::default()),
            next: AtomicU64::new(1),
            changed,
            failed: Mutex::new(None),
            failed_notify: Notify::new(),
            dead_locks: Mutex::new(HashMap::default()),
            presence: Presence::default(),
            asker,
        });
        presence::listen(&session).await?;
        control::listen(&session).await?;
        let mut events = session.conn.events_listener();
        let weak = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let lapin::Event::Error(e) = event {
                    if let Some(s) = weak.upgrade() {
                        s.fail(&format!("connection error: {e}"));
                    }
                    return;
                }
            }
        });
        Ok(session)
    }

    pub fn nonce(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub fn notify(&self) {
        self.changed.notify_waiters();
        self.changed.notify_one();
    }

    /// Ends the session: the store reconnects with a new one.
    pub fn fail(&self, reason: &str) {
        let mut failed = self.failed.lock();
        if failed.is_none() {
            tracing::warn!(reason, "RabbitMQ session ended; reconnecting");
            *failed = Some(reason.to_string());
            self.failed_notify.notify_waiters();
            self.failed_notify.notify_one();
        }
        drop(failed);
        self.notify();
    }

    pub fn is_failed(&self) -> bool {
        self.failed.lock().is_some()
    }

    pub fn check(&self) -> Result<(), StoreError> {
        match &*self.failed.lock() {
            Some(reason) => Err(StoreError::Unavailable(format!("RabbitMQ session ended: {reason}"))),
            None => Ok(()),
        }
    }

    pub async fn close(&self) {
        let closing = self.conn.close(200, "switchyard store closed".into());
        let _ = tokio::time::timeout(BROKER_ANSWER, closing).await;
    }

    pub async fn channel(&self) -> Result<Channel, StoreError> {
        self.conn.create_channel().await.map_err(|e| {
            self.fail(&format!("cannot open a channel: {e}"));
            unavailable(e)
        })
    }

    /// Publishes `msg` to queue `to` and waits for the broker's confirm.
    pub async fn publish(&self, to: &str, msg: &Msg) -> Result<(), StoreError> {
        let body = codec::encode(msg);
        let props = BasicProperties::default().with_delivery_mode(2);
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let confirmed = tokio::time::timeout(BROKER_ANSWER, async {
            match self.publish.basic_publish("".into(), to.into(), options, &body, props).await {
                Ok(c) => c.await,
                Err(e) => Err(e),
            }
        });
        let Ok(confirm) = confirmed.await else {
            let reason = format!("no confirm for a publish to '{to}' in {} s", BROKER_ANSWER.as_secs());
            self.fail(&reason);
            return Err(StoreError::Unavailable(format!("RabbitMQ: {reason}")));
        };
        match confirm {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(_))) => {
                Err(StoreError::Unavailable(format!("RabbitMQ has no queue '{to}' (was it deleted?)")))
            }
            Ok(Confirmation::Nack(_)) => Err(StoreError::Unavailable(format!("RabbitMQ refused a message for '{to}'"))),
            Ok(Confirmation::NotRequested) => unreachable!("the publish channel is in confirm mode"),
            Err(e) => {
                self.fail(&format!("publishing failed: {e}"));
                Err(unavailable(e))
            }
        }
    }

    /// Publishes `body` to queue `to` (persistent, confirmed): `Ok(false)` when the broker
    /// refused it (a full `reject-publish` queue: see `dedup`).
    pub async fn publish_raw(&self, to: &str, body: &[u8]) -> Result<bool, StoreError> {
        let props = BasicProperties::default().with_delivery_mode(2);
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let confirm = match self.publish.basic_publish("".into(), to.into(), options, body, props).await {
            Ok(c) => c.await,
            Err(e) => Err(e),
        };
        match confirm {
            Ok(Confirmation::Ack(None)) => Ok(true),
            Ok(Confirmation::Ack(Some(_))) => Err(StoreError::Unavailable(format!("RabbitMQ has no queue '{to}'"))),
            Ok(Confirmation::Nack(_)) => Ok(false),
            Ok(Confirmation::NotRequested) => unreachable!("the publish channel is in confirm mode"),
            Err(e) => {
                self.fail(&format!("publishing failed: {e}"));
                Err(unavailable(e))
            }
        }
    }

    /// Publishes `body` to `exchange` (presence: not confirmed, not persistent).
    pub async fn broadcast(&self, exchange: &str, body: &[u8], props: BasicProperties) -> Result<(), StoreError> {
        self.publish
            .basic_publish(exchange.into(), "".into(), BasicPublishOptions::default(), body, props)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Asks `engine` (another live engine on this prefix) and waits for its answer, at
    /// most `wait` (see `control`).
    pub async fn ask(
        &self,
        engine: &str,
        request: &control::Request,
        wait: Duration,
    ) -> Result<control::Reply, StoreError> {
        if self.asker.is_broken() {
            self.fail("the control reply channel closed");
            return Err(unavailable("the control reply channel closed (reconnecting)"));
        }
        self.asker.ask(&self.names, engine, self.nonce(), request, wait).await
    }

    /// Publishes a control reply to `to` (a direct reply-to address): not persistent, not
    /// waited for — an asker that has gone loses nothing.
    pub async fn reply(&self, to: &str, body: &[u8], props: BasicProperties) -> Result<(), StoreError> {
        self.publish
            .basic_publish("".into(), to.into(), BasicPublishOptions::default(), body, props)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Hands `queue`'s shard `index` over: closes its channel, and subscribes again (now
    /// behind the other engines' consumers) on a new one with an empty mirror.
    pub async fn retire(self: &Arc<Self>, queue: &str, index: usize) -> Result<(), StoreError> {
        let Some(shards) = self.known(queue) else { return Ok(()) };
        // The next owner starts from the newest counters: write them first.
        if let Some(counters) = shards[index].counters_due() {
            self.publish(&shards[index].name, &counters).await?;
        }
        shards[index].retire().await;
        let shard = self.subscribe(queue, index).await?;
        let mut replaced: Vec<Arc<Shard>> = shards.iter().cloned().collect();
        replaced[index] = shard;
        self.queues.lock().insert(queue.to_string(), Arc::new(replaced));
        Ok(())
    }

    async fn subscribe(self: &Arc<Self>, queue: &str, index: usize) -> Result<Arc<Shard>, StoreError> {
        let channel = self.channel().await?;
        let shard = Arc::new(Shard::new(queue, self.names.shard(queue, index), channel, &self.id));
        let (consumer, marker) = shard.subscribe(self.nonce()).await.map_err(unavailable)?;
        tokio::spawn(shard::consume(shard.clone(), consumer, self.clone()));
        self.publish(&shard.name, &marker).await?;
        Ok(shard)
    }

    /// The shards of `queue` this session knows, if any (never declares).
    pub fn known(&self, queue: &str) -> Option<Shards> {
        self.queues.lock().get(queue).cloned()
    }

    pub fn known_queues(&self) -> Vec<String> {
        self.queues.lock().keys().cloned().collect()
    }

    /// The shards of `queue`: declared and subscribed on first use. With `wait`, a first
    /// use waits (up to [`CATCH_UP_WAIT`]) for the shards this engine owns to catch up, so
    /// that what it enqueues next is seen by its own next lease.
    pub async fn ensure(self: &Arc<Self>, queue: &str, wait: bool) -> Result<Shards, StoreError> {
        self.check()?;
        if let Some(shards) = self.known(queue) {
            return Ok(shards);
        }
        let _guard = self.declaring.lock().await;
        if let Some(shards) = self.known(queue) {
            return Ok(shards);
        }
        let declared = answered(&format!("declaring and subscribing queue '{queue}'"), async {
            let declarer = self.channel().await?;
            let declared = topology::declare(&declarer, &self.names, queue).await;
            let _ = declarer.close(200, "declared".into()).await;
            declared?;
            let mut shards = Vec::with_capacity(SHARDS);
            for index in 0..SHARDS {
                shards.push(self.subscribe(queue, index).await?);
            }
            Ok(shards)
        })
        .await;
        let shards: Shards = match declared {
            Ok(shards) => Arc::new(shards),
            Err(e @ StoreError::Unavailable(_)) => {
                // Half-declared or half-subscribed: this session cannot be trusted any more.
                self.fail(&e.to_string());
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.queues.lock().insert(queue.to_string(), shards.clone());
        if wait {
            let waits = shards.iter().map(|s| async move {
                let caught_up = s.caught_up.notified();
                tokio::pin!(caught_up);
                caught_up.as_mut().enable();
                if !s.is_active() {
                    let _ = tokio::time::timeout(CATCH_UP_WAIT, caught_up).await;
                }
            });
            futures::future::join_all(waits).await;
        }
        Ok(shards)
    }
}

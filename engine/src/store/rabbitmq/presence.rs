//! Engines on one prefix tell each other they are there, what they own, and its stats;
//! owners hand shards to the engine that should have them.
//!
//! Invariant: a shard changes owner only through the broker (its owner closes the shard's
//! channel, the broker returns the messages and activates the next consumer), and only
//! while nothing of the shard is in flight — so presence can be late, lost or wrong
//! without a job being lost or a FIFO group running twice at once; it only decides *who*
//! runs a shard, and what another engine's `ListQueues` shows.
//!
//! Protocol:
//! 1. Every [`EVERY`] each session publishes, on the fanout exchange `P.presence`, its
//!    engine id, the queues it consumes, and each shard it owns with that shard's stats.
//!    Each session reads them on an exclusive, auto-deleted queue of its own.
//! 2. An engine heard within [`LIVE`] is live. The live engines consuming a queue, sorted
//!    by id, take its shards in turn (shard `k` to engine `(k + hash(queue)) mod n`), so
//!    engines that hear the same engines agree without talking, and each gets its share.
//! 3. An owner that is not the shard's engine — and that engine has been live for
//!    [`SETTLE`] — stops leasing from it (*draining*); once nothing of it is in flight it
//!    retires the shard: closes its channel and subscribes again, now behind the others.
//! 4. `stats` adds, for each shard this engine does not own, what its owner last said;
//!    `get_job` and `cancel` ask those owners (see `control`).
//!
//! Not done: an owner with jobs in flight forever (a hung worker) never hands its shard
//! over; the next owner is the broker's next consumer in line, so with three or more
//! engines a shard may hop more than once before it settles.

use super::session::Session;
use crate::clock::Millis;
use crate::store::QueueStats;
use foldhash::HashMap;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an engine announces itself.
pub const EVERY: Duration = Duration::from_millis(500);
/// Heard within this, an engine is live.
const LIVE: Duration = Duration::from_secs(2);
/// How long a newly heard engine is live before shards move to it.
const SETTLE: Duration = Duration::from_millis(1500);

#[derive(Default)]
pub struct Presence {
    engines: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    first: Instant,
    last: Instant,
    queues: Vec<String>,
    shards: HashMap<(String, usize), ShardReport>,
}

/// What an owner announces about one of its shards.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardReport {
    pub stats: QueueStats,
    /// The first enqueue time of the shard's oldest ready job ([`crate::store::Store::oldest_ready`]).
    pub oldest_ready: Option<Millis>,
}

impl Presence {
    fn record(&self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else { return };
        let Some(engine) = v["e"].as_str() else { return };
        let queues = v["q"].as_array().map(|q| q.iter().filter_map(|s| s.as_str().map(String::from)).collect());
        let mut shards = HashMap::default();
        for s in v["s"].as_array().into_iter().flatten() {
            let n = |i: usize| s[i].as_u64().unwrap_or(0);
            let Some(queue) = s[0].as_str() else { continue };
            let stats = QueueStats {
                ready: n(2),
                delayed: n(3),
                in_flight: n(4),
                enqueued: n(5),
                completed: n(6),
                failed: n(7),
                dead_lettered: n(8),
                dead: 0,
            };
            let oldest_ready = s[9].as_u64();
            shards.insert((queue.to_string(), n(1) as usize), ShardReport { stats, oldest_ready });
        }
        let now = Instant::now();
        let mut engines = self.engines.lock();
        let seen = engines.entry(engine.to_string()).or_insert_with(|| Seen {
            first: now,
            last: now,
            queues: Vec::new(),
            shards: HashMap::default(),
        });
        seen.last = now;
        seen.queues = queues.unwrap_or_default();
        seen.shards = shards;
    }

    /// What the owner of `queue`'s shard `index` last said about it, if another live
    /// engine owns it.
    pub fn remote(&self, me: &str, queue: &str, index: usize) -> Option<ShardReport> {
        let engines = self.engines.lock();
        engines
            .iter()
            .filter(|(id, s)| id.as_str() != me && s.last.elapsed() < LIVE)
            .filter_map(|(_, s)| s.shards.get(&(queue.to_string(), index)).map(|st| (s.last, *st)))
            .max_by_key(|(last, _)| *last)
            .map(|(_, st)| st)
    }

    /// The other live engines that announced owning shards of `queue`, each with those
    /// shards (bit `k`: shard `k`), most recently heard first.
    pub fn owners(&self, me: &str, queue: &str) -> Vec<(String, u8)> {
        let engines = self.engines.lock();
        let mut owners: Vec<(Instant, String, u8)> = engines
            .iter()
            .filter(|(id, s)| id.as_str() != me && s.last.elapsed() < LIVE)
            .filter_map(|(id, s)| {
                let mask = s.shards.keys().filter(|(q, _)| q == queue).fold(0u8, |m, (_, i)| m | (1 << i));
                (mask != 0).then(|| (s.last, id.clone(), mask))
            })
            .collect();
        owners.sort_by_key(|o| std::cmp::Reverse(o.0));
        owners.into_iter().map(|(_, id, mask)| (id, mask)).collect()
    }

    /// The engine that should own `queue`'s shard `index` (step 2), among the settled live
    /// engines consuming it and `me`.
    pub fn preferred(&self, me: &str, queue: &str, index: usize) -> String {
        let engines = self.engines.lock();
        let mut ids: Vec<&str> = engines
            .iter()
            .filter(|(id, s)| {
                id.as_str() != me
                    && s.last.elapsed() < LIVE
                    && s.first.elapsed() >= SETTLE
                    && s.queues.iter().any(|q| q == queue)
            })
            .map(|(id, _)| id.as_str())
            .chain(std::iter::once(me))
            .collect();
        ids.sort_unstable();
        let offset = super::topology::Names::shard_of(Some(queue), "");
        ids[(index + offset) % ids.len()].to_string()
    }
}

/// Declares `P.presence` and starts reading it (step 1).
pub async fn listen(session: &Arc<Session>) -> Result<(), crate::store::StoreError> {
    let channel = session.channel().await?;
    let exchange = session.names.presence();
    let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    let un = super::unavailable;
    channel
        .exchange_declare(exchange.as_str().into(), ExchangeKind::Fanout, options, FieldTable::default())
        .await
        .map_err(un)?;
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = channel.queue_declare("".into(), options, FieldTable::default()).await.map_err(un)?;
    let name = queue.name().clone();
    channel
        .queue_bind(
            name.clone(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(un)?;
    let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    let mut consumer = channel.basic_consume(name, "".into(), options, FieldTable::default()).await.map_err(un)?;
    let weak = Arc::downgrade(session);
    tokio::spawn(async move {
        let _channel = channel;
        while let Some(Ok(delivery)) = consumer.next().await {
            let Some(session) = weak.upgrade() else { return };
            session.presence.record(&delivery.data);
        }
    });
    Ok(())
}

/// Announces this engine (step 1), then moves on the shards it should give away (step 3).
pub async fn tick(session: &Arc<Session>) {
    let mut owned = Vec::new();
    let queues = session.known_queues();
    for queue in &queues {
        let Some(shards) = session.known(queue) else { continue };
        for (index, shard) in shards.iter().enumerate() {
            if !shard.is_active() {
                continue;
            }
            let s = shard.mirror_stats();
            owned.push(json!([
                queue,
                index,
                s.ready,
                s.delayed,
                s.in_flight,
                s.enqueued,
                s.completed,
                s.failed,
                s.dead_lettered,
                shard.mirror_oldest_ready()
            ]));
            // Draining since an earlier tick, so these stats already count every lease.
            if shard.is_draining() {
                if s.in_flight == 0
                    && let Err(e) = session.retire(queue, index).await
                {
                    tracing::warn!(queue = %shard.name, error = %e, "could not hand the shard over");
                }
            } else if session.presence.preferred(&session.id, queue, index) != session.id {
                tracing::debug!(queue = %shard.name, "handing the shard to its engine");
                shard.drain();
            }
        }
    }
    let body = json!({"e": session.id, "q": queues, "s": owned}).to_string();
    let exchange = session.names.presence();
    let _ = session.broadcast(&exchange, body.as_bytes(), BasicProperties::default()).await;
}

//! The broker objects of one key prefix, their names, and declaring them.
//!
//! Invariant: every object is declared with exactly the arguments below, so declaring is
//! idempotent between engines of one version, and an object of the same name declared
//! otherwise (a classic queue, no single-active-consumer) is refused
//! by the broker with `PRECONDITION_FAILED`, which start-up reports as a conflict.
//!
//! Per queue `Q` of prefix `P` (all on the default exchange, routed by queue name):
//! - `P.Q.0` … `P.Q.{SHARDS-1}` — quorum queues with `x-single-active-consumer`: the jobs.
//!   A job goes to the shard of its FIFO group, or of its id when it has none.
//! - `P.Q.dead` — quorum queue: the dead letters.
//! - `P.Q.dead-lock` — exclusive, auto-deleted: held by the one engine reading the DLQ.
//!
//! And per prefix the durable fanout exchange `P.presence` (see `presence`), with one
//! exclusive, auto-deleted, server-named queue per engine bound to it; and per engine
//! `P.control-<engine id>`, classic, exclusive and auto-deleted: its requests (see
//! `control`). Neither is a quorum queue, so engines coming and going cause no quorum churn.
//!
//! Not done: policies (none are needed: every argument is set at declaration).

use super::unavailable;
use crate::store::StoreError;
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};

/// Shard queues per Switchyard queue. Every engine on one prefix must use the same number:
/// it decides which shard a group lives on (a constant, so engines of one build agree).
pub const SHARDS: usize = 4;

/// The names under one prefix.
#[derive(Clone, Debug)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn shard(&self, queue: &str, index: usize) -> String {
        format!("{}.{queue}.{index}", self.prefix)
    }

    pub fn dead(&self, queue: &str) -> String {
        format!("{}.{queue}.dead", self.prefix)
    }

    pub fn presence(&self) -> String {
        format!("{}.presence", self.prefix)
    }

    /// An engine's control queue (see `control`).
    pub fn control(&self, engine: &str) -> String {
        format!("{}.control-{engine}", self.prefix)
    }

    pub fn dead_lock(&self, queue: &str) -> String {
        format!("{}.{queue}.dead-lock", self.prefix)
    }

    /// The shard a job lives on: its group's, or its id's when it has no group.
    pub fn shard_of(group: Option<&str>, id: &str) -> usize {
        use std::hash::{Hash, Hasher};
        // FNV-1a: fixed, so every engine (and every version) agrees.
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        group.unwrap_or(id).hash(&mut h);
        (h.finish() % SHARDS as u64) as usize
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn quorum(single_active: bool) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    if single_active {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    args
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
}

/// Declares `queue`'s shards and DLQ. A conflicting existing object is
/// [`StoreError::Corrupt`] naming it; a broker that cannot be reached is `Unavailable`.
pub async fn declare(channel: &Channel, names: &Names, queue: &str) -> Result<(), StoreError> {
    let mut objects: Vec<(String, bool)> = (0..SHARDS).map(|i| (names.shard(queue, i), true)).collect();
    objects.push((names.dead(queue), false));
    for (name, single_active) in objects {
        if let Err(e) = channel.queue_declare(name.as_str().into(), durable(), quorum(single_active)).await {
            return Err(conflict_or_unavailable(&name, e));
        }
    }
    Ok(())
}

fn conflict_or_unavailable(name: &str, e: lapin::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("PRECONDITION_FAILED") || text.contains("inequivalent") {
        StoreError::Corrupt(format!(
            "RabbitMQ queue '{name}' exists with other arguments than Switchyard declares \
             (quorum{} — delete it or use another key_prefix): {text}",
            if name.ends_with(".dead") { "" } else { ", single active consumer" }
        ))
    } else {
        unavailable(e)
    }
}

/// Declares the exclusive lock queue; `Ok(false)` when another connection holds it.
pub async fn try_lock(channel: &Channel, name: &str) -> Result<bool, StoreError> {
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    match channel.queue_declare(name.into(), options, FieldTable::default()).await {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().contains("RESOURCE_LOCKED") => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// How many messages `name` has ready (`0` if it does not exist).
pub async fn ready_count(channel: &Channel, name: &str) -> Result<u64, StoreError> {
    let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    match channel.queue_declare(name.into(), options, FieldTable::default()).await {
        Ok(q) => Ok(u64::from(q.message_count())),
        Err(e) if e.to_string().contains("NOT_FOUND") => Ok(0),
        Err(e) => Err(unavailable(e)),
    }
}

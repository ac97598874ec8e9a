//! Idempotency keys across engines: an atomic claim per key on the broker.
//!
//! Invariant: of the enqueues carrying one key to one queue while its claim lives, exactly
//! one publishes its job — the one whose claim message the broker confirmed; every other
//! one reads that claim and answers its job id as a duplicate, whichever engine it ran on.
//!
//! A claim is a tiny durable classic queue `P.Q.dedup.<hash(key)>.<window_ms>` declared with
//! `x-max-length: 1`, `x-overflow: reject-publish`, `x-message-ttl: window_ms` and
//! `x-expires: window_ms + 60 s`, holding one message `<expires_at>|<job id>|<key>`:
//! 1. publish the record with confirms: acked = this enqueue is first (it then publishes
//!    its job; if that fails, the claim queue is purged, best effort, and the enqueue
//!    answers UNAVAILABLE);
//! 2. nacked = a record exists: `basic.get` it without ack, requeue it, and answer its id —
//!    unless its `expires_at` (engine clock) is not after this enqueue's time: then the
//!    record is taken (acked) and the claim tried again (the broker's TTL is the clean-up,
//!    the engine clock decides, as on the other stores);
//! 3. gone between the nack and the get (it just expired): claim again (bounded).
//!
//! Cost: one queue per live key (declared on the first enqueue with that key, deleted by
//! the broker `window + 60 s` after its last use) and two extra round trips per keyed
//! enqueue (declare, confirmed publish), three for a duplicate. The window is part of the
//! name, so changing `dedup_window_ms` starts new claims rather than failing on a queue
//! declared with the old arguments. The hash is 128 bits (two FNV-1a passes); the key is
//! in the record too.

use super::session::Session;
use super::topology::Names;
use super::unavailable;
use crate::clock::Millis;
use crate::queue::JobId;
use crate::store::StoreError;
use lapin::options::{BasicGetOptions, BasicRejectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::sync::Arc;

/// How the claim went.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This enqueue holds the key: publish the job.
    First,
    /// The key is held by the earlier job `id`.
    Duplicate(JobId),
}

/// Attempts before giving up on a claim that keeps vanishing (each a broker round trip).
const TRIES: usize = 5;

/// The claim queue's name for `key` on `queue`.
pub fn name(names: &Names, queue: &str, key: &str, window_ms: u64) -> String {
    let hash = |seed: u64| {
        let mut h = seed;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    format!(
        "{}.{queue}.dedup.{:016x}{:016x}.{window_ms}",
        names.prefix,
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x6c62_272e_07bb_0142)
    )
}

/// Claims `key` for job `id` (enqueued at `now`, claim until `expires_at`).
pub async fn claim(
    session: &Arc<Session>,
    queue: &str,
    key: &str,
    id: &str,
    window_ms: u64,
    now: Millis,
    expires_at: Millis,
) -> Result<Claim, StoreError> {
    let window_ms = window_ms.max(1);
    let claim = name(&session.names, queue, key, window_ms);
    let channel = session.channel().await?;
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(window_ms as i64));
    args.insert("x-expires".into(), AMQPValue::LongLongInt(window_ms.saturating_add(60_000) as i64));
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(claim.as_str().into(), options, args).await.map_err(unavailable)?;
    let record = format!("{expires_at}|{id}|{key}");
    let answer = async {
        for _ in 0..TRIES {
            if session.publish_raw(&claim, record.as_bytes()).await? {
                return Ok(Claim::First);
            }
            let got =
                channel.basic_get(claim.as_str().into(), BasicGetOptions::default()).await.map_err(unavailable)?;
            let Some(got) = got else { continue }; // expired meanwhile: claim again
            let tag = got.delivery.delivery_tag;
            let text = String::from_utf8_lossy(&got.delivery.data).into_owned();
            let mut parts = text.splitn(3, '|');
            let held_until = parts.next().and_then(|t| t.parse::<Millis>().ok()).unwrap_or(0);
            let first = parts.next().unwrap_or_default().to_string();
            if held_until > now && !first.is_empty() {
                let requeue = BasicRejectOptions { requeue: true };
                channel.basic_reject(tag, requeue).await.map_err(unavailable)?;
                return Ok(Claim::Duplicate(first));
            }
            // Over by the engine clock (or not ours): take it, then claim again.
            channel.basic_ack(tag, Default::default()).await.map_err(unavailable)?;
        }
        Err(StoreError::Unavailable(format!("RabbitMQ: the idempotency claim '{claim}' kept changing; try again")))
    }
    .await;
    let _ = channel.close(200, "claimed".into()).await;
    answer
}

/// Gives a claim up (its job could not be published), best effort.
pub async fn release(session: &Arc<Session>, queue: &str, key: &str, window_ms: u64) {
    let claim = name(&session.names, queue, key, window_ms.max(1));
    if let Ok(channel) = session.channel().await {
        let _ = channel.queue_purge(claim.as_str().into(), Default::default()).await;
        let _ = channel.close(200, "released".into()).await;
    }
}

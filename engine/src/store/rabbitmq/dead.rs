//! The dead-letter queue: listed, redriven and discarded by whichever engine is asked.
//!
//! Invariant: one engine at a time reads a queue's DLQ (it holds the exclusive lock queue
//! `P.Q.dead-lock`, which the broker drops with its connection), and it gives back every
//! message it does not remove, so the DLQ is never seen half-read.
//!
//! Protocol, per operation:
//! 1. Take the lock (an in-process mutex, then the lock queue; another engine holding it
//!    is waited for, up to [`LOCK_WAIT`]).
//! 2. Fetch every dead letter (`basic.get`, unacked) on a channel of its own; order them
//!    by dead-letter sequence (their place in the DLQ, whatever order the broker returns).
//! 3. Discard: ack the chosen. Redrive: publish each chosen as version n+1 to its shard —
//!    attempts 0, placed at its group's tail (`order_at` = now) — and ack the dead letter
//!    once the broker confirms the copy.
//! 4. Close the channel (the broker takes back what was not acked), wait until the DLQ
//!    counts them again, and drop the lock.
//!
//! Not done: a DLQ of more than [`MAX_READ`] messages is read only that far (listing
//! pages beyond it, redrive-all and discard-all take the first `MAX_READ` per call).
//! Reading costs a round trip per dead letter: this is an operator's tool.

use super::codec::{self, JobMsg, Msg};
use super::session::Session;
use super::topology::{self, Names};
use super::unavailable;
use crate::clock::Millis;
use crate::queue::JobId;
use crate::store::{DeadLetterPage, StoreError};
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most dead letters one operation reads.
pub const MAX_READ: usize = 100_000;
/// How long an operation waits for another engine's.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Dead letters after `after` (a dead-letter sequence), at most `limit`.
pub async fn list(session: &Arc<Session>, queue: &str, after: u64, limit: usize) -> Result<DeadLetterPage, StoreError> {
    with_dead(session, queue, |_, _, letters| async move {
        let mut page = DeadLetterPage::default();
        let mut rest = letters.into_iter().map(|(_, j)| j).filter(|j| seq_of(j) > after);
        for j in rest.by_ref().take(limit) {
            page.next_cursor = Some(seq_of(&j).to_string());
            page.entries.push(j.into_job());
        }
        if rest.next().is_none() {
            page.next_cursor = None;
        }
        Ok((page, 0))
    })
    .await
}

/// The dead letter `id`, if the DLQ has it (`get_job` and `cancel` of a dead job).
pub async fn find(session: &Arc<Session>, queue: &str, id: &str) -> Result<Option<crate::queue::Job>, StoreError> {
    // Under the lock, like a listing: another engine reading the DLQ holds its letters
    // unacked meanwhile, so a count without the lock could miss one.
    with_dead(session, queue, |_, _, letters| async move {
        let found = letters.into_iter().map(|(_, j)| j).find(|j| j.id == id).map(JobMsg::into_job);
        Ok((found, 0))
    })
    .await
}

/// Deletes the chosen dead letters (all when `ids` is empty).
pub async fn discard(session: &Arc<Session>, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    with_dead(session, queue, |_, channel, letters| async move {
        let mut n = 0;
        for (tag, j) in letters {
            if wanted.is_empty() || wanted.contains(j.id.as_str()) {
                channel.basic_ack(tag, BasicAckOptions::default()).await.map_err(unavailable)?;
                n += 1;
            }
        }
        Ok((n, n))
    })
    .await
}

/// Moves the chosen dead letters back to their shards with a fresh budget.
pub async fn redrive(session: &Arc<Session>, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let shards = session.ensure(queue, false).await?;
    let mut arrivals = Vec::new();
    let moved = with_dead(session, queue, |session, channel, letters| {
        let arrivals = &mut arrivals;
        async move {
            let mut n = 0;
            for (tag, j) in letters {
                if !(wanted.is_empty() || wanted.contains(j.id.as_str())) {
                    continue;
                }
                let shard = &shards[Names::shard_of(j.group.as_deref(), &j.id)];
                let copy = JobMsg { version: j.version + 1, attempts: 0, due_at: None, dead: None, order_at: now, ..j };
                arrivals.extend(shard.expect(&copy.id));
                session.publish(&shard.name, &Msg::Job(copy)).await?;
                channel.basic_ack(tag, BasicAckOptions::default()).await.map_err(unavailable)?;
                n += 1;
            }
            Ok((n, n))
        }
    })
    .await?;
    for arrival in arrivals {
        let _ = tokio::time::timeout(Duration::from_secs(10), arrival).await;
    }
    Ok(moved)
}

/// Steps 1, 2 and 4 around `op`, which answers its result and how many letters it removed.
async fn with_dead<T, F, Fut>(session: &Arc<Session>, queue: &str, op: F) -> Result<T, StoreError>
where
    F: FnOnce(Arc<Session>, Channel, Vec<(u64, JobMsg)>) -> Fut,
    Fut: Future<Output = Result<(T, u64), StoreError>>,
{
    let local = session.dead_locks.lock().entry(queue.to_string()).or_default().clone();
    let _local = local.lock().await;
    let names = session.names.clone();
    let dead = names.dead(queue);
    let lock_name = names.dead_lock(queue);
    let started = Instant::now();
    loop {
        let ch = session.channel().await?;
        if topology::try_lock(&ch, &lock_name).await? {
            break;
        }
        if started.elapsed() > LOCK_WAIT {
            return Err(StoreError::Unavailable(format!(
                "another engine has held the dead letters of '{queue}' for {LOCK_WAIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = async {
        if topology::ready_count(&session.channel().await?, &dead).await? == 0 {
            let (out, _) = op(session.clone(), session.channel().await?, Vec::new()).await?;
            return Ok(out);
        }
        let channel = session.channel().await?;
        let mut letters = Vec::new();
        while letters.len() < MAX_READ {
            let got = channel.basic_get(dead.as_str().into(), BasicGetOptions::default()).await.map_err(unavailable)?;
            let Some(got) = got else { break };
            match codec::decode(&got.delivery.data) {
                Ok(Msg::Job(j)) => letters.push((got.delivery.delivery_tag, j)),
                _ => {
                    tracing::warn!(queue = %dead, "dropping a dead letter that is not Switchyard's");
                    channel
                        .basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        letters.sort_by_key(|(_, j)| seq_of(j));
        let held = letters.len() as u64;
        let (out, removed) = op(session.clone(), channel.clone(), letters).await?;
        let _ = channel.close(200, "dead letters read".into()).await;
        // Step 4: the broker counts the returned letters again before the next call.
        let started = Instant::now();
        while topology::ready_count(&session.channel().await?, &dead).await? < held - removed
            && started.elapsed() < Duration::from_secs(2)
        {
            tokio::task::yield_now().await;
        }
        Ok(out)
    }
    .await;
    if let Ok(ch) = session.channel().await {
        let _ = ch.queue_delete(lock_name.as_str().into(), Default::default()).await;
    }
    result
}

fn seq_of(j: &JobMsg) -> u64 {
    j.dead.map_or(0, |(_, seq)| seq)
}

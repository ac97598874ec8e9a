//! Ending attempts on one shard: the mirror first, then the broker.
//!
//! Invariant: the broker never has less than the mirror says is stored — every change is
//! applied to the mirror, then published (confirmed) or acked; if the broker side fails,
//! the session fails and a new one starts over from the broker, which still has the job's
//! previous version. Versions are numbered in the order the mirror changed: the mirror
//! change and its effects are computed under the shard's `order` lock (a cancel may race a
//! completion of the same job on another thread). See `shard` (steps 4 and 6) for what each
//! end costs on the broker.

use super::codec::Msg;
use super::session::Session;
use super::shard::{ChangeOwned, Effect, Shard};
use crate::queue::JobId;
use crate::store::{Finish, LeaseToken, StoreError};
use std::sync::Arc;

/// Ends attempts on `shard`; one answer per end, as `Store::finish` gives. `dead_seq`
/// numbers each dead-lettering for the DLQ's order.
pub async fn finish_on(
    session: &Session,
    shard: &Arc<Shard>,
    ends: Vec<(LeaseToken, Finish)>,
    dead_seq: impl Fn() -> u64,
) -> Result<Vec<bool>, StoreError> {
    let (answers, dead, effects) = {
        let _order = shard.order.lock();
        let mut changes = Vec::new();
        let answers = shard.mirror.finish_many_with(ends, &mut |c| changes.extend(ChangeOwned::from_change(c)));
        let dead: Vec<JobId> = changes
            .iter()
            .filter_map(|c| match c {
                ChangeOwned::DeadLettered(job) => Some(job.id.clone()),
                _ => None,
            })
            .collect();
        (answers, dead, shard.effects(changes, &session.names, dead_seq))
    };
    apply(session, shard, effects).await?;
    if !dead.is_empty() {
        // In the DLQ now (confirmed): the mirror forgets them (`dead` reads the DLQ).
        shard.mirror.discard_with(&shard.queue, &dead, &mut |_| {});
    }
    Ok(answers)
}

/// Does `effects` on the broker: publishes (confirmed, then the version they replace
/// acked) and acks. Any failure fails the session (the mirror is ahead of the broker).
pub async fn apply(session: &Session, shard: &Arc<Shard>, effects: Vec<Effect>) -> Result<(), StoreError> {
    let mut acks = Vec::new();
    let mut publishes = Vec::new();
    for effect in effects {
        match effect {
            Effect::Ack(tag) => acks.push(tag),
            Effect::Publish { to, msg, then_ack } => publishes.push(Box::pin(async move {
                session.publish(&to, &Msg::Job(*msg)).await?;
                if let Some(tag) = then_ack {
                    shard.ack(&[tag]).await?;
                }
                Ok::<_, StoreError>(())
            })
                as futures::future::BoxFuture<'_, Result<(), StoreError>>),
            Effect::PublishKept { to, msgs, then_ack } => publishes.push(Box::pin(async move {
                session.publish(&to, &Msg::Kept(msgs)).await?;
                shard.ack(&then_ack).await
            })),
        }
    }
    let published = futures::future::join_all(publishes).await;
    let acked = shard.ack(&acks).await;
    for r in published.into_iter().chain(std::iter::once(acked)) {
        if let Err(e) = r {
            // The mirror is ahead of the broker now: start over from the broker.
            session.fail(&format!("writing a job's change to the broker failed: {e}"));
            return Err(e);
        }
    }
    Ok(())
}

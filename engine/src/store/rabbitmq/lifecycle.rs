//! The job lifecycle for callers on the RabbitMQ store: a job by id, cancel, progress,
//! cancel requests and the expiry of kept jobs.
//!
//! Invariant: **a job is answered by the engine that owns its shard, from its mirror, or
//! not at all** — `get_job` answers `None` only when every shard of the queue was looked at
//! (here, or by its owner through [`super::control`]) and the dead-letter queue was read;
//! a shard without a caught-up owner right now (it is changing hands) makes the call
//! `UNAVAILABLE`, and the caller asks again. A cancel is applied by the owner on its
//! mirror and written to the broker (the job's next version, confirmed) before it is
//! answered, so the cancel survives the owner.
//!
//! Protocol for `get_job` and `cancel`:
//! 1. This engine's mirrors of the queue (the shards it owns, caught up); on a miss, again
//!    once each has seen every message confirmed before (`shard`, step 7), so a job just
//!    enqueued through another engine is not reported unknown.
//! 2. The other engines that announced owning the shards not looked at yet (`presence`),
//!    asked at once, each answering for its own shards.
//! 3. The queue's DLQ (a dead job is not in any mirror; see `dead`: one passive declare
//!    when the DLQ is empty, a read of it otherwise).
//!
//! Which shard holds a job depends on its FIFO group, which its id does not tell, so every
//! shard is looked at. Progress, cancel requests and leases are the owner's (only the owner
//! leases): [`set_progress`] and [`cancel_requested`] read this engine's mirrors, and the
//! dispatcher of the owner finds a cancel requested through another engine by its watch
//! loop. Progress is not written to the broker: a new owner starts without it.

use super::control::{self, Reply, Request};
use super::session::Session;
use super::shard::{ChangeOwned, Shard};
use super::topology::SHARDS;
use super::{dead, finish};
use crate::clock::Millis;
use crate::queue::{Job, Progress};
use crate::store::{CancelOutcome, LeaseToken, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Every shard of a queue, as a mask (bit `k`: shard `k`).
pub const ALL: u8 = ((1u16 << SHARDS) - 1) as u8;

/// How long a lookup that missed waits for its sync marker (`shard`, step 7).
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// Step 1 of `get_job`: the shards looked at, and the job if one of them has it. A miss
/// looks again once each shard has seen what was confirmed before (`shard`, step 7).
pub async fn get_local(session: &Session, queue: &str, id: &str, now: Millis) -> Result<(u8, Option<Job>), StoreError> {
    let Some(shards) = session.known(queue) else { return Ok((0, None)) };
    for (_, shard) in active(&shards) {
        if let Some(job) = shard.mirror.get_job(queue, id, now).await? {
            return Ok((ALL, Some(job)));
        }
    }
    let covered = synced(session, &shards).await;
    for (_, shard) in active(&shards).filter(|(k, _)| covered & (1 << k) != 0) {
        if let Some(job) = shard.mirror.get_job(queue, id, now).await? {
            return Ok((ALL, Some(job)));
        }
    }
    Ok((covered, None))
}

fn active(shards: &[Arc<Shard>]) -> impl Iterator<Item = (usize, &Arc<Shard>)> {
    shards.iter().enumerate().filter(|(_, s)| s.is_active())
}

/// The shards (a mask) that are this engine's and have seen every message confirmed
/// before this call: each gets a marker, and those whose marker came back count.
async fn synced(session: &Session, shards: &[Arc<Shard>]) -> u8 {
    let syncs = active(shards).map(|(k, shard)| async move {
        let nonce = session.nonce();
        let (marker, back) = shard.sync_marker(nonce)?;
        let came = async {
            session.publish(&shard.name, &marker).await.ok()?;
            back.await.ok()
        };
        let came = tokio::time::timeout(SYNC_WAIT, came).await.ok().flatten();
        if came.is_none() {
            shard.forget_sync(nonce);
        }
        came.map(|()| 1u8 << k)
    });
    futures::future::join_all(syncs).await.into_iter().flatten().fold(0, |m, b| m | b)
}

/// Step 1 of `cancel`: applied on the mirror that has the job, then on the broker.
pub async fn cancel_local(
    session: &Session,
    queue: &str,
    id: &str,
    at: Millis,
    until: Millis,
) -> Result<(u8, CancelOutcome), StoreError> {
    let Some(shards) = session.known(queue) else { return Ok((0, CancelOutcome::NotFound)) };
    if let Some(outcome) = cancel_on(session, &shards, ALL, queue, id, at, until).await? {
        return Ok((ALL, outcome));
    }
    let covered = synced(session, &shards).await;
    match cancel_on(session, &shards, covered, queue, id, at, until).await? {
        Some(outcome) => Ok((ALL, outcome)),
        None => Ok((covered, CancelOutcome::NotFound)),
    }
}

/// Cancels `id` on the first of the active shards in `mask` that has it.
async fn cancel_on(
    session: &Session,
    shards: &[Arc<Shard>],
    mask: u8,
    queue: &str,
    id: &str,
    at: Millis,
    until: Millis,
) -> Result<Option<CancelOutcome>, StoreError> {
    for (_, shard) in active(shards).filter(|(k, _)| mask & (1 << k) != 0) {
        let (outcome, effects) = {
            let _order = shard.order.lock();
            let mut changes = Vec::new();
            let outcome =
                shard.mirror.cancel_with(queue, id, at, until, &mut |c| changes.extend(ChangeOwned::from_change(c)));
            (outcome, shard.effects(changes, &session.names, || 0))
        };
        if matches!(outcome, CancelOutcome::NotFound) {
            continue;
        }
        if !effects.is_empty() {
            finish::apply(session, shard, effects).await?;
            session.notify(); // a FIFO group may move on
        }
        let outcome = match outcome {
            CancelOutcome::Cancelling(job, inner) => {
                let token = outer_token(session, shard, &inner);
                CancelOutcome::Cancelling(job, token)
            }
            other => other,
        };
        return Ok(Some(outcome));
    }
    Ok(None)
}

/// The store's token for the mirror's lease `inner` (lease id 0, which no lease has, when
/// this session holds none: it has just ended).
fn outer_token(session: &Session, shard: &Arc<Shard>, inner: &LeaseToken) -> LeaseToken {
    let leases = session.leases.lock();
    let outer = leases.iter().find(|(_, (s, t))| Arc::ptr_eq(s, shard) && t == inner).map(|(id, _)| *id);
    LeaseToken { job_id: inner.job_id.clone(), lease_id: outer.unwrap_or(0) }
}

/// Steps 2 and 3 around step 1: `get_job` across engines.
pub async fn get_job(session: &Arc<Session>, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
    session.ensure(queue, false).await?;
    let (mut covered, found) = get_local(session, queue, id, now).await?;
    if found.is_some() {
        return Ok(found);
    }
    let request = Request::Get { queue: queue.to_string(), id: id.to_string(), now };
    let mut failures = Vec::new();
    for reply in ask_owners(session, queue, covered, &request, control::ANSWER).await {
        match reply {
            Ok(Reply::Got { job: Some(job), .. }) => return Ok(Some(job)),
            Ok(Reply::Got { covered: theirs, job: None }) => covered |= theirs,
            Ok(Reply::Failed(why)) => failures.push(why),
            Ok(Reply::Cancel { .. }) => failures.push("an engine answered a get with a cancel".into()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if let Some(job) = dead::find(session, queue, id).await? {
        return Ok(Some(job));
    }
    unless_uncovered(queue, covered, failures).map(|()| None)
}

/// Steps 2 and 3 around step 1: `cancel` across engines.
pub async fn cancel(
    session: &Arc<Session>,
    queue: &str,
    id: &str,
    at: Millis,
    until: Millis,
) -> Result<CancelOutcome, StoreError> {
    session.ensure(queue, false).await?;
    let (mut covered, outcome) = cancel_local(session, queue, id, at, until).await?;
    if !matches!(outcome, CancelOutcome::NotFound) {
        return Ok(outcome);
    }
    let request = Request::Cancel { queue: queue.to_string(), id: id.to_string(), at, until };
    let mut failures = Vec::new();
    for reply in ask_owners(session, queue, covered, &request, control::ANSWER).await {
        match reply {
            Ok(Reply::Cancel { covered: theirs, outcome: CancelOutcome::NotFound }) => covered |= theirs,
            Ok(Reply::Cancel { outcome, .. }) => return Ok(outcome),
            Ok(Reply::Failed(why)) => failures.push(why),
            Ok(Reply::Got { .. }) => failures.push("an engine answered a cancel with a get".into()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if let Some(job) = dead::find(session, queue, id).await? {
        return Ok(CancelOutcome::AlreadyFinished(job));
    }
    unless_uncovered(queue, covered, failures).map(|()| CancelOutcome::NotFound)
}

/// Asks, at once, each other engine owning a shard of `queue` not in `covered`.
async fn ask_owners(
    session: &Arc<Session>,
    queue: &str,
    covered: u8,
    request: &Request,
    wait: Duration,
) -> Vec<Result<Reply, StoreError>> {
    let owners = session.presence.owners(&session.id, queue);
    let mut wanted = covered;
    let mut asked = Vec::new();
    for (engine, mask) in owners {
        if mask & !wanted != 0 {
            wanted |= mask;
            asked.push(engine);
        }
    }
    futures::future::join_all(asked.iter().map(|engine| session.ask(engine, request, wait))).await
}

/// `Ok` when every shard was looked at; else why not, as `UNAVAILABLE`.
fn unless_uncovered(queue: &str, covered: u8, failures: Vec<String>) -> Result<(), StoreError> {
    if covered == ALL {
        return Ok(());
    }
    let missing: Vec<String> = (0..SHARDS).filter(|k| covered & (1 << k) == 0).map(|k| k.to_string()).collect();
    let mut why = format!(
        "RabbitMQ: no engine answered for shard(s) {} of queue '{queue}' (an owner is changing or unreachable); try again",
        missing.join(", ")
    );
    if !failures.is_empty() {
        why.push_str(&format!(" ({})", failures.join("; ")));
    }
    Err(StoreError::Unavailable(why))
}

/// The latest progress of this engine's lease `token`.
pub async fn set_progress(session: &Session, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
    let Some((shard, inner)) = session.leases.lock().get(&token.lease_id).cloned() else { return Ok(false) };
    if inner.job_id != token.job_id {
        return Ok(false);
    }
    shard.mirror.set_progress(&inner, progress).await
}

/// Of this engine's leases `tokens`, those whose job has a cancel request.
pub async fn cancel_requested(session: &Session, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
    // Per shard: (outer, inner) pairs.
    type Pairs = Vec<(LeaseToken, LeaseToken)>;
    let mut per_shard: Vec<(Arc<Shard>, Pairs)> = Vec::new();
    {
        let leases = session.leases.lock();
        for token in tokens {
            let Some((shard, inner)) = leases.get(&token.lease_id) else { continue };
            if inner.job_id != token.job_id {
                continue;
            }
            match per_shard.iter_mut().find(|(s, _)| Arc::ptr_eq(s, shard)) {
                Some((_, pairs)) => pairs.push((token.clone(), inner.clone())),
                None => per_shard.push((shard.clone(), vec![(token.clone(), inner.clone())])),
            }
        }
    }
    let mut requested = Vec::new();
    for (shard, pairs) in per_shard {
        let inners: Vec<LeaseToken> = pairs.iter().map(|(_, i)| i.clone()).collect();
        let marked = shard.mirror.cancel_requested(&inners).await?;
        requested.extend(pairs.into_iter().filter(|(_, i)| marked.contains(i)).map(|(o, _)| o));
    }
    Ok(requested)
}

/// Forgets the kept jobs of this engine's shards whose time is over: the mirror's, and
/// their messages (acked).
pub async fn expire_finished(session: &Session, now: Millis) -> Result<u64, StoreError> {
    let mut n = 0;
    for queue in session.known_queues() {
        for shard in session.known(&queue).iter().flat_map(|s| s.iter()) {
            if !shard.is_active() {
                continue;
            }
            let effects = {
                let _order = shard.order.lock();
                let mut changes = Vec::new();
                n += shard.mirror.expire_finished_with(now, &mut |c| changes.extend(ChangeOwned::from_change(c)));
                shard.effects(changes, &session.names, || 0)
            };
            if !effects.is_empty() {
                finish::apply(session, shard, effects).await?;
            }
        }
    }
    Ok(n)
}

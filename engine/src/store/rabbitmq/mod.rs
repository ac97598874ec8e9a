//! `rabbitmq`: several engines share one RabbitMQ, with publisher confirms and the full
//! named-queue semantics (retries on the exact backoff table, FIFO groups, DLQ, stats).
//!
//! **Invariant: every job the store acknowledged is a persistent, confirmed message in a
//! durable quorum queue until it completes or is discarded, and the message carries the
//! job's whole state (attempts, last error, due time).** Each queue is split into
//! [`topology::SHARDS`] shard queues with `x-single-active-consumer`: the broker lets one
//! engine at a time consume a shard, and that engine (the shard's *owner*) holds all the
//! shard's messages unacked and mirrors them in a [`crate::store::memory::MemoryStore`],
//! which decides leases, FIFO gates, due times and stats exactly as the in-memory store
//! does (see [`shard`]). A push broker has no random access, no shared counters and no
//! "list the DLQ", so those live with the owner: the broker is the durable log, the
//! owner's mirror the index.
//!
//! # Enabling it
//!
//! ```yaml
//! adapter:
//!   name: rabbitmq
//!   config:
//!     amqp_url: "${AMQP_URL:amqp://guest:guest@127.0.0.1:5672/%2f}"
//!     key_prefix: switchyard      # default; engines sharing jobs use the same prefix
//! ```
//!
//! Needs RabbitMQ 3.10 or later (quorum queues with single active consumer); no plugin,
//! policy or broker setting. Topology ([`topology`]) is declared by every engine on start
//! for the queues of its config, idempotently; an object of the same name declared
//! otherwise stops start-up with a clear error.
//!
//! # How the promises map onto the broker
//!
//! 1. **Enqueue** publishes one message per job (`mandatory`, persistent) to the shard of
//!    its group (or of its id) and answers once the broker confirms every one. A broker
//!    that is down, refuses or has no such queue is `UNAVAILABLE`, never a receipt. When
//!    this engine owns that shard, the enqueue also waits until its own consumer has the
//!    job, so the engine's next lease sees it.
//!    A delayed enqueue's `not_before` travels in the message, so the owner's mirror holds
//!    it as delayed (a FIFO one keeps its place in its group) and a new owner still does.
//!    An enqueue with an idempotency key first claims the key on the broker ([`dedup`]:
//!    one tiny classic queue per live key, `x-max-length: 1` with `reject-publish`, so the
//!    broker's confirm decides which engine is first); a duplicate publishes nothing.
//! 2. **Lease** asks the mirrors of the shards this engine owns; `concurrency` is the
//!    dispatcher's, per engine. Jobs of shards another engine owns run there.
//! 3. **Retry** (exact due time from the dispatcher's backoff table, cap and jitter
//!    included): the owner publishes the job's next version with its attempts, error and
//!    due time, and acks the previous one once that is confirmed; the mirror holds it
//!    until due. A FIFO head waiting for its retry keeps its place (its order key is its
//!    enqueue time, not its place in the queue), so its group's later jobs wait behind it
//!    while other groups run. Attempts survive redelivery and restarts because they are in
//!    the message; an interrupted attempt was never written, so it is not counted.
//! 4. **Dead-letter**: the next version goes to `P.Q.dead` (confirmed), then the live one
//!    is acked. Inspection, redrive and discard: [`dead`].
//! 5. **An engine dies** (`kill -9`, lost network): the broker returns its unacked
//!    messages and activates another engine's consumer, which catches up (see [`shard`])
//!    and runs them; the interrupted attempts are not counted.
//! 6. **Outage**: the session ([`session`]) fails on the first connection error; calls
//!    answer `UNAVAILABLE` and health is NOT_SERVING until the store has reconnected (it
//!    retries with a backoff up to 2 s), redeclared and resubscribed by itself.
//! 7. **The job lifecycle** ([`lifecycle`]): `get_job` and `cancel` are answered by the
//!    owner of the job's shard, from its mirror — asked over the broker ([`control`]) when
//!    it is another engine — or from the DLQ; never a guessed "not found" for a shard
//!    without an owner right now (`UNAVAILABLE`). A kept job (a completion on a queue with
//!    `result_retention_ms`, a cancel) is the job's next version, with its end and until
//!    when, acked once that time is over; a cancel request on a job in flight is written
//!    too, so a new owner never runs it again. Priorities travel in the message and the
//!    mirror orders by them. Progress and cancel requests are read on the owner's mirror
//!    (only the owner leases). Rate limits: [`rate`], each engine its share by shards owned.
//!
//! # Costs
//!
//! - Groups map onto shards by a fixed hash, and a shard has one owner: FIFO holds across
//!   engines because one engine decides for a group at a time. Parallelism across engines
//!   is per shard: live engines take the shards in turn ([`presence`]); an owner hands a
//!   shard over only with nothing of it in flight. Every engine accepts enqueues and Queues
//!   calls; a job runs on the engine owning its shard — connect workers to every engine.
//! - The owner holds every message of its shards unacked (the broker keeps them in its
//!   memory as well as on disk) and a mirror record per job (~100 bytes plus payload).
//! - **Backlog limit:** "every message" up to [`shard::MIRRORED_PER_SHARD`] (65,535, AMQP's
//!   largest prefetch) per shard. Beyond it the broker keeps the rest safely but the owner
//!   sees only the oldest that many: stats count those, and an enqueue onto that shard waits
//!   (up to 10 s) for an arrival that comes only as older jobs end.
//! - A retry or dead-lettering costs a confirmed publish; a completion one ack, or a
//!   confirmed publish and an ack on a queue that keeps results (and one more ack at expiry);
//!   a cancel one confirmed publish. Kept jobs count against the backlog limit above until
//!   they expire. A `get_job` or `cancel` through an engine not owning the job's shard costs
//!   a round trip to the owner; a miss costs a marker round trip per owned shard (see
//!   [`shard`], step 7) and a look at the DLQ (one passive declare when it is empty).
//! - An idempotency key costs one classic queue on the broker while it lives (deleted by the
//!   broker a minute after its window) and two round trips per keyed enqueue, three for a
//!   duplicate ([`dedup`]).
//! - `ListQueues` counts the jobs of the shards this engine owns (exact there), the other
//!   owners' last announcement for the rest, and the DLQ's ready messages; the counters (`enqueued`, `completed`, `failed`,
//!   `dead_lettered`) are the owner's, written to the shard every second: a killed owner
//!   loses up to a second of counts, never a job.
//!
//! # Why lapin
//!
//! `lapin` is the maintained AMQP 0-9-1 client for Rust (publisher confirms, consumers as
//! streams, `basic.get`, connection events) and runs on tokio through its `tokio`
//! feature; it is built without TLS features (loopback brokers and TLS-terminating
//! proxies are what we run against; `store::check` refuses `amqps://`).

mod cleanup;
mod codec;
mod control;
mod dead;
mod dedup;
mod finish;
mod lifecycle;
mod presence;
mod rate;
mod session;
mod shard;
mod topology;

use crate::clock::Millis;
use crate::queue::{Enqueued, Job, JobId, NewJob, Progress};
use crate::store::{
    CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError,
};
use async_trait::async_trait;
use codec::{JobMsg, Msg};
use parking_lot::RwLock;
use session::Session;
use shard::Shard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use topology::Names;

/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// The RabbitMQ store. See the module doc.
pub struct RabbitStore {
    inner: Arc<Inner>,
    gate: Arc<rate::ShareGate>,
}

struct Inner {
    url: String,
    names: Names,
    session: RwLock<Option<Arc<Session>>>,
    changed: Arc<Notify>,
    /// Queues to declare again after a reconnect.
    queues: parking_lot::Mutex<std::collections::BTreeSet<String>>,
    /// The idempotency claim queues this store declared (tests clean up with them).
    claims: parking_lot::Mutex<std::collections::BTreeSet<String>>,
    last_dead_seq: AtomicU64,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("RabbitMQ: {e}"))
}

impl RabbitStore {
    /// Connects (failing at once if the broker cannot be reached) and keeps reconnecting
    /// in the background after that.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        let names = Names { prefix: key_prefix.to_string() };
        let changed = Arc::new(Notify::new());
        let first = Session::connect(url, names.clone(), changed.clone()).await?;
        let inner = Arc::new(Inner {
            url: url.to_string(),
            names,
            session: RwLock::new(Some(first.clone())),
            changed,
            queues: parking_lot::Mutex::new(Default::default()),
            claims: parking_lot::Mutex::new(Default::default()),
            last_dead_seq: AtomicU64::new(0),
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), first));
        let gate = Arc::new(rate::ShareGate::new(Arc::downgrade(&inner)));
        Ok(Self { inner, gate })
    }

    fn session(&self) -> Result<Arc<Session>, StoreError> {
        match &*self.inner.session.read() {
            Some(s) if !s.is_failed() => Ok(s.clone()),
            _ => Err(StoreError::Unavailable("RabbitMQ: not connected (reconnecting)".into())),
        }
    }

    async fn shards(&self, queue: &str, wait: bool) -> Result<(Arc<Session>, session::Shards), StoreError> {
        let session = self.session()?;
        self.inner.queues.lock().insert(queue.to_string());
        let shards = session.ensure(queue, wait).await?;
        Ok((session, shards))
    }

    fn notify(&self) {
        self.inner.changed.notify_waiters();
        self.inner.changed.notify_one();
    }

    fn dead_seq(&self) -> u64 {
        // Microseconds, strictly increasing within the process: the DLQ's order.
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
        let mut last = self.inner.last_dead_seq.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.inner.last_dead_seq.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// Keeps a session: writes counters while it lives, and replaces it when it fails.
async fn supervise(inner: Weak<Inner>, mut current: Arc<Session>) {
    let mut wait = Duration::from_millis(100);
    loop {
        {
            let watched = current.clone();
            let failed = watched.failed_notify.notified();
            tokio::pin!(failed);
            failed.as_mut().enable();
            let mut tick = tokio::time::interval(presence::EVERY);
            let mut last_counters = std::time::Instant::now();
            while !watched.is_failed() {
                tokio::select! {
                    _ = &mut failed => break,
                    _ = tick.tick() => {
                        if inner.strong_count() == 0 {
                            watched.close().await;
                            return;
                        }
                        presence::tick(&watched).await;
                        if last_counters.elapsed() >= shard::COUNTERS_EVERY {
                            last_counters = std::time::Instant::now();
                            write_counters(&watched).await;
                        }
                    }
                }
            }
        }
        let Some(strong) = inner.upgrade() else { return };
        *strong.session.write() = None;
        current.close().await;
        drop(strong);
        loop {
            tokio::time::sleep(wait).await;
            let Some(strong) = inner.upgrade() else { return };
            let (url, names, changed) = (strong.url.clone(), strong.names.clone(), strong.changed.clone());
            let queues: Vec<String> = strong.queues.lock().iter().cloned().collect();
            drop(strong);
            match reconnect(&url, names, changed, &queues).await {
                Ok(session) => {
                    let Some(strong) = inner.upgrade() else {
                        session.close().await;
                        return;
                    };
                    tracing::info!("RabbitMQ session restored");
                    *strong.session.write() = Some(session.clone());
                    strong.changed.notify_waiters();
                    strong.changed.notify_one();
                    current = session;
                    wait = Duration::from_millis(100);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "RabbitMQ reconnect failed");
                    wait = (wait * 2).min(RECONNECT_MAX);
                }
            }
        }
    }
}

/// Gives up the claims of an enqueue whose jobs were not all published.
async fn release_claims(session: &Arc<Session>, claimed: &[(String, crate::queue::Dedup)]) {
    for (queue, d) in claimed {
        dedup::release(session, queue, &d.key, d.window_ms).await;
    }
}

async fn reconnect(
    url: &str,
    names: Names,
    changed: Arc<Notify>,
    queues: &[String],
) -> Result<Arc<Session>, StoreError> {
    let session = Session::connect(url, names, changed).await?;
    for q in queues {
        if let Err(e) = session.ensure(q, false).await {
            session.close().await;
            return Err(e);
        }
    }
    Ok(session)
}

async fn write_counters(session: &Arc<Session>) {
    for queue in session.known_queues() {
        let Some(shards) = session.known(&queue) else { continue };
        for shard in shards.iter() {
            if let Some(msg) = shard.counters_due()
                && let Err(e) = session.publish(&shard.name, &msg).await
            {
                tracing::warn!(queue = %shard.name, error = %e, "could not write counters");
            }
        }
    }
}

#[async_trait]
impl Store for RabbitStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        let mut arrivals = Vec::new();
        let mut publishes = Vec::with_capacity(jobs.len());
        let mut answers = Vec::with_capacity(jobs.len());
        let mut claimed = Vec::new();
        let mut session = None;
        for new in jobs {
            let (s, shards) = self.shards(&new.queue, true).await?;
            if let (Some(d), Some(expires_at)) = (&new.dedup, new.dedup_expires_at()) {
                // Claimed in order, before any publish: a batch's second use of a key finds
                // the first's claim.
                self.inner.claims.lock().insert(dedup::name(&s.names, &new.queue, &d.key, d.window_ms.max(1)));
                match dedup::claim(&s, &new.queue, &d.key, &new.id, d.window_ms, new.enqueued_at, expires_at).await {
                    Ok(dedup::Claim::First) => claimed.push((new.queue.clone(), d.clone())),
                    Ok(dedup::Claim::Duplicate(first)) => {
                        answers.push(Enqueued::duplicate_of(first));
                        continue;
                    }
                    Err(e) => {
                        release_claims(&s, &claimed).await;
                        return Err(e);
                    }
                }
            }
            answers.push(Enqueued::created(new.id.clone()));
            let shard = shards[Names::shard_of(new.group.as_deref(), &new.id)].clone();
            arrivals.extend(shard.expect(&new.id));
            let msg = JobMsg {
                order_at: new.enqueued_at,
                id: new.id,
                queue: new.queue,
                function_id: new.function_id,
                payload: new.payload,
                group: new.group,
                enqueued_at: new.enqueued_at,
                version: 0,
                attempts: 0,
                due_at: None,
                last_error: None,
                dead: None,
                not_before: new.not_before,
                priority: new.priority,
                end: None,
            };
            let s2 = s.clone();
            publishes.push(async move { s2.publish(&shard.name, &Msg::Job(msg)).await });
            session = Some(s);
        }
        let published: Result<Vec<()>, StoreError> = futures::future::join_all(publishes).await.into_iter().collect();
        if let Err(e) = published {
            if let Some(s) = &session {
                release_claims(s, &claimed).await;
            }
            return Err(e);
        }
        drop(session);
        for arrival in arrivals {
            let _ = tokio::time::timeout(Duration::from_secs(10), arrival).await;
        }
        Ok(answers)
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        let (session, shards) = self.shards(&request.queue, false).await?;
        let mut got: Vec<(Arc<Shard>, Lease)> = Vec::new();
        let mut contributing = 0;
        for shard in shards.iter().filter(|s| s.leases()) {
            let leases = shard.mirror.lease(request.clone()).await?;
            contributing += usize::from(!leases.is_empty());
            got.extend(leases.into_iter().map(|l| (shard.clone(), l)));
        }
        if contributing > 1 {
            // Highest priority first, then oldest, across shards, within the request's max
            // and budgets (each mirror already ordered its own so).
            let key = |l: &Lease| (std::cmp::Reverse(l.job.priority), l.job.enqueued_at, l.job.id.clone());
            got.sort_by_key(|(_, l)| key(l));
        }
        let mut budgets: std::collections::HashMap<&str, usize> =
            request.functions.iter().map(|(f, b)| (f.as_str(), *b)).collect();
        let mut out = Vec::new();
        let mut leases = session.leases.lock();
        for (shard, lease) in got {
            let budget = budgets.get_mut(lease.job.function_id.as_str());
            match budget {
                Some(b) if *b > 0 && out.len() < request.max => {
                    *b -= 1;
                    let id = session.nonce();
                    leases.insert(id, (shard, lease.token));
                    out.push(Lease {
                        token: LeaseToken { job_id: lease.job.id.clone(), lease_id: id },
                        job: lease.job,
                    });
                }
                _ => {
                    shard.mirror.finish_with(&lease.token, Finish::Release, &mut |_| {});
                }
            }
        }
        Ok(out)
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        self.finish_many(vec![(token.clone(), finish)]).await.remove(0)
    }

    async fn finish_many(&self, ends: Vec<(LeaseToken, Finish)>) -> Vec<Result<bool, StoreError>> {
        let n = ends.len();
        let Ok(session) = self.session() else {
            // The session that leased these is gone: so are its leases.
            return (0..n).map(|_| Ok(false)).collect();
        };
        let mut answers: Vec<Result<bool, StoreError>> = (0..n).map(|_| Ok(false)).collect();
        // Per shard, in order: (answer slot, inner token, finish).
        let mut per_shard: Vec<(Arc<Shard>, Vec<usize>, Vec<(LeaseToken, Finish)>)> = Vec::new();
        {
            let mut leases = session.leases.lock();
            for (i, (token, finish)) in ends.into_iter().enumerate() {
                let Some((shard, inner)) = leases.remove(&token.lease_id) else { continue };
                if inner.job_id != token.job_id {
                    leases.insert(token.lease_id, (shard, inner));
                    continue;
                }
                match per_shard.iter_mut().find(|(s, _, _)| Arc::ptr_eq(s, &shard)) {
                    Some((_, slots, ends)) => {
                        slots.push(i);
                        ends.push((inner, finish));
                    }
                    None => per_shard.push((shard, vec![i], vec![(inner, finish)])),
                }
            }
        }
        for (shard, slots, ends) in per_shard {
            match finish::finish_on(&session, &shard, ends, || self.dead_seq()).await {
                Ok(done) => {
                    for (slot, ok) in slots.into_iter().zip(done) {
                        answers[slot] = Ok(ok);
                    }
                }
                Err(e) => {
                    for slot in slots {
                        answers[slot] = Err(StoreError::Unavailable(e.to_string()));
                    }
                }
            }
        }
        self.notify();
        answers
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let (_, shards) = self.shards(queue, false).await?;
        let mut next: Option<Millis> = None;
        for shard in shards.iter() {
            if let Some(due) = shard.mirror.next_due(queue).await? {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        Ok(next)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let session = self.session()?;
        let mut total = QueueStats::default();
        for (index, shard) in session.known(queue).iter().flat_map(|s| s.iter().enumerate()) {
            // A shard another engine owns: what its owner last announced.
            let s = match shard.is_active() {
                true => shard.mirror_stats(),
                false => session.presence.remote(&session.id, queue, index).unwrap_or_default().stats,
            };
            total.ready += s.ready;
            total.delayed += s.delayed;
            total.in_flight += s.in_flight;
            total.enqueued += s.enqueued;
            total.completed += s.completed;
            total.failed += s.failed;
            total.dead_lettered += s.dead_lettered;
        }
        let channel = session.channel().await?;
        total.dead = topology::ready_count(&channel, &session.names.dead(queue)).await?;
        let _ = channel.close(200, "counted".into()).await;
        Ok(total)
    }

    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let session = self.session()?;
        let known = session.known(queue);
        let oldest = known.iter().flat_map(|s| s.iter().enumerate()).filter_map(|(index, shard)| {
            match shard.is_active() {
                true => shard.mirror_oldest_ready(),
                // A shard another engine owns: what its owner last announced.
                false => session.presence.remote(&session.id, queue, index).and_then(|r| r.oldest_ready),
            }
        });
        let oldest = oldest.min();
        Ok(oldest)
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let after = crate::store::dead_letter_cursor(cursor)?;
        let (session, _) = self.shards(queue, false).await?;
        dead::list(&session, queue, after, limit).await
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        let (session, _) = self.shards(queue, false).await?;
        let n = dead::redrive(&session, queue, ids, now).await?;
        if n > 0 {
            self.notify();
        }
        Ok(n)
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        let (session, _) = self.shards(queue, false).await?;
        dead::discard(&session, queue, ids).await
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        let session = self.session()?;
        session.leases.lock().clear();
        let mut n = 0;
        for queue in session.known_queues() {
            for shard in session.known(&queue).iter().flat_map(|s| s.iter()) {
                n += shard.mirror.recover().await?;
            }
        }
        if n > 0 {
            self.notify();
        }
        Ok(n)
    }

    async fn declare(&self, queues: &[String]) -> Result<(), StoreError> {
        for q in queues {
            self.shards(q, false).await?;
        }
        Ok(())
    }

    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        // A first use waits for this engine's shards to catch up, as an enqueue does.
        let (session, _) = self.shards(queue, true).await?;
        lifecycle::get_job(&session, queue, id, now).await
    }

    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError> {
        let (session, _) = self.shards(queue, true).await?;
        let outcome = lifecycle::cancel(&session, queue, id, at, until).await?;
        self.notify();
        Ok(outcome)
    }

    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        match self.session() {
            Ok(session) => lifecycle::set_progress(&session, token, progress).await,
            Err(_) => Ok(false), // the session that leased it is gone: so is the lease
        }
    }

    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        lifecycle::cancel_requested(&*self.session()?, tokens).await
    }

    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        lifecycle::expire_finished(&*self.session()?, now).await
    }

    fn rate_gate(&self) -> Arc<dyn crate::limits::rate::RateGate> {
        self.gate.clone()
    }

    fn changed(&self) -> Arc<Notify> {
        self.inner.changed.clone()
    }

    fn stall(&self) -> Option<String> {
        self.session().err().map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;

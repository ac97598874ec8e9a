//! One shard queue as its owner sees it: the broker's messages, mirrored in a
//! [`MemoryStore`] that decides every lease, FIFO gate and stat.
//!
//! Invariant: **while this engine's consumer is the shard's single active consumer, it
//! holds every message of the shard unacked, and the mirror holds exactly the jobs those
//! messages describe** — one live job per id, from its highest version. A message is acked
//! only once the job it describes is finished (completed, or moved to the DLQ), or once a
//! newer version of it is confirmed by the broker. So whatever happens to this engine, the
//! broker still has every job it acknowledged, with its attempts and last error.
//!
//! Protocol:
//! 1. Subscribing publishes a *marker* (this engine, a fresh nonce) to the shard. Only the
//!    active consumer receives messages, so receiving anything means this engine is the
//!    owner; the shard is *caught up* once its own marker comes back, because everything
//!    that was in the queue — including the unacked messages of an owner that died, which
//!    the broker returns before it activates the next consumer — is delivered before it.
//!    A delivery while not caught up with the last marker older than [`REMARK`] publishes a
//!    new marker (the first one went to the previous owner while this engine waited).
//! 2. Catching up sorts the jobs by `(order_at, id)` (their place in the shard, whatever
//!    order the broker returned them in), keeps each id's highest version (acking the
//!    others), and restores them into a fresh mirror with the newest counters message.
//! 3. Once caught up, a new job message is enqueued in the mirror at its tail; a message
//!    for a job the mirror holds is the next version the owner itself published (its tag
//!    is recorded), or a stale copy (acked).
//! 4. Finishing an attempt applies it to the mirror first, then to the broker: complete →
//!    ack; retry → publish version n+1 with attempts, error and due time, and ack version
//!    n once the broker confirms it; dead-letter → publish to the DLQ, confirmed, then ack.
//!    A job finished before its newest copy came back is remembered and that copy is acked
//!    when it arrives.
//! 5. Every [`COUNTERS_EVERY`] a changed shard publishes its counters and acks the previous
//!    counters message once the new one is back.
//! 6. A job kept after its end — completed on a queue with `result_retention_ms`, or
//!    cancelled — is a message too: its end publishes version n+1 saying so (with the
//!    result, and until when), version n is acked once that is confirmed, and the kept
//!    version is acked once its time is over (the mirror's `expire_finished`). A completion without
//!    retention stays one ack. A cancel request on a job in flight publishes version n+1 as
//!    cancelled, so a new owner after a crash never runs it again; the attempt's end then
//!    publishes what the job became (completed, or cancelled). Two or more jobs kept by
//!    one change (a worker's batch of results) go out as one *kept batch* message, whose
//!    tag their held entries share; it is acked once the last of them lets go (expired,
//!    or replaced). A new owner restores every job of a batch it receives, including those
//!    already expired — they are gone at their `expires_at` and forgotten by the next
//!    expiry.
//! 7. A lookup that misses (`get_job`, `cancel`) first makes sure the mirror has seen every
//!    message confirmed before it: it publishes a marker and waits for it to come back (a
//!    queue delivers in order), then looks again — so a job enqueued through another engine
//!    a moment ago is found, not reported unknown.
//!
//! A shard leaves its owner only by closing its channel: when it is handed to another engine
//! (`presence`, only with nothing in flight) or when the connection is lost (every shard,
//! mirrors dropped).

mod effects;

pub use effects::{ChangeOwned, Effect};

use super::codec::{self, JobMsg, Msg};
use crate::clock::Millis;
use crate::queue::{JobId, NewJob};
use crate::store::memory::{MemoryStore, Restored};
use crate::store::{QueueStats, Store, StoreError};
use foldhash::HashMap;
use futures::{FutureExt, StreamExt};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};

/// The most messages of one shard its owner holds (and mirrors) at once: AMQP's largest
/// prefetch. A shard with more waiting shows its owner only the oldest this many; the rest
/// arrive as those are acked (see the module doc of `rabbitmq`: backlog limit).
pub const MIRRORED_PER_SHARD: u16 = u16::MAX;
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

/// How long a marker may be away before a delivery asks for another.
const REMARK: Duration = Duration::from_millis(500);
/// How often a shard with changed counters writes them.
pub const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// A shard: its consumer channel (acks go there), its mirror, and what the consumer knows.
pub struct Shard {
    pub queue: String,
    pub name: String,
    pub mirror: MemoryStore,
    channel: Channel,
    engine: String,
    state: Mutex<State>,
    /// Notified when the shard is caught up.
    pub caught_up: Notify,
    /// Leases nothing more: being handed to another engine (see `presence`).
    draining: AtomicBool,
    /// Its channel was closed on purpose; its consumer's end is no failure.
    retired: AtomicBool,
    /// Held from a mirror change to its [`Shard::effects`], so versions are numbered in the
    /// order the mirror changed (a cancel racing a completion on another thread).
    pub order: Mutex<()>,
}

#[derive(Default)]
struct State {
    phase: Phase,
    /// The current copy of every live job (and of finished jobs whose copy is in transit).
    held: HashMap<JobId, Held>,
    waiters: HashMap<JobId, oneshot::Sender<()>>,
    /// Sync markers on their way back (step 7), by nonce.
    syncs: HashMap<u64, oneshot::Sender<()>>,
    /// The newest counters message: its version and tag.
    counters: (u64, Option<u64>),
    /// Counters written last, to skip unchanged ones.
    written: QueueStats,
    /// Kept-batch messages (step 6) by tag: how many of their jobs are still held by them.
    batches: HashMap<u64, usize>,
}

#[derive(Default)]
enum Phase {
    /// Subscribed, marker `nonce` sent `at`, nothing buffered: the owner, or a standby.
    #[default]
    Subscribed,
    /// Receiving as the owner, not yet caught up: deliveries buffered until marker `nonce`.
    CatchingUp {
        nonce: u64,
        at: Instant,
        buffer: Vec<(u64, Msg)>,
    },
    Active,
}

struct Held {
    version: u32,
    tag: Option<u64>,
    /// Finished in the mirror; ack the copy when it arrives.
    finished: bool,
    /// `tag` is a kept batch's, shared with other jobs (acked when the last lets go).
    shared: bool,
}

impl Held {
    fn new(version: u32, tag: u64) -> Self {
        Self { version, tag: Some(tag), finished: false, shared: false }
    }
}

impl Shard {
    pub fn new(queue: &str, name: String, channel: Channel, engine: &str) -> Self {
        Self {
            queue: queue.to_string(),
            name,
            mirror: MemoryStore::new(),
            channel,
            engine: engine.to_string(),
            state: Mutex::new(State::default()),
            caught_up: Notify::new(),
            draining: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            order: Mutex::new(()),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Closes the consumer's channel: the broker takes every message back.
    pub async fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        let _ = self.channel.close(200, "shard handed over".into()).await;
    }

    /// Leases may come from here: owned, caught up, not being handed over.
    pub fn leases(&self) -> bool {
        self.is_active() && !self.is_draining()
    }

    /// The mirror's stats of this shard (the mirror answers at once).
    pub fn mirror_stats(&self) -> QueueStats {
        self.mirror.stats(&self.queue).now_or_never().and_then(Result::ok).unwrap_or_default()
    }

    pub fn mirror_oldest_ready(&self) -> Option<Millis> {
        self.mirror.oldest_ready(&self.queue).now_or_never().and_then(Result::ok).flatten()
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state.lock().phase, Phase::Active)
    }

    /// Starts consuming; returns the consumer and the marker to publish.
    pub async fn subscribe(&self, nonce: u64) -> Result<(Consumer, Msg), lapin::Error> {
        // The owner holds every message of the shard unacked, so its credit must be as large
        // as the broker allows: a quorum queue gives a consumer without a prefetch only
        // ~2,000 messages (measured: a queue stalled at 8,188 ready jobs over 4 shards).
        self.channel.basic_qos(MIRRORED_PER_SHARD, BasicQosOptions::default()).await?;
        let consumer = self
            .channel
            .basic_consume(self.name.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        let mut st = self.state.lock();
        st.phase = Phase::CatchingUp { nonce, at: Instant::now(), buffer: Vec::new() };
        Ok((consumer, Msg::Marker { engine: self.engine.clone(), nonce }))
    }

    /// Registers a wait for `id`'s arrival in the mirror, if this engine owns the shard.
    pub fn expect(&self, id: &JobId) -> Option<oneshot::Receiver<()>> {
        let mut st = self.state.lock();
        if !matches!(st.phase, Phase::Active) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.insert(id.clone(), tx);
        Some(rx)
    }

    /// Handles one delivery. Returns the acks to send, whether the mirror may have new
    /// ready jobs, and a marker to publish (step 1).
    pub fn deliver(&self, tag: u64, msg: Msg, nonce: impl Fn() -> u64) -> Delivered {
        let mut st = self.state.lock();
        let mut out = Delivered::default();
        if let Phase::Subscribed = st.phase {
            st.phase = Phase::CatchingUp { nonce: nonce(), at: Instant::now(), buffer: Vec::new() };
            if let Phase::CatchingUp { nonce, .. } = st.phase {
                out.marker = Some(Msg::Marker { engine: self.engine.clone(), nonce });
            }
        }
        match &mut st.phase {
            Phase::CatchingUp { nonce: want, at, buffer } => {
                let own = matches!(&msg, Msg::Marker { engine, .. } if *engine == self.engine);
                if own {
                    out.acks.push(tag);
                    let buffer = std::mem::take(buffer);
                    self.catch_up(&mut st, buffer, &mut out);
                    out.woke = true;
                } else {
                    buffer.push((tag, msg));
                    if at.elapsed() >= REMARK {
                        *want = nonce();
                        *at = Instant::now();
                        out.marker = Some(Msg::Marker { engine: self.engine.clone(), nonce: *want });
                    }
                }
            }
            Phase::Active => self.steady(&mut st, tag, msg, &mut out),
            Phase::Subscribed => unreachable!("left above"),
        }
        out
    }

    /// A marker to publish again: catching up with something buffered and the last marker
    /// gone for [`REMARK`] (it went to the owner before this engine).
    pub fn remark(&self) -> Option<Msg> {
        let mut st = self.state.lock();
        let Phase::CatchingUp { nonce, at, buffer } = &mut st.phase else { return None };
        if buffer.is_empty() || at.elapsed() < REMARK {
            return None;
        }
        *nonce += 1;
        *at = Instant::now();
        Some(Msg::Marker { engine: self.engine.clone(), nonce: *nonce })
    }

    /// Step 2: the whole shard is here; rebuild the mirror from it.
    fn catch_up(&self, st: &mut State, buffer: Vec<(u64, Msg)>, out: &mut Delivered) {
        // Each id's highest version: (tag, shared by a kept batch, job).
        let mut newest: HashMap<JobId, (u64, bool, JobMsg)> = HashMap::default();
        let mut counters: Option<(u64, u64, QueueStats)> = None;
        let mut batch_tags = Vec::new();
        let mut offer = |tag: u64, shared: bool, j: JobMsg, acks: &mut Vec<u64>| match newest.get(&j.id) {
            Some((_, _, have)) if have.version >= j.version => acks.extend((!shared).then_some(tag)),
            _ => {
                if let Some((old, old_shared, _)) = newest.insert(j.id.clone(), (tag, shared, j)) {
                    acks.extend((!old_shared).then_some(old));
                }
            }
        };
        for (tag, msg) in buffer {
            match msg {
                Msg::Job(j) => offer(tag, false, j, &mut out.acks),
                Msg::Kept(jobs) => {
                    batch_tags.push(tag);
                    for j in jobs {
                        offer(tag, true, j, &mut out.acks);
                    }
                }
                Msg::Counters { version, stats } => match counters {
                    Some((have, _, _)) if have >= version => out.acks.push(tag),
                    _ => {
                        if let Some((_, old, _)) = counters.replace((version, tag, stats)) {
                            out.acks.push(old);
                        }
                    }
                },
                Msg::Marker { .. } => out.acks.push(tag),
            }
        }
        let mut jobs: Vec<(u64, bool, JobMsg)> = newest.into_values().collect();
        jobs.sort_by(|a, b| (a.2.order_at, &a.2.id).cmp(&(b.2.order_at, &b.2.id)));
        let mut restored = Vec::with_capacity(jobs.len());
        for (i, (tag, shared, j)) in jobs.into_iter().enumerate() {
            if shared {
                *st.batches.entry(tag).or_default() += 1;
            }
            st.held.insert(j.id.clone(), Held { shared, ..Held::new(j.version, tag) });
            restored.push(Restored { job: j.into_job(), seq: i as u64 + 1 });
        }
        // A batch none of whose jobs is current any more is done with.
        out.acks.extend(batch_tags.into_iter().filter(|t| !st.batches.contains_key(t)));
        let floor = restored.len() as u64 + 1;
        let stats = counters.map(|(version, tag, stats)| {
            st.counters = (version, Some(tag));
            st.written = stats;
            stats
        });
        self.mirror.restore(restored, stats.map(|s| vec![(self.queue.clone(), s)]).unwrap_or_default(), floor);
        st.phase = Phase::Active;
        self.caught_up.notify_waiters();
        for (id, tx) in st.waiters.drain() {
            let _ = (id, tx.send(()));
        }
    }

    /// Step 3.
    fn steady(&self, st: &mut State, tag: u64, msg: Msg, out: &mut Delivered) {
        match msg {
            Msg::Marker { engine, nonce } => {
                out.acks.push(tag);
                if engine == self.engine
                    && let Some(tx) = st.syncs.remove(&nonce)
                {
                    let _ = tx.send(());
                }
            }
            Msg::Counters { version, .. } => {
                if version == st.counters.0 {
                    if let Some(old) = st.counters.1.replace(tag) {
                        out.acks.push(old);
                    }
                } else {
                    out.acks.push(tag);
                }
            }
            Msg::Kept(jobs) => {
                let mut members = 0;
                for j in jobs {
                    match st.held.get_mut(&j.id) {
                        Some(held) if j.version == held.version && held.tag.is_none() => {
                            if held.finished {
                                st.held.remove(&j.id);
                            } else {
                                held.tag = Some(tag);
                                held.shared = true;
                                members += 1;
                            }
                        }
                        Some(_) => {} // an older copy: the mirror's is the job
                        None => {
                            // A kept job arriving late (a copy left by a crashed owner).
                            st.held.insert(j.id.clone(), Held { shared: true, ..Held::new(j.version, tag) });
                            self.mirror.restore(vec![Restored { job: j.into_job(), seq: u64::MAX / 2 }], Vec::new(), 0);
                            members += 1;
                        }
                    }
                }
                match members {
                    0 => out.acks.push(tag),
                    n => {
                        st.batches.insert(tag, n);
                    }
                }
            }
            Msg::Job(j) => {
                if let Some(held) = st.held.get_mut(&j.id) {
                    if j.version == held.version && held.tag.is_none() {
                        if held.finished {
                            st.held.remove(&j.id);
                            out.acks.push(tag);
                        } else {
                            held.tag = Some(tag);
                        }
                    } else {
                        // An older copy, or a second copy of a live job: the mirror's is the job.
                        out.acks.push(tag);
                    }
                    return;
                }
                let id = j.id.clone();
                st.held.insert(id.clone(), Held::new(j.version, tag));
                if j.attempts == 0 && j.due_at.is_none() && j.end.is_none() {
                    let new = NewJob {
                        id: j.id,
                        queue: j.queue,
                        function_id: j.function_id,
                        payload: j.payload,
                        group: j.group,
                        enqueued_at: j.enqueued_at,
                        not_before: j.not_before,
                        dedup: None, // claimed on the broker before the publish (see `dedup`)
                        priority: j.priority,
                    };
                    self.mirror.enqueue_with(vec![new], &mut |_| {});
                } else {
                    // A job with history arriving late (a copy left by a crashed owner): as restored.
                    self.mirror.restore(vec![Restored { job: j.into_job(), seq: u64::MAX / 2 }], Vec::new(), 0);
                }
                if let Some(tx) = st.waiters.remove(&id) {
                    let _ = tx.send(());
                }
                out.woke = true;
            }
        }
    }

    /// Step 7: a marker to publish, and its arrival, if this engine owns the shard.
    pub fn sync_marker(&self, nonce: u64) -> Option<(Msg, oneshot::Receiver<()>)> {
        let mut st = self.state.lock();
        if !matches!(st.phase, Phase::Active) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        st.syncs.insert(nonce, tx);
        Some((Msg::Marker { engine: self.engine.clone(), nonce }, rx))
    }

    /// Forgets a sync marker that did not come back in time.
    pub fn forget_sync(&self, nonce: u64) {
        self.state.lock().syncs.remove(&nonce);
    }

    /// The counters message to write, if they changed since the last one (step 5).
    pub fn counters_due(&self) -> Option<Msg> {
        if !self.is_active() {
            return None;
        }
        let stats = self.mirror_stats();
        let counters = QueueStats {
            enqueued: stats.enqueued,
            completed: stats.completed,
            failed: stats.failed,
            dead_lettered: stats.dead_lettered,
            ..Default::default()
        };
        let mut st = self.state.lock();
        if counters == st.written {
            return None;
        }
        st.written = counters;
        st.counters.0 += 1;
        Some(Msg::Counters { version: st.counters.0, stats: counters })
    }

    pub async fn ack(&self, tags: &[u64]) -> Result<(), StoreError> {
        for tag in tags {
            self.channel.basic_ack(*tag, BasicAckOptions::default()).await.map_err(super::unavailable)?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct Delivered {
    pub acks: Vec<u64>,
    pub woke: bool,
    pub marker: Option<Msg>,
}

/// Runs a shard's consumer until it ends (the channel or connection closed).
pub async fn consume(shard: Arc<Shard>, mut consumer: Consumer, session: Arc<super::session::Session>) {
    let mut tick = tokio::time::interval(REMARK);
    loop {
        let delivery = tokio::select! {
            d = consumer.next() => d,
            _ = tick.tick() => {
                if let Some(marker) = shard.remark() {
                    spawn_publish(&session, &shard.name, marker);
                }
                continue;
            }
        };
        let Some(Ok(delivery)) = delivery else { break };
        if shard.retired.load(Ordering::Relaxed) {
            return;
        }
        let tag = delivery.delivery_tag;
        let msg = match codec::decode(&delivery.data) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(queue = %shard.name, error = %e, "dropping a message that is not Switchyard's");
                let _ = shard.ack(&[tag]).await;
                continue;
            }
        };
        let out = shard.deliver(tag, msg, || session.nonce());
        if let Some(marker) = out.marker {
            spawn_publish(&session, &shard.name, marker);
        }
        if shard.ack(&out.acks).await.is_err() {
            break;
        }
        if out.woke {
            session.notify();
        }
    }
    if !shard.retired.load(Ordering::Relaxed) {
        session.fail("a shard consumer ended");
    }
}

fn spawn_publish(session: &Arc<super::session::Session>, to: &str, marker: Msg) {
    let (session, to) = (session.clone(), to.to_string());
    tokio::spawn(async move {
        if let Err(e) = session.publish(&to, &marker).await {
            tracing::warn!(queue = %to, error = %e, "could not publish a catch-up marker");
        }
    });
}

//! `redis`: several engines share one Redis, with the full named-queue semantics (retries,
//! FIFO groups, DLQ, stats) — not publish-only.
//!
//! **Invariant: every transition is one Lua script, so Redis applies it atomically and in
//! one order for every engine.** A job's state is a field of its hash, and the job sits in
//! exactly the one index that matches it ([`keys`] has the layout): `Ready` in its
//! function's ready set, `Delayed` in the delayed set, `InFlight` in the lease set (scored
//! by deadline), `Dead` in the DLQ, `Completed` and `Cancelled` (kept for a while) in the
//! retained index; `Waiting` in none. A FIFO
//! job is also in its group's list until it completes or is dead-lettered, and only the
//! list's head is ever `Ready`, `Delayed` or `InFlight` — so at most one job per group is
//! in flight across all engines, and a group's order holds whichever engine leases.
//!
//! # Enabling it
//!
//! ```yaml
//! adapter:
//!   name: redis
//!   config:
//!     redis_url: redis://127.0.0.1:6379   # default; redis://:password@host:port/db works too
//!     key_prefix: switchyard              # default; engines sharing jobs use the same prefix
//! ```
//!
//! Every engine started with the same `redis_url` and `key_prefix` serves the same queues.
//! `concurrency` stays **per engine**: with three engines and `concurrency: 10`, up to 30
//! jobs of that queue run at once (fifo: up to 30 groups). Needs Redis 5 or later (or a
//! compatible server that runs Lua scripts); not Redis Cluster (the scripts compute their
//! keys, see [`scripts`]).
//!
//! # Delays and idempotency keys
//!
//! A delayed enqueue is in the delayed set from the start (field `nb` keeps its
//! `not_before` while it waits behind its FIFO group's head, so it is delayed, not ready,
//! when its turn comes). An idempotency key is a string `P:q:…:dedup:<key>` set in the
//! enqueue's script (so every engine agrees) to `<expires_at>|<first id>`, with PX = the
//! window for clean-up; it is live while its `expires_at` (the engine clock) is after the
//! new enqueue's time.
//!
//! # The job lifecycle
//!
//! Ready sets are scored by priority band, then enqueue order (`rank` in
//! `scripts/prelude.lua`), so a lease takes the highest priority first. `get_job`, `cancel`,
//! `set_progress`, `cancel_requested` and `expire_finished` are in [`lifecycle`]; the
//! cluster-wide rate limit (one token bucket per queue that every engine takes from) in
//! [`rate`]. A cancel of a job another engine leases is seen by that engine's watch loop
//! (`cancel_requested`, one round trip for all its leases).
//!
//! # Leases across engines
//!
//! 1. Each store instance (one per engine process) has a random engine id.
//! 2. `lease` marks the job `InFlight` with a fresh lease id, the engine id, and a deadline
//!    of Redis-server-time + the lease TTL ([`DEFAULT_LEASE_TTL`], 30 s; set
//!    `SWITCHYARD_REDIS_LEASE_TTL_MS` to change it — every engine should use the same).
//! 3. The store remembers (in process) the leases it handed out and the dispatcher has not
//!    finished yet. A background heartbeat ([`heartbeat`]) pushes their deadlines out every
//!    TTL/3 while the engine lives, however long the attempt runs. A lease the engine lost
//!    track of — its `finish` failed during an outage, or a `lease` reply was lost to a
//!    timeout — is not extended, so it expires and comes back like a dead engine's.
//! 4. A lease whose deadline passed belongs to an engine that died (or lost Redis for
//!    longer than the TTL). Any engine takes it back — in its heartbeat, before each
//!    `lease`, and at start-up (`recover`). **Reclaim makes the job `Ready` again without
//!    counting the attempt**, like [`Store::recover`] after a restart: the engine failed,
//!    not the handler, and retry decisions belong to the dispatcher, which the dead engine
//!    no longer has. A finish from the old engine afterwards carries a stale lease id and
//!    is refused (`Ok(false)`); so delivery stays at-least-once — a job whose engine was
//!    partitioned from Redis for longer than the TTL may run twice.
//! 5. `recover` at start-up releases the leases this instance still holds (only ever
//!    non-empty for an instance that is recovered twice) and reclaims every expired lease.
//!    It never touches the live leases of other engines, so a restarted engine's old jobs
//!    come back one lease TTL after it died.
//!
//! # Wake-ups across engines
//!
//! Scripts `PUBLISH` on `P:changed` whenever jobs may have become ready (enqueue, retry,
//! release, a FIFO successor, redrive, reclaim). Each store subscribes and notifies
//! [`Store::changed`] per message, plus a safety poll every [`SAFETY_POLL`] in case a
//! message is lost while the subscription reconnects.
//!
//! # Outages and durability
//!
//! Every call returns [`StoreError::Unavailable`] while Redis cannot be reached, so the
//! API answers `UNAVAILABLE` and never acknowledges an enqueue that was not stored. The
//! connection manager reconnects in the background and the engine resumes when Redis is
//! back (scripts Redis forgot are loaded again on first use). A reply lost to a timeout
//! is reported as unavailable although the script may have run: the caller retries and
//! the job may exist twice (at-least-once). "Stored" means in Redis memory; what survives
//! a Redis crash is Redis's persistence setting (`appendonly yes` with
//! `appendfsync always` for every acknowledged job, `everysec` to lose at most ~1 s).
//!
//! Deliberately not done: Redis Cluster, engine-id reuse across restarts (a restarted
//! engine waits for its old leases to expire instead), and sharing `concurrency` across
//! engines.

mod decode;
mod heartbeat;
pub mod keys;
mod lifecycle;
mod rate;
mod scripts;
#[cfg(test)]
mod tests;

use super::{CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError};
use crate::clock::Millis;
use crate::limits::rate::RateGate;
use crate::queue::{Enqueued, Job, JobError, JobId, NewJob, Progress};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, ScriptInvocation};
use async_trait::async_trait;
use decode::{Fields, decode};
use keys::Keys;
use parking_lot::Mutex;
use scripts::Scripts;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a lease lives without a heartbeat before other engines take the job back.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// The environment variable that overrides [`DEFAULT_LEASE_TTL`] (milliseconds).
pub const LEASE_TTL_ENV: &str = "SWITCHYARD_REDIS_LEASE_TTL_MS";
/// How often `changed` is notified even without a message.
pub const SAFETY_POLL: Duration = Duration::from_secs(1);

/// Tunables that are not part of the config file.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    pub lease_ttl: Duration,
    pub safety_poll: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self { lease_ttl: DEFAULT_LEASE_TTL, safety_poll: SAFETY_POLL }
    }
}

impl RedisOptions {
    /// The defaults, with the lease TTL from [`LEASE_TTL_ENV`] when set.
    pub fn from_env() -> Result<Self, StoreError> {
        let mut options = Self::default();
        if let Ok(text) = std::env::var(LEASE_TTL_ENV) {
            match text.trim().parse::<u64>() {
                Ok(ms) if ms >= 100 => options.lease_ttl = Duration::from_millis(ms),
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "{LEASE_TTL_ENV}='{text}': expected a lease TTL in milliseconds, at least 100"
                    )));
                }
            }
        }
        Ok(options)
    }
}

/// The Redis store. Dropping it stops its background tasks; its leases then expire.
pub struct RedisStore {
    shared: Arc<Shared>,
    /// Stops every background task (on drop).
    stop: CancellationToken,
    /// Stops only the heartbeat (a child of `stop`), to play a hung engine in tests.
    #[cfg_attr(not(test), allow(dead_code))]
    stop_heartbeat: CancellationToken,
}

/// What the store and its background tasks share.
struct Shared {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    engine_id: String,
    options: RedisOptions,
    changed: Arc<Notify>,
    /// The leases this engine still holds, by job id: handed out by `lease` and not yet
    /// passed to `finish`. Only these are extended by the heartbeat, so a lease the engine
    /// lost track of (a `finish` that failed during an outage, a `lease` reply lost to a
    /// timeout) expires and is reclaimed instead of being kept alive forever.
    held: Mutex<HashMap<JobId, u64>>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn unavailable(what: &'static str) -> impl Fn(RedisError) -> StoreError {
    move |e| StoreError::Unavailable(format!("redis {what}: {e}"))
}

impl RedisStore {
    /// Connects, loads the scripts and starts the background tasks. An unreachable Redis
    /// is an error here (after a few quick retries), not later.
    pub async fn connect(url: &str, key_prefix: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(|e| {
            StoreError::Unavailable(format!("invalid redis_url '{}': {e}", crate::config::redact_url(url)))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let unreachable = |e: RedisError| {
            StoreError::Unavailable(format!("cannot reach Redis at {}: {e}", crate::config::redact_url(url)))
        };
        let mut conn = ConnectionManager::new_with_config(client.clone(), config).await.map_err(unreachable)?;
        let scripts = Scripts::new();
        for (name, script) in scripts.all() {
            script.load_async(&mut conn).await.map_err(|e| {
                StoreError::Unavailable(format!(
                    "loading the '{name}' script into Redis at {}: {e}",
                    crate::config::redact_url(url)
                ))
            })?;
        }
        let shared = Arc::new(Shared {
            conn,
            keys: Keys::new(key_prefix),
            scripts,
            engine_id: uuid::Uuid::now_v7().simple().to_string(),
            options,
            changed: Arc::new(Notify::new()),
            held: Mutex::new(HashMap::new()),
        });
        let stop = CancellationToken::new();
        let stop_heartbeat = stop.child_token();
        tokio::spawn(heartbeat::heartbeat(shared.clone(), stop_heartbeat.clone()));
        tokio::spawn(heartbeat::wake_ups(client, shared.clone(), stop.clone()));
        tokio::spawn(heartbeat::safety_poll(shared.clone(), stop.clone()));
        tracing::info!(prefix = key_prefix, engine = %shared.engine_id, lease_ttl_ms = shared.options.lease_ttl.as_millis() as u64, "redis store connected");
        Ok(Self { shared, stop, stop_heartbeat })
    }

    /// This instance's engine id, as recorded on its leases.
    pub fn engine_id(&self) -> &str {
        &self.shared.engine_id
    }

    /// Plays a hung engine: its leases are no longer extended (tests).
    #[cfg(test)]
    pub(crate) fn stop_heartbeat(&self) {
        self.stop_heartbeat.cancel();
    }
}

impl Shared {
    fn notify(&self) {
        self.changed.notify_waiters();
        self.changed.notify_one();
    }

    /// A script invocation with the key prefix as `ARGV[1]`.
    fn invocation<'a>(&self, script: &'a ::redis::Script) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.arg(self.keys.prefix());
        inv
    }

    /// Extends the held leases and reclaims expired ones; returns how many came back.
    async fn heartbeat_once(&self) -> Result<u64, StoreError> {
        let held = self.held_leases();
        let mut inv = self.invocation(&self.scripts.heartbeat);
        inv.arg(&self.engine_id).arg(self.options.lease_ttl.as_millis() as u64);
        for (id, lease) in &held {
            inv.arg(id).arg(*lease);
        }
        let (reclaimed, lost): (u64, Vec<String>) =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(unavailable("heartbeat"))?;
        if !lost.is_empty() {
            // A lease `finish` let go of meanwhile was ended, not lost: only those still held
            // under the same lease id were taken back.
            let was: HashMap<_, _> = held.into_iter().collect();
            let mut now = self.held.lock();
            let mut taken_back = 0;
            for id in lost {
                if now.get(&id).is_some() && now.get(&id) == was.get(&id) {
                    now.remove(&id);
                    taken_back += 1;
                }
            }
            drop(now);
            if taken_back > 0 {
                tracing::warn!(
                    lost = taken_back,
                    "leases of this engine expired and were taken back (Redis unreachable for longer than the lease TTL?)"
                );
            }
        }
        Ok(reclaimed)
    }

    fn held_leases(&self) -> Vec<(JobId, u64)> {
        self.held.lock().iter().map(|(id, lease)| (id.clone(), *lease)).collect()
    }

    /// Forgets a lease the dispatcher is done with (whatever `finish` answered).
    fn release_hold(&self, token: &LeaseToken) {
        let mut held = self.held.lock();
        if held.get(&token.job_id) == Some(&token.lease_id) {
            held.remove(&token.job_id);
        }
    }
}

fn push_error(inv: &mut ScriptInvocation<'_>, error: &JobError) {
    inv.arg(&error.message).arg(&error.code).arg(&error.stack);
}

#[async_trait]
impl Store for RedisStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.enqueue);
        inv.arg(jobs.len());
        for j in &jobs {
            inv.arg(&j.id).arg(&j.queue).arg(&j.function_id).arg(j.payload.0.as_ref());
            match &j.group {
                Some(g) => inv.arg("1").arg(g),
                None => inv.arg("0").arg(""),
            };
            inv.arg(j.enqueued_at);
            match j.not_before {
                Some(at) => inv.arg(at),
                None => inv.arg(""),
            };
            match (&j.dedup, j.dedup_expires_at()) {
                (Some(d), Some(expires_at)) => inv.arg(&d.key).arg(expires_at).arg(d.window_ms.max(1)),
                _ => inv.arg("").arg(0).arg(0),
            };
            inv.arg(j.priority.min(crate::queue::MAX_PRIORITY));
        }
        let firsts: Vec<String> = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("enqueue"))?;
        if firsts.len() != jobs.len() {
            return Err(StoreError::Corrupt(format!("enqueue answered {} of {} jobs", firsts.len(), jobs.len())));
        }
        s.notify();
        Ok(jobs
            .into_iter()
            .zip(firsts)
            .map(|(j, first)| if first.is_empty() { Enqueued::created(j.id) } else { Enqueued::duplicate_of(first) })
            .collect())
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        let functions: Vec<_> = request.functions.into_iter().filter(|(_, b)| *b > 0).collect();
        if functions.is_empty() || request.max == 0 {
            return Ok(Vec::new());
        }
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.lease);
        inv.arg(&request.queue)
            .arg(request.now)
            .arg(request.max)
            .arg(&s.engine_id)
            .arg(s.options.lease_ttl.as_millis() as u64)
            .arg(functions.len());
        for (f, budget) in &functions {
            inv.arg(f).arg(*budget);
        }
        let rows: Vec<Fields> = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("lease"))?;
        let leases = rows
            .into_iter()
            .map(|row| {
                let (job, lease_id) = decode(row)?;
                Ok(Lease { token: LeaseToken { job_id: job.id.clone(), lease_id }, job })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut held = s.held.lock();
        for l in &leases {
            held.insert(l.token.job_id.clone(), l.token.lease_id);
        }
        Ok(leases)
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.finish);
        inv.arg(&token.job_id).arg(token.lease_id);
        match &finish {
            Finish::Complete => {
                inv.arg("complete");
            }
            Finish::CompleteRetained { result, at, until } => {
                inv.arg("retain").arg(result.0.as_ref()).arg(*at).arg((*until).max(*at));
            }
            Finish::Cancelled { at, until } => {
                inv.arg("cancelled").arg(*at).arg((*until).max(*at));
            }
            Finish::Retry { due_at, error } => {
                inv.arg("retry").arg(*due_at);
                push_error(&mut inv, error);
            }
            Finish::DeadLetter { error, at } => {
                inv.arg("dead").arg(*at);
                push_error(&mut inv, error);
            }
            Finish::Release => {
                inv.arg("release");
            }
        }
        // Let go first (whatever the script answers): a heartbeat running meanwhile then does
        // not mistake the ended lease for one taken back.
        s.release_hold(token);
        let applied: u64 = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("finish"))?;
        if applied == 1 {
            s.notify();
        }
        Ok(applied == 1)
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let s = &self.shared;
        let first: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(s.keys.delayed(queue))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut s.conn.clone())
            .await
            .map_err(unavailable("next_due"))?;
        match first.get(1) {
            None => Ok(None),
            Some(score) => score
                .parse::<f64>()
                .map(|d| Some(d as Millis))
                .map_err(|_| StoreError::Corrupt(format!("due time '{score}' is not a number"))),
        }
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.stats);
        inv.arg(queue);
        let v: Vec<i64> = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("stats"))?;
        let [ready, delayed, in_flight, dead, enqueued, completed, failed, dead_lettered] =
            <[i64; 8]>::try_from(v).map_err(|v| StoreError::Corrupt(format!("stats reply of {} values", v.len())))?;
        let n = |x: i64| x.max(0) as u64;
        Ok(QueueStats {
            ready: n(ready),
            delayed: n(delayed),
            in_flight: n(in_flight),
            dead: n(dead),
            enqueued: n(enqueued),
            completed: n(completed),
            failed: n(failed),
            dead_lettered: n(dead_lettered),
        })
    }

    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.oldest_ready);
        inv.arg(queue);
        let at: Option<u64> = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("oldest_ready"))?;
        Ok(at)
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let after = super::dead_letter_cursor(cursor)?;
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.dead_letters);
        inv.arg(queue).arg(after).arg(limit);
        let (more, last, rows): (u64, String, Vec<Fields>) =
            inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("dead_letters"))?;
        let entries = rows.into_iter().map(|r| decode(r).map(|(job, _)| job)).collect::<Result<Vec<_>, _>>()?;
        Ok(DeadLetterPage { entries, next_cursor: (more == 1 && !last.is_empty()).then_some(last) })
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.redrive);
        inv.arg(queue).arg(now);
        for id in ids {
            inv.arg(id);
        }
        let n: u64 = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("redrive"))?;
        if n > 0 {
            s.notify();
        }
        Ok(n)
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        let s = &self.shared;
        let mut inv = s.invocation(&s.scripts.discard);
        inv.arg(queue);
        for id in ids {
            inv.arg(id);
        }
        inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("discard"))
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        let s = &self.shared;
        let held = s.held_leases();
        let mut inv = s.invocation(&s.scripts.recover);
        inv.arg(&s.engine_id);
        for (id, lease) in &held {
            inv.arg(id).arg(*lease);
        }
        let n: u64 = inv.invoke_async(&mut s.conn.clone()).await.map_err(unavailable("recover"))?;
        let mut now = s.held.lock();
        for (id, lease) in held {
            if now.get(&id) == Some(&lease) {
                now.remove(&id);
            }
        }
        drop(now);
        if n > 0 {
            s.notify();
        }
        Ok(n)
    }

    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        self.shared.get_job(queue, id, now).await
    }

    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError> {
        self.shared.cancel(queue, id, at, until).await
    }

    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        self.shared.set_progress(token, progress).await
    }

    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        self.shared.cancel_requested(tokens).await
    }

    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        self.shared.expire_finished(now).await
    }

    fn rate_gate(&self) -> Arc<dyn RateGate> {
        Arc::new(rate::RedisGate { shared: self.shared.clone() })
    }

    fn changed(&self) -> Arc<Notify> {
        self.shared.changed.clone()
    }
}

/// Deletes every key under `key_prefix` (`SCAN` + `DEL`), blocking; returns how many. For
/// tests and for operators retiring a prefix — never while engines use it.
pub fn delete_all_keys(url: &str, key_prefix: &str) -> Result<u64, StoreError> {
    let fail = |e: RedisError| StoreError::Unavailable(format!("deleting keys under '{key_prefix}': {e}"));
    let client = ::redis::Client::open(url).map_err(fail)?;
    let mut con = client.get_connection().map_err(fail)?;
    let pattern = Keys::new(key_prefix).all_pattern();
    let (mut cursor, mut deleted) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .map_err(fail)?;
        if !keys.is_empty() {
            deleted += ::redis::cmd("DEL").arg(&keys).query::<u64>(&mut con).map_err(fail)?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

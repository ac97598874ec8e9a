//! `builtin` / `file_based`: the durable embedded store — the memory store as its index,
//! with every change written behind it to one SQLite database in WAL mode.
//!
//! **Invariant: an enqueue is acknowledged only once its jobs are on disk, and the disk
//! always holds a state the engine passed through.** The jobs live in a
//! [`MemoryStore`](super::memory::MemoryStore), which answers every read and makes every
//! choice (`lease`, `next_due`, `stats`, `dead_letters`, FIFO gating); SQLite is only
//! written while the engine runs, and read once at start-up. Each change the memory store
//! reports — enqueued, completed, retried, dead-lettered, redriven, discarded, finished and
//! kept, cancel-requested, expired — is sent to the writer thread under the memory store's
//! lock, so the journal's order is the order the changes happened in. What is durable when:
//! - **enqueue**: acknowledged after the transaction holding its jobs has committed and
//!   the WAL holding it is fsynced. A job may be leased (even finished) before that
//!   commit lands; delivery is at-least-once, and its later writes queue behind it.
//! - **complete, retry, dead-letter**: written in the next group commit — the next
//!   enqueue's, or within 50 ms when no enqueue comes — and flushed with it; `finish` does
//!   not wait for it (nobody is acknowledged). A crash of the engine (`kill -9`) loses at
//!   most the finishes not yet committed, a power loss the ones not yet flushed; either only
//!   means those jobs run again.
//! - **redrive, discard, cancel**: answered after the commit holding them (an operator or
//!   a producer is told): a job cancelled before it ran stays cancelled across a crash,
//!   and a job whose cancel was requested while in flight comes back `Cancelled` at the
//!   next start-up, not ready (its attempt never reported).
//! - **finished and kept** (a queue's `result_retention_ms`, and cancelled jobs): the row
//!   stays, state completed (with its result) or cancelled, with `finished_at` and
//!   `expires_at`, written like a completion; `GetJob` answers for it after a restart until
//!   it expires, and `expire_finished` deletes the row in the next group commit.
//! - **progress is not written**: it describes a running attempt, and a restart ends every
//!   attempt; it lives in the memory store only.
//! - **leases are not written**: a restart makes every job that was in flight ready again
//!   anyway, with the interrupted attempt not counted, so a lease on disk would say
//!   nothing. A retry's absolute due time, a delayed enqueue's `not_before`, a job's
//!   priority, the idempotency claims (table `dedup`, in the transaction of their job's
//!   row), the DLQ, FIFO order per group (by enqueue order) and the per-queue counters are
//!   all on disk.
//!
//! **A failed commit or fsync stops the store** (fail-stop, as databases do after a failed
//! fsync: retrying one cannot be trusted). The waiters of that batch get
//! [`StoreError::Unavailable`], never an acknowledgement, and so does every later call of
//! any kind, until the engine is restarted; the file keeps the last committed state, which
//! a restart resumes from. Jobs of the failed batch may have been delivered meanwhile
//! (at-least-once); producers that got the error enqueue again.
//!
//! # Enabling it
//!
//! ```yaml
//! adapter:
//!   name: builtin
//!   config:
//!     store_method: file_based
//!     file_path: ./data/queue_store   # a directory; created (with parents) if missing
//! ```
//!
//! `file_path` names a **directory**, not a file, because SQLite in WAL mode keeps three
//! files side by side and the store adds a lock file; a directory keeps them together and
//! makes "back up / delete the store" one path. Inside it:
//! - `switchyard.sqlite3` — the database (plus `-wal` and `-shm` while the engine runs;
//!   copy all of them, or stop the engine first, to back it up);
//! - `switchyard.lock` — held (`flock`) by the running engine, so a second engine on the
//!   same directory refuses to start instead of writing behind the other's back.
//!
//! # How it works
//!
//! 1. Start-up (`schema.rs`, `rows.rs`): open or create the database, migrate an older
//!    schema, read every row and the counters into the memory store
//!    ([`MemoryStore::restore`](super::memory::MemoryStore::restore)): pending jobs are
//!    ready (FIFO heads re-derived by enqueue order), delayed ones keep their due time,
//!    dead ones their DLQ order.
//! 2. Each operation runs on the memory store; its changes go to the writer as owned rows.
//!    `enqueue`, `redrive` and `discard` then send a sync and wait for its answer.
//! 3. The writer thread (`writer.rs`) takes everything queued (lingering up to 50 ms for
//!    more while nobody waits on it), reduces it to one net write per job (a job enqueued
//!    and completed within one batch writes nothing), writes it and the counter increments
//!    in one transaction with cached statements, commits, fsyncs the WAL and answers the
//!    batch's syncs; what arrived meanwhile is the next batch (group commit). SQLite's WAL
//!    recovery keeps a prefix of the committed transactions, so whatever survives a crash
//!    is a state the engine passed through.
//!
//! The schema is one `jobs` table, a row per job keyed by its order number `seq` (the
//! table's integer rowid: the enqueue order, or the DLQ order for a dead job; unique in the
//! store, so new jobs append at the table's end; no other index: nothing queries it while
//! the engine runs) with `state` 1 pending (ready, waiting or in flight), 2 delayed, 4 dead,
//! 5 completed (kept with its `result`), 6 cancelled; plus `counters` (enqueued /
//! completed / failed / dead_lettered per queue). A job that is dead-lettered or redriven
//! gets a new number, so its row moves. `PRAGMA application_id` marks the file as a
//! Switchyard store and `PRAGMA user_version` is its schema version (6): an older file
//! (version 1, the store before the write-behind journal; versions 2 and 3, the same table
//! keyed by id; 4 and 5, before the job lifecycle) is migrated on open, in one transaction,
//! with nothing lost; a file that is not SQLite, another program's database or a newer
//! schema is refused at start-up ([`StoreError::Corrupt`]), never started empty.
//!
//! # Inspecting it
//!
//! With the engine running or not (WAL lets readers in). What is on disk trails the engine
//! by at most one group commit; in-flight jobs show as pending.
//!
//! ```text
//! sqlite3 -readonly data/queue_store/switchyard.sqlite3
//! sqlite> SELECT queue, state, COUNT(*) FROM jobs GROUP BY 1, 2;   -- 1 pending 2 delayed 4 dead 5 completed 6 cancelled
//! sqlite> SELECT * FROM counters;
//! sqlite> SELECT id, grp, attempts, error_message FROM jobs WHERE state = 4 ORDER BY seq;
//! ```
//!
//! Change nothing by hand while the engine runs; use the `Queues` API (redrive, discard).
//!
//! # Deliberately not done
//!
//! - One engine per directory (the lock file enforces it); several engines sharing a store
//!   is what `redis` is for.
//! - No compaction knob: SQLite reuses freed pages; `VACUUM` offline if the file must shrink.
//! - Leases are not written (see above), and lease tokens do not outlive the process: after
//!   a restart nothing holds one.
//! - Every job is held in memory as well as on disk, as with `in_memory` (kept results too:
//!   `result_retention_ms` bounds them).
//! - Rate limits are per engine (the memory store's `LocalGate`), as the store is.

mod pending;
mod rows;
mod schema;
mod writer;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;

use super::memory::{Change, MemoryStore};
use super::{CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError};
use crate::clock::Millis;
use crate::limits::rate::RateGate;
use crate::queue::{Enqueued, Job, JobId, NewJob, Progress};
use async_trait::async_trait;
use pending::Pending;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use writer::{Busy, Failed, Write, Writer};

pub use schema::{DB_FILE, SCHEMA_VERSION};

/// One commit (with its fsync) taking longer than this makes the store report a stall:
/// health NOT_SERVING until it completes. A healthy disk takes milliseconds.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// The lock file a running store holds inside its directory.
pub const LOCK_FILE: &str = "switchyard.lock";

/// The durable store. Dropping it stops the writer once everything queued is committed,
/// and closes the database.
pub struct FileStore {
    db: PathBuf,
    memory: MemoryStore,
    pending: Arc<Pending>,
    writer: Option<JoinHandle<()>>,
    failed: Failed,
    busy: Arc<Busy>,
    /// One commit taking longer than this is a stall ([`Store::stall`]).
    stall_after: Duration,
    _lock: File,
}

impl FileStore {
    /// Opens the store in directory `dir`, creating it (and its parents) and the database
    /// if missing, and loads it. Blocking: call it from `spawn_blocking` in async code.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::Corrupt(format!(
                "file_path {} is a file; it must name a directory (the store keeps {DB_FILE} inside it)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create store directory {}: {e}", dir.display())))?;
        let lock = lock_dir(dir)?;
        let db = dir.join(DB_FILE);
        let conn = schema::open_writer(&db)?;
        let (jobs, counters, claims) = rows::load(&conn).map_err(|e| schema::classify(&db, e))?;
        let loaded = jobs.len();
        let memory = MemoryStore::new();
        memory.restore(jobs, counters, seq_floor());
        memory.restore_claims(claims);
        let wal = schema::open_wal(&db)?;
        let failed = Failed::default();
        let busy = Arc::new(Busy::default());
        let writer = Writer::new(conn, wal, failed.clone(), busy.clone());
        let pending = Arc::new(Pending::default());
        let to_write = pending.clone();
        let thread = std::thread::Builder::new()
            .name("switchyard-store-writer".into())
            .spawn(move || writer.run(&to_write))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer thread: {e}")))?;
        tracing::info!(path = %db.display(), jobs = loaded, "file store open");
        Ok(Self { db, memory, pending, writer: Some(thread), failed, busy, stall_after: STALL_AFTER, _lock: lock })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db
    }

    /// `Unavailable` once a commit has failed (see the module doc).
    fn check(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            None => Ok(()),
            Some(why) => Err(self.stopped(why)),
        }
    }

    fn stopped(&self, why: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "the file store stopped writing ({why}); restart the engine, it resumes from the last commit"
        ))
    }

    /// Queues each change for the writer (called under the memory store's lock, so the
    /// queue's order is the memory store's). A change is refused only once the writer has
    /// stopped, which the caller learns from [`Self::committed`] or the next [`Self::check`].
    fn journal(&self) -> impl FnMut(Change<'_>) + '_ {
        |change| {
            let _ = self.pending.push(Write::from(change));
        }
    }

    /// Waits until everything sent so far is committed.
    async fn committed(&self) -> Result<(), StoreError> {
        let gone = || self.stopped(self.failed.get().map_or("the writer is gone", |s| s.as_str()));
        let (reply, answer) = oneshot::channel();
        self.pending.push(Write::Sync(reply)).map_err(|_| gone())?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(StoreError::Unavailable(why))) => Err(self.stopped(&why)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(gone()),
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // The writer ends once everything queued is committed and flushed.
        self.pending.close();
        if self.writer.take().is_some_and(|writer| writer.join().is_err()) {
            tracing::error!("the store writer thread panicked");
        }
    }
}

/// The order numbers (`seq`: enqueue order, dead-letter order, dead-letter page cursors)
/// of this run start above the wall clock in microseconds. The file keeps only the numbers
/// of the jobs still in it, so after the newest were completed or discarded, counting on
/// from the highest kept would hand out again numbers a client may hold as a cursor. Each
/// run hands out fewer than a million a second, so the numbers of one run stay below the
/// clock at the next start unless the clock was set back.
fn seq_floor() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_micros()).unwrap_or(u64::MAX / 2)
}

#[cfg(unix)]
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor we own; it is released when `file` is closed (also
    // when the process dies).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Unavailable(format!(
            "{} is in use by another switchyard engine ({}: {})",
            dir.display(),
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(file)
}

#[cfg(not(unix))]
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

#[async_trait]
impl Store for FileStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        self.check()?;
        let answers = self.memory.enqueue_with(jobs, &mut self.journal());
        self.committed().await?;
        Ok(answers)
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        self.check()?;
        self.memory.lease(request).await
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.memory.finish_with(token, finish, &mut self.journal()))
    }

    async fn finish_many(&self, ends: Vec<(LeaseToken, Finish)>) -> Vec<Result<bool, StoreError>> {
        if self.check().is_err() {
            // Stopped: each end is refused with the reason, as `finish` refuses it.
            return ends.iter().map(|_| self.check().map(|()| false)).collect();
        }
        self.memory.finish_many_with(ends, &mut self.journal()).into_iter().map(Ok).collect()
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.check()?;
        self.memory.next_due(queue).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        self.check()?;
        self.memory.stats(queue).await
    }

    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.check()?;
        self.memory.oldest_ready(queue).await
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        self.check()?;
        self.memory.dead_letters(queue, cursor, limit).await
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        self.check()?;
        let moved = self.memory.redrive_with(queue, ids, now, &mut self.journal());
        if moved > 0 {
            self.committed().await?;
        }
        Ok(moved)
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        self.check()?;
        let deleted = self.memory.discard_with(queue, ids, &mut self.journal());
        if deleted > 0 {
            self.committed().await?;
        }
        Ok(deleted)
    }

    /// Opening the store already made every job that was in flight ready again (leases are
    /// not written), so this finds none unless called twice in one process.
    async fn recover(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.memory.recover().await
    }

    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        self.check()?;
        self.memory.get_job(queue, id, now).await
    }

    /// Answered once the change is on disk, as an operator's redrive is: a job cancelled
    /// before it ran stays cancelled across a crash, and so does a cancel request.
    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError> {
        self.check()?;
        let outcome = self.memory.cancel_with(queue, id, at, until, &mut self.journal());
        if matches!(outcome, CancelOutcome::Cancelled(_) | CancelOutcome::Cancelling(..)) {
            self.committed().await?;
        }
        Ok(outcome)
    }

    /// Not written: progress describes a running attempt, which a restart ends anyway.
    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        self.check()?;
        self.memory.set_progress(token, progress).await
    }

    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        self.check()?;
        self.memory.cancel_requested(tokens).await
    }

    /// The rows go in the next group commit (nobody waits on it).
    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        self.check()?;
        Ok(self.memory.expire_finished_with(now, &mut self.journal()))
    }

    fn rate_gate(&self) -> Arc<dyn RateGate> {
        self.memory.rate_gate()
    }

    fn changed(&self) -> Arc<Notify> {
        self.memory.changed()
    }

    fn failure(&self) -> Option<String> {
        self.failed.get().cloned()
    }

    fn stall(&self) -> Option<String> {
        let busy = self.busy.for_how_long().filter(|d| *d >= self.stall_after)?;
        Some(format!(
            "one commit to {} has taken {} s so far: the disk is not answering",
            self.db.display(),
            busy.as_secs()
        ))
    }
}

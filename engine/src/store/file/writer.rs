//! The writer: one thread that puts the memory store's changes on disk behind it, in the
//! order they happened.
//!
//! Invariant: a [`Write::Sync`] is answered `Ok` only once every write sent before it is
//! committed and the WAL holding it is fsynced; after a failed commit or fsync nothing more
//! is written and every waiter, then and later, hears an error — never an acknowledgement
//! for something not on disk.
//!
//! The loop, as numbered steps (group commit):
//! 1. take every write queued ([`Pending::take`]): at once when one of them is a sync;
//!    when none is (finishes only: nobody waits), after lingering up to
//!    [`LINGER`](super::pending::LINGER) for one — under load, finishes ride in the next
//!    enqueue's commit instead of paying for one of their own;
//! 2. reduce the batch to its net effect per job, following it through its order numbers
//!    (the rows' key) — its last row image under the number it has now and its old row
//!    deleted if the number changed, or a delete; a job enqueued and completed within the
//!    batch writes nothing at all — and add up the counter increments per queue;
//! 3. one transaction: the deletes, the rows in key order (prepared, cached statements;
//!    new rows append), the counters;
//!    `COMMIT` (the connection runs `synchronous=NORMAL`: the commit writes the WAL and
//!    does not wait for the disk);
//! 4. `fdatasync` the WAL, answer the batch's syncs, and go back to 1. Writes that arrive
//!    meanwhile make the next batch: the busier the store, the larger its commits.
//!
//! One flush covers every transaction committed before it: SQLite's WAL recovery keeps a
//! prefix of the committed transactions, so a flushed transaction survives a crash along
//! with everything before it. (A second thread flushing one commit while the next is
//! written was measured slower on two cores: the thread hand-offs cost more than the
//! overlap saved.)
//!
//! The thread ends when the store closes, after writing and flushing everything queued.

use super::pending::Pending;
use super::rows;
use crate::queue::Job;
use crate::store::StoreError;
use crate::store::memory::{Change, DedupClaim};
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The answer to a [`Write::Sync`].
pub type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Why the store stopped writing, once it has.
pub type Failed = Arc<OnceLock<String>>;

/// What the writer is sent: an owned [`Change`], or a wait for the commit.
#[allow(clippy::large_enum_variant)] // `Put` is most writes: boxing it would cost an allocation each
pub enum Write {
    /// The job's row as it now is, keyed by its order `seq`; `was` is the key its row had
    /// before this change (`None`: the change created the job). Which counters it adds to.
    Put { job: Job, seq: u64, was: Option<u64>, counts: Counts },
    /// The job's row, keyed `seq`, is gone (completed, discarded from the DLQ, or expired
    /// after it was kept).
    Delete { seq: u64, queue: String, completed: bool },
    /// An idempotency key's claim, written with the batch holding its job's row (and every
    /// claim that expired by its `claimed_at` deleted).
    Claim(DedupClaim),
    /// Answer once everything sent before is committed.
    Sync(Reply),
}

/// Counter increments: enqueued, completed, failed, dead_lettered.
pub type Counts = [u64; 4];

impl From<Change<'_>> for Write {
    fn from(change: Change<'_>) -> Self {
        match change {
            Change::Enqueued { job, seq } => Write::Put { job, seq, was: None, counts: [1, 0, 0, 0] },
            Change::Completed { queue, seq, .. } => Write::Delete { seq, queue: queue.into(), completed: true },
            Change::Retried { job, seq } => Write::Put { job, seq, was: Some(seq), counts: [0, 0, 1, 0] },
            Change::DeadLettered { job, dead_seq, was } => {
                Write::Put { job, seq: dead_seq, was: Some(was), counts: [0, 0, 1, 1] }
            }
            Change::Redriven { job, seq, was } => Write::Put { job, seq, was: Some(was), counts: [0; 4] },
            Change::Discarded { queue, seq, .. } => Write::Delete { seq, queue: queue.into(), completed: false },
            Change::Claimed(claim) => Write::Claim(claim),
            Change::Finished { job, seq } => {
                let completed = u64::from(job.state == crate::queue::JobState::Completed);
                Write::Put { job, seq, was: Some(seq), counts: [0, completed, 0, 0] }
            }
            Change::CancelRequested { job, seq, request } => {
                // The row says what the job becomes should its attempt never report.
                let job = Job { finished_at: Some(request.at), expires_at: Some(request.until), ..job };
                Write::Put { job, seq, was: Some(seq), counts: [0; 4] }
            }
            Change::Expired { queue, seq, .. } => Write::Delete { seq, queue: queue.into(), completed: false },
        }
    }
}

pub struct Writer {
    conn: Connection,
    /// The database's WAL, flushed after each commit.
    wal: File,
    failed: Failed,
    busy: Arc<Busy>,
}

/// Since when the writer has been committing and flushing one batch, if it is: what
/// [`FileStore::stall`](super::FileStore) reads.
pub struct Busy {
    /// Milliseconds since `epoch`, plus one; 0 while idle.
    since: AtomicU64,
    epoch: Instant,
}

impl Default for Busy {
    fn default() -> Self {
        Self { since: AtomicU64::new(0), epoch: Instant::now() }
    }
}

impl Busy {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn start(&self) {
        self.since.store(self.now(), Ordering::Relaxed);
    }

    fn end(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    /// How long the current batch has been at it, if one is.
    pub fn for_how_long(&self) -> Option<Duration> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(self.now().saturating_sub(since))),
        }
    }
}

/// One job's net write in a batch: its row as the batch leaves it (`last`, a put) and the
/// key its row had on disk before the batch (`None`: the batch enqueued it).
struct Net<'a> {
    before: Option<u64>,
    last: &'a Write,
}

impl Writer {
    pub fn new(conn: Connection, wal: File, failed: Failed, busy: Arc<Busy>) -> Self {
        Self { conn, wal, failed, busy }
    }

    /// Runs until the store closes (after writing and flushing everything queued) or a
    /// commit or flush fails.
    pub fn run(mut self, pending: &Pending) {
        let _stop = StopOnPanic { pending, failed: self.failed.clone() };
        let mut batch = Vec::new();
        while pending.take(&mut batch) {
            self.busy.start();
            let outcome = self.commit(&batch).and_then(|()| self.wal.sync_data().map_err(Failure::Flush));
            self.busy.end();
            let replies = syncs(batch.drain(..));
            if let Err(e) = outcome {
                // A failed fsync cannot be retried with confidence: what it did not write
                // may be gone from the page cache already. So neither is a failed commit.
                tracing::error!(error = %e, "the store stops writing");
                let why = self.failed.get_or_init(|| e.to_string());
                for reply in replies.chain(syncs(pending.stop())) {
                    let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
                }
                return;
            }
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Writes the net effect of `batch` in one transaction.
    pub(super) fn commit(&mut self, batch: &[Write]) -> Result<(), Failure> {
        // Follow each job through its order numbers: `puts` by the key the job has now,
        // `gone` the on-disk keys of rows to delete.
        let mut puts: BTreeMap<u64, Net<'_>> = BTreeMap::new();
        let mut gone: Vec<u64> = Vec::new();
        let mut claims: Vec<&DedupClaim> = Vec::new();
        let mut counters: HashMap<&str, Counts> = HashMap::new();
        let mut count = |queue, counts: Counts| {
            for (c, n) in counters.entry(queue).or_default().iter_mut().zip(counts) {
                *c += n;
            }
        };
        for write in batch {
            match write {
                Write::Put { job, seq, was, counts } => {
                    count(job.queue.as_str(), *counts);
                    let before = was.and_then(|was| puts.remove(&was).map_or(Some(was), |n| n.before));
                    puts.insert(*seq, Net { before, last: write });
                }
                Write::Delete { seq, queue, completed } => {
                    count(queue.as_str(), [0, u64::from(*completed), 0, 0]);
                    // A job enqueued and gone within the batch writes nothing.
                    gone.extend(puts.remove(seq).map_or(Some(*seq), |n| n.before));
                }
                Write::Claim(claim) => claims.push(claim),
                Write::Sync(_) => {}
            }
        }
        // BEGIN and COMMIT as cached statements, not parsed again for every batch.
        let conn = &self.conn;
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop);
        run("BEGIN").map_err(Failure::Commit)?;
        let written = write_rows(conn, puts, gone, counters)
            .and_then(|()| write_claims(conn, &claims))
            .and_then(|()| run("COMMIT"));
        if written.is_err() {
            let _ = conn.execute_batch("ROLLBACK"); // the store stops anyway; leave no open transaction
        }
        written.map_err(Failure::Commit)
    }
}

/// The statements of one batch's transaction: deletes, then rows in key order (new rows
/// append at the end of the table), then counters.
fn write_rows(
    conn: &Connection,
    puts: BTreeMap<u64, Net<'_>>,
    mut gone: Vec<u64>,
    counters: HashMap<&str, Counts>,
) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached(rows::DELETE)?;
    let mut insert = conn.prepare_cached(rows::INSERT)?;
    let mut update = conn.prepare_cached(rows::UPDATE)?;
    gone.extend(puts.iter().filter_map(|(seq, n)| n.before.filter(|before| before != seq)));
    gone.sort_unstable();
    for seq in gone {
        delete.execute([seq])?;
    }
    for (seq, n) in puts {
        let Write::Put { job, .. } = n.last else { unreachable!("only puts are kept") };
        if n.before == Some(seq) {
            rows::update(&mut update, job, seq)?; // the job keeps its key (retried, cancelled, kept)
        } else {
            rows::insert(&mut insert, job, seq)?;
        }
    }
    let mut add = conn.prepare_cached(rows::ADD_COUNTERS)?;
    for (queue, c) in counters {
        add.execute(rusqlite::params![queue, c[0], c[1], c[2], c[3]])?;
    }
    Ok(())
}

/// The batch's idempotency claims (a later claim on a key replaces an expired one), and
/// the claims expired by the newest one's time forgotten.
fn write_claims(conn: &Connection, claims: &[&DedupClaim]) -> rusqlite::Result<()> {
    let Some(newest) = claims.iter().map(|c| c.claimed_at).max() else { return Ok(()) };
    let mut put = conn.prepare_cached(rows::PUT_CLAIM)?;
    for c in claims {
        put.execute(rusqlite::params![c.queue, c.key, c.job_id, c.expires_at])?;
    }
    conn.prepare_cached(rows::EXPIRE_CLAIMS)?.execute([newest])?;
    Ok(())
}

/// Should the writer panic (a bug), stops the store as a failed commit does, so that no
/// write waits for a writer that is gone.
struct StopOnPanic<'a> {
    pending: &'a Pending,
    failed: Failed,
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let why = self.failed.get_or_init(|| "the store writer failed (panicked)".into());
            for reply in syncs(self.pending.stop()) {
                let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
            }
        }
    }
}

/// The waiters among `writes`.
fn syncs(writes: impl IntoIterator<Item = Write>) -> impl Iterator<Item = Reply> {
    writes.into_iter().filter_map(|w| match w {
        Write::Sync(reply) => Some(reply),
        _ => None,
    })
}

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("could not commit to the store: {0}")]
    Commit(rusqlite::Error),
    #[error("could not flush the store to disk: {0}")]
    Flush(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_writer_stops_the_store_and_answers_its_waiters() {
        let pending = Arc::new(Pending::default());
        let failed = Failed::default();
        let (reply, answer) = oneshot::channel();
        pending.push(Write::Sync(reply)).unwrap();
        let thread = {
            let (pending, failed) = (pending.clone(), failed.clone());
            std::thread::spawn(move || {
                let _stop = StopOnPanic { pending: &pending, failed };
                panic!("a bug in the writer");
            })
        };
        assert!(thread.join().is_err());
        assert!(matches!(answer.blocking_recv(), Ok(Err(StoreError::Unavailable(_)))));
        assert!(pending.push(Write::Sync(oneshot::channel().0)).is_err(), "no later write is taken");
        assert!(failed.get().is_some(), "the store reports the failure (health turns NOT_SERVING)");
    }
}

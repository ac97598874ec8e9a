//! The writer and the syncer: two threads that put the memory store's changes on disk
//! behind it, in the order they happened.
//!
//! Invariant: a [`Write::Sync`] is answered `Ok` only once every write sent before it is
//! committed and the WAL holding it is fsynced; after a failed commit or fsync nothing more
//! is written and every waiter, then and later, hears an error — never an acknowledgement
//! for something not on disk.
//!
//! The writer's loop, as numbered steps (group commit):
//! 1. block for one write, then take every write already queued (up to [`MAX_BATCH`]);
//! 2. reduce the batch to its net effect per job — the last row image, or a delete; a job
//!    enqueued and completed within the batch writes nothing at all — and add up the
//!    counter increments per queue;
//! 3. one transaction: the rows (prepared, cached statements, in id order), the counters;
//!    `COMMIT` (the connection runs `synchronous=NORMAL`: the commit writes the WAL and
//!    does not wait for the disk);
//! 4. hand the batch's syncs to the syncer, and go back to 1 at once.
//!
//! The syncer takes every batch committed since its last round and, when one of them has
//! a sync (or [`FLUSH_EVERY`] after a commit nobody waits for), fsyncs the WAL once
//! (`fdatasync`) and answers them. So the disk flush of one group overlaps the writing of
//! the next, finishes alone do not cost a flush each, and one flush covers every
//! transaction committed before it:
//! SQLite's WAL recovery keeps a prefix of the committed transactions, so a flushed
//! transaction survives a crash along with everything before it.
//!
//! Both threads end when the store drops its sender, after writing and flushing everything
//! queued.

use super::rows;
use crate::queue::{Job, JobId};
use crate::store::StoreError;
use crate::store::memory::Change;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most writes in one transaction; more wait for the next one.
pub const MAX_BATCH: usize = 65_536;

/// The answer to a [`Write::Sync`].
pub type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Why the store stopped writing, once it has.
pub type Failed = Arc<OnceLock<String>>;

/// What the writer is sent: an owned [`Change`], or a wait for the commit.
#[allow(clippy::large_enum_variant)] // `Put` is most writes: boxing it would cost an allocation each
pub enum Write {
    /// The job's row as it now is (with its order, unless a retry kept it), and which
    /// counters that adds to.
    Put { job: Job, seq: Option<u64>, counts: Counts },
    /// The job's row is gone (completed, or discarded from the DLQ).
    Delete { id: JobId, queue: String, completed: bool },
    /// Answer once everything sent before is committed.
    Sync(Reply),
}

/// Counter increments: enqueued, completed, failed, dead_lettered.
pub type Counts = [u64; 4];

impl From<Change<'_>> for Write {
    fn from(change: Change<'_>) -> Self {
        match change {
            Change::Enqueued { job, seq } => Write::Put { job, seq: Some(seq), counts: [1, 0, 0, 0] },
            Change::Completed { id, queue } => Write::Delete { id: id.into(), queue: queue.into(), completed: true },
            // A retried job keeps its enqueue order, which the change does not repeat.
            Change::Retried { job } => Write::Put { job, seq: None, counts: [0, 0, 1, 0] },
            Change::DeadLettered { job, dead_seq } => Write::Put { job, seq: Some(dead_seq), counts: [0, 0, 1, 1] },
            Change::Redriven { job, seq } => Write::Put { job, seq: Some(seq), counts: [0; 4] },
            Change::Discarded { id, queue } => Write::Delete { id: id.into(), queue: queue.into(), completed: false },
        }
    }
}

pub struct Writer {
    conn: Connection,
    failed: Failed,
}

/// One job's net write in a batch.
struct Net<'a> {
    /// Its row did not exist before the batch (the batch enqueued it).
    new: bool,
    /// Its order, if a write of this batch carried one (a retry does not).
    seq: Option<u64>,
    last: &'a Write,
}

impl Writer {
    pub fn new(conn: Connection, failed: Failed) -> Self {
        Self { conn, failed }
    }

    /// Runs until every sender is gone or a commit fails; each committed batch's syncs go
    /// to `synced` (an empty list too: the syncer flushes every commit, soon).
    pub fn run(mut self, writes: Receiver<Write>, synced: Sender<Vec<Reply>>) {
        let mut batch = Vec::new();
        while let Ok(first) = writes.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match writes.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            let outcome = match self.failed.get() {
                Some(why) => Err(why.clone()), // the syncer failed
                None => self.commit(&batch).map_err(|e| {
                    tracing::error!(error = %e, writes = batch.len(), "store commit failed; the store stops writing");
                    let _ = self.failed.set(format!("could not commit to the store: {e}"));
                    self.failed.get().cloned().unwrap_or_default()
                }),
            };
            let replies = batch.drain(..).filter_map(|w| match w {
                Write::Sync(reply) => Some(reply),
                _ => None,
            });
            match outcome {
                Ok(()) => {
                    if let Err(unsent) = synced.send(replies.collect()) {
                        stop(unsent.0, self.failed.get().map_or("the store syncer stopped", |s| s.as_str()));
                        return;
                    }
                }
                Err(why) => {
                    stop(replies.collect(), &why);
                    return; // dropping `writes`: every later send or sync fails
                }
            }
        }
    }

    /// Writes the net effect of `batch` in one transaction.
    pub(super) fn commit(&mut self, batch: &[Write]) -> rusqlite::Result<()> {
        let mut net: BTreeMap<&str, Net<'_>> = BTreeMap::new();
        let mut counters: HashMap<&str, Counts> = HashMap::new();
        for write in batch {
            let (id, queue, counts, seq) = match write {
                Write::Put { job, seq, counts } => (job.id.as_str(), job.queue.as_str(), *counts, *seq),
                Write::Delete { id, queue, completed } => {
                    (id.as_str(), queue.as_str(), [0, u64::from(*completed), 0, 0], None)
                }
                Write::Sync(_) => continue,
            };
            for (c, n) in counters.entry(queue).or_default().iter_mut().zip(counts) {
                *c += n;
            }
            let enqueued = counts[0] == 1;
            net.entry(id)
                .and_modify(|n| {
                    n.last = write;
                    n.seq = seq.or(n.seq);
                })
                .or_insert(Net { new: enqueued, seq, last: write });
        }
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(rows::PUT)?;
            let mut retry = tx.prepare_cached(rows::RETRY)?;
            let mut delete = tx.prepare_cached(rows::DELETE)?;
            for (id, n) in net {
                match (n.last, n.seq) {
                    (Write::Put { job, .. }, Some(seq)) => rows::put(&mut put, job, seq)?,
                    // Only a retry carries no order, and its row exists: the batch did not write it.
                    (Write::Put { job, .. }, None) => rows::retry(&mut retry, job)?,
                    (Write::Delete { .. }, _) if n.new => {} // enqueued and gone within the batch
                    (Write::Delete { .. }, _) => {
                        delete.execute([id])?;
                    }
                    (Write::Sync(_), _) => unreachable!("syncs are not jobs"),
                }
            }
            let mut add = tx.prepare_cached(rows::ADD_COUNTERS)?;
            for (queue, c) in counters {
                add.execute(rusqlite::params![queue, c[0], c[1], c[2], c[3]])?;
            }
        }
        tx.commit()
    }
}

/// Answers `replies` with the error that stopped the store.
fn stop(replies: Vec<Reply>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Unavailable(why.to_string())));
    }
}

/// Longest a commit nobody waits for (finishes only) stays unflushed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The syncer's loop: fsync `wal` once for every batch committed since the last round
/// that someone waits for (or once [`FLUSH_EVERY`] after a commit nobody waits for), then
/// answer their syncs. Runs until the writer is gone or an fsync fails.
pub fn sync(wal: File, committed: Receiver<Vec<Reply>>, failed: Failed) {
    let mut replies: Vec<Reply> = Vec::new();
    let mut unflushed_since: Option<Instant> = None;
    loop {
        let next = match unflushed_since {
            None => committed.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(since) => committed.recv_timeout(FLUSH_EVERY.saturating_sub(since.elapsed())),
        };
        let gone = match next {
            Ok(more) => {
                replies.extend(more);
                unflushed_since.get_or_insert_with(Instant::now);
                while let Ok(more) = committed.try_recv() {
                    replies.extend(more);
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = unflushed_since.is_some_and(|since| since.elapsed() >= FLUSH_EVERY);
        if unflushed_since.is_some() && (!replies.is_empty() || due || gone) {
            if let Err(e) = wal.sync_data() {
                // A failed fsync cannot be retried with confidence: what it did not write
                // may be gone from the page cache already.
                tracing::error!(error = %e, "store fsync failed; the store stops writing");
                let _ = failed.set(format!("could not flush the store to disk: {e}"));
                stop(std::mem::take(&mut replies), failed.get().map_or("", |s| s.as_str()));
                return;
            }
            unflushed_since = None;
            for reply in replies.drain(..) {
                let _ = reply.send(Ok(()));
            }
        }
        if gone {
            return;
        }
    }
}

//! The writer: one thread owns the database connection and writes the memory store's
//! changes behind it, in the order they happened.
//!
//! Invariant: a [`Write::Sync`] is answered `Ok` only once every write sent before it is
//! committed (WAL fsynced, `synchronous=FULL`); after a failed commit nothing more is
//! written and every waiter, then and later, hears an error — never an acknowledgement for
//! something not on disk.
//!
//! The loop, as numbered steps (group commit):
//! 1. block for one write, then take every write already queued (up to [`MAX_BATCH`]);
//! 2. reduce the batch to its net effect per job — the last row image, or a delete; a job
//!    enqueued and completed within the batch writes nothing at all — and add up the
//!    counter increments per queue;
//! 3. one transaction: the rows (prepared, cached statements, in id order), the counters;
//!    `COMMIT` — one fsync for the whole batch;
//! 4. answer the batch's syncs; if anything failed, record why in [`Failed`], answer them
//!    with the error and stop (dropping the channel, so later syncs fail too).
//!
//! The thread ends when the store drops its sender, after writing everything queued.

use super::rows;
use crate::queue::{Job, JobId};
use crate::store::StoreError;
use crate::store::memory::Change;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;

/// Most writes in one transaction; more wait for the next one.
pub const MAX_BATCH: usize = 65_536;

/// Why the store stopped writing, once it has.
pub type Failed = Arc<OnceLock<String>>;

/// What the writer is sent: an owned [`Change`], or a wait for the commit.
pub enum Write {
    /// The job's row as it now is (with its order, unless a retry kept it), and which
    /// counters that adds to.
    Put { job: Job, seq: Option<u64>, counts: Counts },
    /// The job's row is gone (completed, or discarded from the DLQ).
    Delete { id: JobId, queue: String, completed: bool },
    /// Answer once everything sent before is committed.
    Sync(oneshot::Sender<Result<(), StoreError>>),
}

/// Counter increments: enqueued, completed, failed, dead_lettered.
pub type Counts = [u64; 4];

impl From<Change<'_>> for Write {
    fn from(change: Change<'_>) -> Self {
        match change {
            Change::Enqueued { job, seq } => Write::Put { job: job.clone(), seq: Some(seq), counts: [1, 0, 0, 0] },
            Change::Completed { id, queue } => Write::Delete { id: id.into(), queue: queue.into(), completed: true },
            // A retried job keeps its enqueue order, which the change does not repeat.
            Change::Retried { job } => Write::Put { job: job.clone(), seq: None, counts: [0, 0, 1, 0] },
            Change::DeadLettered { job, dead_seq } => {
                Write::Put { job: job.clone(), seq: Some(dead_seq), counts: [0, 0, 1, 1] }
            }
            Change::Redriven { job, seq } => Write::Put { job: job.clone(), seq: Some(seq), counts: [0; 4] },
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

    /// Runs until every sender is gone or a commit fails.
    pub fn run(mut self, writes: Receiver<Write>) {
        let mut batch = Vec::new();
        while let Ok(first) = writes.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match writes.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            let failed = match self.commit(&batch) {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %e, writes = batch.len(), "store commit failed; the store stops writing");
                    let _ = self.failed.set(format!("could not commit to the store: {e}"));
                    self.failed.get().cloned()
                }
            };
            for write in batch.drain(..) {
                if let Write::Sync(reply) = write {
                    let _ = reply.send(failed.clone().map_or(Ok(()), |why| Err(StoreError::Unavailable(why))));
                }
            }
            if failed.is_some() {
                return; // dropping `writes`: every later send or sync fails
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

//! The writer: one thread owns the write connection and applies every transition.
//!
//! Invariant: a caller hears back only after the transaction holding its operation has
//! committed (WAL fsynced, `synchronous=FULL`), or with an error — never before, never an
//! acknowledgement for something not on disk.
//!
//! The loop, as numbered steps (group commit):
//! 1. block for one command, then take every command already queued (up to [`MAX_BATCH`]);
//! 2. `BEGIN IMMEDIATE`; apply each command in its own savepoint, so one failing command
//!    (a duplicate id, say) is rolled back alone and answered with its error;
//! 3. add the batch's counter increments and id sequences, `COMMIT` (one fsync for all);
//! 4. if the commit failed, every command of the batch gets the error;
//! 5. otherwise notify `changed` if jobs may have become ready, then answer every waiter.
//!
//! The thread ends when the last sender is dropped (the store is dropped), closing the
//! connection.

use super::ops::{self, Counters, Sequences};
use crate::clock::Millis;
use crate::queue::{JobId, NewJob};
use crate::store::{Finish, Lease, LeaseRequest, LeaseToken, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use tokio::sync::{Notify, oneshot};

/// Most commands in one transaction; more wait for the next one.
pub const MAX_BATCH: usize = 4096;

/// A transition for the writer.
pub enum Op {
    Enqueue(Vec<NewJob>),
    Lease(LeaseRequest),
    Finish(LeaseToken, Finish),
    Redrive { queue: String, ids: Vec<JobId>, now: Millis },
    Discard { queue: String, ids: Vec<JobId> },
    Recover,
}

/// What a committed [`Op`] answers.
pub enum Done {
    Enqueued,
    Leased(Vec<Lease>),
    Finished(bool),
    Count(u64),
}

pub type Reply = oneshot::Sender<Result<Done, StoreError>>;

pub struct Command {
    pub op: Op,
    pub reply: Reply,
}

pub struct Writer {
    conn: Connection,
    seqs: Sequences,
    /// The sequences as last committed: `meta` is written only when they moved.
    saved: Sequences,
    changed: Arc<Notify>,
}

impl Writer {
    pub fn new(conn: Connection, changed: Arc<Notify>) -> Result<Self, rusqlite::Error> {
        let seqs = Sequences::load(&conn)?;
        Ok(Self { conn, seqs, saved: seqs, changed })
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match commands.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Command>) {
        let mut replies = Vec::with_capacity(batch.len());
        let outcome = self.apply(batch, &mut replies);
        let wake = match outcome {
            Ok(wake) => wake,
            Err(e) => {
                // The id sequences stay advanced in memory: gaps are harmless, reuse is not.
                tracing::error!(error = %e, commands = replies.len(), "store commit failed");
                let message = format!("could not commit to the store: {e}");
                for (_, result) in &mut replies {
                    *result = Err(StoreError::Unavailable(message.clone()));
                }
                false
            }
        };
        if wake {
            self.changed.notify_waiters();
            self.changed.notify_one();
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    /// Applies and commits `batch`; the answers go to `replies` (meaningful only when this
    /// returns `Ok`). Returns whether jobs may have become ready.
    fn apply(
        &mut self,
        batch: Vec<Command>,
        replies: &mut Vec<(Reply, Result<Done, StoreError>)>,
    ) -> rusqlite::Result<bool> {
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate);
        let mut counters = Counters::default();
        let mut wake = false;
        for Command { op, reply } in batch {
            let tx = match &mut tx {
                Ok(tx) => tx,
                Err(_) => {
                    replies.push((reply, Err(StoreError::Unavailable(String::new()))));
                    continue;
                }
            };
            let mut local = Counters::default();
            // Leasing and discarding never make a job ready.
            let may_wake = !matches!(op, Op::Lease(_) | Op::Discard { .. });
            let result = tx.savepoint().and_then(|sp| {
                let done = match op {
                    Op::Enqueue(jobs) => ops::enqueue(&sp, &mut self.seqs, &mut local, jobs).map(|()| Done::Enqueued),
                    Op::Lease(request) => ops::lease(&sp, &mut self.seqs, request).map(Done::Leased),
                    Op::Finish(token, finish) => {
                        ops::finish(&sp, &mut self.seqs, &mut local, &token, finish).map(Done::Finished)
                    }
                    Op::Redrive { queue, ids, now } => {
                        ops::redrive(&sp, &mut self.seqs, &queue, &ids, now).map(Done::Count)
                    }
                    Op::Discard { queue, ids } => ops::discard(&sp, &queue, &ids).map(Done::Count),
                    Op::Recover => ops::recover(&sp).map(Done::Count),
                }?;
                sp.commit()?;
                Ok(done)
            });
            let result = match result {
                Ok(done) => {
                    counters.merge(local);
                    wake |= may_wake
                        && match &done {
                            Done::Enqueued => true,
                            Done::Leased(_) => false,
                            Done::Finished(changed) => *changed,
                            Done::Count(n) => *n > 0,
                        };
                    Ok(done)
                }
                Err(e) => Err(StoreError::Unavailable(format!("store write failed: {e}"))),
            };
            replies.push((reply, result));
        }
        let tx = tx?;
        counters.save(&tx)?;
        if self.seqs != self.saved {
            self.seqs.save(&tx)?;
        }
        tx.commit()?;
        self.saved = self.seqs;
        Ok(wake)
    }
}

//! The hand-off from the store to its writer thread: the writes not taken yet.
//!
//! Invariant: the writer is woken only when there is a reason to write — the first write
//! after it went idle, a sync (someone waits), a full batch, or the store closing. A write
//! nobody waits for while the writer lingers or commits (a finish, under load) costs a
//! lock and a push: no system call, no context switch. Once the writer has stopped, no
//! write is accepted, and every sync it had not taken is handed back to be answered with
//! the error.

use super::writer::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest a batch nobody waits for (finishes only) waits for more writes before its
/// commit: a finish reaches the disk within about this long, or with the next enqueue's
/// commit, whichever comes first.
pub const LINGER: Duration = Duration::from_millis(50);

/// A lingering batch this large is written at once, sync or not.
pub const MAX_BATCH: usize = 65_536;

#[derive(Default)]
pub struct Pending {
    state: Mutex<State>,
    wake: Condvar,
}

/// The writer has stopped: nothing more is written.
#[derive(Debug)]
pub struct Stopped;

#[derive(Default)]
struct State {
    writes: Vec<Write>,
    /// `writes` holds a sync.
    waited_on: bool,
    /// What would wake the writer, if it is waiting.
    writer: Waiting,
    closed: bool,
    stopped: bool,
}

#[derive(Default, PartialEq)]
enum Waiting {
    #[default]
    No,
    /// Idle: any write.
    ForAny,
    /// Lingering over writes nobody waits for: a sync or a full batch.
    ForSync,
}

impl Pending {
    /// Queues `write` for the writer; refuses it (dropping it) once the writer has stopped.
    pub fn push(&self, write: Write) -> Result<(), Stopped> {
        let mut s = self.lock();
        if s.stopped {
            return Err(Stopped);
        }
        let sync = matches!(write, Write::Sync(_));
        s.waited_on |= sync;
        s.writes.push(write);
        let wake = match s.writer {
            Waiting::No => false,
            Waiting::ForAny => true,
            Waiting::ForSync => sync || s.writes.len() >= MAX_BATCH,
        };
        if wake {
            s.writer = Waiting::No;
            self.wake.notify_one();
        }
        Ok(())
    }

    /// No more writes will come: the writer takes what is queued, then ends.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        self.wake.notify_one();
    }

    /// The writer's side: blocks until there are writes and someone waits for them (or
    /// [`LINGER`] has passed since the writer found the first of them, or the batch is
    /// full, or the store is closing), then moves them into the empty `batch`. `false`
    /// once the store is closed and everything is taken.
    pub fn take(&self, batch: &mut Vec<Write>) -> bool {
        let mut s = self.lock();
        while s.writes.is_empty() {
            if s.closed {
                return false;
            }
            s.writer = Waiting::ForAny;
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let until = Instant::now() + LINGER;
        while !s.waited_on && !s.closed && s.writes.len() < MAX_BATCH {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s.writer = Waiting::ForSync;
            s = self.wake.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        s.writer = Waiting::No;
        s.waited_on = false;
        std::mem::swap(&mut s.writes, batch);
        true
    }

    /// The writer has stopped: refuses every later write and returns those not taken.
    pub fn stop(&self) -> Vec<Write> {
        let mut s = self.lock();
        s.stopped = true;
        std::mem::take(&mut s.writes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still holds valid writes.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A finish, told apart from others by its queue's name.
    fn finish(name: &str) -> Write {
        Write::Delete { seq: 1, queue: name.into(), completed: true }
    }

    fn ids(batch: &[Write]) -> Vec<&str> {
        batch
            .iter()
            .map(|w| match w {
                Write::Delete { queue, .. } => queue.as_str(),
                Write::Put { job, .. } => job.id.as_str(),
                Write::Claim(c) => c.key.as_str(),
                Write::Sync(_) => "sync",
            })
            .collect()
    }

    #[test]
    fn a_sync_takes_everything_queued_before_it_in_order() {
        let pending = Pending::default();
        pending.push(finish("a")).unwrap();
        pending.push(finish("b")).unwrap();
        let (reply, _answer) = tokio::sync::oneshot::channel();
        pending.push(Write::Sync(reply)).unwrap();
        let mut batch = Vec::new();
        assert!(pending.take(&mut batch));
        assert_eq!(ids(&batch), ["a", "b", "sync"]);
    }

    #[test]
    fn writes_pushed_while_the_writer_waits_arrive_once_in_order() {
        let pending = Arc::new(Pending::default());
        pending.push(finish("a")).unwrap();
        let writer = {
            let pending = pending.clone();
            std::thread::spawn(move || {
                let mut batches = Vec::new();
                loop {
                    let mut batch = Vec::new();
                    if !pending.take(&mut batch) {
                        return batches;
                    }
                    let synced = batch.iter().any(|w| matches!(w, Write::Sync(_)));
                    batches.push(ids(&batch).into_iter().map(String::from).collect::<Vec<_>>());
                    if synced {
                        return batches;
                    }
                }
            })
        };
        pending.push(finish("b")).unwrap();
        let (reply, _answer) = tokio::sync::oneshot::channel();
        pending.push(Write::Sync(reply)).unwrap();
        let batches = writer.join().unwrap();
        // However the threads interleave, every write arrives once, in order, and the sync last.
        assert_eq!(batches.concat(), ["a", "b", "sync"]);
    }

    #[test]
    fn writes_nobody_waits_for_are_taken_after_the_linger() {
        let pending = Pending::default();
        pending.push(finish("a")).unwrap();
        let mut batch = Vec::new();
        assert!(pending.take(&mut batch), "returns without a sync");
        assert_eq!(ids(&batch), ["a"]);
    }

    #[test]
    fn close_drains_then_ends_and_stop_refuses_later_writes() {
        let pending = Pending::default();
        pending.push(finish("a")).unwrap();
        pending.close();
        let mut batch = Vec::new();
        assert!(pending.take(&mut batch));
        assert_eq!(ids(&batch), ["a"]);
        batch.clear();
        assert!(!pending.take(&mut batch), "closed and empty");

        let stopped = Pending::default();
        stopped.push(finish("b")).unwrap();
        assert_eq!(ids(&stopped.stop()), ["b"], "the untaken writes are handed back");
        assert!(stopped.push(finish("c")).is_err());
    }
}

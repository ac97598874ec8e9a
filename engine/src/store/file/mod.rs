//! `builtin` / `file_based`: the durable embedded store, one SQLite database in WAL mode.
//!
//! **Invariant: nothing is acknowledged before it is on disk.** An enqueue returns only
//! after the transaction holding its job has committed with `synchronous=FULL` (the WAL is
//! fsynced); so does every other transition — lease, complete, retry (with its absolute
//! due time), dead-letter, release, redrive, discard, recover. A failed write is an error
//! to the caller (`UNAVAILABLE` on the API), never an acknowledgement. The jobs, their FIFO
//! order per group, pending retries, the DLQ and the per-queue counters all survive a
//! crash (`kill -9`) or power loss; jobs that were in flight are delivered again after
//! restart ([`Store::recover`]), the interrupted attempt not counted.
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
//!   same directory refuses to start instead of corrupting the other's leases.
//!
//! # How it works
//!
//! One writer thread (`writer.rs`) owns the write connection. Every transition is a
//! command sent to it over a channel; it takes whatever has queued up, applies it in one
//! transaction (one savepoint per command), commits — one fsync for the whole batch —
//! and only then answers each waiter. Throughput comes from that group commit: under
//! load, hundreds of enqueues share one fsync. Reads (`stats`, `dead_letters`,
//! `next_due`) use a separate read-only connection, which WAL lets run beside the writer;
//! each read sees the last committed state, so a read after an acknowledged write sees it.
//! `lease` first asks the read connection whether anything is leasable, so a pump round
//! over idle queues never waits for a commit (a job that becomes ready later notifies
//! `changed`, which starts another round).
//!
//! The schema (`schema.rs`) is one `jobs` table whose `state` column is the job's
//! [`JobState`](crate::queue::JobState), with partial indexes for each question asked on
//! the hot path — ready jobs by (queue, function, seq), delayed ones by (queue, due time),
//! FIFO group members by (queue, group, seq), the DLQ by (queue, dead sequence) — so no
//! operation scans the table; plus `counters` (enqueued / completed / failed /
//! dead_lettered per queue, updated in the same transactions) and `meta` (id sequences).
//! `PRAGMA application_id` marks the file as a Switchyard store and `PRAGMA user_version`
//! is its schema version: a file that is not SQLite, another program's database or a
//! newer schema is refused at start-up ([`StoreError::Corrupt`]), never started empty.
//!
//! # Inspecting it
//!
//! With the engine running or not (WAL lets readers in):
//!
//! ```text
//! sqlite3 -readonly data/queue_store/switchyard.sqlite3
//! sqlite> SELECT queue, state, COUNT(*) FROM jobs GROUP BY 1, 2;   -- 0 waiting 1 ready 2 delayed 3 in flight 4 dead
//! sqlite> SELECT * FROM counters;
//! sqlite> SELECT id, grp, attempts, error_message FROM jobs WHERE state = 4 ORDER BY dead_seq;
//! ```
//!
//! Change nothing by hand while the engine runs; use the `Queues` API (redrive, discard).
//!
//! # Deliberately not done
//!
//! - One engine per directory (the lock file enforces it); several engines sharing a store
//!   is what `redis` is for.
//! - No compaction knob: SQLite reuses freed pages; `VACUUM` offline if the file must shrink.
//! - Leases are durable too, though a lost lease would be undone by `recover` anyway: one
//!   rule for every transition is easier to trust than a clever exception.

mod ops;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use super::{DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError};
use crate::clock::Millis;
use crate::queue::{JobId, NewJob};
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use tokio::sync::{Notify, oneshot};
use writer::{Command, Done, Op, Writer};

pub use schema::{DB_FILE, SCHEMA_VERSION};

/// The lock file a running store holds inside its directory.
pub const LOCK_FILE: &str = "switchyard.lock";

/// The durable store. Dropping it stops the writer (after its current batch) and closes
/// the database.
pub struct FileStore {
    db: PathBuf,
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    reader: Arc<Mutex<Connection>>,
    changed: Arc<Notify>,
    _lock: File,
}

impl FileStore {
    /// Opens the store in directory `dir`, creating it (and its parents) and the database
    /// if missing. Blocking: call it from `spawn_blocking` in async code.
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
        let reader = schema::open_reader(&db)?;
        let changed = Arc::new(Notify::new());
        let writer = Writer::new(conn, changed.clone()).map_err(|e| schema::classify(&db, e))?;
        let (commands, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("switchyard-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        tracing::info!(path = %db.display(), "file store open");
        Ok(Self {
            db,
            commands: Some(commands),
            writer: Some(handle),
            reader: Arc::new(Mutex::new(reader)),
            changed,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db
    }

    /// Hands `op` to the writer and waits until it is committed.
    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let stopped = || StoreError::Unavailable("the store writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.commands.as_ref().ok_or_else(stopped)?.send(Command { op, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the read connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        let result = tokio::task::spawn_blocking(move || f(&mut reader.lock()))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store read did not finish: {e}")))?;
        result.map_err(|e| schema::classify(&self.db, e))
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once its current batch is committed.
        self.commands.take();
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("the store writer panicked");
        }
    }
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

fn unexpected(what: &str) -> StoreError {
    StoreError::Unavailable(format!("store writer answered {what} with the wrong kind of result"))
}

#[async_trait]
impl Store for FileStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), StoreError> {
        match self.write(Op::Enqueue(jobs)).await? {
            Done::Enqueued => Ok(()),
            _ => Err(unexpected("enqueue")),
        }
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        if request.max == 0 || request.functions.iter().all(|(_, budget)| *budget == 0) {
            return Ok(Vec::new());
        }
        // Most pump rounds find most queues idle: answer those from the read connection
        // instead of queueing behind the writer's next commit.
        let probe = request.clone();
        if !self.read(move |c| ops::lease_possible(c, &probe)).await? {
            return Ok(Vec::new());
        }
        match self.write(Op::Lease(request)).await? {
            Done::Leased(leases) => Ok(leases),
            _ => Err(unexpected("lease")),
        }
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        match self.write(Op::Finish(token.clone(), finish)).await? {
            Done::Finished(applied) => Ok(applied),
            _ => Err(unexpected("finish")),
        }
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let queue = queue.to_string();
        self.read(move |c| ops::next_due(c, &queue)).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let queue = queue.to_string();
        self.read(move |c| ops::stats(c, &queue)).await
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let after = super::dead_letter_cursor(cursor)?;
        let queue = queue.to_string();
        self.read(move |c| ops::dead_letters(c, &queue, after, limit)).await
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        match self.write(Op::Redrive { queue: queue.to_string(), ids: ids.to_vec(), now }).await? {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("redrive")),
        }
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        match self.write(Op::Discard { queue: queue.to_string(), ids: ids.to_vec() }).await? {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("discard")),
        }
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        match self.write(Op::Recover).await? {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("recover")),
        }
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

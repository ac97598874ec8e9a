//! A job as a `jobs` row, both ways: what the writer puts, and what start-up reads back.
//!
//! Five states reach the disk — pending, delayed, dead, completed and cancelled
//! (`schema::state`). A pending row is a job that was ready, waiting behind its FIFO group,
//! or in flight: all three are ready again after a restart (the memory store re-derives
//! which FIFO member is its group's head from `seq`) — but one in flight with a cancel
//! request (`cancel_requested`, with the request's time and keep-until in `finished_at` /
//! `expires_at`) comes back cancelled. Completed rows (queues that keep results) carry the
//! `result`; completed and cancelled rows are deleted once expired. Progress is not written:
//! it is news about a running attempt, and a restart ends every attempt. A delayed enqueue's `not_before` is kept in its own
//! column until the job first becomes ready (a pending FIFO member with one is delayed
//! when its turn comes). Idempotency claims are rows of `dedup`, written in the same
//! transaction as their job's row.

use super::schema::state;
use crate::queue::{Job, JobError, JobState, Payload};
use crate::store::QueueStats;
use crate::store::memory::{DedupClaim, Restored};
use bytes::Bytes;
use rusqlite::{Connection, Row, Statement, params};

/// Inserts `job`'s row under its order `seq` (a new key: order numbers are never reused).
pub const INSERT: &str = "INSERT INTO jobs (seq, id, queue, function_id, payload, grp, state, attempts, \
     enqueued_at, due_at, error_message, error_code, error_stack, dead_at, not_before, priority, cancel_requested, \
     finished_at, expires_at, result) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

/// Records (or renews, once expired) an idempotency key's claim.
pub const PUT_CLAIM: &str = "INSERT OR REPLACE INTO dedup (queue, key, job_id, expires_at) VALUES (?1, ?2, ?3, ?4)";

/// Forgets the claims expired by `?1`.
pub const EXPIRE_CLAIMS: &str = "DELETE FROM dedup WHERE expires_at <= ?1";

/// Updates the row of a job that keeps its key, its order (retried, cancel-requested,
/// completed and kept, cancelled): what such a change can alter.
pub const UPDATE: &str = "UPDATE jobs SET state = ?2, attempts = ?3, due_at = ?4, error_message = ?5, \
     error_code = ?6, error_stack = ?7, cancel_requested = ?8, finished_at = ?9, expires_at = ?10, result = ?11 \
     WHERE seq = ?1";

pub const DELETE: &str = "DELETE FROM jobs WHERE seq = ?1";

/// Adds one batch's counter increments to a queue's counters.
pub const ADD_COUNTERS: &str = "INSERT INTO counters (queue, enqueued, completed, failed, dead_lettered) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, \
         completed = completed + excluded.completed, failed = failed + excluded.failed, \
         dead_lettered = dead_lettered + excluded.dead_lettered";

/// Runs [`INSERT`] for `job`.
pub fn insert(stmt: &mut Statement<'_>, job: &Job, seq: u64) -> rusqlite::Result<()> {
    let error = job.last_error.as_ref();
    stmt.execute(params![
        seq,
        job.id,
        job.queue,
        job.function_id,
        &job.payload.0[..],
        job.group,
        state_of(job),
        job.attempts,
        job.enqueued_at,
        job.due_at,
        error.map(|e| &e.message),
        error.map(|e| &e.code),
        error.map(|e| &e.stack),
        job.dead_lettered_at,
        job.not_before,
        job.priority,
        job.cancel_requested,
        job.finished_at,
        job.expires_at,
        job.result.as_ref().map(|r| &r.0[..]),
    ])?;
    Ok(())
}

/// Runs [`UPDATE`] for `job`.
pub fn update(stmt: &mut Statement<'_>, job: &Job, seq: u64) -> rusqlite::Result<()> {
    let error = job.last_error.as_ref();
    stmt.execute(params![
        seq,
        state_of(job),
        job.attempts,
        job.due_at,
        error.map(|e| &e.message),
        error.map(|e| &e.code),
        error.map(|e| &e.stack),
        job.cancel_requested,
        job.finished_at,
        job.expires_at,
        job.result.as_ref().map(|r| &r.0[..]),
    ])?;
    Ok(())
}

fn state_of(job: &Job) -> i64 {
    match job.state {
        JobState::Delayed => state::DELAYED,
        JobState::Dead => state::DEAD,
        JobState::Ready | JobState::Waiting | JobState::InFlight => state::PENDING,
        JobState::Completed => state::COMPLETED,
        JobState::Cancelled => state::CANCELLED,
    }
}

/// What start-up reads: every job, each queue's counters, and the idempotency claims.
pub type Loaded = (Vec<Restored>, Vec<(String, QueueStats)>, Vec<DedupClaim>);

/// Every job and every queue's counters, as [`MemoryStore::restore`] takes them.
///
/// [`MemoryStore::restore`]: crate::store::memory::MemoryStore::restore
pub fn load(conn: &Connection) -> rusqlite::Result<Loaded> {
    let mut stmt = conn.prepare(
        "SELECT id, queue, function_id, payload, grp, state, seq, attempts, enqueued_at, due_at, error_message, \
         error_code, error_stack, dead_at, not_before, priority, cancel_requested, finished_at, expires_at, result \
         FROM jobs",
    )?;
    let jobs = stmt.query_map([], restored)?.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare("SELECT queue, enqueued, completed, failed, dead_lettered FROM counters")?;
    let counters = stmt
        .query_map([], |r| {
            let stats = QueueStats {
                enqueued: r.get(1)?,
                completed: r.get(2)?,
                failed: r.get(3)?,
                dead_lettered: r.get(4)?,
                ..QueueStats::default()
            };
            Ok((r.get(0)?, stats))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare("SELECT queue, key, job_id, expires_at FROM dedup")?;
    let claims = stmt
        .query_map([], |r| {
            Ok(DedupClaim { queue: r.get(0)?, key: r.get(1)?, job_id: r.get(2)?, claimed_at: 0, expires_at: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((jobs, counters, claims))
}

fn restored(r: &Row<'_>) -> rusqlite::Result<Restored> {
    let state = match r.get::<_, i64>(5)? {
        state::PENDING => JobState::Ready,
        state::DELAYED => JobState::Delayed,
        state::DEAD => JobState::Dead,
        state::COMPLETED => JobState::Completed,
        state::CANCELLED => JobState::Cancelled,
        other => {
            let why = format!("jobs.state {other} is not a stored job state");
            return Err(rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Integer, why.into()));
        }
    };
    let message: Option<String> = r.get(10)?;
    let job = Job {
        id: r.get(0)?,
        queue: r.get(1)?,
        function_id: r.get(2)?,
        payload: Payload(Bytes::from(r.get::<_, Vec<u8>>(3)?)),
        group: r.get(4)?,
        state,
        attempts: r.get(7)?,
        enqueued_at: r.get(8)?,
        due_at: r.get(9)?,
        last_error: match message {
            Some(message) => Some(JobError {
                message,
                code: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                stack: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
            }),
            None => None,
        },
        dead_lettered_at: r.get(13)?,
        not_before: r.get(14)?,
        priority: r.get(15)?,
        cancel_requested: r.get(16)?,
        finished_at: r.get(17)?,
        expires_at: r.get(18)?,
        result: r.get::<_, Option<Vec<u8>>>(19)?.map(|b| Payload(Bytes::from(b))),
        ..Job::default()
    };
    Ok(Restored { job, seq: r.get(6)? })
}

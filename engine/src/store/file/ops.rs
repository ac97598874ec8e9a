//! The transitions and reads as SQL. Each transition runs inside the writer's transaction
//! (one savepoint per operation) and mirrors the memory store step for step.
//!
//! Group membership is data, not a list: a FIFO job belongs to its group from enqueue
//! until it completes or is dead-lettered (`grp IS NOT NULL AND state <> 4`, the
//! `jobs_groups` index), and the member with the lowest `seq` is the head. Only the head
//! is ever Ready, Delayed or InFlight; the others are Waiting.

use super::schema::state;
use crate::clock::Millis;
use crate::queue::{Job, JobError, JobId, JobState, NewJob, Payload};
use crate::store::{DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats};
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashMap;

/// The id sequences, kept by the writer and saved in `meta` with every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequences {
    pub next_seq: u64,
    pub next_lease: u64,
}

impl Sequences {
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let get = |key: &str| conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, u64>(0));
        Ok(Self { next_seq: get("next_seq")?, next_lease: get("next_lease")? })
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")?
            .execute(params!["next_seq", self.next_seq])?;
        conn.prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")?
            .execute(params!["next_lease", self.next_lease])?;
        Ok(())
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn lease(&mut self) -> u64 {
        self.next_lease += 1;
        self.next_lease
    }
}

/// Counter increments of one batch, written once per queue at the end of it.
#[derive(Debug, Default)]
pub struct Counters(HashMap<String, [u64; 4]>);

const ENQUEUED: usize = 0;
const COMPLETED: usize = 1;
const FAILED: usize = 2;
const DEAD_LETTERED: usize = 3;

impl Counters {
    fn add(&mut self, queue: &str, which: usize, n: u64) {
        if let Some(c) = self.0.get_mut(queue) {
            c[which] += n;
        } else {
            let mut c = [0; 4];
            c[which] = n;
            self.0.insert(queue.to_string(), c);
        }
    }

    pub fn merge(&mut self, other: Counters) {
        for (queue, c) in other.0 {
            for (which, n) in c.into_iter().enumerate() {
                if n > 0 {
                    self.add(&queue, which, n);
                }
            }
        }
    }

    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO counters (queue, enqueued, completed, failed, dead_lettered) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued,
                 completed = completed + excluded.completed, failed = failed + excluded.failed,
                 dead_lettered = dead_lettered + excluded.dead_lettered",
        )?;
        for (queue, c) in &self.0 {
            stmt.execute(params![queue, c[0], c[1], c[2], c[3]])?;
        }
        Ok(())
    }
}

/// The columns [`job_from_row`] reads, in order.
const JOB_COLUMNS: &str = "id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at, error_message, error_code, \
     error_stack, dead_at";

/// Reads a job whose [`JOB_COLUMNS`] start at column `at`.
fn job_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Job> {
    let message: Option<String> = r.get(at + 9)?;
    Ok(Job {
        id: r.get(at)?,
        queue: r.get(at + 1)?,
        function_id: r.get(at + 2)?,
        payload: Payload(Bytes::from(r.get::<_, Vec<u8>>(at + 3)?)),
        group: r.get(at + 4)?,
        state: state_from(r.get(at + 5)?)?,
        attempts: r.get(at + 6)?,
        enqueued_at: r.get(at + 7)?,
        due_at: r.get(at + 8)?,
        last_error: match message {
            Some(message) => Some(JobError {
                message,
                code: r.get::<_, Option<String>>(at + 10)?.unwrap_or_default(),
                stack: r.get::<_, Option<String>>(at + 11)?.unwrap_or_default(),
            }),
            None => None,
        },
        dead_lettered_at: r.get(at + 12)?,
    })
}

fn state_from(n: i64) -> rusqlite::Result<JobState> {
    Ok(match n {
        state::WAITING => JobState::Waiting,
        state::READY => JobState::Ready,
        state::DELAYED => JobState::Delayed,
        state::IN_FLIGHT => JobState::InFlight,
        state::DEAD => JobState::Dead,
        other => {
            let why = format!("jobs.state {other} is not a job state");
            return Err(rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Integer, why.into()));
        }
    })
}

/// Whether `group` of `queue` has a member (a job not yet completed or dead-lettered).
fn group_has_members(conn: &Connection, queue: &str, group: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND grp = ?2 AND state <> 4)")?
        .query_row(params![queue, group], |r| r.get(0))
}

/// After the head of `group` left it: the next member, if Waiting, becomes Ready.
fn promote_group_head(conn: &Connection, queue: &str, group: &str) -> rusqlite::Result<()> {
    let head: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT rowid, state FROM jobs WHERE queue = ?1 AND grp = ?2 AND state <> 4 ORDER BY seq LIMIT 1",
        )?
        .query_row(params![queue, group], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((rowid, state::WAITING)) = head {
        conn.prepare_cached("UPDATE jobs SET state = 1 WHERE rowid = ?1")?.execute([rowid])?;
    }
    Ok(())
}

/// The state a job entering `group` (at its tail) takes.
fn entry_state(conn: &Connection, queue: &str, group: Option<&str>) -> rusqlite::Result<i64> {
    Ok(match group {
        Some(g) if group_has_members(conn, queue, g)? => state::WAITING,
        _ => state::READY,
    })
}

pub fn enqueue(
    conn: &Connection,
    seqs: &mut Sequences,
    counters: &mut Counters,
    jobs: Vec<NewJob>,
) -> rusqlite::Result<()> {
    for job in jobs {
        let state = entry_state(conn, &job.queue, job.group.as_deref())?;
        conn.prepare_cached(
            "INSERT INTO jobs (id, queue, function_id, payload, grp, state, seq, attempts, enqueued_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8)",
        )?
        .execute(params![
            job.id,
            job.queue,
            job.function_id,
            &job.payload.0[..],
            job.group,
            state,
            seqs.seq(),
            job.enqueued_at
        ])?;
        counters.add(&job.queue, ENQUEUED, 1);
    }
    Ok(())
}

/// Whether `lease` could hand out anything: a ready job of an asked-for function, or a
/// delayed job now due. Read on the read connection, so a pump round over idle queues
/// never waits for the writer (jobs that become ready later notify `changed`).
pub fn lease_possible(conn: &Connection, request: &LeaseRequest) -> rusqlite::Result<bool> {
    let due: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 2 AND due_at <= ?2)")?
        .query_row(params![request.queue, request.now], |r| r.get(0))?;
    if due {
        return Ok(true);
    }
    let mut stmt =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND function_id = ?2 AND state = 1)")?;
    for (function, budget) in &request.functions {
        if *budget > 0 && stmt.query_row(params![request.queue, function], |r| r.get::<_, bool>(0))? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn lease(conn: &Connection, seqs: &mut Sequences, request: LeaseRequest) -> rusqlite::Result<Vec<Lease>> {
    let queue = request.queue.as_str();
    // Delayed jobs whose time has come are ready.
    conn.prepare_cached("UPDATE jobs SET state = 1 WHERE queue = ?1 AND state = 2 AND due_at <= ?2")?
        .execute(params![queue, request.now])?;
    // The oldest `min(budget, max)` ready jobs of each function, merged by enqueue order:
    // exactly what taking the oldest job among functions with budget, one at a time, picks.
    let mut candidates: Vec<(u64, i64)> = Vec::new();
    for (function, budget) in &request.functions {
        let take = (*budget).min(request.max);
        if take == 0 {
            continue;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT seq, rowid FROM jobs WHERE queue = ?1 AND function_id = ?2 AND state = 1 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![queue, function, take as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            candidates.push(row?);
        }
    }
    candidates.sort_unstable();
    candidates.truncate(request.max);
    let mut leases = Vec::with_capacity(candidates.len());
    let sql = format!(
        "UPDATE jobs SET state = 3, attempts = attempts + 1, lease_id = ?2 WHERE rowid = ?1 RETURNING {JOB_COLUMNS}"
    );
    for (_, rowid) in candidates {
        let lease_id = seqs.lease();
        let job = conn.prepare_cached(&sql)?.query_row(params![rowid, lease_id], |r| job_from_row(r, 0))?;
        leases.push(Lease { token: LeaseToken { job_id: job.id.clone(), lease_id }, job });
    }
    Ok(leases)
}

pub fn finish(
    conn: &Connection,
    seqs: &mut Sequences,
    counters: &mut Counters,
    token: &LeaseToken,
    finish: Finish,
) -> rusqlite::Result<bool> {
    let current: Option<(i64, String, Option<String>, i64, u64)> = conn
        .prepare_cached("SELECT rowid, queue, grp, state, lease_id FROM jobs WHERE id = ?1")?
        .query_row([&token.job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let Some((rowid, queue, group, st, lease_id)) = current else {
        return Ok(false);
    };
    if st != state::IN_FLIGHT || lease_id != token.lease_id {
        return Ok(false);
    }
    match finish {
        Finish::Complete => {
            conn.prepare_cached("DELETE FROM jobs WHERE rowid = ?1")?.execute([rowid])?;
            counters.add(&queue, COMPLETED, 1);
            if let Some(g) = &group {
                promote_group_head(conn, &queue, g)?;
            }
        }
        Finish::Retry { due_at, error } => {
            conn.prepare_cached(
                "UPDATE jobs SET state = 2, due_at = ?2, error_message = ?3, error_code = ?4, error_stack = ?5
                 WHERE rowid = ?1",
            )?
            .execute(params![rowid, due_at, error.message, error.code, error.stack])?;
            counters.add(&queue, FAILED, 1);
        }
        Finish::DeadLetter { error, at } => {
            conn.prepare_cached(
                "UPDATE jobs SET state = 4, dead_seq = ?2, dead_at = ?3, error_message = ?4, error_code = ?5,
                 error_stack = ?6 WHERE rowid = ?1",
            )?
            .execute(params![rowid, seqs.seq(), at, error.message, error.code, error.stack])?;
            counters.add(&queue, FAILED, 1);
            counters.add(&queue, DEAD_LETTERED, 1);
            if let Some(g) = &group {
                promote_group_head(conn, &queue, g)?;
            }
        }
        Finish::Release => {
            conn.prepare_cached("UPDATE jobs SET state = 1, attempts = attempts - 1 WHERE rowid = ?1")?
                .execute([rowid])?;
        }
    }
    Ok(true)
}

/// The dead letters `ids` names (all when empty), oldest dead-lettering first when all.
fn select_dead(conn: &Connection, queue: &str, ids: &[JobId]) -> rusqlite::Result<Vec<(i64, Option<String>)>> {
    let row = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?));
    if ids.is_empty() {
        let mut stmt =
            conn.prepare_cached("SELECT rowid, grp FROM jobs WHERE queue = ?1 AND state = 4 ORDER BY dead_seq")?;
        return stmt.query_map([queue], row)?.collect();
    }
    let mut stmt = conn.prepare_cached("SELECT rowid, grp FROM jobs WHERE id = ?1 AND queue = ?2 AND state = 4")?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(found) = stmt.query_row(params![id, queue], row).optional()? {
            out.push(found);
        }
    }
    Ok(out)
}

pub fn redrive(
    conn: &Connection,
    seqs: &mut Sequences,
    queue: &str,
    ids: &[JobId],
    now: Millis,
) -> rusqlite::Result<u64> {
    let chosen = select_dead(conn, queue, ids)?;
    for (rowid, group) in &chosen {
        // The job is Dead, so not a member: it joins at the tail with a new seq.
        let state = entry_state(conn, queue, group.as_deref())?;
        conn.prepare_cached(
            "UPDATE jobs SET state = ?2, seq = ?3, attempts = 0, due_at = ?4, dead_at = NULL, dead_seq = NULL
             WHERE rowid = ?1",
        )?
        .execute(params![rowid, state, seqs.seq(), now])?;
    }
    Ok(chosen.len() as u64)
}

pub fn discard(conn: &Connection, queue: &str, ids: &[JobId]) -> rusqlite::Result<u64> {
    let chosen = select_dead(conn, queue, ids)?;
    let mut stmt = conn.prepare_cached("DELETE FROM jobs WHERE rowid = ?1")?;
    for (rowid, _) in &chosen {
        stmt.execute([rowid])?;
    }
    Ok(chosen.len() as u64)
}

pub fn recover(conn: &Connection) -> rusqlite::Result<u64> {
    let n = conn.prepare_cached("UPDATE jobs SET state = 1, attempts = attempts - 1 WHERE state = 3")?.execute([])?;
    Ok(n as u64)
}

// ---- reads -------------------------------------------------------------------------------

pub fn next_due(conn: &Connection, queue: &str) -> rusqlite::Result<Option<Millis>> {
    conn.prepare_cached("SELECT MIN(due_at) FROM jobs WHERE queue = ?1 AND state = 2")?.query_row([queue], |r| r.get(0))
}

/// Gauges and counters of `queue`, read in one transaction so they agree.
pub fn stats(conn: &mut Connection, queue: &str) -> rusqlite::Result<QueueStats> {
    let tx = conn.transaction()?;
    let mut s = QueueStats::default();
    {
        let mut stmt = tx.prepare_cached("SELECT state, COUNT(*) FROM jobs WHERE queue = ?1 GROUP BY state")?;
        let rows = stmt.query_map([queue], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)))?;
        for row in rows {
            let (st, n) = row?;
            match st {
                state::WAITING | state::READY => s.ready += n,
                state::DELAYED => s.delayed += n,
                state::IN_FLIGHT => s.in_flight += n,
                state::DEAD => s.dead += n,
                _ => {}
            }
        }
        let counters = tx
            .prepare_cached("SELECT enqueued, completed, failed, dead_lettered FROM counters WHERE queue = ?1")?
            .query_row([queue], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
            .optional()?;
        if let Some([enqueued, completed, failed, dead_lettered]) = counters {
            (s.enqueued, s.completed, s.failed, s.dead_lettered) = (enqueued, completed, failed, dead_lettered);
        }
    }
    tx.finish()?;
    Ok(s)
}

/// One page of `queue`'s DLQ after `after` (a `dead_seq`).
pub fn dead_letters(conn: &Connection, queue: &str, after: u64, limit: usize) -> rusqlite::Result<DeadLetterPage> {
    let sql = format!(
        "SELECT dead_seq, {JOB_COLUMNS} FROM jobs WHERE queue = ?1 AND state = 4 AND dead_seq > ?2
         ORDER BY dead_seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    // One more than asked, to know whether there is a next page.
    let mut rows = stmt.query(params![queue, after, limit.saturating_add(1) as i64])?;
    let mut entries = Vec::new();
    let mut last = None;
    let mut more = false;
    while let Some(r) = rows.next()? {
        if entries.len() == limit {
            more = true;
            break;
        }
        let dead_seq: u64 = r.get(0)?;
        let job = job_from_row(r, 1)?;
        entries.push(job);
        last = Some(dead_seq);
    }
    Ok(DeadLetterPage { entries, next_cursor: if more { last.map(|l| l.to_string()) } else { None } })
}

//! The job lifecycle for callers on Redis: status by id, cancel, progress, cancel requests
//! seen by the engine holding the lease, and forgetting retained jobs.
//!
//! Invariant: a `Completed` or `Cancelled` job is visible exactly until its `expires_at`
//! (the engine clock): `get_job` and `cancel` treat one past it as gone even before
//! `expire_finished` (every engine sweeps, each run bounded) has deleted it. Every change is
//! one script (`cancel`, `set_progress`, `expire_finished`; a finish in `finish.lua`); the
//! reads are one round trip each — `get_job` one `HGETALL`, `cancel_requested` one script
//! over all of an engine's leases, which its watch loop runs every 500 ms.
//!
//! Retained jobs sit in `P:retained` (a ZSET scored by `expires_at`) and their hashes also
//! expire in Redis a minute after their retention (the backstop when no engine sweeps; see
//! `retain` in `scripts/prelude.lua`).
//!
//! A cancel of an in-flight job records `cancel` on the hash with the request's time and how
//! long to keep the job; the attempt's end then makes it `Cancelled` whatever it was (but a
//! success), including a lease reclaimed from a dead engine; the failed attempt's error is
//! not kept. It is dated at the end's own time (a dead-lettering's, never before the
//! request), or at the request when the end carries none (a retry, a release, a reclaim),
//! and kept as long after that as the request asked — as the memory store does.

use super::decode::{Fields, decode};
use super::{Shared, unavailable};
use crate::clock::Millis;
use crate::queue::{Job, JobState, Progress};
use crate::store::{CancelOutcome, LeaseToken, StoreError};
use std::collections::HashSet;

/// Most retained jobs one `expire_finished` script run forgets.
pub const EXPIRE_BATCH: usize = 1000;
/// Most script runs of one `expire_finished` call; the rest waits for the next sweep.
pub const EXPIRE_RUNS: usize = 20;

fn is_gone(job: &Job, now: Millis) -> bool {
    matches!(job.state, JobState::Completed | JobState::Cancelled) && job.expires_at.is_some_and(|at| at <= now)
}

impl Shared {
    pub(super) async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        let fields: Fields = ::redis::cmd("HGETALL")
            .arg(self.keys.job(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable("get_job"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let (job, _) = decode(fields)?;
        Ok((job.queue == queue && !is_gone(&job, now)).then_some(job))
    }

    pub(super) async fn cancel(
        &self,
        queue: &str,
        id: &str,
        at: Millis,
        until: Millis,
    ) -> Result<CancelOutcome, StoreError> {
        let mut inv = self.invocation(&self.scripts.cancel);
        inv.arg(queue).arg(id).arg(at).arg(until.max(at));
        let (outcome, fields): (String, Fields) =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(unavailable("cancel"))?;
        if outcome == "not_found" {
            return Ok(CancelOutcome::NotFound);
        }
        let (job, lease_id) = decode(fields)?;
        Ok(match outcome.as_str() {
            "cancelled" => {
                self.notify();
                CancelOutcome::Cancelled(job)
            }
            "cancelling" => {
                let token = LeaseToken { job_id: job.id.clone(), lease_id };
                CancelOutcome::Cancelling(job, token)
            }
            "already_cancelled" => CancelOutcome::AlreadyCancelled(job),
            "already_finished" => CancelOutcome::AlreadyFinished(job),
            other => return Err(StoreError::Corrupt(format!("cancel answered '{other}'"))),
        })
    }

    pub(super) async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        let mut inv = self.invocation(&self.scripts.set_progress);
        inv.arg(&token.job_id).arg(token.lease_id);
        match progress.value {
            // Rust's shortest round-trip form; `parse::<f64>` reads it back exactly
            // (NaN and infinities included).
            Some(v) => inv.arg("1").arg(v.to_string()),
            None => inv.arg("0").arg(""),
        };
        match &progress.detail {
            Some(d) => inv.arg("1").arg(d.0.as_ref()),
            None => inv.arg("0").arg(""),
        };
        let applied: u64 = inv.invoke_async(&mut self.conn.clone()).await.map_err(unavailable("set_progress"))?;
        Ok(applied == 1)
    }

    pub(super) async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.invocation(&self.scripts.cancel_requested);
        for t in tokens {
            inv.arg(&t.job_id).arg(t.lease_id);
        }
        let ids: Vec<String> =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(unavailable("cancel_requested"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: HashSet<String> = ids.into_iter().collect();
        Ok(tokens.iter().filter(|t| ids.contains(&t.job_id)).cloned().collect())
    }

    pub(super) async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        let mut forgotten = 0;
        for _ in 0..EXPIRE_RUNS {
            let mut inv = self.invocation(&self.scripts.expire_finished);
            inv.arg(now).arg(EXPIRE_BATCH);
            let (n, more): (u64, u64) =
                inv.invoke_async(&mut self.conn.clone()).await.map_err(unavailable("expire_finished"))?;
            forgotten += n;
            if more == 0 {
                break;
            }
        }
        Ok(forgotten)
    }
}

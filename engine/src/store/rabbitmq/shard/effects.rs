//! What the broker must do for a change of the mirror (the shard's steps 4 and 6): the
//! job's next version, an ack, or both, numbered so that the highest version is the job.
//!
//! Invariant: a held tag is acked once, when nothing needs its message any more — the
//! job's newer version is confirmed, or the job is done with; a kept batch's tag, shared
//! by its jobs, only once the last of them lets go.

use super::super::codec::{End, JobMsg};
use super::super::topology::Names;
use super::{Shard, State};
use crate::clock::Millis;
use crate::queue::{Job, JobId, JobState};
use crate::store::memory::Change;

/// A broker side effect of a finished attempt (see the module doc, step 4).
pub enum Effect {
    Ack(u64),
    Publish {
        to: String,
        msg: Box<JobMsg>,
        then_ack: Option<u64>,
    },
    /// Several kept jobs in one message (step 6), then the versions they replace acked.
    PublishKept {
        to: String,
        msgs: Vec<JobMsg>,
        then_ack: Vec<u64>,
    },
}

impl Shard {
    /// Step 4: what the broker must do for the mirror's `changes`, in order. `dead_seq`
    /// numbers each dead-lettering for the DLQ's order.
    pub fn effects(&self, changes: Vec<ChangeOwned>, names: &Names, dead_seq: impl Fn() -> u64) -> Vec<Effect> {
        let mut st = self.state.lock();
        let mut effects = Vec::new();
        // Two or more kept jobs go out as one message (step 6).
        let batch = changes.iter().filter(|c| matches!(c, ChangeOwned::Kept(_))).count() > 1;
        let (mut kept, mut kept_acks) = (Vec::new(), Vec::new());
        for change in changes {
            match change {
                ChangeOwned::Completed(id) => {
                    if let Some(tag) = finish_held(&mut st, &id) {
                        effects.push(Effect::Ack(tag));
                    }
                }
                ChangeOwned::Retried(job) => {
                    let then_ack = take_tag(&mut st, &job.id);
                    let Some(held) = st.held.get_mut(&job.id) else { continue };
                    held.version += 1;
                    let msg = job_msg(job, held.version, None);
                    effects.push(Effect::Publish { to: self.name.clone(), msg: Box::new(msg), then_ack });
                }
                ChangeOwned::Kept(job) => {
                    let then_ack = take_tag(&mut st, &job.id);
                    let Some(held) = st.held.get_mut(&job.id) else { continue };
                    held.version += 1;
                    let msg = job_msg(job, held.version, None);
                    if batch {
                        kept.push(msg);
                        kept_acks.extend(then_ack);
                    } else {
                        effects.push(Effect::Publish { to: self.name.clone(), msg: Box::new(msg), then_ack });
                    }
                }
                ChangeOwned::CancelRequested { job, at, until } => {
                    let then_ack = take_tag(&mut st, &job.id);
                    let Some(held) = st.held.get_mut(&job.id) else { continue };
                    held.version += 1;
                    // What a new owner finds if this one dies mid-attempt: cancelled.
                    let msg = JobMsg { end: Some(End::Cancelled { at, until }), ..job_msg(job, held.version, None) };
                    effects.push(Effect::Publish { to: self.name.clone(), msg: Box::new(msg), then_ack });
                }
                ChangeOwned::DeadLettered(job) => {
                    let version = st.held.get(&job.id).map_or(0, |h| h.version) + 1;
                    let then_ack = finish_held(&mut st, &job.id);
                    let dead = Some((job.dead_lettered_at.unwrap_or_default(), dead_seq()));
                    let to = names.dead(&job.queue);
                    effects.push(Effect::Publish { to, msg: Box::new(job_msg(job, version, dead)), then_ack });
                }
            }
        }
        if !kept.is_empty() {
            effects.push(Effect::PublishKept { to: self.name.clone(), msgs: kept, then_ack: kept_acks });
        }
        effects
    }
}

/// The mirror's changes, owned (the journal's borrow ends with the mirror's lock).
pub enum ChangeOwned {
    Completed(JobId),
    Retried(Job),
    DeadLettered(Job),
    /// Now kept after its end (completed with a result, or cancelled): its next version says so.
    Kept(Job),
    /// In flight with a cancel request made at `at`, kept until `until` once it ends.
    CancelRequested {
        job: Job,
        at: Millis,
        until: Millis,
    },
}

impl ChangeOwned {
    pub fn from_change(change: Change<'_>) -> Option<Self> {
        match change {
            Change::Completed { id, .. } => Some(Self::Completed(id.to_string())),
            Change::Retried { job, .. } => Some(Self::Retried(job)),
            Change::DeadLettered { job, .. } => Some(Self::DeadLettered(job)),
            // Completed and kept, or cancelled: its next version says so (step 6).
            Change::Finished { job, .. } => Some(Self::Kept(job)),
            Change::CancelRequested { job, request, .. } => {
                Some(Self::CancelRequested { job, at: request.at, until: request.until })
            }
            // Kept long enough: done with, as a completion is.
            Change::Expired { id, .. } => Some(Self::Completed(id.to_string())),
            Change::Enqueued { .. } | Change::Redriven { .. } | Change::Discarded { .. } | Change::Claimed(_) => None,
        }
    }
}

/// The job is finished: its tag to ack now, or (copy in transit) ack it on arrival.
fn finish_held(st: &mut State, id: &str) -> Option<u64> {
    let held = st.held.get_mut(id)?;
    if held.tag.is_none() {
        held.finished = true;
        return None;
    }
    let tag = take_tag(st, id);
    st.held.remove(id);
    tag
}

/// Takes `id`'s tag to ack; a kept batch's tag only once its last job lets go of it.
fn take_tag(st: &mut State, id: &str) -> Option<u64> {
    let held = st.held.get_mut(id)?;
    let tag = held.tag.take()?;
    if !std::mem::take(&mut held.shared) {
        return Some(tag);
    }
    let left = st.batches.get_mut(&tag).map(|n| {
        *n = n.saturating_sub(1);
        *n
    });
    if left.unwrap_or(0) > 0 {
        return None;
    }
    st.batches.remove(&tag);
    Some(tag)
}

fn job_msg(job: Job, version: u32, dead: Option<(Millis, u64)>) -> JobMsg {
    let end = match (job.state, job.finished_at, job.expires_at) {
        (JobState::Completed, Some(at), Some(until)) => {
            Some(End::Completed { at, until, result: job.result.clone().unwrap_or_default() })
        }
        (JobState::Cancelled, Some(at), Some(until)) => Some(End::Cancelled { at, until }),
        _ => None,
    };
    JobMsg {
        priority: job.priority,
        end,
        order_at: job.enqueued_at,
        due_at: (job.state == JobState::Delayed).then_some(job.due_at),
        id: job.id,
        queue: job.queue,
        function_id: job.function_id,
        payload: job.payload,
        group: job.group,
        enqueued_at: job.enqueued_at,
        version,
        attempts: job.attempts,
        last_error: job.last_error,
        dead,
        not_before: job.not_before,
    }
}

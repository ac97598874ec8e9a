//! What callers do to running jobs: cancel them, and read the progress their handlers
//! report.
//!
//! Invariants:
//! - a cancelled lease ends exactly once, as [`crate::store::Finish::Cancelled`]: it is
//!   taken out of the invocation table under the lock, so a result arriving after the
//!   cancel finds nothing and is ignored, like a late result after a timeout;
//! - progress reaches the store at most once per [`PROGRESS_EVERY_MS`] per job: the first
//!   report at once, later ones held (the latest replaces the earlier) and written by the
//!   watch loop when their time comes; a report still held when the attempt ends is dropped
//!   (the job's result or error says more).
//!
//! With several engines on one store, the engine answering `CancelJob` may not hold the
//! lease: the store records the request, and the holder's watch loop
//! ([`Dispatcher::watch`]) finds it within [`WATCH_EVERY_MS`].

use super::invocation::Kind;
use super::{Aftermath, Dispatcher, WorkerId};
use crate::clock::Millis;
use crate::queue::Progress;
use crate::store::LeaseToken;
use std::sync::Arc;
use switchyard_proto::wire;
use tokio_util::sync::CancellationToken;

/// The most often one job's progress is written to the store.
pub const PROGRESS_EVERY_MS: Millis = 500;

/// How often the watch loop looks for cancel requests and held progress.
pub const WATCH_EVERY_MS: Millis = 500;

/// The largest progress detail kept (encoded bytes).
pub const MAX_PROGRESS_DETAIL: usize = 4096;

/// One invocation's progress throttle.
#[derive(Default)]
pub(super) struct Throttle {
    next_write: Millis,
    held: Option<Progress>,
}

impl Dispatcher {
    /// Stops this engine's attempt under `token`, if it holds one: the worker hears
    /// `cancel` (reason "cancelled"), and the job ends `Cancelled`. `false` when this engine
    /// has no such lease (another engine's, or the attempt already ended).
    pub async fn cancel_lease(&self, token: &LeaseToken) -> bool {
        let after = {
            let mut st = self.state.lock();
            let found = st
                .invocations
                .iter()
                .find(|(_, inv)| matches!(&inv.kind, Kind::Job(lease) if lease.token == *token))
                .map(|(id, _)| *id);
            let Some(id) = found else { return false };
            let inv = Self::take(&mut st, id).expect("found above");
            if let Some(w) = inv.worker {
                Self::send_cancel(&st, w, id, "cancelled");
            }
            let mut after = Aftermath::default();
            if let Kind::Job(lease) = inv.kind {
                if inv.sent_at.is_some() {
                    self.metrics.attempt_ended(&lease.job, inv.sent_at, self.clock.now());
                }
                tracing::info!(job = %lease.job.id, queue = %lease.job.queue, "job cancelled while in flight");
                after.cancelled_jobs.push((lease, inv.sent_at));
            }
            after
        };
        self.settle(after).await;
        self.notify_if_idle();
        true
    }

    /// A worker's progress report for one of its invocations.
    pub async fn on_progress(&self, worker: WorkerId, report: wire::Progress) {
        let Ok(inv_id) = report.invocation_id.parse::<u64>() else { return };
        let reported = report.progress.unwrap_or_default();
        if reported.detail.len() > MAX_PROGRESS_DETAIL {
            tracing::warn!(
                worker,
                bytes = reported.detail.len(),
                max = MAX_PROGRESS_DETAIL,
                "progress detail too large; dropped"
            );
            return;
        }
        let detail = match reported.detail.is_empty() {
            true => None,
            false => match crate::wire::payload_from_wire(reported.detail) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(worker, error = %e, "progress detail is not a google.protobuf.Value; dropped");
                    return;
                }
            },
        };
        let progress = Progress { value: reported.value, detail };
        let now = self.clock.now();
        let write = {
            let mut st = self.state.lock();
            let token = match st.invocations.get(&inv_id) {
                Some(inv) if inv.worker == Some(worker) => match &inv.kind {
                    Kind::Job(lease) => lease.token.clone(),
                    Kind::Call { .. } => return,
                },
                _ => return, // ended, or not this worker's
            };
            let throttle = st.progress.entry(inv_id).or_default();
            if now >= throttle.next_write {
                throttle.next_write = now.saturating_add(PROGRESS_EVERY_MS);
                throttle.held = None;
                Some(token)
            } else {
                throttle.held = Some(progress.clone());
                None
            }
        };
        if let Some(token) = write {
            self.write_progress(token, progress).await;
        }
    }

    async fn write_progress(&self, token: LeaseToken, progress: Progress) {
        if let Err(e) = self.store.set_progress(&token, progress).await {
            tracing::warn!(job = %token.job_id, error = %e, "could not record progress");
        }
    }

    /// Until `shutdown`: every [`WATCH_EVERY_MS`], writes held progress that is due and
    /// stops the attempts whose jobs were cancelled through another engine.
    ///
    /// The cadence is real time, not the injected clock's: it is housekeeping, not a time
    /// any job waits for, so a test stepping a manual clock to "the timer the engine waits
    /// on" never meets it. What a round decides (is held progress due?) reads the clock.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(WATCH_EVERY_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            self.watch_once().await;
        }
    }

    /// One round of [`Self::watch`].
    pub async fn watch_once(&self) {
        let now = self.clock.now();
        let (due, tokens) = {
            let mut st = self.state.lock();
            let mut due = Vec::new();
            let held: Vec<u64> = st
                .progress
                .iter()
                .filter(|(_, t)| t.held.is_some() && t.next_write <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in held {
                let Some(Kind::Job(lease)) = st.invocations.get(&id).map(|inv| &inv.kind) else { continue };
                let token = lease.token.clone();
                let throttle = st.progress.get_mut(&id).expect("listed above");
                throttle.next_write = now.saturating_add(PROGRESS_EVERY_MS);
                due.push((token, throttle.held.take().expect("held")));
            }
            let tokens: Vec<LeaseToken> = st
                .invocations
                .values()
                .filter_map(|inv| match &inv.kind {
                    Kind::Job(lease) => Some(lease.token.clone()),
                    Kind::Call { .. } => None,
                })
                .collect();
            (due, tokens)
        };
        for (token, progress) in due {
            self.write_progress(token, progress).await;
        }
        if tokens.is_empty() {
            return;
        }
        match self.store.cancel_requested(&tokens).await {
            Ok(requested) => {
                for token in requested {
                    self.cancel_lease(&token).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read cancel requests"),
        }
    }
}

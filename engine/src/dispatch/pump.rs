//! The pump: the dispatcher's one background task. It wakes on store changes, freed
//! capacity and timers; each round expires deadlines, then leases for every queue what
//! the queue's `concurrency` and the workers' free slots allow. At shutdown it drains.

use super::invocation::Kind;
use super::{Aftermath, CallError, Dispatcher};
use crate::clock::Millis;
use crate::config::QueueSpec;
use crate::queue::JobError;
use crate::store::{LeaseRequest, StoreError};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Dispatcher {
    /// Runs the pump until `shutdown`, then drains: no new work is taken, in-flight
    /// invocations get `shutdown_grace_ms` to finish, and what is left is cancelled and
    /// released (not counted as an attempt).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let changed = self.store.changed();
        let mut backoff_ms = 0u64;
        while !shutdown.is_cancelled() {
            let store_changed = changed.notified();
            let woken = self.wake.notified();
            tokio::pin!(store_changed, woken);
            store_changed.as_mut().enable();
            woken.as_mut().enable();
            let next = match self.pump_once().await {
                Ok(next) => {
                    backoff_ms = 0;
                    next
                }
                Err(e) => {
                    backoff_ms = (backoff_ms * 2).clamp(100, 5_000);
                    tracing::error!(error = %e, retry_in_ms = backoff_ms, "store failed while leasing");
                    Some(self.clock.now() + backoff_ms)
                }
            };
            let sleep = next.map(|t| self.clock.sleep_until(t));
            tokio::select! {
                _ = &mut store_changed => {}
                _ = &mut woken => {}
                _ = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.drain().await;
    }

    /// One round: expire deadlines, lease for every queue, and say when to wake next.
    async fn pump_once(&self) -> Result<Option<Millis>, StoreError> {
        let now = self.clock.now();
        self.expire(now).await;
        let mut next: Option<Millis> = self.state.lock().deadlines.first().map(|d| d.0);
        for (name, spec) in &self.config.queues {
            if let Some(wait) = self.fill(name, spec, now).await? {
                next = Some(next.map_or(wait, |n| n.min(wait)));
            }
            if let Some(due) = self.store.next_due(name).await? {
                // A due job not leased now waits for capacity, which wakes the pump itself.
                if due > now {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        Ok(next)
    }

    /// Leases what `queue` and the workers have room for (and its rate limit grants) and
    /// queues it for dispatch. Answers when to come back for a queue its rate limit held.
    async fn fill(&self, queue: &str, spec: &QueueSpec, now: Millis) -> Result<Option<Millis>, StoreError> {
        let (functions, free) = {
            let st = self.state.lock();
            if !st.accepting {
                return Ok(None);
            }
            if let Some(&wait) = st.rate_wait.get(queue)
                && wait > now
            {
                return Ok(Some(wait));
            }
            let free = spec.concurrency.saturating_sub(st.leased.get(queue).copied().unwrap_or(0)) as usize;
            let functions: Vec<(String, usize)> = st
                .workers
                .capacities()
                .into_iter()
                .map(|(f, cap)| {
                    let waiting = st.backlog.get(&f).map_or(0, VecDeque::len);
                    (f, cap.saturating_sub(waiting))
                })
                .filter(|(_, cap)| *cap > 0)
                .collect();
            (functions, free)
        };
        if free == 0 || functions.is_empty() {
            return Ok(None);
        }
        let wanted: usize = functions.iter().map(|(_, cap)| *cap).sum::<usize>().min(free);
        let (max, mut wake) = match &spec.rate_limit {
            None => (wanted, None),
            Some(limit) => {
                let grant = self.rate_gate.take(queue, limit, wanted as u32, now).await?;
                // No token before `next_at`: until then no round asks the gate again.
                let mut st = self.state.lock();
                match grant.next_at {
                    Some(at) => st.rate_wait.insert(queue.to_string(), at),
                    None => st.rate_wait.remove(queue),
                };
                if grant.granted == 0 {
                    return Ok(grant.next_at);
                }
                // Held back: come back when the next token is there.
                (grant.granted as usize, grant.next_at.filter(|_| (grant.granted as usize) < wanted))
            }
        };
        tracing::trace!(queue, ?functions, max, "leasing");
        let leases = self.store.lease(LeaseRequest { queue: queue.to_string(), functions, max, now }).await?;
        tracing::trace!(queue, leased = leases.len(), "leased");
        if let Some(limit) = &spec.rate_limit
            && leases.len() < max
        {
            // Tokens are back in the bucket: the next round may take them at once.
            self.rate_gate.refund(queue, limit, (max - leases.len()) as u32, now).await?;
            self.state.lock().rate_wait.remove(queue);
            wake = None;
        }
        if leases.is_empty() {
            return Ok(wake);
        }
        let after = {
            let mut st = self.state.lock();
            let mut touched = BTreeSet::new();
            *st.leased.entry(queue.to_string()).or_default() += leases.len() as u32;
            for lease in leases {
                let function = lease.job.function_id.clone();
                let id = Self::admit(&mut st, Kind::Job(lease), None);
                st.backlog.entry(function.clone()).or_default().push_back(id);
                touched.insert(function);
            }
            let mut after = Aftermath::default();
            for f in touched {
                self.serve(&mut st, &f, now);
                Self::orphan(&mut st, &f, &mut after);
            }
            after
        };
        self.settle(after).await;
        Ok(wake)
    }

    /// Ends every invocation whose deadline has passed.
    async fn expire(&self, now: Millis) {
        let after = {
            let mut st = self.state.lock();
            let mut after = Aftermath::default();
            let mut expired = false;
            while let Some(&(deadline, id)) = st.deadlines.first() {
                if deadline > now {
                    break;
                }
                let Some(inv) = Self::take(&mut st, id) else {
                    continue;
                };
                expired = true;
                if let Some(w) = inv.worker {
                    Self::send_cancel(&st, w, id, "timeout");
                }
                match inv.kind {
                    Kind::Job(lease) => {
                        if inv.worker.is_some() {
                            self.metrics.attempt_ended(&lease.job, inv.sent_at, now);
                        }
                        let ms = self.config.queues.get(&lease.job.queue).map_or(0, |q| q.timeout_ms);
                        let error =
                            JobError::new("TIMEOUT", format!("attempt did not finish within timeout_ms ({ms} ms)"));
                        after.failed_jobs.push((lease, error, inv.sent_at));
                    }
                    Kind::Call { reply: Some(tx), .. } => after.replies.push((tx, Err(CallError::Timeout))),
                    Kind::Call { reply: None, .. } => {}
                }
            }
            if expired {
                // Workers have room again: hand them what waits.
                let functions: BTreeSet<String> = st.backlog.keys().cloned().collect();
                for f in functions {
                    self.serve(&mut st, &f, now);
                }
            }
            after
        };
        self.settle(after).await;
    }

    async fn drain(&self) {
        let after = {
            let mut st = self.state.lock();
            st.accepting = false;
            let mut after = Aftermath::default();
            let queued: Vec<u64> = st.backlog.values().flatten().copied().collect();
            for id in queued {
                if let Some(inv) = Self::take(&mut st, id) {
                    after.add_abandoned(inv);
                }
            }
            after
        };
        self.settle(after).await;
        let grace = Duration::from_millis(self.config.shutdown_grace_ms);
        let drained = async {
            loop {
                let idle = self.idle.notified();
                if self.state.lock().invocations.is_empty() {
                    return;
                }
                idle.await;
            }
        };
        let finished = tokio::time::timeout(grace, drained).await.is_ok();
        let after = {
            let mut st = self.state.lock();
            let mut after = Aftermath::default();
            let left: Vec<u64> = st.invocations.keys().copied().collect();
            if !finished {
                tracing::warn!(left = left.len(), "shutdown grace elapsed; cancelling what is still running");
            }
            for id in left {
                let inv = Self::take(&mut st, id).expect("listed above");
                if let Some(w) = inv.worker {
                    Self::send_cancel(&st, w, id, "engine shutting down");
                }
                after.add_abandoned(inv);
            }
            // Closing every worker's channel ends its response stream.
            for w in st.workers.ids() {
                st.workers.remove(w);
            }
            after
        };
        self.settle(after).await;
    }
}

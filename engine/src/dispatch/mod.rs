//! The dispatcher: hands leased jobs and direct calls to connected workers.
//!
//! Invariants:
//! - a queue never has more than `concurrency` leased jobs from this engine (standard: jobs,
//!   fifo: groups — the store hands out at most one job per group);
//! - a worker never has more than its `max_in_flight` invocations outstanding
//!   ([`workers::Workers::pick`]);
//! - every leased job ends in exactly one `Store::finish`: complete, retry / dead-letter
//!   (decided by [`crate::queue::retry`]), or release when the engine itself gave up
//!   (shutdown, its function lost every worker before the job was sent).
//!
//! The protocol, as numbered steps:
//! 1. The pump ([`Dispatcher::run`]) wakes on store changes, freed capacity and timers.
//! 2. For each queue with free capacity it leases jobs for functions with free worker
//!    slots, and queues them in the per-function backlog.
//! 3. The backlog is served onto the least-loaded worker as `invoke` messages; queued jobs
//!    get their deadline (`timeout_ms`) when sent.
//! 4. A `result` ends the invocation; a deadline that passes sends `cancel` and counts as a
//!    failure; a worker that disconnects fails all of its invocations.
//!
//! Synchronous and void calls go through the same backlog, so they respect `max_in_flight`
//! too; a sync call's deadline covers both its wait for a slot and its run.
//!
//! Deliberately not done: no prefetch beyond free worker slots, and no lease is taken
//! for a function no connected worker serves — such jobs wait in the store.

mod invocation;
mod lifecycle;
mod pump;
pub mod workers;

use crate::clock::{Clock, Millis};
use crate::config::EngineConfig;
use crate::logging::jobs;
use crate::metrics::Recorder;
use crate::queue::retry::{AfterFailure, after_failure};
use crate::queue::{Job, JobError, Payload};
use crate::store::{Finish, Lease, Store};
use foldhash::HashMap;
use invocation::{Invocation, Kind};
use parking_lot::Mutex;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use switchyard_proto::wire::{
    EngineMessage, Hello, InvocationResult, Invoke, InvokeBatch, Registered, RegistrationRefused, Welcome,
    engine_message, invocation_result,
};
use tokio::sync::{Notify, mpsc, oneshot};
use workers::{DEFAULT_MAX_IN_FLIGHT, WorkerId, Workers};

/// How a synchronous call ended, when it did not return a value.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The handler failed (or its worker disconnected mid-call).
    Failed(JobError),
    /// No answer before the deadline.
    Timeout,
    /// Every worker for the function went away before the call was sent.
    NoWorker,
    /// The engine is shutting down.
    ShuttingDown,
}

/// A sync call's value: the encoded `google.protobuf.Value` the worker returned.
pub type CallResult = Result<bytes::Bytes, CallError>;

/// A worker's value for a sync call, checked before it reaches the caller: bytes that are
/// not a `google.protobuf.Value` fail the call (`INVALID_RESULT`) instead of handing the
/// caller something its SDK cannot read. A job's value is not checked: nobody reads it.
fn call_value(value: bytes::Bytes) -> Result<bytes::Bytes, JobError> {
    crate::wire::payload_from_wire(value).map(|payload| payload.0).map_err(|e| {
        JobError::new("INVALID_RESULT", format!("the worker's result is not a google.protobuf.Value: {e}"))
    })
}

/// How a worker's attempt at a queued job ended.
enum Attempt {
    /// The encoded `google.protobuf.Value` it returned.
    Succeeded(bytes::Bytes),
    Failed(JobError),
    /// The handler said it will never succeed.
    FailedForGood(JobError),
}

/// Why a call was refused up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRejected {
    FunctionNotFound,
    ShuttingDown,
}

pub struct Dispatcher {
    config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    /// The store's rate gate, taken once.
    rate_gate: Arc<dyn crate::limits::rate::RateGate>,
    clock: Arc<dyn Clock>,
    metrics: Recorder,
    state: Mutex<State>,
    /// Wakes the pump: capacity was freed or a worker registered a function.
    wake: Notify,
    /// Notified whenever the last outstanding invocation ends.
    idle: Notify,
}

struct State {
    workers: Workers,
    invocations: HashMap<u64, Invocation>,
    deadlines: BTreeSet<(Millis, u64)>,
    /// Per function: invocations waiting for a worker slot, oldest first.
    backlog: HashMap<String, VecDeque<u64>>,
    /// Per queue: jobs this engine holds leased.
    leased: HashMap<String, u32>,
    /// Per job invocation that reported progress: when it may be written next, and the
    /// report held back until then ([`lifecycle`]).
    progress: HashMap<u64, lifecycle::Throttle>,
    /// Per rate-limited queue: no token before this instant.
    rate_wait: HashMap<String, Millis>,
    accepting: bool,
    next_invocation: u64,
}

/// What leaving the lock left to do: awaits happen outside it. Jobs carry the time their
/// invoke was sent, if it was.
#[derive(Default)]
struct Aftermath {
    failed_jobs: Vec<(Lease, JobError, Option<Millis>)>,
    released_jobs: Vec<(Lease, Option<Millis>)>,
    /// Cancel-requested jobs whose attempt the engine stopped.
    cancelled_jobs: Vec<(Lease, Option<Millis>)>,
    replies: Vec<(oneshot::Sender<CallResult>, CallResult)>,
}

impl Dispatcher {
    pub fn new(
        config: Arc<EngineConfig>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Recorder,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            rate_gate: store.rate_gate(),
            store,
            clock,
            metrics,
            state: Mutex::new(State {
                workers: Workers::default(),
                invocations: HashMap::default(),
                deadlines: BTreeSet::new(),
                backlog: HashMap::default(),
                leased: HashMap::default(),
                progress: HashMap::default(),
                rate_wait: HashMap::default(),
                accepting: true,
                next_invocation: 0,
            }),
            wake: Notify::new(),
            idle: Notify::new(),
        })
    }

    pub fn is_accepting(&self) -> bool {
        self.state.lock().accepting
    }

    // ---- workers ------------------------------------------------------------------

    /// A new worker stream: the messages to send it come out of the receiver.
    pub fn connect_worker(&self) -> (WorkerId, mpsc::UnboundedReceiver<EngineMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.state.lock().workers.add(tx, self.clock.now());
        (id, rx)
    }

    /// Every worker stream open on this engine, in the order they connected.
    pub fn workers(&self) -> Vec<workers::WorkerView> {
        self.state.lock().workers.views()
    }

    /// Applies a worker's hello and answers with `welcome`.
    pub fn hello(&self, id: WorkerId, hello: Hello) {
        let mut st = self.state.lock();
        let Some(w) = st.workers.get_mut(id) else {
            return;
        };
        w.name = hello.worker_name;
        w.max_in_flight = if hello.max_in_flight == 0 { DEFAULT_MAX_IN_FLIGHT } else { hello.max_in_flight };
        w.batches = hello.batches;
        tracing::info!(
            worker = id,
            name = %w.name,
            sdk = %format_args!("{} {}", hello.sdk_name, hello.sdk_version),
            max_in_flight = w.max_in_flight,
            functions = w.functions.len(),
            "worker connected"
        );
        w.sdk = Some((hello.sdk_name, hello.sdk_version));
        let welcome = Welcome { worker_id: format!("w{id}"), max_in_flight: w.max_in_flight };
        let _ = w.tx.send(EngineMessage { kind: Some(engine_message::Kind::Welcome(welcome)) });
        let functions: Vec<String> = w.functions.iter().cloned().collect();
        let now = self.clock.now();
        for f in functions {
            self.serve(&mut st, &f, now);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Registers `function` on the worker and acknowledges it with `registered`.
    pub fn register(&self, id: WorkerId, function: &str) {
        let mut st = self.state.lock();
        st.workers.register(id, function);
        if let Some(w) = st.workers.get(id) {
            let ack = Registered { function_id: function.to_string() };
            let _ = w.tx.send(EngineMessage { kind: Some(engine_message::Kind::Registered(ack)) });
        }
        let now = self.clock.now();
        self.serve(&mut st, function, now);
        drop(st);
        self.wake.notify_one();
    }

    /// Tells the worker its registration of `function` was refused, and why; nothing
    /// about the worker's registrations changes.
    pub fn refuse(&self, id: WorkerId, function: &str, why: &crate::api::error::ApiError) {
        let st = self.state.lock();
        if let Some(w) = st.workers.get(id) {
            let refused = RegistrationRefused { function_id: function.to_string(), status: Some(why.to_rpc_status()) };
            let _ = w.tx.send(EngineMessage { kind: Some(engine_message::Kind::Refused(refused)) });
        }
    }

    pub async fn unregister(&self, id: WorkerId, function: &str) {
        let after = {
            let mut st = self.state.lock();
            st.workers.unregister(id, function);
            let mut after = Aftermath::default();
            Self::orphan(&mut st, function, &mut after);
            after
        };
        self.settle(after).await;
    }

    /// The worker's stream ended: its invocations fail ("worker disconnected") and follow
    /// the retry path; calls waiting for a function nobody serves any more end.
    pub async fn worker_gone(&self, id: WorkerId) {
        let after = {
            let mut st = self.state.lock();
            // A worker the drain already removed was not lost: it was let go.
            let name = st.workers.get(id).map(|w| w.name.clone());
            let functions = st.workers.remove(id);
            let mut after = Aftermath::default();
            let mine: Vec<u64> =
                st.invocations.iter().filter(|(_, inv)| inv.worker == Some(id)).map(|(k, _)| *k).collect();
            if let Some(name) = name {
                tracing::info!(worker = id, name = %name, in_flight = mine.len(), "worker disconnected");
            }
            let error = JobError::new("WORKER_DISCONNECTED", "worker disconnected during the attempt");
            let now = self.clock.now();
            for inv_id in mine {
                let inv = Self::take(&mut st, inv_id).expect("listed above");
                match inv.kind {
                    Kind::Job(lease) => {
                        self.metrics.attempt_ended(&lease.job, inv.sent_at, now);
                        after.failed_jobs.push((lease, error.clone(), inv.sent_at))
                    }
                    Kind::Call { reply: Some(tx), .. } => {
                        after.replies.push((tx, Err(CallError::Failed(error.clone()))))
                    }
                    Kind::Call { reply: None, .. } => {}
                }
            }
            for f in &functions {
                Self::orphan(&mut st, f, &mut after);
            }
            after
        };
        self.settle(after).await;
        self.notify_if_idle();
    }

    // ---- calls ------------------------------------------------------------------------

    /// A synchronous (`reply` is `Some`) or void call. It waits in the backlog for a free
    /// slot; `deadline` bounds the wait and the run.
    pub fn call(
        &self,
        function_id: &str,
        payload: Payload,
        reply: Option<oneshot::Sender<CallResult>>,
        deadline: Millis,
    ) -> Result<(), CallRejected> {
        let mut st = self.state.lock();
        if !st.accepting {
            return Err(CallRejected::ShuttingDown);
        }
        if !st.workers.serves(function_id) {
            return Err(CallRejected::FunctionNotFound);
        }
        let kind = Kind::Call { function_id: function_id.to_string(), payload, reply };
        let id = Self::admit(&mut st, kind, Some(deadline));
        st.backlog.entry(function_id.to_string()).or_default().push_back(id);
        self.serve(&mut st, function_id, self.clock.now());
        drop(st);
        // The pump sleeps until the earliest deadline it knew of: it must see this one.
        self.wake.notify_one();
        Ok(())
    }

    /// A worker answered invocations (one message's worth): each is ended, the worker's
    /// freed slots are refilled once, then the jobs' ends are recorded in the store.
    pub async fn on_results(&self, worker: WorkerId, results: impl IntoIterator<Item = InvocationResult>) {
        let results = results.into_iter();
        let mut jobs = Vec::with_capacity(results.size_hint().0);
        {
            let mut st = self.state.lock();
            let now = self.clock.now();
            for result in results {
                let Ok(inv_id) = result.invocation_id.parse::<u64>() else {
                    tracing::warn!(worker, id = %result.invocation_id, "result for a malformed invocation id; ignored");
                    continue;
                };
                match st.invocations.get(&inv_id) {
                    Some(inv) if inv.worker == Some(worker) => {}
                    _ => continue, // late (timed out, cancelled) or not this worker's: ignored
                }
                let inv = Self::take(&mut st, inv_id).expect("checked above");
                let sent_at = inv.sent_at;
                let mut permanent = false;
                let outcome = match result.outcome {
                    Some(invocation_result::Outcome::Value(v)) => Ok(v),
                    None => Ok(crate::wire::null_bytes()),
                    Some(invocation_result::Outcome::Error(e)) => {
                        permanent = e.non_retryable;
                        Err(JobError { message: e.message, code: e.code, stack: e.stack })
                    }
                };
                match inv.kind {
                    Kind::Job(lease) => {
                        self.metrics.attempt_ended(&lease.job, sent_at, now);
                        let outcome = match outcome {
                            Ok(v) => Attempt::Succeeded(v),
                            Err(e) if permanent => Attempt::FailedForGood(e),
                            Err(e) => Attempt::Failed(e),
                        };
                        jobs.push((lease, outcome, sent_at))
                    }
                    Kind::Call { reply: Some(tx), .. } => {
                        let _ = tx.send(outcome.and_then(call_value).map_err(CallError::Failed));
                    }
                    Kind::Call { reply: None, .. } => {}
                }
            }
            // The worker has room again: hand it what waits for its functions.
            let functions: Vec<String> =
                st.workers.get(worker).map(|w| w.functions.iter().cloned().collect()).unwrap_or_default();
            for f in functions {
                self.serve(&mut st, &f, now);
            }
        }
        let ends = jobs.into_iter().map(|(lease, outcome, sent_at)| {
            let finish = self.finish_of(&lease.job, outcome);
            (lease, finish, sent_at)
        });
        self.end_leases(ends.collect()).await;
        self.wake.notify_one();
        self.notify_if_idle();
    }

    // ---- helpers --------------------------------------------------------------------

    fn admit(st: &mut State, kind: Kind, deadline: Option<Millis>) -> u64 {
        st.next_invocation += 1;
        let id = st.next_invocation;
        if let Some(d) = deadline {
            st.deadlines.insert((d, id));
        }
        st.invocations.insert(id, Invocation { worker: None, deadline, sent_at: None, kind });
        id
    }

    /// Removes an invocation from every index and frees its worker slot.
    fn take(st: &mut State, id: u64) -> Option<Invocation> {
        let inv = st.invocations.remove(&id)?;
        st.progress.remove(&id);
        if let Some(d) = inv.deadline {
            st.deadlines.remove(&(d, id));
        }
        match inv.worker {
            Some(w) => {
                if let Some(worker) = st.workers.get_mut(w) {
                    worker.outstanding = worker.outstanding.saturating_sub(1);
                }
            }
            None => {
                if let Some(q) = st.backlog.get_mut(inv.kind.function_id()) {
                    q.retain(|x| *x != id);
                }
            }
        }
        Some(inv)
    }

    /// Sends backlog invocations of `function` to workers while slots are free.
    fn serve(&self, st: &mut State, function: &str, now: Millis) {
        let mut outgoing: Vec<(WorkerId, Invoke)> = Vec::new();
        let mut new_deadline = false;
        loop {
            let Some(&id) = st.backlog.get(function).and_then(VecDeque::front) else {
                st.backlog.remove(function);
                break;
            };
            let Some(worker_id) = st.workers.pick(function) else { break };
            st.backlog.get_mut(function).expect("non-empty").pop_front();
            let Some(inv) = st.invocations.get_mut(&id) else { continue };
            inv.worker = Some(worker_id);
            inv.sent_at = Some(now);
            if let Kind::Job(lease) = &inv.kind {
                jobs::started(&lease.job);
                self.metrics.started(&lease.job, now);
                let timeout = self.config.queues.get(&lease.job.queue).map_or(300_000, |q| q.timeout_ms);
                let deadline = now.saturating_add(timeout);
                inv.deadline = Some(deadline);
                st.deadlines.insert((deadline, id));
                new_deadline = true;
            }
            outgoing.push((worker_id, inv.kind.invoke(id, &self.config)));
            st.workers.get_mut(worker_id).expect("picked").outstanding += 1;
        }
        if new_deadline {
            // The pump sleeps until the earliest deadline it knew of: it must see these.
            self.wake.notify_one();
        }
        Self::send_invokes(st, outgoing);
    }

    /// Sends invocations, several per message to workers that said they take batches.
    /// A send to a closed stream is fine: worker_gone fails the invocation.
    fn send_invokes(st: &State, mut outgoing: Vec<(WorkerId, Invoke)>) {
        outgoing.sort_by_key(|(w, _)| *w); // stable: each worker's invocations keep their order
        let mut rest = outgoing.as_mut_slice();
        while let Some(&(worker_id, _)) = rest.first() {
            let n = rest.iter().take_while(|(w, _)| *w == worker_id).count();
            let (mine, tail) = rest.split_at_mut(n);
            rest = tail;
            let Some(worker) = st.workers.get(worker_id) else { continue };
            if worker.batches && n > 1 {
                let invokes = mine.iter_mut().map(|(_, i)| std::mem::take(i)).collect();
                let batch = engine_message::Kind::Invokes(InvokeBatch { invokes });
                let _ = worker.tx.send(EngineMessage { kind: Some(batch) });
            } else {
                for (_, invoke) in mine.iter_mut() {
                    let invoke = std::mem::take(invoke);
                    let _ = worker.tx.send(EngineMessage { kind: Some(engine_message::Kind::Invoke(invoke)) });
                }
            }
        }
    }

    /// When no worker serves `function` any more, its backlog cannot be sent: jobs are
    /// released to the store, calls end with `NoWorker`.
    fn orphan(st: &mut State, function: &str, after: &mut Aftermath) {
        if st.workers.serves(function) {
            return;
        }
        let Some(queued) = st.backlog.remove(function) else {
            return;
        };
        for id in queued {
            if let Some(inv) = Self::take(st, id) {
                match inv.kind {
                    Kind::Job(lease) => after.released_jobs.push((lease, inv.sent_at)),
                    Kind::Call { reply: Some(tx), .. } => after.replies.push((tx, Err(CallError::NoWorker))),
                    Kind::Call { reply: None, .. } => {}
                }
            }
        }
    }

    fn send_cancel(st: &State, worker: WorkerId, id: u64, reason: &str) {
        if let Some(w) = st.workers.get(worker) {
            let _ = w.tx.send(invocation::cancel_message(id, reason));
        }
    }

    /// Does what a locked section decided: store transitions and replies.
    async fn settle(&self, after: Aftermath) {
        for (tx, result) in after.replies {
            let _ = tx.send(result);
        }
        let failed = after.failed_jobs.into_iter().map(|(lease, error, sent_at)| {
            let finish = self.finish_of(&lease.job, Attempt::Failed(error));
            (lease, finish, sent_at)
        });
        let released = after.released_jobs.into_iter().map(|(lease, sent_at)| (lease, Finish::Release, sent_at));
        let now = self.clock.now();
        let cancelled = after.cancelled_jobs.into_iter().map(|(lease, sent_at)| {
            let until = self.config.queues.get(&lease.job.queue).map_or(now, |q| q.cancelled_until(now));
            (lease, Finish::Cancelled { at: now, until }, sent_at)
        });
        self.end_leases(failed.chain(released).chain(cancelled).collect()).await;
    }

    /// How an attempt of a queued job ends: complete (kept with its result where the queue
    /// retains results), or retry / dead-letter per the policy; a non-retryable failure
    /// dead-letters whatever budget is left.
    fn finish_of(&self, job: &Job, outcome: Attempt) -> Finish {
        let now = self.clock.now();
        let spec = self.config.queues.get(&job.queue).expect("leased only from configured queues");
        let error = match outcome {
            Attempt::Succeeded(value) => {
                let Some(until) = spec.completed_until(now) else { return Finish::Complete };
                let result = crate::wire::payload_from_wire(value).unwrap_or_else(|e| {
                    tracing::warn!(job = %job.id, error = %e, "the result is not a google.protobuf.Value; kept as null");
                    Payload(crate::wire::null_bytes())
                });
                return Finish::CompleteRetained { result, at: now, until };
            }
            Attempt::FailedForGood(error) => return Finish::DeadLetter { error, at: now },
            Attempt::Failed(error) => error,
        };
        match after_failure(spec, job.attempts, now, rand::random::<f64>()) {
            AfterFailure::RetryAt { due_at } => Finish::Retry { due_at, error },
            AfterFailure::DeadLetter => Finish::DeadLetter { error, at: now },
        }
    }

    /// Records the ends of attempts in the store, in one call (one lock, or one round of
    /// trips), logs each one the store took, then frees their queues' slots and wakes the
    /// pump once. `ends` carry the time each invoke was sent, if it was.
    async fn end_leases(&self, ends: Vec<(Lease, Finish, Option<Millis>)>) {
        if ends.is_empty() {
            return;
        }
        let mut jobs = Vec::with_capacity(ends.len());
        let mut events = Vec::with_capacity(ends.len());
        let mut finishes = Vec::with_capacity(ends.len());
        for (lease, finish, sent_at) in ends {
            events.push(jobs::Ended::of(&finish, sent_at));
            jobs.push(lease.job);
            finishes.push((lease.token, finish));
        }
        let answers = self.store.finish_many(finishes).await;
        let now = self.clock.now();
        for ((job, event), answer) in jobs.iter().zip(&events).zip(answers) {
            match answer {
                Ok(true) => {
                    event.log(job, now);
                    self.metrics.ended(&job.queue, event.outcome());
                }
                Ok(false) => tracing::debug!(job = %job.id, "lease was stale; nothing changed"),
                // The job stays leased in the store; a durable store makes it ready again
                // at the next start (recover).
                Err(e) => tracing::error!(job = %job.id, error = %e, "could not record the end of an attempt"),
            }
        }
        let mut st = self.state.lock();
        for job in &jobs {
            if let Some(n) = st.leased.get_mut(&job.queue) {
                *n = n.saturating_sub(1);
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    fn notify_if_idle(&self) {
        if self.state.lock().invocations.is_empty() {
            self.idle.notify_waiters();
        }
    }
}

impl Aftermath {
    /// The engine gave up on an invocation itself: the attempt does not count.
    fn add_abandoned(&mut self, inv: Invocation) {
        match inv.kind {
            Kind::Job(lease) => self.released_jobs.push((lease, inv.sent_at)),
            Kind::Call { reply: Some(tx), .. } => self.replies.push((tx, Err(CallError::ShuttingDown))),
            Kind::Call { reply: None, .. } => {}
        }
    }
}

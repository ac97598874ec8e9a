//! `switchyard.v1.Engine`: `Trigger` for callers, `Connect` for workers.
//!
//! Enqueue options (on `EnqueueAction`, `EnqueueItem` and `PublishAction`), validated here
//! into the job the store is handed:
//! - `delay_ms` (from the engine clock's now) or `not_before` (absolute; one in the past
//!   runs at once) — both is `CONFLICTING_DELAY`; the job is `Delayed` until then;
//! - `idempotency_key` (at most [`MAX_IDEMPOTENCY_KEY`] bytes, else
//!   `INVALID_IDEMPOTENCY_KEY`): claimed on the queue for its `dedup_window_ms`; a
//!   duplicate answers the first job's id with `duplicate = true`.
//!
//! Publish: one job per subscriber of the topic (config order), each on the subscriber's
//! queue `<topic>/<function_id>`, stored in one `enqueue` (all or none); `function_id` must
//! be empty; an unknown topic is `TOPIC_NOT_FOUND`; a topic with no subscribers answers an
//! empty receipt list and is counted (`switchyard_topic_published_total`) like any publish.
//! The idempotency key applies per subscriber queue.

use super::Shared;
use super::error::ApiError;
use crate::auth::Action;
use crate::clock::Millis;
use crate::config::QueueKind;
use crate::config::TopicSpec;
use crate::dispatch::{CallError, CallRejected};
use crate::limits::slots::ConnectionGuard;
use crate::logging::jobs::Enqueued;
use crate::queue::group::group_of;
use crate::queue::{Dedup, MAX_PRIORITY, NewJob, Payload};
use crate::wire::{decode_payload, payload_within};
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use switchyard_proto::wire::engine_server::Engine;
use switchyard_proto::wire::{
    EngineMessage, EnqueueBatchRequest, EnqueueBatchResponse, EnqueueReceipt, EnqueueResult, InvocationResult,
    PublishReceipt, SubscriberReceipt, TriggerRequest, TriggerResponse, VoidAccepted, WorkerMessage, enqueue_result,
    trigger_request, trigger_response, worker_message,
};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Sync-call timeout when the request sets none.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;

/// The longest `idempotency_key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The enqueue options of one enqueue, as they came.
#[derive(Default)]
struct Options {
    delay_ms: Option<u64>,
    not_before: Option<prost_types::Timestamp>,
    idempotency_key: String,
    priority: Option<u32>,
}

impl Options {
    /// The due time of a delayed job, `None` for one due now; or `CONFLICTING_DELAY`.
    fn not_before(&self, now: Millis) -> Result<Option<Millis>, ApiError> {
        let at = match (self.delay_ms, &self.not_before) {
            (Some(_), Some(_)) => return Err(ApiError::ConflictingDelay),
            (Some(delay), None) => now.saturating_add(delay),
            (None, Some(ts)) => {
                let ms = ts.seconds.saturating_mul(1000).saturating_add(i64::from(ts.nanos) / 1_000_000);
                u64::try_from(ms).unwrap_or(0)
            }
            (None, None) => return Ok(None),
        };
        Ok((at > now).then_some(at))
    }

    /// The priority, checked against the range and the queue's type.
    fn priority(&self, queue: &str, kind: QueueKind) -> Result<u8, ApiError> {
        match self.priority {
            None => Ok(0),
            Some(p) if p > u32::from(MAX_PRIORITY) => Err(ApiError::InvalidPriority { priority: p, max: MAX_PRIORITY }),
            Some(_) if kind == QueueKind::Fifo => Err(ApiError::PriorityOnFifoQueue { queue: queue.to_string() }),
            Some(p) => Ok(p as u8),
        }
    }

    /// The key, checked; `None` when empty.
    fn key(&self) -> Result<Option<&str>, ApiError> {
        match self.idempotency_key.len() {
            0 => Ok(None),
            len if len > MAX_IDEMPOTENCY_KEY => Err(ApiError::InvalidIdempotencyKey { len, max: MAX_IDEMPOTENCY_KEY }),
            _ => Ok(Some(&self.idempotency_key)),
        }
    }
}

pub struct EngineService {
    shared: Shared,
}

impl EngineService {
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }

    /// The payload as it came, checked: within `max_payload_bytes` and
    /// `limits.max_payload_depth`, a well-formed value.
    fn payload(&self, bytes: Bytes) -> Result<Payload, ApiError> {
        let max = self.shared.config.max_payload_bytes;
        if bytes.len() > max {
            return Err(ApiError::PayloadTooLarge { size: bytes.len(), max });
        }
        let depth = self.shared.config.limits.max_payload_depth;
        payload_within(bytes, depth).map_err(|e| match e.is_too_deep() {
            true => ApiError::PayloadTooDeep { max: depth },
            false => ApiError::InvalidArgument(e.to_string()),
        })
    }

    /// Refuses a job for a queue holding `max_ready` jobs waiting (`QUEUE_FULL`).
    async fn admit(&self, queue: &str) -> Result<(), ApiError> {
        let s = &self.shared;
        let max = s.queue(queue)?.max_ready;
        match s.guards.ready.admit(s.store.as_ref(), queue, max, s.clock.now()).await? {
            Ok(()) => Ok(()),
            Err(full) => Err(ApiError::QueueFull { queue: queue.to_string(), waiting: full.waiting, max }),
        }
    }

    /// A slot for one call on the caller's connection (`TOO_MANY_CALLS` when it has none).
    fn call_slot<T>(&self, request: &Request<T>) -> Result<Option<ConnectionGuard>, ApiError> {
        let Some(peer) = request.remote_addr() else { return Ok(None) }; // not over TCP: not counted
        let calls = &self.shared.guards.calls;
        calls.try_take(peer).map(Some).ok_or(ApiError::TooManyCalls { max: calls.limit() })
    }

    /// Validates one enqueue (queue, payload size, FIFO group, options) into a job to store.
    fn new_job(&self, function_id: &str, payload: Bytes, queue: String, options: &Options) -> Result<NewJob, ApiError> {
        let payload = self.payload(payload)?;
        self.new_job_checked(function_id, payload, queue, options)
    }

    /// [`Self::new_job`] with the payload already checked.
    fn new_job_checked(
        &self,
        function_id: &str,
        payload: Payload,
        queue: String,
        options: &Options,
    ) -> Result<NewJob, ApiError> {
        let function_id = function_id.trim();
        if function_id.is_empty() {
            return Err(ApiError::InvalidArgument("function_id is required".into()));
        }
        let s = &self.shared;
        let spec = s.queue(&queue)?;
        let now = s.clock.now();
        let not_before = options.not_before(now)?;
        let priority = options.priority(&queue, spec.kind)?;
        let dedup = options.key()?.map(|key| Dedup { key: key.to_string(), window_ms: spec.dedup_window_ms });
        let group = match (spec.kind, &spec.message_group_field) {
            (QueueKind::Fifo, Some(field)) => Some(group_of(&decode_payload(&payload), field).map_err(|why| {
                ApiError::MissingGroupField { queue: queue.clone(), field: field.clone(), why: why.to_string() }
            })?),
            _ => None,
        };
        Ok(NewJob {
            id: crate::queue::new_job_id(),
            queue,
            function_id: function_id.to_string(),
            payload,
            group,
            enqueued_at: now,
            not_before,
            dedup,
            priority,
        })
    }

    /// Stores `jobs` (admitted already), logging them; one answer per job.
    async fn store(&self, jobs: Vec<NewJob>) -> Result<Vec<crate::queue::Enqueued>, ApiError> {
        let noted = Enqueued::note(&jobs);
        let answers = self.shared.store.enqueue(jobs).await?;
        if let Some(noted) = noted {
            noted.log(&answers);
        }
        Ok(answers)
    }

    /// `publish`: one job per subscriber of `topic`, stored together.
    async fn publish(
        &self,
        function_id: &str,
        payload: Bytes,
        action: switchyard_proto::wire::PublishAction,
    ) -> Result<PublishReceipt, ApiError> {
        let s = &self.shared;
        if !function_id.trim().is_empty() {
            return Err(ApiError::InvalidArgument(
                "function_id must be empty on publish: the topic's subscribers are the functions".into(),
            ));
        }
        let topic = action.topic.trim();
        let spec =
            s.config.topics.get(topic).ok_or_else(|| ApiError::topic_not_found(topic, &s.config.topic_names()))?;
        let options = Options {
            delay_ms: action.delay_ms,
            not_before: action.not_before,
            idempotency_key: action.idempotency_key,
            priority: None,
        };
        let payload = self.payload(payload)?;
        let mut jobs = Vec::with_capacity(spec.subscribers.len());
        for function in &spec.subscribers {
            let job =
                self.new_job_checked(function, payload.clone(), TopicSpec::queue_of(topic, function), &options)?;
            self.admit(&job.queue).await?;
            jobs.push(job);
        }
        let queues: Vec<(String, String)> = jobs.iter().map(|j| (j.function_id.clone(), j.queue.clone())).collect();
        let answers = if jobs.is_empty() { Vec::new() } else { self.store(jobs).await? };
        if let Some(m) = &s.metrics {
            m.published(topic);
        }
        let receipts = queues
            .into_iter()
            .zip(answers)
            .map(|((function_id, queue), a)| SubscriberReceipt {
                function_id,
                queue,
                message_receipt_id: a.id,
                duplicate: a.duplicate,
            })
            .collect();
        Ok(PublishReceipt { receipts })
    }

    /// `allowed` decides each item alone: an item outside the caller's rights fails with
    /// `PERMISSION_DENIED` in its result, the others go on.
    async fn enqueue_batch(
        &self,
        req: EnqueueBatchRequest,
        allowed: impl Fn(&str, &str) -> Result<(), ApiError>,
    ) -> Result<EnqueueBatchResponse, ApiError> {
        if !self.shared.dispatcher.is_accepting() {
            return Err(ApiError::shutting_down());
        }
        let mut jobs = Vec::with_capacity(req.items.len());
        // Per item: its job's index in `jobs`, or its error.
        let mut slots: Vec<Result<usize, ApiError>> = Vec::with_capacity(req.items.len());
        for item in req.items {
            let options = Options {
                delay_ms: item.delay_ms,
                not_before: item.not_before,
                idempotency_key: item.idempotency_key,
                priority: item.priority,
            };
            let job = match allowed(item.function_id.trim(), &item.queue)
                .and_then(|()| self.new_job(&item.function_id, item.payload, item.queue, &options))
            {
                Ok(job) => self.admit(&job.queue).await.map(|()| job),
                Err(e) => Err(e),
            };
            slots.push(job.map(|job| {
                jobs.push(job);
                jobs.len() - 1
            }));
        }
        let answers = if jobs.is_empty() { Vec::new() } else { self.store(jobs).await? };
        let results = slots
            .into_iter()
            .map(|slot| {
                let outcome = match slot {
                    Ok(i) => enqueue_result::Outcome::Receipt(EnqueueReceipt {
                        message_receipt_id: answers[i].id.clone(),
                        duplicate: answers[i].duplicate,
                    }),
                    Err(e) => enqueue_result::Outcome::Error(e.to_rpc_status()),
                };
                EnqueueResult { outcome: Some(outcome) }
            })
            .collect();
        Ok(EnqueueBatchResponse { results })
    }

    async fn trigger(&self, request: Request<TriggerRequest>) -> Result<TriggerResponse, ApiError> {
        let s = &self.shared;
        let function_id = request.get_ref().function_id.trim();
        let publishing = matches!(request.get_ref().action, Some(trigger_request::Action::Publish(_)));
        if function_id.is_empty() && !publishing {
            return Err(ApiError::InvalidArgument("function_id is required".into()));
        }
        let action = match &request.get_ref().action {
            Some(trigger_request::Action::Enqueue(e)) => Action::Enqueue { function: function_id, queue: &e.queue },
            Some(trigger_request::Action::Publish(p)) => Action::Publish { topic: p.topic.trim() },
            Some(trigger_request::Action::Void(_)) | None => Action::Call { function: function_id },
        };
        s.authorize(&request, action)?;
        let req = request.into_inner();
        let function_id = req.function_id.trim();
        if !s.dispatcher.is_accepting() {
            return Err(ApiError::shutting_down());
        }
        let outcome = match req.action {
            Some(trigger_request::Action::Enqueue(enqueue)) => {
                let options = Options {
                    delay_ms: enqueue.delay_ms,
                    not_before: enqueue.not_before,
                    idempotency_key: enqueue.idempotency_key,
                    priority: enqueue.priority,
                };
                let job = self.new_job(function_id, req.payload, enqueue.queue, &options)?;
                self.admit(&job.queue).await?;
                let answer = self.store(vec![job]).await?.remove(0);
                trigger_response::Outcome::Receipt(EnqueueReceipt {
                    message_receipt_id: answer.id,
                    duplicate: answer.duplicate,
                })
            }
            Some(trigger_request::Action::Publish(publish)) => {
                trigger_response::Outcome::Published(self.publish(function_id, req.payload, publish).await?)
            }
            Some(trigger_request::Action::Void(_)) => {
                let payload = self.payload(req.payload)?;
                let deadline = s.clock.now() + s.config.queues[crate::config::DEFAULT_QUEUE].timeout_ms;
                s.dispatcher.call(function_id, payload, None, deadline).map_err(|e| rejected(e, function_id))?;
                trigger_response::Outcome::Accepted(VoidAccepted {})
            }
            None => {
                let payload = self.payload(req.payload)?;
                let timeout_ms = req.timeout_ms.filter(|t| *t > 0).unwrap_or(DEFAULT_CALL_TIMEOUT_MS);
                let (tx, rx) = oneshot::channel();
                let deadline = s.clock.now().saturating_add(timeout_ms);
                s.dispatcher.call(function_id, payload, Some(tx), deadline).map_err(|e| rejected(e, function_id))?;
                let result = rx.await.unwrap_or(Err(CallError::ShuttingDown));
                let value = result.map_err(|e| match e {
                    CallError::Failed(error) => ApiError::FunctionFailed { function: function_id.to_string(), error },
                    CallError::Timeout => ApiError::Timeout { function: function_id.to_string(), timeout_ms },
                    CallError::NoWorker => ApiError::FunctionNotFound(function_id.to_string()),
                    CallError::ShuttingDown => ApiError::shutting_down(),
                })?;
                trigger_response::Outcome::Result(value)
            }
        };
        Ok(TriggerResponse { outcome: Some(outcome) })
    }
}

fn rejected(e: CallRejected, function_id: &str) -> ApiError {
    match e {
        CallRejected::FunctionNotFound => ApiError::FunctionNotFound(function_id.to_string()),
        CallRejected::ShuttingDown => ApiError::shutting_down(),
    }
}

async fn finish_all(
    dispatcher: &crate::dispatch::Dispatcher,
    worker: crate::dispatch::workers::WorkerId,
    results: &mut Vec<InvocationResult>,
) {
    if !results.is_empty() {
        dispatcher.on_results(worker, results.drain(..)).await; // the Vec keeps its capacity for the next run
    }
}

/// Whether a worker may register `function`: a valid id, inside its token's `functions`.
fn registration(
    token: Option<&crate::config::TokenSpec>,
    peer: Option<std::net::SocketAddr>,
    function: &str,
) -> Result<(), ApiError> {
    if function.is_empty() {
        return Err(ApiError::InvalidArgument("register_function: function_id is required".into()));
    }
    match token {
        Some(t) => crate::auth::check_token(t, peer, Action::Register { function }),
        None => Ok(()),
    }
}

type EngineStream = Pin<Box<dyn Stream<Item = Result<EngineMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Engine for EngineService {
    async fn trigger(&self, request: Request<TriggerRequest>) -> Result<Response<TriggerResponse>, Status> {
        let _slot = self.call_slot(&request)?;
        Ok(Response::new(self.trigger(request).await?))
    }

    async fn enqueue_batch(
        &self,
        request: Request<EnqueueBatchRequest>,
    ) -> Result<Response<EnqueueBatchResponse>, Status> {
        let _slot = self.call_slot(&request)?;
        self.shared.authorize(&request, Action::EnqueueBatch)?;
        let auth = self.shared.auth.clone();
        let (token, peer) = (crate::auth::principal(&request), request.remote_addr());
        if auth.is_some() && token.is_none() {
            return Err(ApiError::TokenMissing.into());
        }
        let allowed = |function: &str, queue: &str| match &token {
            Some(t) => crate::auth::check_token(t, peer, Action::Enqueue { function, queue }),
            None => Ok(()),
        };
        Ok(Response::new(self.enqueue_batch(request.into_inner(), allowed).await?))
    }

    type ConnectStream = EngineStream;

    /// One worker: its messages are applied in order; when its stream ends (or breaks),
    /// the dispatcher fails its in-flight invocations.
    async fn connect(&self, request: Request<Streaming<WorkerMessage>>) -> Result<Response<EngineStream>, Status> {
        self.shared.authorize(&request, Action::Connect)?;
        let (token, peer) = (crate::auth::principal(&request), request.remote_addr());
        let dispatcher = self.shared.dispatcher.clone();
        if !dispatcher.is_accepting() {
            return Err(ApiError::shutting_down().into());
        }
        let streams = &self.shared.guards.worker_streams;
        let slot = streams.try_take().ok_or(ApiError::TooManyWorkerStreams { max: streams.limit() })?;
        let inbound = request.into_inner();
        let (worker, outbound) = dispatcher.connect_worker();
        let closing = self.shared.closing.clone();
        tokio::spawn(async move {
            // Messages are applied in order; runs of results that arrived together are
            // finished concurrently, so a durable store can commit them as one group.
            let mut batches = futures::StreamExt::ready_chunks(inbound, 256);
            let mut results = Vec::new();
            'stream: while let Some(batch) = tokio::select! {
                b = batches.next() => b,
                _ = closing.cancelled() => None,
            } {
                for message in batch {
                    let Ok(message) = message else { break 'stream };
                    match message.kind {
                        Some(worker_message::Kind::Result(result)) => {
                            results.push(result);
                            continue;
                        }
                        Some(worker_message::Kind::Results(batch)) => {
                            results.extend(batch.results);
                            continue;
                        }
                        _ => {}
                    }
                    finish_all(&dispatcher, worker, &mut results).await;
                    match message.kind {
                        Some(worker_message::Kind::Hello(hello)) => dispatcher.hello(worker, hello),
                        Some(worker_message::Kind::RegisterFunction(r)) => {
                            let function = r.function_id.trim();
                            // A refused registration is not applied and gets no `registered`
                            // ack: the worker hears `refused` (reason, ErrorInfo); the WARN
                            // log stays; the stream and its other functions go on.
                            match registration(token.as_deref(), peer, function) {
                                Ok(()) => dispatcher.register(worker, function),
                                Err(e) => {
                                    tracing::warn!(worker, function, reason = e.reason(), "registration refused: {e}");
                                    dispatcher.refuse(worker, function, &e);
                                }
                            }
                        }
                        Some(worker_message::Kind::UnregisterFunction(u)) => {
                            dispatcher.unregister(worker, u.function_id.trim()).await
                        }
                        Some(worker_message::Kind::Progress(p)) => dispatcher.on_progress(worker, p).await,
                        _ => tracing::warn!(worker, "ignored an empty or malformed worker message"),
                    }
                }
                finish_all(&dispatcher, worker, &mut results).await;
            }
            finish_all(&dispatcher, worker, &mut results).await;
            dispatcher.worker_gone(worker).await;
            drop(slot);
        });
        let stream = UnboundedReceiverStream::new(outbound).map(Ok::<_, Status>);
        Ok(Response::new(Box::pin(stream)))
    }
}

//! `switchyard.v1.Queues`: stats, the dead-letter queue and the connected workers, for
//! operators and scripts.
//!
//! The inherent methods are the one implementation: the gRPC handlers below and the web
//! console ([`crate::console`]) both call them, so both validate, page and answer alike.

use super::Shared;
use super::error::ApiError;
use crate::auth::Action;
use crate::config::QueueSpec;
use crate::queue::{Job, JobState};
use crate::store::CancelOutcome;
use crate::wire::{function_error, job_progress, timestamp};
use switchyard_proto::wire::queues_server::Queues;
use switchyard_proto::wire::{
    CancelJobRequest, CancelJobResponse, DeadLetter, DiscardDeadLettersRequest, DiscardDeadLettersResponse,
    GetJobRequest, GetJobResponse, JobInfo, ListDeadLettersRequest, ListDeadLettersResponse, ListQueuesRequest,
    ListQueuesResponse, ListWorkersRequest, ListWorkersResponse, QueueConfig, QueueInfo, QueueStats, RateLimit,
    RedriveDeadLettersRequest, RedriveDeadLettersResponse, WorkerInfo,
};
use tonic::{Request, Response, Status};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

pub struct QueuesService {
    shared: Shared,
}

impl QueuesService {
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }

    pub async fn list_queues(&self) -> Result<ListQueuesResponse, ApiError> {
        self.list_queues_where(|_| true).await
    }

    /// [`Self::list_queues`], only the queues `visible` lets through.
    pub async fn list_queues_where(&self, visible: impl Fn(&str) -> bool) -> Result<ListQueuesResponse, ApiError> {
        let mut queues = Vec::with_capacity(self.shared.config.queues.len());
        for (name, spec) in self.shared.config.queues.iter().filter(|(name, _)| visible(name)) {
            let s = self.shared.store.stats(name).await?;
            queues.push(QueueInfo {
                name: name.clone(),
                config: Some(queue_config(spec)),
                stats: Some(QueueStats {
                    ready: Some(s.ready),
                    delayed: Some(s.delayed),
                    in_flight: Some(s.in_flight),
                    dead: Some(s.dead),
                    enqueued: Some(s.enqueued),
                    completed: Some(s.completed),
                    failed: Some(s.failed),
                    dead_lettered: Some(s.dead_lettered),
                }),
            });
        }
        Ok(ListQueuesResponse { queues })
    }

    pub async fn list_dead_letters(&self, req: ListDeadLettersRequest) -> Result<ListDeadLettersResponse, ApiError> {
        self.shared.queue(&req.queue)?;
        let size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let cursor = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let page = self.shared.store.dead_letters(&req.queue, cursor, size as usize).await?;
        Ok(ListDeadLettersResponse {
            entries: page.entries.iter().map(dead_letter).collect(),
            next_page_token: page.next_cursor.unwrap_or_default(),
        })
    }

    /// Moves dead letters (all when `ids` is empty) back to their queue; how many moved.
    pub async fn redrive(&self, req: RedriveDeadLettersRequest) -> Result<RedriveDeadLettersResponse, ApiError> {
        self.shared.queue(&req.queue)?;
        let now = self.shared.clock.now();
        let count = self.shared.store.redrive(&req.queue, &req.ids, now).await?;
        Ok(RedriveDeadLettersResponse { count })
    }

    /// Deletes dead letters (all when `ids` is empty); how many.
    pub async fn discard(&self, req: DiscardDeadLettersRequest) -> Result<DiscardDeadLettersResponse, ApiError> {
        self.shared.queue(&req.queue)?;
        let count = self.shared.store.discard(&req.queue, &req.ids).await?;
        Ok(DiscardDeadLettersResponse { count })
    }

    /// One job by its receipt, live or finished and still kept.
    pub async fn get_job(&self, req: GetJobRequest) -> Result<GetJobResponse, ApiError> {
        let spec = self.shared.queue(&req.queue)?;
        let now = self.shared.clock.now();
        let id = req.message_receipt_id.trim();
        match self.shared.store.get_job(&req.queue, id, now).await? {
            Some(job) => Ok(GetJobResponse { job: Some(job_info(&job, spec)) }),
            None => Err(ApiError::JobNotFound { queue: req.queue, id: id.to_string() }),
        }
    }

    /// Cancels a job: at once when it has not started; through its engine when in flight.
    pub async fn cancel_job(&self, req: CancelJobRequest) -> Result<CancelJobResponse, ApiError> {
        let s = &self.shared;
        let spec = s.queue(&req.queue)?;
        let id = req.message_receipt_id.trim();
        let now = s.clock.now();
        let (outcome, job) = match s.store.cancel(&req.queue, id, now, spec.cancelled_until(now)).await? {
            CancelOutcome::NotFound => return Err(ApiError::JobNotFound { queue: req.queue, id: id.to_string() }),
            CancelOutcome::Cancelled(job) => ("cancelled", job),
            CancelOutcome::AlreadyCancelled(job) => ("already_cancelled", job),
            CancelOutcome::AlreadyFinished(job) => ("already_finished", job),
            CancelOutcome::Cancelling(job, token) => {
                // This engine's lease: stop it now. Another engine's: it sees the request
                // within a second (Dispatcher::cancel_requested) and stops it there.
                let job = match s.dispatcher.cancel_lease(&token).await {
                    true => s.store.get_job(&req.queue, id, s.clock.now()).await?.unwrap_or(job),
                    false => job,
                };
                ("cancelling", job)
            }
        };
        Ok(CancelJobResponse { outcome: outcome.to_string(), job: Some(job_info(&job, spec)) })
    }

    /// The workers connected to this engine, in the order they connected.
    pub fn list_workers(&self) -> ListWorkersResponse {
        let workers = self
            .shared
            .dispatcher
            .workers()
            .into_iter()
            .map(|w| {
                let (sdk_name, sdk_version) = w.sdk.unwrap_or_default();
                WorkerInfo {
                    worker_id: format!("w{}", w.id),
                    worker_name: w.name,
                    sdk_name,
                    sdk_version,
                    max_in_flight: w.max_in_flight,
                    in_flight: w.outstanding,
                    functions: w.functions,
                    connected_at: Some(timestamp(w.connected_at)),
                }
            })
            .collect();
        ListWorkersResponse { workers }
    }
}

fn queue_config(spec: &QueueSpec) -> QueueConfig {
    QueueConfig {
        max_retries: Some(spec.max_retries),
        backoff_ms: spec.backoff_ms,
        concurrency: spec.concurrency,
        r#type: spec.kind.as_str().to_string(),
        message_group_field: spec.message_group_field.clone().unwrap_or_default(),
        timeout_ms: spec.timeout_ms,
        max_backoff_ms: spec.max_backoff_ms,
        jitter: spec.jitter,
        dedup_window_ms: spec.dedup_window_ms,
        topic: spec.topic.clone().unwrap_or_default(),
        result_retention_ms: spec.result_retention_ms,
        rate_limit: spec.rate_limit.map(|r| RateLimit { per_second: r.per_second(), burst: r.burst }),
    }
}

/// A job's `state` word in GetJob (see queues.proto): a delayed job with a failed attempt
/// behind it is "retrying".
pub fn state_word(job: &Job) -> &'static str {
    match job.state {
        JobState::Ready => "ready",
        JobState::Waiting => "waiting",
        JobState::Delayed if job.attempts > 0 => "retrying",
        JobState::Delayed => "delayed",
        JobState::InFlight => "in_flight",
        JobState::Completed => "completed",
        JobState::Dead => "dead",
        JobState::Cancelled => "cancelled",
    }
}

fn job_info(job: &Job, spec: &QueueSpec) -> JobInfo {
    let waits = matches!(job.state, JobState::Delayed);
    JobInfo {
        message_receipt_id: job.id.clone(),
        queue: job.queue.clone(),
        function_id: job.function_id.clone(),
        state: state_word(job).to_string(),
        attempts: Some(job.attempts),
        max_attempts: spec.max_attempts(),
        last_error: job.last_error.as_ref().map(function_error),
        payload: job.payload.0.clone(),
        group: job.group.clone().unwrap_or_default(),
        priority: Some(u32::from(job.priority)),
        enqueued_at: Some(timestamp(job.enqueued_at)),
        due_at: waits.then(|| timestamp(job.due_at)),
        finished_at: job.finished_at.or(job.dead_lettered_at).filter(|_| job.state.is_finished()).map(timestamp),
        expires_at: job.expires_at.map(timestamp),
        result: job.result.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
        progress: job.progress.as_ref().map(job_progress),
        cancel_requested: job.cancel_requested,
        topic: spec.topic.clone().unwrap_or_default(),
    }
}

fn dead_letter(job: &Job) -> DeadLetter {
    DeadLetter {
        message_receipt_id: job.id.clone(),
        queue: job.queue.clone(),
        function_id: job.function_id.clone(),
        payload: job.payload.0.clone(),
        group: job.group.clone().unwrap_or_default(),
        attempts: job.attempts,
        last_error: job.last_error.as_ref().map(function_error),
        enqueued_at: Some(timestamp(job.enqueued_at)),
        dead_lettered_at: job.dead_lettered_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl Queues for QueuesService {
    async fn list_queues(&self, request: Request<ListQueuesRequest>) -> Result<Response<ListQueuesResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: None })?;
        let token = crate::auth::principal(&request);
        let visible = |queue: &str| token.as_ref().is_none_or(|t| crate::auth::sees_queue(t, queue));
        Ok(Response::new(self.list_queues_where(visible).await?))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: Some(&request.get_ref().queue) })?;
        Ok(Response::new(self.list_dead_letters(request.into_inner()).await?))
    }

    async fn redrive_dead_letters(
        &self,
        request: Request<RedriveDeadLettersRequest>,
    ) -> Result<Response<RedriveDeadLettersResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: Some(&request.get_ref().queue) })?;
        Ok(Response::new(self.redrive(request.into_inner()).await?))
    }

    async fn discard_dead_letters(
        &self,
        request: Request<DiscardDeadLettersRequest>,
    ) -> Result<Response<DiscardDeadLettersResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: Some(&request.get_ref().queue) })?;
        Ok(Response::new(self.discard(request.into_inner()).await?))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<GetJobResponse>, Status> {
        self.shared.authorize(&request, Action::Job { queue: &request.get_ref().queue })?;
        Ok(Response::new(QueuesService::get_job(self, request.into_inner()).await?))
    }

    async fn cancel_job(&self, request: Request<CancelJobRequest>) -> Result<Response<CancelJobResponse>, Status> {
        self.shared.authorize(&request, Action::Job { queue: &request.get_ref().queue })?;
        Ok(Response::new(QueuesService::cancel_job(self, request.into_inner()).await?))
    }

    /// Workers are not per queue: any admin token sees them all.
    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: None })?;
        Ok(Response::new(QueuesService::list_workers(self)))
    }
}

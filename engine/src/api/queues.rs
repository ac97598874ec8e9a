//! `switchyard.v1.Queues`: stats, the dead-letter queue and the connected workers, for
//! operators and scripts.
//!
//! The inherent methods are the one implementation: the gRPC handlers below and the web
//! console ([`crate::console`]) both call them, so both validate, page and answer alike.

use super::Shared;
use super::error::ApiError;
use crate::auth::Action;
use crate::config::QueueSpec;
use crate::queue::Job;
use crate::wire::{function_error, timestamp};
use switchyard_proto::wire::queues_server::Queues;
use switchyard_proto::wire::{
    DeadLetter, DiscardDeadLettersRequest, DiscardDeadLettersResponse, ListDeadLettersRequest, ListDeadLettersResponse,
    ListQueuesRequest, ListQueuesResponse, ListWorkersRequest, ListWorkersResponse, QueueConfig, QueueInfo, QueueStats,
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
        ..Default::default()
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

    /// Workers are not per queue: any admin token sees them all.
    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        self.shared.authorize(&request, Action::Admin { queue: None })?;
        Ok(Response::new(QueuesService::list_workers(self)))
    }
}

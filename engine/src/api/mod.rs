//! The gRPC services. Handlers are thin: validate, convert, call the dispatcher or the
//! store, convert back. Every failure leaves through [`error::ApiError`].

pub mod engine;
pub mod error;
pub mod queues;

use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::dispatch::Dispatcher;
use crate::store::Store;
use std::sync::Arc;

/// What every service needs.
#[derive(Clone)]
pub struct Shared {
    pub config: Arc<EngineConfig>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
    pub clock: Arc<dyn Clock>,
    /// The resource bounds' counters.
    pub guards: Arc<crate::limits::Guards>,
    /// Cancelled once the dispatcher has drained at shutdown: worker streams still open
    /// are then closed from our side, so the server can stop.
    pub closing: tokio_util::sync::CancellationToken,
    /// The tokens (`auth`); `None` = no authentication.
    pub auth: Option<Arc<crate::auth::Auth>>,
}

impl Shared {
    /// Whether the request's token may do `action` ([`crate::auth::check`]).
    pub fn authorize<T>(
        &self,
        request: &tonic::Request<T>,
        action: crate::auth::Action<'_>,
    ) -> Result<(), error::ApiError> {
        crate::auth::check(self.auth.as_deref(), request, action)
    }

    /// The queue's spec, or `QUEUE_NOT_FOUND` listing the defined queues (and the one
    /// probably meant).
    pub fn queue(&self, name: &str) -> Result<&crate::config::QueueSpec, error::ApiError> {
        self.config.queues.get(name).ok_or_else(|| error::ApiError::queue_not_found(name, &self.config.queue_names()))
    }
}

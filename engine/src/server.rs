//! The whole engine as one function: [`serve`] takes a bound listener, a validated config,
//! a store, a clock and a shutdown future, so a test can start an engine on port 0 and
//! stop it.
//!
//! Shutdown, in order: the shutdown future completes → health says NOT_SERVING → the
//! dispatcher stops taking work and lets in-flight attempts finish (`shutdown_grace_ms`),
//! cancelling and releasing what is left → worker streams end → the gRPC server stops.

use crate::api::Shared;
use crate::api::engine::EngineService;
use crate::api::queues::QueuesService;
use crate::clock::Clock;
use crate::config::{EngineConfig, SideListen};
use crate::dispatch::Dispatcher;
use crate::metrics::counted::Counted;
use crate::metrics::{Metrics, Recorder};
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchyard_proto::wire::engine_server::EngineServer;
use switchyard_proto::wire::queues_server::QueuesServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic_health::server::HealthReporter;

/// How long connections may stay open after the drain before they are dropped.
const CLOSE_CONNECTIONS_WITHIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// The HTTP listeners beside the gRPC one, bound by the caller; each is served while the
/// engine runs (`/metrics` also through the drain).
#[derive(Default)]
pub struct SideListeners {
    /// `/metrics`; without it nothing is recorded.
    pub metrics: Option<TcpListener>,
    pub console: Option<TcpListener>,
}

impl SideListeners {
    /// Binds the listeners the config asks for. An address the config names that cannot
    /// be bound is an error; the built-in default that is taken is skipped with a warning.
    pub async fn bind(config: &EngineConfig) -> Result<Self, String> {
        Ok(Self {
            metrics: bind_side("metrics_listen", config.metrics_listen).await?,
            console: bind_side("console_listen", config.console_listen).await?,
        })
    }

    /// The bound addresses, as `(what, address)`, for the start-up lines.
    pub fn addresses(&self) -> Vec<(&'static str, std::net::SocketAddr)> {
        [("metrics", &self.metrics), ("console", &self.console)]
            .into_iter()
            .filter_map(|(what, l)| Some((what, l.as_ref()?.local_addr().ok()?)))
            .collect()
    }
}

async fn bind_side(field: &str, listen: Option<SideListen>) -> Result<Option<TcpListener>, String> {
    let Some(listen) = listen else { return Ok(None) };
    match TcpListener::bind(listen.addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if !listen.explicit => {
            tracing::warn!(addr = %listen.addr, error = %e, "{field} not set and its default is taken: serving without it");
            Ok(None)
        }
        Err(e) => Err(format!("{field}: cannot listen on {}: {e}", listen.addr)),
    }
}

/// Serves the engine on `listener` until `shutdown` completes, then drains and returns.
pub async fn serve(
    listener: TcpListener,
    config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(listener, SideListeners::default(), config, store, clock, shutdown).await
}

/// [`serve`], with the metrics and console listeners.
pub async fn serve_with(
    listener: TcpListener,
    side: SideListeners,
    config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = side.metrics.is_some().then(|| Metrics::new(&config));
    let store = match &metrics {
        Some(m) => Counted::wrap(store, m.clone()),
        None => store,
    };
    let recovered = store.recover().await?;
    if recovered > 0 {
        tracing::info!(recovered, "jobs that were in flight at the last stop are ready again");
    }
    let dispatcher = Dispatcher::new(config.clone(), store.clone(), clock.clone(), Recorder::new(metrics.clone()));
    let closing = CancellationToken::new();
    let tls = config.tls.as_ref().map(crate::tls::Reloadable::load).transpose()?.map(Arc::new);
    let auth = config.auth.as_ref().map(|a| Arc::new(crate::auth::Auth::new(a)));
    let guards = Arc::new(crate::limits::Guards::new(&config.limits));
    let shared = Shared {
        config: config.clone(),
        store,
        dispatcher: dispatcher.clone(),
        clock,
        metrics: metrics.clone(),
        guards,
        closing: closing.clone(),
        auth: auth.clone(),
    };

    let stop = CancellationToken::new();
    let pump = tokio::spawn(dispatcher.clone().run(stop.clone()));
    let watch = tokio::spawn(dispatcher.watch(stop.clone()));
    let expiry = tokio::spawn(crate::retention::expire(shared.store.clone(), shared.clock.clone(), stop.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EngineServer<EngineService>>().await;
    health.set_serving::<QueuesServer<QueuesService>>().await;
    let store_watch = tokio::spawn(report_store_failure(shared.store.clone(), health.clone(), stop.clone()));
    let sweeper =
        tokio::spawn(crate::retention::run(config.clone(), shared.store.clone(), shared.clock.clone(), stop.clone()));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(switchyard_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    // Room for the largest allowed payload plus the envelope, so an oversized payload gets
    // PAYLOAD_TOO_LARGE from the handler rather than a transport error.
    let max_message = (config.max_payload_bytes * 2 + 64 * 1024).max(4 * 1024 * 1024);
    let engine = EngineServer::new(EngineService::new(shared.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    // Engine and Queues behind the token check; health and reflection stay open.
    let engine = InterceptedService::new(engine, crate::auth::interceptor(auth.clone()));
    let http_stop = CancellationToken::new();
    let _stop_http = http_stop.clone().drop_guard();
    if let (Some(listener), Some(metrics)) = (side.metrics, metrics) {
        let shared = shared.clone();
        let handler = move |req| crate::metrics::http::handle(shared.clone(), metrics.clone(), req);
        tokio::spawn(crate::http::serve(listener, handler, http_stop.clone()));
    }
    if let Some(listener) = side.console {
        let console = Arc::new(crate::console::Console::new(QueuesService::new(shared.clone())));
        let handler = move |req| crate::console::handle(console.clone(), req);
        tokio::spawn(crate::http::serve(listener, handler, http_stop.clone()));
    }
    let queues = InterceptedService::new(QueuesServer::new(QueuesService::new(shared)), crate::auth::interceptor(auth));

    let (drained_tx, drained) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight work");
        set_serving(&health, false).await;
        stop.cancel();
        let _ = pump.await;
        let _ = watch.await;
        let _ = expiry.await;
        let _ = store_watch.await;
        let _ = sweeper.await;
        set_serving(&health, false).await; // whatever the store watch did meanwhile
        closing.cancel();
        let _ = drained_tx.send(());
    };
    let limits = &config.limits;
    // The accept loop ends with this function, whichever way it returns.
    let stop_accepting = CancellationToken::new();
    let _stop_accepting = stop_accepting.clone().drop_guard();
    let handshake = Duration::from_millis(limits.handshake_timeout_ms);
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_millis(limits.http2_keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.http2_keepalive_timeout_ms)))
        // Above the per-connection call limit, so a client past it gets TOO_MANY_CALLS
        // rather than HTTP/2 holding its calls back (room for its worker stream and Queues calls).
        .max_concurrent_streams(Some((limits.max_calls_per_connection + 64).min(u32::MAX as usize) as u32))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(engine)
        .add_service(queues);
    // Accepted sockets get TCP_NODELAY in `incoming` (the builder's setting only applies
    // to listeners tonic binds): without it small responses stall on delayed ACKs.
    let server: std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match tls {
        Some(tls) => {
            tokio::spawn(tls.clone().reload_on_hangup(stop_accepting.clone()));
            let incoming = crate::limits::incoming::incoming_tls(listener, handshake, stop_accepting.clone(), tls);
            Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
        }
        None => {
            let incoming = crate::limits::incoming::incoming(listener, handshake, stop_accepting.clone());
            Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
        }
    };
    // Once drained, connections get a short while to close by themselves; a peer that
    // holds one open does not keep the engine from stopping.
    tokio::select! {
        served = server => served?,
        _ = async {
            let _ = drained.await;
            tokio::time::sleep(CLOSE_CONNECTIONS_WITHIN).await;
        } => tracing::warn!("connections still open after the drain; closing them"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often the health service looks at the store. Health is read by supervisors every
/// few seconds; this is not on any job's path.
const STORE_CHECK: Duration = Duration::from_secs(1);

/// Turns health NOT_SERVING once the store has stopped for good ([`Store::failure`]), so
/// that a supervisor restarts the engine, which resumes from what the store kept; and
/// while the store is stuck ([`Store::stall`]), SERVING again once it is not.
async fn report_store_failure(store: Arc<dyn Store>, health: HealthReporter, stop: CancellationToken) {
    let mut every = tokio::time::interval(STORE_CHECK);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Some(reason) = store.failure() {
            tracing::error!(%reason, "the store has stopped: health is NOT_SERVING until the engine is restarted");
            set_serving(&health, false).await;
            return;
        }
        match (store.stall(), stalled) {
            (Some(reason), false) => {
                tracing::error!(%reason, "the store is stuck: health is NOT_SERVING while it lasts");
                set_serving(&health, false).await;
                stalled = true;
            }
            // Shutting down already says NOT_SERVING; a stall ending then changes nothing.
            (None, true) if !stop.is_cancelled() => {
                tracing::warn!("the store writes again: health is SERVING");
                set_serving(&health, true).await;
                stalled = false;
            }
            _ => {}
        }
    }
}

async fn set_serving(health: &HealthReporter, serving: bool) {
    if serving {
        health.set_serving::<EngineServer<EngineService>>().await;
        health.set_serving::<QueuesServer<QueuesService>>().await;
    } else {
        health.set_not_serving::<EngineServer<EngineService>>().await;
        health.set_not_serving::<QueuesServer<QueuesService>>().await;
    }
}

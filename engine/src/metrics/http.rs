//! `GET /metrics`: gathers the gauges from the store and the dispatcher, then encodes.

use super::Metrics;
use super::exposition::{Snapshot, encode};
use crate::api::Shared;
use crate::http::{HttpRequest, HttpResponse, text, with_type};
use hyper::{Method, StatusCode};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use std::collections::BTreeSet;
use std::sync::Arc;

pub async fn handle(shared: Shared, metrics: Arc<Metrics>, req: HttpRequest) -> HttpResponse {
    if req.head.uri.path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "not found: the metrics are at /metrics");
    }
    if req.head.method != Method::GET && req.head.method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics");
    }
    match encode(metrics, snapshot(&shared).await) {
        Ok(body) => with_type(StatusCode::OK, CONTENT_TYPE, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics failed: {e}")),
    }
}

/// The gauges now. A queue whose store read fails is left out of this scrape (the failure
/// is counted in `switchyard_store_errors_total`); the rest is still served.
async fn snapshot(shared: &Shared) -> Snapshot {
    let now = shared.clock.now();
    let mut queues = Vec::with_capacity(shared.config.queues.len());
    for name in shared.config.queues.keys() {
        let read = async {
            Ok::<_, crate::store::StoreError>((shared.store.stats(name).await?, shared.store.oldest_ready(name).await?))
        };
        match read.await {
            Ok((stats, oldest)) => {
                let age = oldest.map_or(0.0, |at| now.saturating_sub(at) as f64 / 1000.0);
                queues.push((name.clone(), stats, age));
            }
            Err(e) => tracing::warn!(queue = %name, error = %e, "metrics: could not read the queue's gauges"),
        }
    }
    let workers = shared.dispatcher.workers();
    let functions: BTreeSet<&str> = workers.iter().flat_map(|w| w.functions.iter().map(String::as_str)).collect();
    Snapshot {
        queues,
        streams_open: workers.len(),
        workers_connected: workers.iter().filter(|w| w.sdk.is_some()).count(),
        functions_registered: functions.len(),
    }
}

//! The small HTTP/1.1 server under `/metrics` and the console, on the hyper that tonic
//! already builds.
//!
//! Invariant: it serves until `shutdown` is cancelled, then stops accepting and drops every
//! open connection (a scraper's keep-alive connection does not hold the engine up).
//! Request bodies are read up to [`MAX_BODY`]; a larger one is refused with 413.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The largest request body read (a console form with many ids).
pub const MAX_BODY: usize = 256 * 1024;

/// A request as handlers see it: the head and the whole body.
pub struct HttpRequest {
    pub head: hyper::http::request::Parts,
    pub body: Bytes,
}

pub type HttpResponse = Response<Full<Bytes>>;

/// Serves `handler` on `listener` until `shutdown`.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: CancellationToken)
where
    H: Fn(HttpRequest) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&*handler, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
    connections.shutdown().await;
}

async fn respond<H, F>(handler: &H, req: Request<Incoming>) -> HttpResponse
where
    H: Fn(HttpRequest) -> F,
    F: Future<Output = HttpResponse>,
{
    let (head, body) = req.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => handler(HttpRequest { head, body: body.to_bytes() }).await,
        Err(_) => text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    with_type(status, "text/plain; charset=utf-8", body.into())
}

/// A response with a content type.
pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    r
}

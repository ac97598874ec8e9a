//! The web console: queues with live stats, a queue's dead letters (redrive, discard),
//! the connected workers. Server-rendered HTML; the stylesheet and one small script ship
//! inside the binary, nothing is fetched from elsewhere.
//!
//! Invariant: every page and action goes through [`QueuesService`]'s methods — the same
//! code the gRPC `Queues` API runs — so the console validates, pages and answers exactly
//! as the API does, errors included (`QUEUE_NOT_FOUND: …` with the same reason).
//!
//! Routes:
//! 1. `GET /` — every queue's stats (the script refreshes them every 2 s).
//! 2. `GET /queue?name=Q[&after=TOKEN]` — the queue's stats and config and its dead letters,
//!    100 per page, each with its last error, attempts and payload, and redrive / discard
//!    buttons (the script asks for confirmation first).
//! 3. `POST /queue/redrive`, `POST /queue/discard` — form `name`, then `id` (repeated) or
//!    `all=1`; answered with a redirect back to the queue page saying how many moved.
//! 4. `GET /workers` — connected workers and their functions.
//! 5. `GET /assets/console.css`, `/assets/console.js`.
//!
//! A POST is accepted only from the console's own pages (its `Origin`, or
//! `Sec-Fetch-Site: same-origin`), so another site open in the operator's browser cannot
//! redrive or discard through it. Deliberately not done: authentication — the console
//! listens on loopback by default; put it behind an authenticating proxy to expose it.

mod page;

use crate::api::error::ApiError;
use crate::api::queues::QueuesService;
use crate::http::{HttpRequest, HttpResponse, text, with_type};
use hyper::{Method, StatusCode, header};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchyard_proto::wire::{DiscardDeadLettersRequest, ListDeadLettersRequest, RedriveDeadLettersRequest};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
/// Dead letters per page.
const PAGE: u32 = 100;

pub struct Console {
    queues: QueuesService,
}

impl Console {
    pub fn new(queues: QueuesService) -> Self {
        Self { queues }
    }
}

/// The query string (or a form body) as name → values.
fn params(raw: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn first<'a>(p: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(|v| v.first()).map(String::as_str)
}

pub async fn handle(console: Arc<Console>, req: HttpRequest) -> HttpResponse {
    let query = params(req.head.uri.query().unwrap_or("").as_bytes());
    let path = req.head.uri.path().to_string();
    match (&req.head.method, path.as_str()) {
        (&Method::GET, "/") => html(page_or_error(overview(&console).await)),
        (&Method::GET, "/queue") => html(page_or_error(queue_page(&console, &query).await)),
        (&Method::GET, "/workers") => html(Ok(page::workers(&console.queues.list_workers().workers))),
        (&Method::GET, "/assets/console.css") => with_type(StatusCode::OK, "text/css; charset=utf-8", CSS),
        (&Method::GET, "/assets/console.js") => with_type(StatusCode::OK, "text/javascript; charset=utf-8", JS),
        (&Method::POST, "/queue/redrive" | "/queue/discard") => {
            if !same_origin(&req) {
                return text(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN: a console action must come from the console's own page",
                );
            }
            act(&console, path == "/queue/redrive", &params(&req.body)).await
        }
        (_, "/" | "/queue" | "/workers" | "/queue/redrive" | "/queue/discard") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => html(Err((StatusCode::NOT_FOUND, page::error("NOT_FOUND", &format!("no page at {path}"))))),
    }
}

type Page = Result<String, (StatusCode, String)>;

fn page_or_error(p: Result<String, ApiError>) -> Page {
    p.map_err(|e| {
        let status = match e.code() {
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, page::error(e.reason(), &e.to_string()))
    })
}

fn html(page: Page) -> HttpResponse {
    let (status, body) = match page {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => e,
    };
    let mut r = with_type(status, "text/html; charset=utf-8", body);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r
}

async fn overview(console: &Console) -> Result<String, ApiError> {
    Ok(page::overview(&console.queues.list_queues().await?.queues))
}

async fn queue_page(console: &Console, query: &BTreeMap<String, Vec<String>>) -> Result<String, ApiError> {
    let name = first(query, "name").unwrap_or_default().to_string();
    let request = ListDeadLettersRequest {
        queue: name.clone(),
        page_size: PAGE,
        page_token: first(query, "after").unwrap_or_default().into(),
    };
    let dead = console.queues.list_dead_letters(request).await?;
    let queues = console.queues.list_queues().await?.queues;
    let info = queues.into_iter().find(|q| q.name == name).expect("list_dead_letters checked the queue exists");
    Ok(page::queue(&info, &dead, first(query, "notice")))
}

/// A redrive or discard from the queue page; back to it with what happened.
async fn act(console: &Console, redrive: bool, form: &BTreeMap<String, Vec<String>>) -> HttpResponse {
    let queue = first(form, "name").unwrap_or_default().to_string();
    let ids = form.get("id").cloned().unwrap_or_default();
    if ids.is_empty() && first(form, "all") != Some("1") {
        return text(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT: name the dead letters (id) or all=1");
    }
    let answer = if redrive {
        console.queues.redrive(RedriveDeadLettersRequest { queue: queue.clone(), ids }).await.map(|r| r.count)
    } else {
        console.queues.discard(DiscardDeadLettersRequest { queue: queue.clone(), ids }).await.map(|r| r.count)
    };
    let notice = match answer {
        Ok(n) => format!(
            "{} {n} dead letter{}",
            if redrive { "Redrove" } else { "Discarded" },
            if n == 1 { "" } else { "s" }
        ),
        Err(e) => format!("{}: {e}", e.reason()),
    };
    let location = page::queue_href(&[("name", &queue), ("notice", &notice)]);
    let mut r = with_type(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Whether a POST comes from a page of this console: its `Origin` names the host it was
/// sent to, or (without an Origin) the browser says `Sec-Fetch-Site: same-origin`. A
/// request with neither (curl, a script) is not a browser's cross-site request: accepted.
fn same_origin(req: &HttpRequest) -> bool {
    let h = &req.head.headers;
    let get = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = get(header::ORIGIN) {
        let host = get(header::HOST).unwrap_or_default();
        return origin.strip_prefix("http://").is_some_and(|o| o == host);
    }
    get(header::HeaderName::from_static("sec-fetch-site")).is_none_or(|s| s == "same-origin" || s == "none")
}

//! Tokens and roles: who is calling ([`Auth::authenticate`]) and whether they may
//! ([`authorize`]).
//!
//! Invariant: with an `auth` block, no Engine or Queues RPC runs for a caller without a
//! known token, and every decision about what a token may do is made in [`authorize`], one
//! match over [`Action`] — a new RPC is one more arm. Secrets are compared in constant time
//! against every token, and no log line or error carries one: a refusal names the token
//! and the peer.
//!
//! Health and reflection are not behind the interceptor ([`interceptor`]); the console and
//! `/metrics` are separate listeners (loopback by default) and do not take tokens.

pub mod glob;

use crate::api::error::ApiError;
use crate::config::{AuthSpec, Role, TokenSpec};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

/// The token a request was authenticated with, in the request's extensions.
#[derive(Clone, Debug)]
pub struct Principal(pub Arc<TokenSpec>);

/// What a caller asks to do.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// A synchronous or void `Trigger` of a function (producer).
    Call { function: &'a str },
    /// An enqueue, by `Trigger` or one `EnqueueBatch` item (producer).
    Enqueue { function: &'a str, queue: &'a str },
    /// An `EnqueueBatch` call as a whole (producer); each item is then an [`Action::Enqueue`].
    EnqueueBatch,
    /// A `Trigger` publish to a topic (producer; the token's `queues` globs match the topic).
    Publish { topic: &'a str },
    /// Opening a worker stream (worker).
    Connect,
    /// Registering a function on a worker stream (worker).
    Register { function: &'a str },
    /// A `Queues` call; `queue` when it names one (admin).
    Admin { queue: Option<&'a str> },
    /// `Queues/GetJob` or `Queues/CancelJob` on a job of `queue`: the producer that
    /// enqueued it follows it, so producer or admin.
    Job { queue: &'a str },
}

/// A known token asked for something outside its rights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub token: String,
    /// What was refused: `role`, `queue` or `function`, and its value.
    pub what: &'static str,
    pub value: String,
    pub message: String,
}

/// Whether `token` may do `action`.
pub fn authorize(token: &TokenSpec, action: Action<'_>) -> Result<(), Denied> {
    let (role, doing) = match action {
        Action::Call { .. } => (Role::Producer, "call functions"),
        Action::Enqueue { .. } | Action::EnqueueBatch => (Role::Producer, "enqueue jobs"),
        Action::Publish { .. } => (Role::Producer, "publish to topics"),
        Action::Connect => (Role::Worker, "connect as a worker"),
        Action::Register { .. } => (Role::Worker, "register functions"),
        Action::Admin { .. } => (Role::Admin, "use the Queues service"),
        Action::Job { .. } if token.roles.contains(&Role::Producer) => (Role::Producer, "follow jobs"),
        Action::Job { .. } => (Role::Admin, "follow jobs (producer or admin)"),
    };
    if !token.roles.contains(&role) {
        let roles: Vec<&str> = token.roles.iter().map(|r| r.as_str()).collect();
        return Err(Denied {
            token: token.name.clone(),
            what: "role",
            value: role.as_str().to_string(),
            message: format!(
                "token '{}' may not {doing}: that needs role '{}' (its roles: {})",
                token.name,
                role.as_str(),
                roles.join(", ")
            ),
        });
    }
    let function = match action {
        Action::Call { function } | Action::Enqueue { function, .. } | Action::Register { function } => Some(function),
        Action::Connect | Action::Admin { .. } | Action::Job { .. } | Action::EnqueueBatch | Action::Publish { .. } => {
            None
        }
    };
    if let Some(function) = function
        && !glob::any(token.functions.as_deref(), function)
    {
        let verb = match action {
            Action::Register { .. } => "register",
            Action::Enqueue { .. } => "enqueue to",
            _ => "call",
        };
        return Err(denied(token, "function", function, verb, token.functions.as_deref()));
    }
    if let Action::Publish { topic } = action
        && !glob::any(token.queues.as_deref(), topic)
    {
        return Err(denied(token, "topic", topic, "publish to", token.queues.as_deref()));
    }
    let queue = match action {
        Action::Enqueue { queue, .. } | Action::Admin { queue: Some(queue) } | Action::Job { queue } => Some(queue),
        _ => None,
    };
    if let Some(queue) = queue
        && !glob::any(token.queues.as_deref(), queue)
    {
        let verb = if matches!(action, Action::Enqueue { .. }) { "enqueue to" } else { "manage" };
        return Err(denied(token, "queue", queue, verb, token.queues.as_deref()));
    }
    Ok(())
}

fn denied(token: &TokenSpec, what: &'static str, value: &str, verb: &str, globs: Option<&[String]>) -> Denied {
    // A topic is matched by the token's queue globs.
    let plural = if what == "function" { "functions" } else { "queues" };
    Denied {
        token: token.name.clone(),
        what,
        value: value.to_string(),
        message: format!(
            "token '{}' may not {verb} {what} '{value}' (its {plural}: {})",
            token.name,
            globs.unwrap_or_default().join(", ")
        ),
    }
}

/// Whether `token` sees `queue` in `ListQueues` (admin, and the queue within its globs).
pub fn sees_queue(token: &TokenSpec, queue: &str) -> bool {
    authorize(token, Action::Admin { queue: Some(queue) }).is_ok()
}

/// One line per token for `check-config`: name, roles, globs — never the secret.
pub fn describe(token: &TokenSpec) -> String {
    let roles: Vec<&str> = token.roles.iter().map(|r| r.as_str()).collect();
    let list = |g: &Option<Vec<String>>| g.as_ref().map(|g| g.join(",")).unwrap_or_else(|| "*".into());
    format!(
        "token {}: roles={} queues={} functions={}",
        token.name,
        roles.join(","),
        list(&token.queues),
        list(&token.functions)
    )
}

/// The configured tokens.
pub struct Auth {
    tokens: Vec<Arc<TokenSpec>>,
}

impl Auth {
    pub fn new(spec: &AuthSpec) -> Self {
        Self { tokens: spec.tokens.iter().cloned().map(Arc::new).collect() }
    }

    /// The token named by `authorization: Bearer <secret>` (`TOKEN_MISSING` without one,
    /// `TOKEN_INVALID` for a secret no token has).
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Arc<TokenSpec>, ApiError> {
        let header = metadata.get("authorization").ok_or(ApiError::TokenMissing)?;
        let value = header.to_str().map_err(|_| ApiError::TokenInvalid)?.trim();
        let secret = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(ApiError::TokenInvalid),
        };
        if secret.is_empty() {
            return Err(ApiError::TokenMissing);
        }
        // Every token is compared, whichever matches, so timing says nothing of which.
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.secret.expose().ct_eq(secret.as_bytes())) {
                found = Some(token.clone());
            }
        }
        found.ok_or(ApiError::TokenInvalid)
    }
}

/// The interceptor in front of the Engine and Queues services: with `auth`, a request
/// without a known token is refused (and logged with its peer); a known one rides on as a
/// [`Principal`]. Without `auth`, every request passes.
pub fn interceptor(
    auth: Option<Arc<Auth>>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |mut request: tonic::Request<()>| {
        let Some(auth) = &auth else { return Ok(request) };
        match auth.authenticate(request.metadata()) {
            Ok(token) => {
                request.extensions_mut().insert(Principal(token));
                Ok(request)
            }
            Err(e) => {
                let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
                tracing::warn!(%peer, reason = e.reason(), "refused a call without a known token");
                Err(e.into())
            }
        }
    }
}

/// Checks `action` for the request's token (always allowed without `auth`), logging a
/// refusal with the token's name and the peer.
pub fn check<T>(auth: Option<&Auth>, request: &tonic::Request<T>, action: Action<'_>) -> Result<(), ApiError> {
    if auth.is_none() {
        return Ok(());
    }
    let token = principal(request).ok_or(ApiError::TokenMissing)?;
    let peer = request.remote_addr();
    check_token(&token, peer, action)
}

/// The request's token, when it was authenticated.
pub fn principal<T>(request: &tonic::Request<T>) -> Option<Arc<TokenSpec>> {
    request.extensions().get::<Principal>().map(|p| p.0.clone())
}

/// [`authorize`], logging a refusal (token name and peer) and typing it as an error.
pub fn check_token(token: &TokenSpec, peer: Option<std::net::SocketAddr>, action: Action<'_>) -> Result<(), ApiError> {
    authorize(token, action).map_err(|denied| {
        let peer = peer.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
        tracing::warn!(token = %denied.token, %peer, refused = denied.what, value = %denied.value, "PERMISSION_DENIED: {}", denied.message);
        ApiError::PermissionDenied(denied)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn token(roles: &[Role], queues: Option<&[&str]>, functions: Option<&[&str]>) -> TokenSpec {
        let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
        TokenSpec {
            name: "orders-producer".into(),
            secret: Secret::new("s3cret"),
            roles: roles.to_vec(),
            queues: list(queues),
            functions: list(functions),
        }
    }

    #[test]
    fn the_message_names_token_queue_and_globs() {
        let t = token(&[Role::Producer], Some(&["orders*"]), None);
        let d = authorize(&t, Action::Enqueue { function: "f", queue: "payments" }).unwrap_err();
        assert_eq!(d.message, "token 'orders-producer' may not enqueue to queue 'payments' (its queues: orders*)");
        assert_eq!((d.what, d.value.as_str()), ("queue", "payments"));
        assert!(authorize(&t, Action::Enqueue { function: "f", queue: "orders-eu" }).is_ok());
    }

    #[test]
    fn publish_needs_the_producer_role_and_a_queue_glob_matching_the_topic() {
        let t = token(&[Role::Producer], Some(&["orders*"]), Some(&["nothing::*"]));
        assert!(authorize(&t, Action::Publish { topic: "orders.placed" }).is_ok(), "function globs do not apply");
        let d = authorize(&t, Action::Publish { topic: "payments.settled" }).unwrap_err();
        assert_eq!(
            d.message,
            "token 'orders-producer' may not publish to topic 'payments.settled' (its queues: orders*)"
        );
        assert_eq!((d.what, d.value.as_str()), ("topic", "payments.settled"));
        let worker = token(&[Role::Worker], None, None);
        assert_eq!(authorize(&worker, Action::Publish { topic: "orders.placed" }).unwrap_err().what, "role");
    }

    #[test]
    fn roles_bound_the_actions() {
        let worker = token(&[Role::Worker], None, Some(&["orders::*"]));
        assert!(authorize(&worker, Action::Connect).is_ok());
        assert!(authorize(&worker, Action::Register { function: "orders::pay" }).is_ok());
        let d = authorize(&worker, Action::Register { function: "emails::send" }).unwrap_err();
        assert_eq!(d.what, "function");
        assert_eq!(authorize(&worker, Action::Call { function: "orders::pay" }).unwrap_err().what, "role");
        assert_eq!(authorize(&worker, Action::Admin { queue: None }).unwrap_err().what, "role");
        let admin = token(&[Role::Admin], Some(&["orders*"]), None);
        assert!(sees_queue(&admin, "orders"));
        assert!(!sees_queue(&admin, "payments"));
    }

    #[test]
    fn authenticate_reads_the_bearer_header() {
        let auth = Auth::new(&AuthSpec { tokens: vec![token(&[Role::Producer], None, None)] });
        let mut md = MetadataMap::new();
        assert!(matches!(auth.authenticate(&md), Err(ApiError::TokenMissing)));
        md.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(matches!(auth.authenticate(&md), Err(ApiError::TokenInvalid)));
        md.insert("authorization", "bearer s3cret".parse().unwrap());
        assert_eq!(auth.authenticate(&md).unwrap().name, "orders-producer");
        md.insert("authorization", "Basic s3cret".parse().unwrap());
        assert!(matches!(auth.authenticate(&md), Err(ApiError::TokenInvalid)));
    }
}

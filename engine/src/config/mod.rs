//! Configuration: the `iii-config.yaml` file shape and the validated runtime spec.
//!
//! Invariant: an [`EngineConfig`] is only ever built from a file with *no* problems; every
//! problem found is reported at once, each with its path and line
//! (`queue_configs.payment.message_group_field: required when type is fifo (line 9)`).
//!
//! Loading is three steps: `${VAR}` substitution ([`env`]), YAML with positions, and the
//! walk that validates fields and applies defaults ([`parse`]). A config written for iii's
//! queue module — the same block nested under `workers: [{name: iii-queue, config: …}]` or
//! `modules: [{class: …Queue…, config: …}]` — loads unchanged; other entries are ignored
//! with one warning each.

mod env;
mod iii;
mod limits;
mod parse;
pub mod security;

pub use limits::{DEFAULT_MAX_READY, Limits};
pub use security::{AuthSpec, Role, Secret, TlsSpec, TokenSpec};

use crate::clock::Millis;
pub use crate::limits::rate::RateLimit;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The name of the queue that always exists.
pub const DEFAULT_QUEUE: &str = "default";
/// The address the engine listens on when `listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:49134";
/// Where `/metrics` is served when `metrics_listen` is not set.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// Where the web console is served when `console_listen` is not set.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:9465";

/// The validated engine configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub listen: SocketAddr,
    pub max_payload_bytes: usize,
    pub shutdown_grace_ms: u64,
    /// `/metrics` in the Prometheus text format; `None` when `metrics_listen` is empty.
    pub metrics_listen: Option<SideListen>,
    /// The web console; `None` when `console_listen` is empty.
    pub console_listen: Option<SideListen>,
    /// Resource bounds (the `limits` block).
    pub limits: Limits,
    /// Every queue by name; always holds [`DEFAULT_QUEUE`], and one queue per topic
    /// subscriber, named `<topic>/<function_id>` (its `topic` set).
    pub queues: BTreeMap<String, QueueSpec>,
    /// `topic_configs`: each topic's subscribers, in config order.
    pub topics: BTreeMap<String, TopicSpec>,
    pub adapter: AdapterSpec,
    /// How log lines on stderr are written (`SWITCHYARD_LOG_FORMAT` overrides it).
    pub log_format: LogFormat,
    /// TLS on the gRPC listener (`tls`); `None` = plaintext.
    pub tls: Option<TlsSpec>,
    /// Tokens and roles (`auth`); `None` = no authentication.
    pub auth: Option<AuthSpec>,
    /// `allow_plaintext: true`: serve tokens without TLS on a non-loopback address.
    pub allow_plaintext: bool,
    /// Things that were ignored on purpose (foreign iii modules, iii keys with no meaning
    /// here, …), each with its path and line; logged at start-up.
    pub warnings: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            max_payload_bytes: 1024 * 1024,
            shutdown_grace_ms: 30_000,
            metrics_listen: Some(SideListen::implicit(DEFAULT_METRICS_LISTEN)),
            console_listen: Some(SideListen::implicit(DEFAULT_CONSOLE_LISTEN)),
            limits: Limits::default(),
            queues: BTreeMap::from([(DEFAULT_QUEUE.to_string(), QueueSpec::default_queue())]),
            topics: BTreeMap::new(),
            adapter: AdapterSpec::Memory,
            log_format: LogFormat::Text,
            tls: None,
            auth: None,
            allow_plaintext: false,
            warnings: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            problems: vec![Problem::new("", format!("cannot read file: {e}"))],
        })?;
        Self::parse(&text).map_err(|mut e| {
            e.source_name = path.display().to_string();
            e
        })
    }

    /// Validates config text, substituting `${VAR}` from the process environment.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// Validates config text with an explicit environment (for tests).
    pub fn parse_with_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let wrap = |problems| ConfigError { source_name: "config".into(), problems };
        let substituted = env::substitute(text, &lookup).map_err(wrap)?;
        parse::parse(&substituted, &lookup).map_err(|mut problems| {
            // Substitution keeps lines but not columns: on a line it changed, say only the line.
            for p in &mut problems {
                let line = |t: &str| p.line.and_then(|l| t.lines().nth(l.saturating_sub(1)).map(str::to_string));
                if p.column.is_some() && line(text) != line(&substituted) {
                    p.column = None;
                }
            }
            wrap(problems)
        })
    }

    /// The plaintext guard for serving on `listen` (the config's, or `--listen`'s):
    /// `Err` refuses to start, `Ok(Some)` is a loud warning.
    pub fn plaintext_check(&self, listen: SocketAddr) -> Result<Option<String>, String> {
        security::plaintext_check(listen, self.tls.as_ref(), self.auth.as_ref(), self.allow_plaintext)
    }

    /// Names of the defined queues, sorted, for error messages.
    pub fn queue_names(&self) -> Vec<&str> {
        self.queues.keys().map(String::as_str).collect()
    }

    /// Names of the defined topics, sorted, for error messages.
    pub fn topic_names(&self) -> Vec<&str> {
        self.topics.keys().map(String::as_str).collect()
    }
}

/// A topic from `topic_configs`: a publish stores one job per subscriber, each on the
/// subscriber's own queue [`TopicSpec::queue_of`] (own retries, concurrency, DLQ).
/// Subscriptions come from the config only, so they are durable and the same on every
/// engine; a subscriber's jobs wait for its worker like any queued job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Function ids, in config order (the order of a publish's receipts). May be empty: a
    /// publish is then accepted, counted, and stores nothing.
    pub subscribers: Vec<String>,
}

impl TopicSpec {
    /// The queue of `function_id`'s subscription to `topic`.
    pub fn queue_of(topic: &str, function_id: &str) -> String {
        format!("{topic}/{function_id}")
    }
}

/// The default `dedup_window_ms`: idempotency keys are remembered 5 minutes.
pub const DEFAULT_DEDUP_WINDOW_MS: u64 = 300_000;

/// How long a cancelled job is kept on a queue without `result_retention_ms`, so that a
/// repeated `CancelJob` and a `GetJob` right after still see it.
pub const CANCELLED_RETENTION_MS: u64 = 60_000;

/// The address of an HTTP listener beside the gRPC one (`metrics_listen`,
/// `console_listen`). An address the config names must be bound or the engine does not
/// start; the built-in default that is already taken (a second engine on the same host)
/// is skipped with a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideListen {
    pub addr: SocketAddr,
    /// Named in the config, not the built-in default.
    pub explicit: bool,
}

impl SideListen {
    fn implicit(addr: &str) -> Self {
        Self { addr: addr.parse().expect("valid default address"), explicit: false }
    }
}

/// A queue's effective settings, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// Retries after the first attempt: `max_retries + 1` attempts in all.
    pub max_retries: u32,
    pub backoff_ms: u64,
    /// Standard: most jobs in flight per engine. FIFO: most groups in flight per engine.
    pub concurrency: u32,
    pub kind: QueueKind,
    /// FIFO only: the top-level payload field that names the group.
    pub message_group_field: Option<String>,
    pub timeout_ms: u64,
    pub max_backoff_ms: Option<u64>,
    pub jitter: bool,
    /// Jobs waiting (ready or delayed) before enqueues are refused (`QUEUE_FULL`).
    pub max_ready: u64,
    /// How long an idempotency key is remembered after its first job's enqueue.
    pub dedup_window_ms: u64,
    /// For a topic subscriber's queue: its topic.
    pub topic: Option<String>,
    /// How long a dead letter is kept before the sweeper (`crate::retention`) discards it;
    /// `None`: until it is redriven or discarded.
    pub dlq_retention_ms: Option<u64>,
    /// How long completed jobs (with their results) and cancelled ones are kept for
    /// `GetJob`; 0: completed jobs are deleted at once, cancelled ones kept
    /// [`CANCELLED_RETENTION_MS`].
    pub result_retention_ms: u64,
    /// Attempts of this queue start at most this fast (see [`crate::limits::rate`]).
    pub rate_limit: Option<RateLimit>,
}

impl QueueSpec {
    /// The settings of a queue entry with no fields (and of the implicit `default` queue).
    pub fn default_queue() -> Self {
        Self {
            max_retries: 3,
            backoff_ms: 1000,
            concurrency: 10,
            kind: QueueKind::Standard,
            message_group_field: None,
            timeout_ms: 300_000,
            max_backoff_ms: None,
            jitter: false,
            max_ready: DEFAULT_MAX_READY,
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            topic: None,
            dlq_retention_ms: None,
            result_retention_ms: 0,
            rate_limit: None,
        }
    }

    /// Until when a job of this queue that completed at `at` is kept, if it is.
    pub fn completed_until(&self, at: Millis) -> Option<Millis> {
        (self.result_retention_ms > 0).then(|| at.saturating_add(self.result_retention_ms))
    }

    /// Until when a job of this queue cancelled at `at` is kept.
    pub fn cancelled_until(&self, at: Millis) -> Millis {
        let keep = if self.result_retention_ms > 0 { self.result_retention_ms } else { CANCELLED_RETENTION_MS };
        at.saturating_add(keep)
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// One line of `check-config`: `type=fifo max_retries=10 backoff_ms=1000 …`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "type={} max_retries={} backoff_ms={} concurrency={} timeout_ms={}",
            self.kind.as_str(),
            self.max_retries,
            self.backoff_ms,
            self.concurrency,
            self.timeout_ms
        );
        if let Some(f) = &self.message_group_field {
            line.push_str(&format!(" message_group_field={f}"));
        }
        if self.dedup_window_ms != DEFAULT_DEDUP_WINDOW_MS {
            line.push_str(&format!(" dedup_window_ms={}", self.dedup_window_ms));
        }
        if let Some(t) = &self.topic {
            line.push_str(&format!(" topic={t}"));
        }
        if let Some(ms) = self.dlq_retention_ms {
            line.push_str(&format!(" dlq_retention_ms={ms}"));
        }
        line
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    Standard,
    Fifo,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Standard => "standard",
            QueueKind::Fifo => "fifo",
        }
    }
}

/// The shape of log lines: `text` (one line per event, for people) or `json` (one object
/// per line, for log shippers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Which store holds the jobs (the `adapter` block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterSpec {
    /// `builtin` / `in_memory`: embedded, lost on exit.
    Memory,
    /// `builtin` / `file_based`: embedded and durable at `path`.
    File { path: PathBuf },
    /// `redis`: shared by several engines.
    Redis { url: String, key_prefix: String },
    /// `rabbitmq`: shared by several engines.
    RabbitMq { url: String, key_prefix: String },
}

impl AdapterSpec {
    pub fn describe(&self) -> String {
        match self {
            AdapterSpec::Memory => "builtin/in_memory".into(),
            AdapterSpec::File { path } => format!("builtin/file_based ({})", path.display()),
            AdapterSpec::Redis { url, key_prefix } => format!("redis ({}, prefix {key_prefix})", redact_url(url)),
            AdapterSpec::RabbitMq { url, key_prefix } => {
                format!("rabbitmq ({}, prefix {key_prefix})", redact_url(url))
            }
        }
    }
}

/// `redis://user:secret@host` → `redis://***@host`: URLs in logs and messages never carry
/// credentials.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

/// One thing wrong with a config: where (dotted path, line, and for YAML syntax errors
/// the column) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), line: None, column: None, message: message.into() }
    }

    pub fn at(path: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        Self { path: path.into(), line: Some(line), column: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

/// Every problem found in one config.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{}: {n} problem{}", self.source_name, if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! The `queue_configs` and `topic_configs` blocks: each queue's fields with their bounds and
//! defaults; a topic's subscribers, with every queue field as their queues' defaults.

use super::{Walker, join, line_of};
use crate::config::iii;
use crate::config::{DEFAULT_QUEUE, EngineConfig, Problem, QueueKind, QueueSpec, TopicSpec};
use marked_yaml::Node;

pub(super) const QUEUE_KEYS: &[&str] = &[
    "max_retries",
    "backoff_ms",
    "concurrency",
    "type",
    "message_group_field",
    "timeout_ms",
    "max_backoff_ms",
    "jitter",
    "max_ready",
    "dedup_window_ms",
    "dlq_retention_ms",
    "result_retention_ms",
    "rate_limit",
];

/// Results are kept at most a week: they count against the store's memory or disk.
const MAX_RESULT_RETENTION_MS: u64 = 7 * 24 * 3_600_000;

impl Walker<'_> {
    pub(super) fn queues(&mut self, path: &str, node: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        for (name, body) in map.iter() {
            let qpath = join(path, name);
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                self.problem(&qpath, body, "a queue name must be non-empty and without spaces");
                continue;
            }
            if name.contains('/') {
                self.problem(
                    &qpath,
                    body,
                    "'/' is reserved for topic subscribers' queues (<topic>/<function_id>, from topic_configs)",
                );
                continue;
            }
            if let Some(spec) = self.queue(&qpath, body, QUEUE_KEYS) {
                config.queues.insert(name.as_str().to_string(), spec);
            }
        }
        config.queues.entry(DEFAULT_QUEUE.to_string()).or_insert_with(QueueSpec::default_queue);
    }

    /// `topic_configs`: each topic's subscribers become queues `<topic>/<function_id>` with
    /// the topic's queue fields.
    pub(super) fn topics(&mut self, path: &str, node: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        for (name, body) in map.iter() {
            let tpath = join(path, name);
            if name.is_empty() || name.chars().any(char::is_whitespace) || name.contains('/') {
                self.problem(&tpath, body, "a topic name must be non-empty, without spaces and without '/'");
                continue;
            }
            // A topic's keys: its subscribers, and every queue field as their defaults.
            let known: Vec<&str> = std::iter::once("subscribers").chain(QUEUE_KEYS.iter().copied()).collect();
            let spec = self.queue(&tpath, body, &known);
            let spath = join(&tpath, "subscribers");
            let Some(list) = body.as_mapping().and_then(|m| m.get_node("subscribers")) else {
                self.problem(&spath, body, "required: the function ids subscribed (a list; [] for none yet)");
                continue;
            };
            let Some(seq) = list.as_sequence() else {
                self.problem(&spath, list, "expected a list of function ids");
                continue;
            };
            let mut subscribers: Vec<String> = Vec::new();
            for (i, entry) in seq.iter().enumerate() {
                let epath = format!("{spath}[{i}]");
                let Some(f) = self.string(&epath, entry) else { continue };
                let f = f.trim().to_string();
                if f.is_empty() || f.chars().any(char::is_whitespace) {
                    self.problem(&epath, entry, "a function id must be non-empty and without spaces");
                } else if subscribers.contains(&f) {
                    self.problem(&epath, entry, format!("'{f}' is listed twice"));
                } else {
                    subscribers.push(f);
                }
            }
            let Some(spec) = spec else { continue };
            for f in &subscribers {
                let queue = TopicSpec::queue_of(name, f);
                config.queues.insert(queue, QueueSpec { topic: Some(name.as_str().to_string()), ..spec.clone() });
            }
            config.topics.insert(name.as_str().to_string(), TopicSpec { subscribers });
        }
    }

    fn queue(&mut self, path: &str, node: &Node, known: &[&str]) -> Option<QueueSpec> {
        let mut spec = QueueSpec::default_queue();
        let before = self.problems.len();
        let Some(map) = self.mapping(path, node) else {
            return Some(spec);
        };
        self.keys(path, map, known, iii::QUEUE);
        let field = |k: &str| map.get_node(k);
        if let Some(n) = field("max_retries") {
            spec.max_retries =
                self.uint(&join(path, "max_retries"), n, 1000).map(|v| v as u32).unwrap_or(spec.max_retries);
        }
        if let Some(n) = field("backoff_ms") {
            spec.backoff_ms =
                self.uint(&join(path, "backoff_ms"), n, u32::MAX as u64 * 1000).unwrap_or(spec.backoff_ms);
        }
        if let Some(n) = field("max_backoff_ms") {
            spec.max_backoff_ms = self.uint(&join(path, "max_backoff_ms"), n, u64::MAX);
        }
        if let Some(n) = field("max_ready") {
            match self.uint(&join(path, "max_ready"), n, u64::MAX) {
                Some(0) => self.problem(&join(path, "max_ready"), n, "must be at least 1"),
                Some(v) => spec.max_ready = v,
                None => {}
            }
        }
        if let Some(n) = field("dedup_window_ms") {
            match self.uint(&join(path, "dedup_window_ms"), n, u32::MAX as u64 * 1000) {
                Some(0) => self.problem(&join(path, "dedup_window_ms"), n, "must be at least 1"),
                Some(v) => spec.dedup_window_ms = v,
                None => {}
            }
        }
        if let Some(n) = field("dlq_retention_ms") {
            match self.uint(&join(path, "dlq_retention_ms"), n, u64::MAX) {
                Some(0) => self.problem(&join(path, "dlq_retention_ms"), n, "must be at least 1"),
                Some(v) => spec.dlq_retention_ms = Some(v),
                None => {}
            }
        }
        if let Some(n) = field("result_retention_ms") {
            spec.result_retention_ms = self
                .uint(&join(path, "result_retention_ms"), n, MAX_RESULT_RETENTION_MS)
                .unwrap_or(spec.result_retention_ms);
        }
        if let Some(n) = field("rate_limit") {
            spec.rate_limit = self.rate_limit(&join(path, "rate_limit"), n);
        }
        if let Some(n) = field("jitter") {
            spec.jitter = self.boolean(&join(path, "jitter"), n).unwrap_or(false);
        }
        if let Some(n) = field("concurrency") {
            match self.uint(&join(path, "concurrency"), n, 100_000) {
                Some(0) => self.problem(&join(path, "concurrency"), n, "must be at least 1"),
                Some(v) => spec.concurrency = v as u32,
                None => {}
            }
        }
        if let Some(n) = field("timeout_ms") {
            match self.uint(&join(path, "timeout_ms"), n, u32::MAX as u64 * 1000) {
                Some(0) => self.problem(&join(path, "timeout_ms"), n, "must be at least 1"),
                Some(v) => spec.timeout_ms = v,
                None => {}
            }
        }
        if let Some(n) = field("type") {
            match self.string(&join(path, "type"), n).as_deref() {
                Some("standard") => spec.kind = QueueKind::Standard,
                Some("fifo") => spec.kind = QueueKind::Fifo,
                Some(other) => {
                    self.problem(&join(path, "type"), n, format!("expected 'standard' or 'fifo', got '{other}'"))
                }
                None => {}
            }
        }
        if let Some(n) = field("message_group_field") {
            match self.string(&join(path, "message_group_field"), n) {
                Some(s) if s.trim().is_empty() => {
                    self.problem(&join(path, "message_group_field"), n, "must not be empty")
                }
                Some(s) => spec.message_group_field = Some(s),
                None => {}
            }
        }
        match (spec.kind, &spec.message_group_field) {
            (QueueKind::Fifo, None) if field("message_group_field").is_none() => {
                let line = field("type").map(line_of).unwrap_or_else(|| line_of(node));
                self.problems.push(Problem::at(join(path, "message_group_field"), line, "required when type is fifo"));
            }
            (QueueKind::Standard, Some(_)) => {
                self.warnings.push(format!("{path}.message_group_field: ignored on a standard queue"));
                spec.message_group_field = None;
            }
            _ => {}
        }
        (self.problems.len() == before).then_some(spec)
    }

    /// `rate_limit: {per_second: N | per_minute: N, burst: B}` (burst default 1).
    fn rate_limit(&mut self, path: &str, node: &Node) -> Option<crate::config::RateLimit> {
        let map = self.mapping(path, node)?;
        self.keys(path, map, &["per_second", "per_minute", "burst"], &[]);
        let count = |w: &mut Self, key: &str| {
            let n = map.get_node(key)?;
            match w.uint(&join(path, key), n, 1_000_000) {
                Some(0) => {
                    w.problem(&join(path, key), n, "must be at least 1");
                    None
                }
                v => v,
            }
        };
        let per_second = count(self, "per_second");
        let per_minute = count(self, "per_minute");
        let burst = match map.get_node("burst") {
            Some(_) => count(self, "burst")? as u32,
            None => 1,
        };
        let (count, window_ms) = match (per_second, per_minute, map.get_node("per_second"), map.get_node("per_minute"))
        {
            (Some(s), None, _, None) => (s as u32, 1_000),
            (None, Some(m), None, _) => (m as u32, 60_000),
            (_, _, Some(_), Some(_)) => {
                self.problem(path, node, "give one of per_second and per_minute, not both");
                return None;
            }
            (None, None, None, None) => {
                self.problem(path, node, "required: per_second or per_minute (how many attempts may start)");
                return None;
            }
            _ => return None, // the field's own problem is recorded
        };
        Some(crate::config::RateLimit { count, window_ms, burst })
    }
}

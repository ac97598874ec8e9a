//! The walk over the YAML tree: validates every field, applies defaults, and collects
//! every problem (path + line) instead of stopping at the first.

use super::{AdapterSpec, DEFAULT_QUEUE, EngineConfig, Problem, QueueKind, QueueSpec};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use std::path::PathBuf;

const TOP_KEYS: &[&str] =
    &["listen", "max_payload_bytes", "shutdown_grace_ms", "queue_configs", "adapter", "workers", "modules"];
const QUEUE_KEYS: &[&str] = &[
    "max_retries",
    "backoff_ms",
    "concurrency",
    "type",
    "message_group_field",
    "timeout_ms",
    "max_backoff_ms",
    "jitter",
];

pub(super) fn parse(text: &str) -> Result<EngineConfig, Vec<Problem>> {
    let mut w = Walker::default();
    let root = if text.trim().is_empty() {
        None
    } else {
        match marked_yaml::parse_yaml_with_options(0, text, LoaderOptions::default().error_on_duplicate_keys(true)) {
            Ok(node) => Some(node),
            Err(e) => return Err(vec![Problem::new("", format!("not valid YAML: {e}"))]),
        }
    };
    let mut config = EngineConfig::default();
    if let Some(root) = &root {
        w.engine(root, &mut config);
    }
    if w.problems.is_empty() {
        config.warnings = w.warnings;
        Ok(config)
    } else {
        Err(w.problems)
    }
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

fn line_of(node: &Node) -> usize {
    node.span().start().map(|m| m.line()).unwrap_or(0)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Walker {
    fn problem(&mut self, path: &str, node: &Node, message: impl Into<String>) {
        self.problems.push(Problem::at(path, line_of(node), message));
    }

    fn mapping<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n MarkedMappingNode> {
        match node.as_mapping() {
            Some(m) => Some(m),
            None if is_null(node) => None,
            None => {
                self.problem(path, node, "expected a mapping");
                None
            }
        }
    }

    fn unknown_keys(&mut self, path: &str, map: &MarkedMappingNode, known: &[&str]) {
        for (key, value) in map.iter() {
            if !known.contains(&key.as_str()) {
                let line = key.span().start().map(|m| m.line()).unwrap_or_else(|| line_of(value));
                self.problems.push(Problem::at(
                    join(path, key),
                    line,
                    format!("unknown key (expected one of: {})", known.join(", ")),
                ));
            }
        }
    }

    fn scalar<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n MarkedScalarNode> {
        let s = node.as_scalar();
        if s.is_none() {
            self.problem(path, node, "expected a single value");
        }
        s
    }

    fn uint(&mut self, path: &str, node: &Node, max: u64) -> Option<u64> {
        let s = self.scalar(path, node)?;
        match s.trim().replace('_', "").parse::<u64>() {
            Ok(v) if v <= max => Some(v),
            Ok(_) => {
                self.problem(path, node, format!("must be at most {max}"));
                None
            }
            Err(_) => {
                self.problem(path, node, format!("expected a whole number >= 0, got '{}'", s.as_str()));
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, node: &Node) -> Option<bool> {
        let s = self.scalar(path, node)?;
        match s.as_str() {
            "true" | "True" | "TRUE" | "yes" | "on" => Some(true),
            "false" | "False" | "FALSE" | "no" | "off" => Some(false),
            other => {
                self.problem(path, node, format!("expected true or false, got '{other}'"));
                None
            }
        }
    }

    fn string(&mut self, path: &str, node: &Node) -> Option<String> {
        self.scalar(path, node).map(|s| s.as_str().to_string())
    }

    fn engine(&mut self, root: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping("", root) else {
            return;
        };
        self.unknown_keys("", map, TOP_KEYS);
        if let Some(n) = map.get_node("listen")
            && let Some(s) = self.string("listen", n)
        {
            match s.parse() {
                Ok(addr) => config.listen = addr,
                Err(_) => self.problem("listen", n, format!("expected host:port with an IP address, got '{s}'")),
            }
        }
        if let Some(n) = map.get_node("max_payload_bytes") {
            match self.uint("max_payload_bytes", n, 64 * 1024 * 1024) {
                Some(0) => self.problem("max_payload_bytes", n, "must be greater than 0"),
                Some(v) => config.max_payload_bytes = v as usize,
                None => {}
            }
        }
        if let Some(n) = map.get_node("shutdown_grace_ms")
            && let Some(v) = self.uint("shutdown_grace_ms", n, u32::MAX as u64)
        {
            config.shutdown_grace_ms = v;
        }

        // The queue block: at the top level, or nested the way iii's queue module takes it.
        let mut blocks: Vec<(String, &MarkedMappingNode)> = Vec::new();
        if map.get_node("queue_configs").is_some() || map.get_node("adapter").is_some() {
            blocks.push((String::new(), map));
        }
        for list_key in ["workers", "modules"] {
            if let Some(n) = map.get_node(list_key) {
                self.iii_modules(list_key, n, &mut blocks);
            }
        }
        if blocks.len() > 1 {
            let places: Vec<_> =
                blocks.iter().map(|(p, _)| if p.is_empty() { "top level".into() } else { p.clone() }).collect();
            self.problem(
                "queue_configs",
                root,
                format!("the queue block is defined more than once ({})", places.join(", ")),
            );
            return;
        }
        if let Some((prefix, block)) = blocks.first() {
            if !prefix.is_empty() {
                self.unknown_keys(prefix, block, &["queue_configs", "adapter"]);
            }
            if let Some(n) = block.get_node("queue_configs") {
                self.queues(&join(prefix, "queue_configs"), n, config);
            }
            if let Some(n) = block.get_node("adapter")
                && let Some(a) = self.adapter(&join(prefix, "adapter"), n)
            {
                config.adapter = a;
            }
        }
    }

    /// `workers: [{name: iii-queue, config: …}]` / `modules: [{class: …Queue…, config: …}]`.
    fn iii_modules<'n>(&mut self, key: &str, node: &'n Node, blocks: &mut Vec<(String, &'n MarkedMappingNode)>) {
        let Some(seq) = node.as_sequence() else {
            if !is_null(node) {
                self.problem(key, node, "expected a list");
            }
            return;
        };
        let name_key = if key == "workers" { "name" } else { "class" };
        for (i, entry) in seq.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let Some(m) = self.mapping(&path, entry) else {
                continue;
            };
            let name = m.get_scalar(name_key).map(|s| s.as_str().to_string()).unwrap_or_default();
            let is_queue =
                if key == "workers" { name == "iii-queue" } else { name.to_ascii_lowercase().contains("queue") };
            if !is_queue {
                self.warnings
                    .push(format!("{path}: '{name}' is not the queue module; ignored (line {})", line_of(entry)));
                continue;
            }
            match m.get_node("config") {
                Some(c) => {
                    if let Some(cm) = self.mapping(&join(&path, "config"), c) {
                        blocks.push((join(&path, "config"), cm));
                    }
                }
                None => self.problem(&path, entry, "the queue module entry has no 'config'"),
            }
        }
    }

    fn queues(&mut self, path: &str, node: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        for (name, body) in map.iter() {
            let qpath = join(path, name);
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                self.problem(&qpath, body, "a queue name must be non-empty and without spaces");
                continue;
            }
            if let Some(spec) = self.queue(&qpath, body) {
                config.queues.insert(name.as_str().to_string(), spec);
            }
        }
        config.queues.entry(DEFAULT_QUEUE.to_string()).or_insert_with(QueueSpec::default_queue);
    }

    fn queue(&mut self, path: &str, node: &Node) -> Option<QueueSpec> {
        let mut spec = QueueSpec::default_queue();
        let before = self.problems.len();
        let Some(map) = self.mapping(path, node) else {
            return Some(spec);
        };
        self.unknown_keys(path, map, QUEUE_KEYS);
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

    fn adapter(&mut self, path: &str, node: &Node) -> Option<AdapterSpec> {
        let map = self.mapping(path, node)?;
        self.unknown_keys(path, map, &["name", "config"]);
        let name = match map.get_node("name") {
            Some(n) => self.string(&join(path, "name"), n)?,
            None => "builtin".to_string(),
        };
        let cpath = join(path, "config");
        let cfg = match map.get_node("config") {
            Some(n) => self.mapping(&cpath, n),
            None => None,
        };
        let get = |k: &str| cfg.and_then(|c| c.get_node(k));
        let text = |w: &mut Self, k: &str, default: &str| match get(k) {
            Some(n) => w.string(&join(&cpath, k), n).unwrap_or_default(),
            None => default.to_string(),
        };
        match name.as_str() {
            "builtin" => {
                if let Some(c) = cfg {
                    self.unknown_keys(&cpath, c, &["store_method", "file_path"]);
                }
                match text(self, "store_method", "in_memory").as_str() {
                    "in_memory" => Some(AdapterSpec::Memory),
                    "file_based" => {
                        Some(AdapterSpec::File { path: PathBuf::from(text(self, "file_path", "./data/queue_store")) })
                    }
                    other => {
                        let n = get("store_method").unwrap_or(node);
                        self.problem(
                            &join(&cpath, "store_method"),
                            n,
                            format!("expected 'in_memory' or 'file_based', got '{other}'"),
                        );
                        None
                    }
                }
            }
            "redis" => {
                if let Some(c) = cfg {
                    self.unknown_keys(&cpath, c, &["redis_url", "key_prefix"]);
                }
                Some(AdapterSpec::Redis {
                    url: text(self, "redis_url", "redis://127.0.0.1:6379"),
                    key_prefix: text(self, "key_prefix", "switchyard"),
                })
            }
            "rabbitmq" => {
                if let Some(c) = cfg {
                    self.unknown_keys(&cpath, c, &["amqp_url", "key_prefix"]);
                }
                Some(AdapterSpec::RabbitMq {
                    url: text(self, "amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                    key_prefix: text(self, "key_prefix", "switchyard"),
                })
            }
            other => {
                let n = map.get_node("name").unwrap_or(node);
                self.problem(
                    &join(path, "name"),
                    n,
                    format!("unknown adapter '{other}' (expected builtin, redis or rabbitmq)"),
                );
                None
            }
        }
    }
}

fn is_null(node: &Node) -> bool {
    node.as_scalar().is_some_and(|s| matches!(s.as_str(), "" | "~" | "null"))
}

//! The walk over the YAML tree: validates every field, applies defaults, and collects
//! every problem (path + line) instead of stopping at the first. iii's shapes and keys
//! are recognised through [`super::iii`].

use super::iii::{self, Foreign};
use super::{AdapterSpec, EngineConfig, LogFormat, Problem, SideListen};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use std::path::PathBuf;

mod limits;
mod queues;
mod schedules;
mod security;

const TOP_KEYS: &[&str] = &[
    "listen",
    "max_payload_bytes",
    "shutdown_grace_ms",
    "limits",
    "log_format",
    "metrics_listen",
    "console_listen",
    "queue_configs",
    "topic_configs",
    "schedules",
    "adapter",
    "workers",
    "modules",
    "port",
    "tls",
    "auth",
    "allow_plaintext",
];

/// `env` answers `auth.tokens[].secret_env` (the process environment, or a test's).
pub(super) fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<EngineConfig, Vec<Problem>> {
    let mut w = Walker { env: Some(env), ..Walker::default() };
    let root = if text.trim().is_empty() {
        None
    } else {
        // Without coercion, a quoted scalar stays a string: `concurrency: "3"` is refused.
        let options = LoaderOptions::default().error_on_duplicate_keys(true).prevent_coercion(true);
        match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(node) => Some(node),
            Err(e) => return Err(vec![yaml_problem(&e, text)]),
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
        // In the order of the file, as a reader goes through it.
        w.problems.sort_by_key(|p| p.line);
        Err(w.problems)
    }
}

/// Answers an environment variable's value (the process environment, or a test's).
type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

#[derive(Default)]
struct Walker<'e> {
    problems: Vec<Problem>,
    warnings: Vec<String>,
    env: Option<Env<'e>>,
}

fn line_of(node: &Node) -> usize {
    node.span().start().map(|m| m.line()).unwrap_or(0)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Walker<'_> {
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

    fn warn(&mut self, path: &str, node: &Node, message: impl Into<String>) {
        self.warnings.push(Problem::at(path, line_of(node), message).to_string());
    }

    fn unknown_keys(&mut self, path: &str, map: &MarkedMappingNode, known: &[&str]) {
        self.keys(path, map, known, &[]);
    }

    /// Keys outside `known` are problems, except iii's keys in `foreign`, which have no
    /// meaning here: one warning each.
    fn keys(&mut self, path: &str, map: &MarkedMappingNode, known: &[&str], foreign: &[Foreign]) {
        for (key, value) in map.iter() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let line = key.span().start().map(|m| m.line()).unwrap_or_else(|| line_of(value));
            let message = match foreign.iter().find(|(k, _)| *k == key.as_str()) {
                Some((_, why)) => {
                    let warning = format!("iii setting with no meaning here, ignored: {why}");
                    self.warnings.push(Problem::at(join(path, key), line, warning).to_string());
                    continue;
                }
                None => match crate::suggest::closest(key, known.iter().copied()) {
                    Some(near) => {
                        format!("unknown key; did you mean '{near}'? (expected one of: {})", known.join(", "))
                    }
                    None => format!("unknown key (expected one of: {})", known.join(", ")),
                },
            };
            self.problems.push(Problem::at(join(path, key), line, message));
        }
    }

    fn scalar<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n MarkedScalarNode> {
        let s = node.as_scalar();
        if s.is_none() {
            self.problem(path, node, "expected a single value");
        }
        s
    }

    /// A plain (unquoted) scalar: `concurrency: "3"` is a string, and a type error.
    fn plain<'n>(&mut self, path: &str, node: &'n Node, expected: &str) -> Option<&'n MarkedScalarNode> {
        let s = self.scalar(path, node)?;
        if !s.may_coerce() {
            self.problem(
                path,
                node,
                format!("expected {expected}, got the string \"{}\" (remove the quotes)", s.as_str()),
            );
            return None;
        }
        Some(s)
    }

    fn uint(&mut self, path: &str, node: &Node, max: u64) -> Option<u64> {
        let s = self.plain(path, node, "a whole number")?;
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
        let s = self.plain(path, node, "true or false")?;
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

    /// `metrics_listen` / `console_listen`: empty turns the listener off.
    fn side_listen(&mut self, path: &str, node: &Node, s: &str) -> Option<SideListen> {
        if s.trim().is_empty() {
            return None;
        }
        match s.parse() {
            Ok(addr) => Some(SideListen { addr, explicit: true }),
            Err(_) => {
                self.problem(path, node, format!("expected host:port with an IP address, or empty for off, got '{s}'"));
                None
            }
        }
    }

    fn engine(&mut self, root: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping("", root) else {
            return;
        };
        self.keys("", map, TOP_KEYS, iii::TOP);
        if let Some(n) = map.get_node("listen")
            && let Some(s) = self.string("listen", n)
        {
            match s.parse() {
                Ok(addr) => config.listen = addr,
                Err(_) => self.problem("listen", n, format!("expected host:port with an IP address, got '{s}'")),
            }
        }
        // iii's engine port: the same port here, on the default (loopback) address.
        if let Some(n) = map.get_node("port")
            && let Some(port) = self.uint("port", n, u16::MAX as u64)
        {
            if map.get_node("listen").is_some() {
                self.warn("port", n, "ignored: listen is set");
            } else {
                config.listen.set_port(port as u16);
            }
        }
        if let Some(n) = map.get_node("max_payload_bytes") {
            match self.uint("max_payload_bytes", n, 64 * 1024 * 1024) {
                Some(0) => self.problem("max_payload_bytes", n, "must be greater than 0"),
                Some(v) => config.max_payload_bytes = v as usize,
                None => {}
            }
        }
        if let Some(n) = map.get_node("log_format")
            && let Some(s) = self.string("log_format", n)
        {
            match LogFormat::parse(&s) {
                Some(f) => config.log_format = f,
                None => self.problem("log_format", n, format!("expected 'text' or 'json', got '{s}'")),
            }
        }
        if let Some(n) = map.get_node("shutdown_grace_ms")
            && let Some(v) = self.uint("shutdown_grace_ms", n, u32::MAX as u64)
        {
            config.shutdown_grace_ms = v;
        }
        for (key, field) in
            [("metrics_listen", &mut config.metrics_listen), ("console_listen", &mut config.console_listen)]
        {
            if let Some(n) = map.get_node(key)
                && let Some(s) = self.string(key, n)
            {
                *field = self.side_listen(key, n, &s);
            }
        }
        if let Some(n) = map.get_node("limits") {
            self.limits("limits", n, &mut config.limits);
        }
        if let Some(n) = map.get_node("allow_plaintext")
            && let Some(v) = self.boolean("allow_plaintext", n)
        {
            config.allow_plaintext = v;
        }
        if let Some(n) = map.get_node("tls") {
            config.tls = self.tls("tls", n);
        }
        if let Some(n) = map.get_node("auth") {
            config.auth = self.auth("auth", n);
        }

        // The queue block: at the top level, or nested the way iii's queue module takes it.
        let mut blocks: Vec<Block> = Vec::new();
        if map.get_node("queue_configs").is_some()
            || map.get_node("topic_configs").is_some()
            || map.get_node("adapter").is_some()
        {
            blocks.push(Block { path: String::new(), line: line_of(root), map: Some(map) });
        }
        for list_key in ["workers", "modules"] {
            if let Some(n) = map.get_node(list_key) {
                self.iii_modules(list_key, n, &mut blocks);
            }
        }
        if blocks.len() > 1 {
            let places: Vec<_> = blocks
                .iter()
                .map(|b| if b.path.is_empty() { "top level".into() } else { format!("{} (line {})", b.path, b.line) })
                .collect();
            self.problem(
                "queue_configs",
                root,
                format!("the queue block is defined more than once ({})", places.join(", ")),
            );
            return;
        }
        if let Some(Block { path: prefix, map: Some(block), .. }) = blocks.first() {
            if !prefix.is_empty() {
                self.unknown_keys(prefix, block, &["queue_configs", "topic_configs", "adapter"]);
            }
            if let Some(n) = block.get_node("queue_configs") {
                self.queues(&join(prefix, "queue_configs"), n, config);
            }
            if let Some(n) = block.get_node("topic_configs") {
                self.topics(&join(prefix, "topic_configs"), n, config);
            }
            if let Some(n) = block.get_node("adapter")
                && let Some(a) = self.adapter(&join(prefix, "adapter"), n)
            {
                config.adapter = a;
            }
        }
        // After the queues: a schedule names one of them.
        if let Some(n) = map.get_node("schedules") {
            self.schedules("schedules", n, config);
        }
    }

    /// `workers: [{name: iii-queue, config: …}]` / `modules: [{class: …::QueueModule,
    /// config: …}]` (either list, either key): the queue module's block; every other
    /// entry is ignored with a warning.
    fn iii_modules<'n>(&mut self, key: &str, node: &'n Node, blocks: &mut Vec<Block<'n>>) {
        let Some(seq) = node.as_sequence() else {
            if !is_null(node) {
                self.problem(key, node, "expected a list");
            }
            return;
        };
        for (i, entry) in seq.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let Some(m) = self.mapping(&path, entry) else {
                continue;
            };
            let name = m.get_scalar("name").map(|s| s.as_str());
            let class = m.get_scalar("class").map(|s| s.as_str());
            if !iii::is_queue_module(name, class) {
                let what = name.or(class).unwrap_or("an entry without name or class");
                self.warn(&path, entry, format!("'{what}' is not the queue module; ignored"));
                continue;
            }
            self.keys(&path, m, &["name", "class", "config"], iii::ENTRY);
            let config_path = join(&path, "config");
            let map = match m.get_node("config") {
                Some(c) => self.mapping(&config_path, c),
                None => None,
            };
            blocks.push(Block { path: config_path, line: line_of(entry), map });
        }
    }

    fn adapter(&mut self, path: &str, node: &Node) -> Option<AdapterSpec> {
        let map = self.mapping(path, node)?;
        self.unknown_keys(path, map, &["name", "class", "config"]);
        let name_node = map.get_node("name");
        let class_node = map.get_node("class");
        let name = match name_node {
            Some(n) => Some(self.string(&join(path, "name"), n)?),
            None => None,
        };
        let class = match class_node {
            Some(n) => Some(self.string(&join(path, "class"), n)?),
            None => None,
        };
        if let (Some(_), Some(n)) = (&name, class_node) {
            self.problem(&join(path, "class"), n, "give the adapter a name or a class, not both");
            return None;
        }
        let (name, implied_store) = match iii::adapter_name(name.as_deref(), class.as_deref()) {
            Ok(found) => found,
            Err(why) => {
                let (key, n) = match name_node {
                    Some(n) => ("name", n),
                    None => ("class", class_node.unwrap_or(node)),
                };
                self.problem(&join(path, key), n, why);
                return None;
            }
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
        match name {
            "builtin" => {
                if let Some(c) = cfg {
                    self.keys(&cpath, c, &["store_method", "file_path"], iii::BUILTIN);
                }
                let store_method = match (get("store_method"), implied_store) {
                    (None, Some(implied)) => implied.to_string(),
                    _ => text(self, "store_method", "in_memory"),
                };
                match store_method.as_str() {
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
            _ => {
                if let Some(c) = cfg {
                    self.keys(&cpath, c, &["amqp_url", "key_prefix"], iii::RABBITMQ);
                }
                Some(AdapterSpec::RabbitMq {
                    url: text(self, "amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                    key_prefix: text(self, "key_prefix", "switchyard"),
                })
            }
        }
    }
}

/// Where the queue settings were found: the top level, or an iii module entry's
/// `config` (`map` is `None` for an entry without one: all defaults).
struct Block<'n> {
    path: String,
    line: usize,
    map: Option<&'n MarkedMappingNode>,
}

/// A YAML syntax error as a problem with its line and column (1-based, as editors count);
/// one the parser only notices at the end of the file says so, without a column.
fn yaml_problem(e: &marked_yaml::LoadError, source: &str) -> Problem {
    use marked_yaml::LoadError::*;
    let (m, what) = match e {
        TopLevelMustBeMapping(m)
        | TopLevelMustBeSequence(m)
        | UnexpectedAnchor(m)
        | MappingKeyMustBeScalar(m)
        | UnexpectedTag(m)
        | ScanError(m, _) => {
            let text = e.to_string();
            (*m, text.strip_prefix(&format!("{m}: ")).unwrap_or(&text).to_string())
        }
        DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map_or(0, |m| m.line());
            let Some(m) = inner.key.span().start() else {
                return Problem::new("", format!("not valid YAML: {e}"));
            };
            (*m, format!("key '{}' appears twice in one mapping (first on line {first})", inner.key.as_str()))
        }
    };
    if m.character() >= source.trim_end().chars().count() {
        let last = source.trim_end().lines().count().max(1);
        return Problem::at("", last, format!("not valid YAML: {what}, at the end of the file"));
    }
    let mut problem = Problem::at("", m.line(), format!("not valid YAML: {what}"));
    problem.column = Some(m.column());
    problem
}

fn is_null(node: &Node) -> bool {
    node.as_scalar().is_some_and(|s| matches!(s.as_str(), "" | "~" | "null"))
}

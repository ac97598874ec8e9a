//! The `schedules` block: per schedule its cron expression and time zone, the queue and
//! function its jobs go to, their payload and priority, and the missed-tick policy; every
//! problem with its path and line.

use super::{Walker, is_null, join};
use crate::config::{EngineConfig, QueueKind, ScheduleSpec};
use crate::schedule::{Missed, Timetable};
use marked_yaml::Node;

const SCHEDULE_KEYS: &[&str] = &["cron", "timezone", "queue", "function_id", "payload", "priority", "missed"];

impl Walker<'_> {
    pub(super) fn schedules(&mut self, path: &str, node: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        for (name, body) in map.iter() {
            let spath = join(path, name);
            // The name is part of each tick's idempotency key (`schedule:<name>:<tick>`).
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
                self.problem(&spath, body, "a schedule name must be non-empty: letters, digits, '_', '-', '.', ':'");
                continue;
            }
            if let Some(spec) = self.schedule(&spath, body, config) {
                config.schedules.insert(name.as_str().to_string(), spec);
            }
        }
    }

    fn schedule(&mut self, path: &str, node: &Node, config: &EngineConfig) -> Option<ScheduleSpec> {
        let before = self.problems.len();
        let Some(map) = node.as_mapping() else {
            self.problem(path, node, "expected a mapping with cron, queue and function_id");
            return None;
        };
        self.unknown_keys(path, map, SCHEDULE_KEYS);
        let field = |k: &str| map.get_node(k);
        let required = |w: &mut Self, key: &str, what: &str| match field(key) {
            Some(n) => w.string(&join(path, key), n).map(|s| (s.trim().to_string(), n)),
            None => {
                w.problem(&join(path, key), node, format!("required: {what}"));
                None
            }
        };

        let cron = required(self, "cron", "a cron expression, e.g. \"0 30 2 * * *\"");
        let zone = match field("timezone") {
            Some(n) => self.string(&join(path, "timezone"), n).map(|s| (s, n)),
            None => Some(("UTC".to_string(), node)),
        };
        let timetable = match (cron, zone) {
            (Some((cron, cron_node)), Some((zone, zone_node))) => match Timetable::parse(&cron, &zone) {
                Ok(t) => Some(t),
                Err(e @ crate::schedule::TimetableError::Zone(_)) => {
                    self.problem(&join(path, "timezone"), zone_node, e.to_string());
                    None
                }
                Err(e) => {
                    self.problem(&join(path, "cron"), cron_node, e.to_string());
                    None
                }
            },
            _ => None,
        };

        let queue = required(self, "queue", "the queue its jobs are enqueued to").and_then(|(q, n)| {
            if config.queues.contains_key(&q) {
                return Some(q);
            }
            // A queue whose own entry had problems is not defined: that problem is enough.
            let reported = self.problems.iter().any(|p| p.path.contains(&format!("queue_configs.{q}")));
            if !reported {
                let defined = config.queue_names().join(", ");
                let hint = match crate::suggest::closest(&q, config.queues.keys().map(String::as_str)) {
                    Some(near) => format!("; did you mean '{near}'?"),
                    None => String::new(),
                };
                self.problem(&join(path, "queue"), n, format!("queue '{q}' is not defined{hint} (defined: {defined})"));
            }
            None
        });
        let spec_of_queue = queue.as_ref().and_then(|q| config.queues.get(q));

        let function_id = required(self, "function_id", "the function its jobs call").and_then(|(f, n)| {
            if f.is_empty() || f.chars().any(char::is_whitespace) {
                self.problem(&join(path, "function_id"), n, "a function id must be non-empty and without spaces");
                return None;
            }
            Some(f)
        });

        let payload_json = field("payload").map(yaml_to_json).unwrap_or(serde_json::Value::Null);
        let payload_bytes = crate::wire::json_to_wire(&payload_json);
        let payload = match crate::wire::payload_within(payload_bytes.clone(), config.limits.max_payload_depth) {
            _ if payload_bytes.len() > config.max_payload_bytes => {
                let n = field("payload").unwrap_or(node);
                let (size, max) = (payload_bytes.len(), config.max_payload_bytes);
                self.problem(&join(path, "payload"), n, format!("{size} bytes, over max_payload_bytes ({max})"));
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(&join(path, "payload"), field("payload").unwrap_or(node), e.to_string());
                None
            }
        };

        let mut group = None;
        if let (Some(q), Some(queue)) = (spec_of_queue, &queue)
            && q.kind == QueueKind::Fifo
            && let Some(group_field) = &q.message_group_field
        {
            let value = crate::wire::decode_payload(&crate::queue::Payload(payload_bytes));
            match crate::queue::group::group_of(&value, group_field) {
                Ok(g) => group = Some(g),
                Err(why) => self.problem(
                    &join(path, "payload"),
                    field("payload").unwrap_or(node),
                    format!("queue '{queue}' is fifo: the payload needs its group field '{group_field}' ({why})"),
                ),
            }
        }

        let mut priority = 0;
        if let Some(n) = field("priority")
            && let Some(p) = self.uint(&join(path, "priority"), n, u64::from(crate::queue::MAX_PRIORITY))
        {
            if spec_of_queue.is_some_and(|q| q.kind == QueueKind::Fifo) && p > 0 {
                self.problem(&join(path, "priority"), n, "a fifo queue runs its groups in order: no priority");
            }
            priority = p as u8;
        }

        let missed = match field("missed") {
            None => Missed::default(),
            Some(n) => match self.string(&join(path, "missed"), n) {
                Some(s) => Missed::parse(s.trim()).unwrap_or_else(|| {
                    self.problem(&join(path, "missed"), n, format!("expected 'run_once' or 'skip', got '{s}'"));
                    Missed::default()
                }),
                None => Missed::default(),
            },
        };

        if self.problems.len() != before {
            return None;
        }
        Some(ScheduleSpec {
            timetable: timetable?,
            queue: queue?,
            function_id: function_id?,
            payload: payload?,
            group,
            priority,
            missed,
        })
    }
}

/// A payload written in YAML, as JSON: plain scalars read as null, booleans and numbers
/// where they are one (YAML 1.2 core), quoted ones stay strings.
fn yaml_to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Mapping(m) => Value::Object(m.iter().map(|(k, v)| (k.as_str().to_string(), yaml_to_json(v))).collect()),
        Node::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect()),
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            if is_null(node) {
                return Value::Null;
            }
            match text {
                "true" | "True" | "TRUE" => return Value::Bool(true),
                "false" | "False" | "FALSE" => return Value::Bool(false),
                _ => {}
            }
            if let Ok(i) = text.parse::<i64>() {
                return Value::from(i);
            }
            match text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(serde_json::Number::from_f64) {
                Some(n) => Value::Number(n),
                None => Value::String(text.to_string()),
            }
        }
    }
}

//! The `schedules` block: per schedule its cron expression and time zone, the queue and
//! function its jobs go to, their payload and priority, and the missed-tick policy; every
//! problem with its path and line.

use super::{Walker, is_null, join};
use crate::config::{EngineConfig, QueueKind, ScheduleSpec};
use crate::schedule::{Missed, Timetable};
use marked_yaml::Node;

/// A tick's key (`schedule:<name>:<ms>`) stays within the 256 bytes of an idempotency key.
const MAX_NAME: usize = 200;

const SCHEDULE_KEYS: &[&str] = &["cron", "timezone", "queue", "function_id", "payload", "priority", "missed"];

impl Walker<'_> {
    pub(super) fn schedules(&mut self, path: &str, node: &Node, config: &mut EngineConfig) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        for (name, body) in map.iter() {
            let spath = join(path, name);
            // The name is part of each tick's idempotency key (`schedule:<name>:<tick>`).
            if name.is_empty()
                || name.len() > MAX_NAME
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
            {
                let why = format!("a schedule name is 1 to {MAX_NAME} letters, digits, '_', '-', '.', ':'");
                self.problem(&spath, body, why);
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
                    // The expression may be wrong too: say so in the same run.
                    if let Err(e) = Timetable::parse(&cron, "UTC") {
                        self.problem(&join(path, "cron"), cron_node, e.to_string());
                    }
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

#[cfg(test)]
mod tests {
    use crate::config::{EngineConfig, Problem};
    use crate::schedule::Missed;

    const QUEUES: &str = "\
queue_configs:
  reports: {}
  ledger: {type: fifo, message_group_field: account}
";

    fn problems(schedules: &str) -> Vec<Problem> {
        EngineConfig::parse(&format!("{QUEUES}schedules:\n{schedules}")).expect_err("a bad config").problems
    }

    fn lines(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_brief_s_example_loads_with_its_payload_as_json() {
        let c = EngineConfig::parse(&format!(
            "{QUEUES}schedules:
  nightly-report:
    cron: \"0 30 2 * * *\"
    timezone: Europe/Berlin
    queue: reports
    function_id: reports::nightly
    payload: {{kind: nightly, limit: 10, ratio: 0.5, on: true, none: ~, quoted: '10'}}
    missed: run_once
"
        ))
        .unwrap();
        let s = &c.schedules["nightly-report"];
        assert_eq!(
            (s.queue.as_str(), s.function_id.as_str(), s.missed),
            ("reports", "reports::nightly", Missed::RunOnce)
        );
        assert_eq!((s.timetable.expression(), s.timetable.zone_name()), ("0 30 2 * * *", "Europe/Berlin"));
        let payload = crate::wire::value_to_json(&crate::wire::decode_payload(&s.payload));
        let expected =
            serde_json::json!({"kind": "nightly", "limit": 10, "ratio": 0.5, "on": true, "none": null, "quoted": "10"});
        assert_eq!(payload, expected);
        assert_eq!((s.group.as_deref(), s.priority), (None, 0));
    }

    #[test]
    fn defaults_are_utc_a_null_payload_and_run_once() {
        let c = EngineConfig::parse(&format!(
            "{QUEUES}schedules:\n  t: {{cron: '@hourly', queue: reports, function_id: f}}\n"
        ))
        .unwrap();
        let s = &c.schedules["t"];
        assert_eq!((s.timetable.zone_name(), s.missed), ("UTC", Missed::RunOnce));
        assert_eq!(crate::wire::value_to_json(&crate::wire::decode_payload(&s.payload)), serde_json::Value::Null);
        assert_eq!(s.describe(), "cron \"@hourly\" timezone=UTC queue=reports function_id=f missed=run_once");
    }

    #[test]
    fn every_problem_of_a_schedule_has_its_path_and_line() {
        let got = lines(&problems(
            "  bad-cron: {cron: '61 * * * *', queue: reports, function_id: f}
  bad-zone: {cron: '@daily', timezone: Europe/Berln, queue: reports, function_id: f}
  both: {cron: '* * *', timezone: Mars/Olympus, queue: reports, function_id: f}
  no-queue: {cron: '@daily', queue: reprots, function_id: f}
  no-function: {cron: '@daily', queue: reports, function_id: ' '}
  typo: {cron: '@daily', queue: reports, function_id: f, misssed: skip}
  policy: {cron: '@daily', queue: reports, function_id: f, missed: always}
  never: {cron: '0 0 30 2 *', queue: reports, function_id: f}
  bare: {queue: reports}
",
        ));
        let expected = [
            "schedules.bad-cron.cron: not a cron expression: Component error: Number out of bounds. (the syntax: [second] minute hour day-of-month month day-of-week [year], or @hourly, @daily, …) (line 5)",
            "schedules.bad-zone.timezone: unknown time zone 'Europe/Berln' (an IANA name such as UTC, Europe/Berlin or America/New_York) (line 6)",
            "schedules.both.timezone: unknown time zone 'Mars/Olympus' (an IANA name such as UTC, Europe/Berlin or America/New_York) (line 7)",
            "schedules.both.cron: not a cron expression: Invalid pattern: Pattern must have between 5 and 7 fields. (the syntax: [second] minute hour day-of-month month day-of-week [year], or @hourly, @daily, …) (line 7)",
            "schedules.no-queue.queue: queue 'reprots' is not defined; did you mean 'reports'? (defined: default, ledger, reports) (line 8)",
            "schedules.no-function.function_id: a function id must be non-empty and without spaces (line 9)",
            "schedules.typo.misssed: unknown key; did you mean 'missed'? (expected one of: cron, timezone, queue, function_id, payload, priority, missed) (line 10)",
            "schedules.policy.missed: expected 'run_once' or 'skip', got 'always' (line 11)",
            "schedules.never.cron: never fires (no instant matches it) (line 12)",
            "schedules.bare.cron: required: a cron expression, e.g. \"0 30 2 * * *\" (line 13)",
            "schedules.bare.function_id: required: the function its jobs call (line 13)",
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn a_fifo_queue_needs_the_group_field_in_the_payload_and_takes_no_priority() {
        let got = lines(&problems(
            "  a: {cron: '@daily', queue: ledger, function_id: f, payload: {amount: 3}}
  b: {cron: '@daily', queue: ledger, function_id: f, payload: {account: acct_1}, priority: 5}
  c: {cron: '@daily', queue: reports, function_id: f, priority: 10}
",
        ));
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].starts_with(
                "schedules.a.payload: queue 'ledger' is fifo: the payload needs its group field 'account'"
            ),
            "{}",
            got[0]
        );
        assert_eq!(got[1], "schedules.b.priority: a fifo queue runs its groups in order: no priority (line 6)");
        assert_eq!(got[2], "schedules.c.priority: must be at most 9 (line 7)");
        let c = EngineConfig::parse(&format!(
            "{QUEUES}schedules:\n  d: {{cron: '@daily', queue: ledger, function_id: f, payload: {{account: 42}}}}\n"
        ))
        .unwrap();
        assert_eq!(c.schedules["d"].group.as_deref(), Some("42"));
    }

    #[test]
    fn names_and_payload_size_are_checked() {
        let got = lines(&problems("  'two words': {cron: '@daily', queue: reports, function_id: f}\n"));
        assert_eq!(
            got,
            ["schedules.two words: a schedule name is 1 to 200 letters, digits, '_', '-', '.', ':' (line 5)"]
        );
        let big = "x".repeat(2000);
        let err = EngineConfig::parse(&format!(
            "max_payload_bytes: 1000\n{QUEUES}schedules:\n  s: {{cron: '@daily', queue: reports, function_id: f, payload: {{blob: {big}}}}}\n"
        ))
        .unwrap_err();
        assert!(err.problems[0].to_string().starts_with("schedules.s.payload: 20"), "{err}");
    }
}

use super::*;

const DESIGN_EXAMPLE: &str = "\
listen: 127.0.0.1:49134
queue_configs:
  default:
    max_retries: 5
    concurrency: 10
    type: standard
  payment:
    max_retries: 10
    concurrency: 2
    type: fifo
    message_group_field: orderId
  email:
    max_retries: 8
    backoff_ms: 2000
    concurrency: 5
    type: standard
adapter:
  name: builtin
  config:
    store_method: in_memory
";

#[test]
fn design_example_loads_with_defaults_applied() {
    let c = EngineConfig::parse(DESIGN_EXAMPLE).unwrap();
    assert_eq!(c.queue_names(), vec!["default", "email", "payment"]);
    let p = &c.queues["payment"];
    assert_eq!((p.max_retries, p.concurrency, p.kind), (10, 2, QueueKind::Fifo));
    assert_eq!(p.message_group_field.as_deref(), Some("orderId"));
    assert_eq!(p.backoff_ms, 1000);
    assert_eq!(p.timeout_ms, 300_000);
    assert_eq!(c.queues["email"].backoff_ms, 2000);
    assert_eq!(c.queues["default"].max_retries, 5);
    assert_eq!(c.adapter, AdapterSpec::Memory);
    assert_eq!(c.max_payload_bytes, 1024 * 1024);
    assert_eq!(c.shutdown_grace_ms, 30_000);
}

#[test]
fn empty_config_has_the_default_queue() {
    let c = EngineConfig::parse("").unwrap();
    assert_eq!(c.queues["default"], QueueSpec::default_queue());
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn every_problem_is_listed_with_path_and_line() {
    let text = "\
queue_configs:
  payment:
    type: fifo
    concurrency: 0
  email:
    retries: 3
    backoff_ms: soon
adapter:
  name: kafka
";
    let err = EngineConfig::parse(text).unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        lines.contains(&"queue_configs.payment.concurrency: must be at least 1 (line 4)".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"queue_configs.payment.message_group_field: required when type is fifo (line 3)".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("queue_configs.email.retries: unknown key") && l.ends_with("(line 6)")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("queue_configs.email.backoff_ms: expected a whole number") && l.ends_with("(line 7)")
        ),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("adapter.name: unknown adapter 'kafka'") && l.ends_with("(line 9)")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 5, "{lines:#?}");
}

#[test]
fn env_variables_are_substituted_and_unset_ones_reported() {
    let text = "listen: ${ADDR:127.0.0.1:5000}\nadapter:\n  name: redis\n  config:\n    redis_url: ${REDIS_URL}\n";
    let env = |n: &str| (n == "REDIS_URL").then(|| "redis://10.1.1.1:6379".to_string());
    let c = EngineConfig::parse_with_env(text, env).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:5000");
    assert_eq!(c.adapter, AdapterSpec::Redis { url: "redis://10.1.1.1:6379".into(), key_prefix: "switchyard".into() });
    let err = EngineConfig::parse_with_env(text, |_| None).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err.problems[0].message.contains("'REDIS_URL'"));
    assert_eq!(err.problems[0].line, Some(5));
}

#[test]
fn iii_workers_shape_loads_unchanged_and_warns_on_other_entries() {
    let text = "\
workers:
  - name: iii-http
    config: {port: 3111}
  - name: iii-queue
    config:
      queue_configs:
        payment: {type: fifo, message_group_field: orderId}
      adapter:
        name: builtin
        config: {store_method: file_based, file_path: ./data/q}
";
    let c = EngineConfig::parse(text).unwrap();
    assert_eq!(c.queue_names(), vec!["default", "payment"]);
    assert_eq!(c.adapter, AdapterSpec::File { path: "./data/q".into() });
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("iii-http"));
}

#[test]
fn iii_modules_shape_loads_unchanged() {
    let text = "\
modules:
  - class: modules::queue::QueueModule
    config:
      queue_configs:
        email: {backoff_ms: 2000}
  - class: modules::stream::StreamModule
    config: {}
";
    let c = EngineConfig::parse(text).unwrap();
    assert_eq!(c.queues["email"].backoff_ms, 2000);
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn problems_inside_iii_shape_carry_the_nested_path() {
    let text = "workers:\n  - name: iii-queue\n    config:\n      queue_configs:\n        q: {concurrency: 0}\n";
    let err = EngineConfig::parse(text).unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        "workers[0].config.queue_configs.q.concurrency: must be at least 1 (line 5)"
    );
}

#[test]
fn invalid_yaml_is_one_clear_problem() {
    let err = EngineConfig::parse("queue_configs: [unclosed").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err.problems[0].message.starts_with("not valid YAML"));
}

#[test]
fn adapter_descriptions_hide_credentials() {
    let a = AdapterSpec::Redis { url: "redis://:secret@127.0.0.1:6379".into(), key_prefix: "sy".into() };
    assert_eq!(a.describe(), "redis (redis://***@127.0.0.1:6379, prefix sy)");
    let a = AdapterSpec::RabbitMq { url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(), key_prefix: "sy".into() };
    assert!(!a.describe().contains("guest"));
}

#[test]
fn a_quoted_number_is_a_type_error_like_other_wrong_types() {
    let err = EngineConfig::parse("queue_configs:\n  q:\n    concurrency: \"3\"\n    jitter: 'true'\n").unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        lines,
        [
            "queue_configs.q.concurrency: expected a whole number, got the string \"3\" (remove the quotes) (line 3)",
            "queue_configs.q.jitter: expected true or false, got the string \"true\" (remove the quotes) (line 4)",
        ]
    );
}

#[test]
fn a_yaml_syntax_error_points_at_its_line_and_column() {
    let err = EngineConfig::parse("queue_configs:\n  payment:\n    message_group_field: \"orderId\n    type: fifo\n")
        .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let p = &err.problems[0];
    assert_eq!((p.line, p.column), (Some(3), Some(26)), "{p}");
    assert!(p.to_string().starts_with("not valid YAML: "), "{p}");
    assert!(p.to_string().ends_with("(line 3, column 26)"), "{p}");
}

#[test]
fn a_yaml_error_the_parser_sees_only_at_the_end_names_the_last_line() {
    let err = EngineConfig::parse("queue_configs: [unclosed\n").unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        "not valid YAML: while parsing a flow sequence, expected ',' or ']', at the end of the file (line 1)"
    );
}

#[test]
fn on_a_line_that_substitution_changed_a_yaml_error_names_only_the_line() {
    let text = "queue_configs:\n  q: {concurrency: ${C:3}, type: \"fifo}\n";
    let err = EngineConfig::parse_with_env(text, |_| None).unwrap_err();
    assert_eq!((err.problems[0].line, err.problems[0].column), (Some(2), None), "{}", err.problems[0]);
}

#[test]
fn a_duplicate_key_names_both_lines() {
    let err = EngineConfig::parse("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n").unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        "not valid YAML: key 'listen' appears twice in one mapping (first on line 1) (line 2, column 1)"
    );
}

#[test]
fn iii_keys_without_a_meaning_here_warn_once_each_with_path_and_line() {
    let text = "\
modules:
  - class: modules::queue::QueueModule
    config:
      queue_configs:
        email: {poll_interval_ms: 100, backoff_ms: 2000}
      adapter:
        class: modules::queue::BuiltinQueueAdapter
        config: {store_method: file_based, file_path: ./q, save_interval_ms: 5000}
";
    let c = EngineConfig::parse(text).unwrap();
    assert_eq!(c.queues["email"].backoff_ms, 2000);
    assert_eq!(c.adapter, AdapterSpec::File { path: "./q".into() });
    assert_eq!(c.warnings.len(), 2, "{:#?}", c.warnings);
    assert!(c.warnings[0].starts_with(
        "modules[0].config.queue_configs.email.poll_interval_ms: iii setting with no meaning here, ignored"
    ));
    assert!(c.warnings[0].ends_with("(line 5)"), "{}", c.warnings[0]);
    assert!(c.warnings[1].starts_with("modules[0].config.adapter.config.save_interval_ms: iii setting"));
    assert!(c.warnings[1].ends_with("(line 8)"), "{}", c.warnings[1]);
}

#[test]
fn typos_of_our_own_keys_stay_errors_with_a_suggestion() {
    let text = "queue_configs:\n  email: {max_retry: 3, poll_interval_ms: 100}\nadapter:\n  name: builtin\n  config: {store_methd: in_memory}\n";
    let err = EngineConfig::parse(text).unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("queue_configs.email.max_retry: unknown key; did you mean 'max_retries'?"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("adapter.config.store_methd: unknown key; did you mean 'store_method'?"),
        "{lines:#?}"
    );
}

#[test]
fn iii_port_becomes_the_listen_port_on_loopback_unless_listen_is_set() {
    let c = EngineConfig::parse("port: 49300\n").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:49300");
    let c = EngineConfig::parse("port: 49300\nlisten: 127.0.0.1:5000\n").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:5000");
    assert_eq!(c.warnings, ["port: ignored: listen is set (line 1)"]);
}

#[test]
fn an_iii_queue_module_without_config_runs_on_the_defaults() {
    let c = EngineConfig::parse("workers:\n  - name: iii-cron\n  - name: iii-queue\n").unwrap();
    assert_eq!(c.queue_names(), ["default"]);
    assert_eq!(c.adapter, AdapterSpec::Memory);
    assert_eq!(c.warnings, ["workers[0]: 'iii-cron' is not the queue module; ignored (line 2)"]);
}

#[test]
fn iii_adapters_by_name_or_class_map_or_are_refused_with_the_reason() {
    let c = EngineConfig::parse("adapter: {name: file_based, config: {file_path: ./d}}\n").unwrap();
    assert_eq!(c.adapter, AdapterSpec::File { path: "./d".into() });
    let c = EngineConfig::parse("adapter: {class: modules::queue::adapters::RedisAdapter}\n").unwrap();
    assert!(matches!(c.adapter, AdapterSpec::Redis { .. }));
    let err = EngineConfig::parse("adapter: {name: bridge, config: {bridge_url: ws://h:49134}}\n").unwrap_err();
    assert!(err.problems[0].to_string().starts_with("adapter.name: iii's bridge adapter"), "{}", err.problems[0]);
    let err = EngineConfig::parse("adapter: {name: redis, class: modules::queue::RedisAdapter}\n").unwrap_err();
    assert!(err.problems[0].to_string().contains("a name or a class, not both"), "{}", err.problems[0]);
}

#[test]
fn log_format_is_text_or_json() {
    assert_eq!(EngineConfig::parse("").unwrap().log_format, LogFormat::Text);
    assert_eq!(EngineConfig::parse("log_format: json\n").unwrap().log_format, LogFormat::Json);
    let err = EngineConfig::parse("log_format: yaml\n").unwrap_err();
    assert_eq!(err.problems[0].to_string(), "log_format: expected 'text' or 'json', got 'yaml' (line 1)");
}

#[test]
fn metrics_and_console_listen_default_on_loopback_and_turn_off_when_empty() {
    let c = EngineConfig::parse("queue_configs: {}\n").unwrap();
    let metrics = c.metrics_listen.expect("on by default");
    assert_eq!((metrics.addr.to_string(), metrics.explicit), ("127.0.0.1:9464".to_string(), false));
    assert_eq!(c.console_listen.map(|l| l.addr.to_string()).as_deref(), Some("127.0.0.1:9465"));

    let c = EngineConfig::parse("metrics_listen: \"\"\nconsole_listen: 127.0.0.1:0\n").unwrap();
    assert_eq!(c.metrics_listen, None);
    let console = c.console_listen.expect("named");
    assert_eq!((console.addr.port(), console.explicit), (0, true));
}

#[test]
fn a_bad_metrics_listen_is_a_problem_with_its_line() {
    let e = EngineConfig::parse("listen: 127.0.0.1:1\nmetrics_listen: localhost:9464\n").unwrap_err();
    assert_eq!(
        e.problems[0].to_string(),
        "metrics_listen: expected host:port with an IP address, or empty for off, got 'localhost:9464' (line 2)"
    );
}

#[test]
fn limits_and_max_ready_load_with_defaults_for_what_is_not_set() {
    let c = EngineConfig::parse(
        "limits: {max_worker_streams: 8, handshake_timeout_ms: 500}\nqueue_configs: {q: {max_ready: 10}}",
    )
    .unwrap();
    assert_eq!(c.limits.max_worker_streams, 8);
    assert_eq!(c.limits.handshake_timeout_ms, 500);
    assert_eq!(c.limits.max_calls_per_connection, Limits::default().max_calls_per_connection);
    assert_eq!(c.queues["q"].max_ready, 10);
    assert_eq!(c.queues["default"].max_ready, DEFAULT_MAX_READY);
    assert_eq!(EngineConfig::parse("").unwrap().limits, Limits::default());
}

#[test]
fn limits_out_of_range_or_unknown_are_problems_with_their_lines() {
    let text = "\
limits:
  max_worker_streams: 0
  max_payload_depth: 101
  http2_keepalive_interval_ms: 50
  max_connections: 5
queue_configs:
  q: {max_ready: 0}
";
    let problems: Vec<String> = EngineConfig::parse(text).unwrap_err().problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems,
        vec![
            "limits.max_worker_streams: must be at least 1 (line 2)",
            "limits.max_payload_depth: must be at most 100 (line 3)",
            "limits.http2_keepalive_interval_ms: must be at least 100 (line 4)",
            "limits.max_connections: unknown key (expected one of: max_worker_streams, max_calls_per_connection, \
             max_payload_depth, http2_keepalive_interval_ms, http2_keepalive_timeout_ms, handshake_timeout_ms) (line 5)",
            "queue_configs.q.max_ready: must be at least 1 (line 7)",
        ]
    );
}

#[test]
fn rabbitmq_adapter_takes_its_url_from_the_environment_and_a_key_prefix() {
    let text =
        "adapter:\n  name: rabbitmq\n  config: {amqp_url: \"${AMQP_URL:amqp://guest:guest@127.0.0.1:5672/%2f}\"}\n";
    let env = |n: &str| (n == "AMQP_URL").then(|| "amqp://u:secret@10.1.1.1:5672/%2f".to_string());
    let c = EngineConfig::parse_with_env(text, env).unwrap();
    let want =
        AdapterSpec::RabbitMq { url: "amqp://u:secret@10.1.1.1:5672/%2f".into(), key_prefix: "switchyard".into() };
    assert_eq!(c.adapter, want);
    let text = "adapter:\n  name: rabbitmq\n  config: {key_prefix: team-a, exchange: x}\n";
    let err = EngineConfig::parse_with_env(text, |_| None).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
    assert!(err.problems[0].path.ends_with("exchange"), "{:?}", err.problems);
}

#[test]
fn topics_give_each_subscriber_a_queue_with_the_topics_fields() {
    let text = "\
queue_configs:
  email: {dedup_window_ms: 60000}
topic_configs:
  orders.placed:
    subscribers: [billing::charge, emails::receipt]
    max_retries: 2
    backoff_ms: 500
  orders.quiet:
    subscribers: []
";
    let c = EngineConfig::parse(text).unwrap();
    assert_eq!(c.queues["email"].dedup_window_ms, 60_000);
    assert_eq!(c.queues["default"].dedup_window_ms, DEFAULT_DEDUP_WINDOW_MS);
    assert_eq!(c.topics["orders.placed"].subscribers, vec!["billing::charge", "emails::receipt"]);
    assert!(c.topics["orders.quiet"].subscribers.is_empty(), "an empty list is allowed");
    let billing = &c.queues["orders.placed/billing::charge"];
    assert_eq!((billing.max_retries, billing.backoff_ms), (2, 500));
    assert_eq!(billing.topic.as_deref(), Some("orders.placed"));
    assert_eq!(c.queues["orders.placed/emails::receipt"].topic.as_deref(), Some("orders.placed"));
    assert_eq!(c.topic_names(), vec!["orders.placed", "orders.quiet"]);
}

#[test]
fn topic_and_dedup_problems_are_listed_with_path_and_line() {
    let text = "\
queue_configs:
  a/b: {}
  email: {dedup_window_ms: 0}
topic_configs:
  orders.placed:
    max_retries: 2
  orders.paid:
    subscribers: [billing::charge, billing::charge]
    max_retry: 1
  orders.shipped:
    subscribers: billing::charge
";
    let err = EngineConfig::parse(text).unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    let want = [
        "queue_configs.a/b: '/' is reserved for topic subscribers' queues (<topic>/<function_id>, from topic_configs) (line 2)",
        "queue_configs.email.dedup_window_ms: must be at least 1 (line 3)",
        "topic_configs.orders.placed.subscribers: required: the function ids subscribed (a list; [] for none yet) (line 6)",
        "topic_configs.orders.paid.subscribers[1]: 'billing::charge' is listed twice (line 8)",
        "topic_configs.orders.shipped.subscribers: expected a list of function ids (line 11)",
    ];
    for w in want {
        assert!(lines.contains(&w.to_string()), "{w}\n{lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("topic_configs.orders.paid.max_retry: unknown key; did you mean 'max_retries'?")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 6, "{lines:#?}");
}

#[test]
fn dlq_retention_ms_is_optional_and_at_least_1_with_its_line() {
    let c = EngineConfig::parse("queue_configs: {q: {dlq_retention_ms: 86400000}, r: {}}").unwrap();
    assert_eq!(c.queues["q"].dlq_retention_ms, Some(86_400_000));
    assert_eq!(c.queues["r"].dlq_retention_ms, None, "absent: kept until redriven or discarded");
    assert!(c.queues["q"].describe().ends_with(" dlq_retention_ms=86400000"), "{}", c.queues["q"].describe());
    let text =
        "queue_configs:\n  q:\n    dlq_retention_ms: 0\n  r:\n    dlq_retention: 5\n  s:\n    dlq_retention_ms: soon\n";
    let problems: Vec<String> = EngineConfig::parse(text).unwrap_err().problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0], "queue_configs.q.dlq_retention_ms: must be at least 1 (line 3)");
    assert!(
        problems[1].starts_with("queue_configs.r.dlq_retention: unknown key; did you mean 'dlq_retention_ms'?"),
        "{}",
        problems[1]
    );
    assert!(problems[1].ends_with("(line 5)"), "{}", problems[1]);
    assert!(problems[2].starts_with("queue_configs.s.dlq_retention_ms: "), "{}", problems[2]);
    assert!(problems[2].ends_with("(line 7)"), "{}", problems[2]);
}

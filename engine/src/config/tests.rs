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

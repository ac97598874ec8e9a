//! Tokens, roles and TLS against a live in-process engine (issue 16): what each role may and
//! may not do on every RPC, the worker refused a function outside its globs, TLS, mTLS and a
//! client that trusts another CA, the Rust SDK's options and typed errors, and grpcurl over
//! TLS with a bearer token.
//!
//! Certificates come from `switchyard dev-certs`' generator, a fresh CA per directory.

#[path = "support/in_process.rs"]
mod in_process;

use in_process::{InProcessEngine as Engine, grpcurl};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard_engine::tls::dev_certs;
use switchyard_proto::v1::engine_client::EngineClient;
use switchyard_proto::v1::queues_client::QueuesClient;
use switchyard_proto::v1::{
    DiscardDeadLettersRequest, EnqueueAction, EnqueueBatchRequest, EnqueueItem, ListDeadLettersRequest,
    ListQueuesRequest, ListWorkersRequest, RedriveDeadLettersRequest, TriggerRequest, VoidAction, WorkerMessage,
    enqueue_result, trigger_request,
};
use switchyard_sdk::{InitOptions, RegisterFunction, TlsOptions};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const WAIT: Duration = Duration::from_secs(20);

/// The tokens of [`config`], by name, with their secrets.
const TOKENS: &[(&str, &str, &str)] = &[
    ("orders-producer", "[producer]", "queues: [\"orders*\"]\n      functions: [\"orders::*\"]"),
    ("orders-worker", "[worker]", "functions: [\"orders::*\"]"),
    ("orders-admin", "[admin]", "queues: [\"orders*\"]"),
    ("root", "[producer, worker, admin]", ""),
];

fn secret(name: &str) -> String {
    format!("secret-of-{name}-0123456789")
}

/// A config with the four tokens (secrets in files under `dir`) and, when given, TLS.
fn config(dir: &Path, tls: Option<(&Path, bool)>) -> String {
    let mut yaml = String::from("queue_configs:\n  orders: {}\n  orders-eu: {}\n  payments: {}\n");
    if let Some((certs, mtls)) = tls {
        let c = certs.display();
        yaml.push_str(&format!("tls:\n  cert_file: {c}/server.pem\n  key_file: {c}/server-key.pem\n"));
        if mtls {
            yaml.push_str(&format!("  client_ca_file: {c}/ca.pem\n"));
        }
    }
    yaml.push_str("auth:\n  tokens:\n");
    for (name, roles, globs) in TOKENS {
        let file = dir.join(format!("{name}.secret"));
        std::fs::write(&file, format!("{}\n", secret(name))).unwrap();
        yaml.push_str(&format!("    - name: {name}\n      secret_file: {}\n      roles: {roles}\n", file.display()));
        if !globs.is_empty() {
            yaml.push_str(&format!("      {globs}\n"));
        }
    }
    yaml
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(t) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    request
}

fn null() -> Option<prost_types::Value> {
    Some(prost_types::Value { kind: Some(prost_types::value::Kind::NullValue(0)) })
}

fn enqueue(function: &str, queue: &str) -> TriggerRequest {
    TriggerRequest {
        function_id: function.into(),
        payload: null(),
        action: Some(trigger_request::Action::Enqueue(EnqueueAction { queue: queue.into(), ..Default::default() })),
        ..Default::default()
    }
}

/// Every RPC of the Engine and Queues services, called once with `token`; the status
/// of each (`Ok` for an answer).
async fn every_rpc(channel: &Channel, token: Option<&str>) -> Vec<(&'static str, Result<(), Status>)> {
    let mut engine = EngineClient::new(channel.clone());
    let mut queues = QueuesClient::new(channel.clone());
    let call = TriggerRequest { function_id: "orders::pay".into(), payload: null(), ..Default::default() };
    let void = TriggerRequest {
        function_id: "orders::pay".into(),
        payload: null(),
        action: Some(trigger_request::Action::Void(VoidAction {})),
        ..Default::default()
    };
    let item = EnqueueItem {
        function_id: "orders::pay".into(),
        payload: null(),
        queue: "orders".into(),
        ..Default::default()
    };
    let batch = EnqueueBatchRequest { items: vec![item] };
    // No registered worker: an allowed sync or void call is FUNCTION_NOT_FOUND.
    let not_found_is_ok = |r: Result<(), Status>| match r {
        Err(s) if s.code() == Code::NotFound => Ok(()),
        other => other,
    };
    let connect = engine.connect(with_token(tokio_stream::iter(Vec::<WorkerMessage>::new()), token)).await;
    vec![
        ("Trigger enqueue", engine.trigger(with_token(enqueue("orders::pay", "orders"), token)).await.map(drop)),
        ("Trigger call", not_found_is_ok(engine.trigger(with_token(call, token)).await.map(drop))),
        ("Trigger void", not_found_is_ok(engine.trigger(with_token(void, token)).await.map(drop))),
        ("EnqueueBatch", engine.enqueue_batch(with_token(batch, token)).await.map(drop)),
        ("Connect", connect.map(drop)),
        ("ListQueues", queues.list_queues(with_token(ListQueuesRequest {}, token)).await.map(drop)),
        (
            "ListDeadLetters",
            queues
                .list_dead_letters(with_token(
                    ListDeadLettersRequest { queue: "orders".into(), ..Default::default() },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "RedriveDeadLetters",
            queues
                .redrive_dead_letters(with_token(
                    RedriveDeadLettersRequest { queue: "orders".into(), ..Default::default() },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "DiscardDeadLetters",
            queues
                .discard_dead_letters(with_token(
                    DiscardDeadLettersRequest { queue: "orders".into(), ..Default::default() },
                    token,
                ))
                .await
                .map(drop),
        ),
        ("ListWorkers", queues.list_workers(with_token(ListWorkersRequest {}, token)).await.map(drop)),
    ]
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

fn info(status: &Status) -> HashMap<String, String> {
    status.get_details_error_info().map(|i| i.metadata).unwrap_or_default()
}

#[tokio::test]
async fn each_role_may_do_exactly_its_rpcs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(dir.path(), None)).await;
    let channel = Channel::from_shared(engine.http()).unwrap().connect().await.unwrap();
    let producer = ["Trigger enqueue", "Trigger call", "Trigger void", "EnqueueBatch"];
    let worker = ["Connect"];
    let admin = ["ListQueues", "ListDeadLetters", "RedriveDeadLetters", "DiscardDeadLetters", "ListWorkers"];
    let table: [(&str, Vec<&str>); 4] = [
        ("orders-producer", producer.to_vec()),
        ("orders-worker", worker.to_vec()),
        ("orders-admin", admin.to_vec()),
        ("root", [&producer[..], &worker[..], &admin[..]].concat()),
    ];
    for (name, allowed) in table {
        let results = every_rpc(&channel, Some(&secret(name))).await;
        assert_eq!(results.len(), 10);
        for (rpc, result) in results {
            match (allowed.contains(&rpc), result) {
                (true, Ok(())) => {}
                (false, Err(s)) if s.code() == Code::PermissionDenied => {
                    assert_eq!(reason(&s), "PERMISSION_DENIED", "{name} {rpc}");
                    assert!(s.message().starts_with(&format!("PERMISSION_DENIED: token '{name}' may not")), "{s:?}");
                    assert_eq!(info(&s)["token"], name);
                    assert!(info(&s).contains_key("role"), "{name} {rpc}: {s:?}");
                }
                (allowed, got) => panic!("{name} {rpc}: allowed={allowed}, got {got:?}"),
            }
        }
    }
    for (token, want) in [(None, "TOKEN_MISSING"), (Some("not-a-secret"), "TOKEN_INVALID")] {
        for (rpc, result) in every_rpc(&channel, token).await {
            let s = result.expect_err(rpc);
            assert_eq!((s.code(), reason(&s).as_str()), (Code::Unauthenticated, want), "{rpc}: {s:?}");
            assert!(s.message().starts_with(want), "{s:?}");
        }
    }
    // Health stays open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = tonic_health::pb::HealthCheckRequest { service: String::new() };
    health.check(check).await.expect("health needs no token");
    engine.stop(WAIT).await;
}

#[tokio::test]
async fn globs_bound_queues_and_functions_per_call_and_per_batch_item() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(dir.path(), None)).await;
    let channel = Channel::from_shared(engine.http()).unwrap().connect().await.unwrap();
    let mut client = EngineClient::new(channel.clone());
    let producer = secret("orders-producer");

    let s = client.trigger(with_token(enqueue("orders::pay", "payments"), Some(&producer))).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert_eq!(
        s.message(),
        "PERMISSION_DENIED: token 'orders-producer' may not enqueue to queue 'payments' (its queues: orders*)"
    );
    assert_eq!(
        info(&s),
        HashMap::from([("token".into(), "orders-producer".into()), ("queue".into(), "payments".into())])
    );
    let s = client.trigger(with_token(enqueue("emails::send", "orders"), Some(&producer))).await.unwrap_err();
    assert_eq!(info(&s)["function"], "emails::send");
    client.trigger(with_token(enqueue("orders::pay", "orders-eu"), Some(&producer))).await.expect("within its globs");

    let item = |f: &str, q: &str| EnqueueItem {
        function_id: f.into(),
        payload: null(),
        queue: q.into(),
        ..Default::default()
    };
    let batch = EnqueueBatchRequest {
        items: vec![item("orders::pay", "orders"), item("orders::pay", "payments"), item("emails::send", "orders")],
    };
    let results = client.enqueue_batch(with_token(batch, Some(&producer))).await.unwrap().into_inner().results;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.outcome.unwrap()).collect();
    assert!(matches!(outcomes[0], enqueue_result::Outcome::Receipt(_)), "{outcomes:?}");
    for refused in &outcomes[1..] {
        let enqueue_result::Outcome::Error(e) = refused else { panic!("{outcomes:?}") };
        assert_eq!(e.code, Code::PermissionDenied as i32);
        assert!(e.message.starts_with("PERMISSION_DENIED: token 'orders-producer' may not enqueue"), "{e:?}");
    }

    // The admin of orders* sees only those queues, and may not touch another.
    let mut queues = QueuesClient::new(channel.clone());
    let admin = secret("orders-admin");
    let listed = queues.list_queues(with_token(ListQueuesRequest {}, Some(&admin))).await.unwrap().into_inner();
    let names: Vec<_> = listed.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["orders", "orders-eu"]);
    let enqueued: Vec<_> = listed.queues.iter().map(|q| q.stats.as_ref().unwrap().enqueued).collect();
    assert_eq!(enqueued, [Some(1), Some(1)], "the batch's one allowed item; the enqueue to orders-eu");
    let s = queues
        .redrive_dead_letters(with_token(
            RedriveDeadLettersRequest { queue: "payments".into(), ..Default::default() },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!((s.code(), info(&s)["queue"].as_str()), (Code::PermissionDenied, "payments"));
    let all = queues.list_queues(with_token(ListQueuesRequest {}, Some(&secret("root")))).await.unwrap().into_inner();
    assert_eq!(all.queues.len(), 4, "root sees every queue, default included");
    engine.stop(WAIT).await;
}

fn sdk_options(token: &str, tls: Option<TlsOptions>) -> InitOptions {
    InitOptions {
        token: Some(token.into()),
        tls,
        fail_fast: true,
        drain_on_sigterm: false,
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_orders_worker_is_refused_emails_send_and_never_gets_an_emails_job() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(dir.path(), None)).await;
    let worker =
        switchyard_sdk::register_worker(&engine.http(), sdk_options(&secret("orders-worker"), None)).await.unwrap();
    let emails = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let counted = emails.clone();
    worker.register_function(RegisterFunction::new_async("emails::send", move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(json!({})) }
    }));
    worker.register_function(RegisterFunction::new_async("orders::pay", move |payload, _| {
        let _ = done_tx.send(payload);
        async { Ok(json!({})) }
    }));
    // The refusal is typed, names the function, and leaves the allowed function live.
    let e = worker.wait_registered("emails::send", WAIT).await.unwrap_err();
    assert!(e.is_permission_denied(), "{e:?}");
    assert_eq!((e.code, e.details["function"].as_str()), (tonic::Code::PermissionDenied, "emails::send"));
    assert!(e.message.starts_with("PERMISSION_DENIED: token 'orders-worker' may not register function 'emails::send'"));
    worker.wait_registered("orders::pay", WAIT).await.unwrap();
    let e = worker.wait_ready(WAIT).await.unwrap_err();
    assert!(e.is_permission_denied() && e.message.contains("'emails::send'"), "{e:?}");
    assert!(!worker.ready(WAIT).await, "a worker with a refused function is not ready");
    let root = switchyard_sdk::register_worker(&engine.http(), sdk_options(&secret("root"), None)).await.unwrap();
    // Registrations are applied in order: once orders::pay is live, emails::send was refused.
    let mut functions = Vec::new();
    for _ in 0..200 {
        let workers = root.queues().list_workers().await.unwrap();
        match workers.iter().find(|w| w.functions.contains(&"orders::pay".to_string())) {
            Some(w) => {
                functions = w.functions.clone();
                break;
            }
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    assert_eq!(functions, ["orders::pay"]);
    root.enqueue("orders", "emails::send", json!({"n": 1})).await.unwrap();
    root.enqueue("orders", "orders::pay", json!({"n": 2})).await.unwrap();
    let paid = tokio::time::timeout(WAIT, done.recv()).await.expect("orders::pay runs").unwrap();
    assert_eq!(paid, json!({"n": 2}));
    let e = root.call::<Value>("emails::send", json!({})).await.unwrap_err();
    assert_eq!(e.reason, switchyard_sdk::Reason::FunctionNotFound, "no worker serves emails::send");
    let stats = root.queues().list_queues().await.unwrap();
    let orders = stats.iter().find(|q| q.name == "orders").unwrap();
    assert_eq!(orders.stats.ready, 1, "the emails job waits for a worker allowed to run it");
    assert_eq!(emails.load(Ordering::SeqCst), 0);
    worker.shutdown().await;
    root.shutdown().await;
    engine.stop(WAIT).await;
}

#[tokio::test]
async fn the_sdk_types_unauthenticated_and_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(dir.path(), None)).await;
    let e = switchyard_sdk::register_worker(&engine.http(), sdk_options("wrong", None)).await.err().unwrap();
    assert!(e.is_unauthenticated(), "{e:?}");
    assert_eq!(e.reason, switchyard_sdk::Reason::TokenInvalid);
    let options = InitOptions { token: None, ..sdk_options("", None) };
    // No token given and SWITCHYARD_TOKEN unset in this test process: TOKEN_MISSING.
    if std::env::var_os("SWITCHYARD_TOKEN").is_none() {
        let e = switchyard_sdk::register_worker(&engine.http(), options).await.err().unwrap();
        assert_eq!(e.reason, switchyard_sdk::Reason::TokenMissing, "{e:?}");
    }
    let producer_as_worker =
        switchyard_sdk::register_worker(&engine.http(), sdk_options(&secret("orders-producer"), None)).await;
    let e = producer_as_worker.err().unwrap();
    assert!(e.is_permission_denied(), "{e:?}");
    assert_eq!(e.details["role"], "worker");
    engine.stop(WAIT).await;
}

fn certs(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    dev_certs::write(&out, &[]).unwrap();
    out
}

fn tls_options(ca: &Path, identity: Option<&Path>) -> Option<TlsOptions> {
    Some(TlsOptions {
        ca_file: Some(ca.join("ca.pem")),
        cert_file: identity.map(|d| d.join("client.pem")),
        key_file: identity.map(|d| d.join("client-key.pem")),
    })
}

#[tokio::test]
async fn tls_serves_clients_that_trust_its_ca_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (certs(dir.path(), "a"), certs(dir.path(), "b"));
    let engine = Engine::start(&config(dir.path(), Some((&a, false)))).await;
    let token = secret("root");
    let worker = switchyard_sdk::register_worker(&engine.https(), sdk_options(&token, tls_options(&a, None)))
        .await
        .expect("a client trusting the engine's CA connects");
    worker.register_function(RegisterFunction::new_async("orders::pay", |p, _| async move { Ok(p) }));
    assert!(worker.ready(WAIT).await);
    assert_eq!(worker.call::<Value>("orders::pay", json!({"over": "tls"})).await.unwrap(), json!({"over": "tls"}));
    assert!(worker.url().starts_with("https://"));

    let e = switchyard_sdk::register_worker(&engine.https(), sdk_options(&token, tls_options(&b, None)))
        .await
        .err()
        .expect("a client trusting another CA is refused");
    assert_eq!(e.reason, switchyard_sdk::Reason::Unavailable, "{e:?}");
    assert_eq!(e.details.get("cause").map(String::as_str), Some("tls_failure"), "{e:?}");
    // Plaintext to a TLS listener does not get through either.
    let plain = switchyard_sdk::register_worker(&engine.http(), sdk_options(&token, None)).await;
    assert!(plain.is_err());
    worker.shutdown().await;
    engine.stop(WAIT).await;
}

#[tokio::test]
async fn mtls_needs_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (certs(dir.path(), "a"), certs(dir.path(), "b"));
    let engine = Engine::start(&config(dir.path(), Some((&a, true)))).await;
    let token = secret("root");
    let worker = switchyard_sdk::register_worker(&engine.https(), sdk_options(&token, tls_options(&a, Some(&a))))
        .await
        .expect("a client certificate signed by the CA is accepted");
    let queues = worker.queues().list_queues().await.unwrap();
    assert_eq!(queues.len(), 4);
    for (what, identity) in [("no client certificate", None), ("a certificate of another CA", Some(b.as_path()))] {
        let refused =
            switchyard_sdk::register_worker(&engine.https(), sdk_options(&token, tls_options(&a, identity))).await;
        let e = refused.err().unwrap_or_else(|| panic!("{what} is refused"));
        assert_eq!(e.reason, switchyard_sdk::Reason::Unavailable, "{what}: {e:?}");
    }
    worker.shutdown().await;
    engine.stop(WAIT).await;
}

#[tokio::test]
async fn sdk_tls_options_are_checked_before_any_io() {
    let e = switchyard_sdk::register_worker("http://127.0.0.1:1", sdk_options("t", Some(TlsOptions::default())))
        .await
        .err()
        .unwrap();
    assert_eq!(e.reason, switchyard_sdk::Reason::InvalidArgument);
    assert!(e.message.contains("use https://"), "{e:?}");
    let missing = Some(TlsOptions { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() });
    let e = switchyard_sdk::register_worker("https://127.0.0.1:1", sdk_options("t", missing)).await.err().unwrap();
    assert!(e.message.contains("tls.ca_file: cannot read /nonexistent/ca.pem"), "{e:?}");
}

#[tokio::test]
async fn grpcurl_over_tls_with_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let a = certs(dir.path(), "a");
    let engine = Engine::start(&config(dir.path(), Some((&a, false)))).await;
    let target = format!("localhost:{}", engine.addr.port());
    let ca = a.join("ca.pem").display().to_string();
    let header = format!("authorization: Bearer {}", secret("orders-producer"));
    let run = |args: Vec<String>| async move {
        let cmd = move || std::process::Command::new(grpcurl()).args(&args).output().expect("grpcurl runs");
        let out = tokio::task::spawn_blocking(cmd).await.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let body = r#"{"function_id":"orders::pay","payload":{"orderId":"ord_1"},"enqueue":{"queue":"orders"}}"#;
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = vec!["-cacert".into(), ca.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (ok, out) = run(args(&["-H", &header, "-d", body, &target, "switchyard.v1.Engine/Trigger"])).await;
    assert!(ok, "{out}");
    assert!(out.contains("messageReceiptId"), "{out}");
    let (ok, out) = run(args(&["-d", body, &target, "switchyard.v1.Engine/Trigger"])).await;
    assert!(!ok && out.contains("Unauthenticated") && out.contains("TOKEN_MISSING"), "{out}");
    let (ok, out) = run(args(&["-H", &header, &target, "switchyard.v1.Queues/ListQueues"])).await;
    assert!(!ok && out.contains("PermissionDenied") && out.contains("may not use the Queues service"), "{out}");
    let (ok, out) = run(vec!["-plaintext".into(), target.clone(), "list".into()]).await;
    assert!(!ok, "plaintext to the TLS listener fails: {out}");
    engine.stop(WAIT).await;
}

/// A refused registration is answered on the stream with `refused` (status, reason,
/// ErrorInfo), for a function outside the token's globs and for an invalid one; the
/// stream and the worker's allowed function go on.
#[tokio::test]
async fn a_refused_registration_is_answered_with_its_typed_status() {
    use switchyard_proto::v1::{Hello, RegisterFunction as PbRegister, engine_message, worker_message};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&config(dir.path(), None)).await;
    let channel = Channel::from_shared(engine.http()).unwrap().connect().await.unwrap();
    let mut client = EngineClient::new(channel);
    let register = |f: &str| WorkerMessage {
        kind: Some(worker_message::Kind::RegisterFunction(PbRegister { function_id: f.into(), ..Default::default() })),
    };
    let hello = WorkerMessage { kind: Some(worker_message::Kind::Hello(Hello::default())) };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for m in [register("emails::send"), register("  "), register("orders::pay"), hello] {
        tx.send(m).unwrap();
    }
    let outbound = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    let mut inbound = client.connect(with_token(outbound, Some(&secret("orders-worker")))).await.unwrap().into_inner();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let m = tokio::time::timeout(WAIT, inbound.message()).await.expect("an answer").unwrap().unwrap();
        seen.push(m.kind.unwrap());
    }
    let refused: Vec<_> = seen
        .iter()
        .filter_map(|k| match k {
            engine_message::Kind::Refused(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 2, "{seen:?}");
    let status = |r: &switchyard_proto::v1::RegistrationRefused| {
        use prost::Message;
        let s = r.status.clone().unwrap();
        Status::with_details(Code::from(s.code), s.message.clone(), s.encode_to_vec().into())
    };
    let denied = status(&refused[0]);
    assert_eq!(refused[0].function_id, "emails::send");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().starts_with("PERMISSION_DENIED: token 'orders-worker' may not register"), "{denied:?}");
    assert_eq!(reason(&denied), "PERMISSION_DENIED");
    assert_eq!(info(&denied)["function"], "emails::send");
    let invalid = status(&refused[1]);
    assert_eq!((refused[1].function_id.as_str(), invalid.code()), ("", Code::InvalidArgument));
    assert_eq!(invalid.message(), "INVALID_ARGUMENT: register_function: function_id is required");
    assert!(seen.iter().any(|k| matches!(k, engine_message::Kind::Registered(r) if r.function_id == "orders::pay")));
    assert!(seen.iter().any(|k| matches!(k, engine_message::Kind::Welcome(_))));
    drop(tx);
    engine.stop(WAIT).await;
}

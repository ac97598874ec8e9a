//! The conformance cases (`../cases.yaml`, vocabulary in `../README.md`) run by the Rust SDK.
//!
//! ```text
//! cargo run -p switchyard-conformance                   # every case
//! CONFORMANCE_CASES=enqueue_ack cargo run -p switchyard-conformance
//! ```
//! Starts the engine binary (`$SWITCHYARD_BIN`, else `target/debug/switchyard`) with every
//! case's queues and topics (and, the first time a case needs it, the TLS + token engine of
//! README "TLS and tokens"; a case with `schedules` runs on an engine of its own, started
//! for it), runs the cases one after the other (one worker each), prints one line per case
//! and exits 1 if any failed.

mod check;
mod logs;
mod run;

use anyhow::{Context as _, anyhow, ensure};
use logs::Logs;
use run::Run;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// YAML → JSON: plain scalars become null/bool/number where they read as one, quoted
/// scalars stay strings.
fn to_json(node: &marked_yaml::Node) -> Value {
    match node {
        marked_yaml::Node::Mapping(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.as_str().to_string(), to_json(v))).collect())
        }
        marked_yaml::Node::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
        marked_yaml::Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return json!(text);
            }
            if matches!(text, "null" | "~" | "") {
                Value::Null
            } else if let Some(b) = s.as_bool() {
                json!(b)
            } else if let Ok(i) = text.parse::<i64>() {
                json!(i)
            } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
                json!(f)
            } else {
                json!(text)
            }
        }
    }
}

struct Engine {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
}

/// `$SWITCHYARD_BIN`, else the debug build of this repository.
fn engine_bin() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::env::var("SWITCHYARD_BIN").unwrap_or_else(|_| format!("{root}/target/debug/switchyard"))
}

impl Engine {
    fn start(config: &Value, name: &str) -> anyhow::Result<Self> {
        let bin = engine_bin();
        let path = std::env::temp_dir().join(format!("switchyard-conformance-{}-{name}.yaml", std::process::id()));
        std::fs::write(&path, config.to_string())?; // JSON is YAML
        let mut child = Command::new(&bin)
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let addr =
            line.trim().strip_prefix("switchyard listening on ").ok_or_else(|| anyhow!("engine said {line:?}"))?;
        Ok(Self { addr: addr.to_string(), child })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TLS + token engine (README "TLS and tokens"): its address, CA files and secrets.
pub struct Secure {
    _engine: Engine,
    /// `127.0.0.1:PORT` (`{secure_engine}`).
    pub addr: String,
    /// `engine` / `other` → that dev-certs run's `ca.pem`.
    pub ca: HashMap<String, PathBuf>,
    /// Engine token name (`case.local`) → its secret.
    pub secrets: HashMap<String, String>,
}

impl Secure {
    fn start(cases: &[Value], queues: &Map<String, Value>) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("switchyard-conformance-{}-secure", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut ca = HashMap::new();
        for which in ["engine", "other"] {
            let out = dir.join(which);
            let status =
                Command::new(engine_bin()).arg("dev-certs").arg("--out").arg(&out).stdout(Stdio::null()).status()?;
            ensure!(status.success(), "switchyard dev-certs --out {} failed: {status}", out.display());
            ca.insert(which.to_string(), out.join("ca.pem"));
        }
        let (mut tokens, mut secrets) = (Vec::new(), HashMap::new());
        for (n, case) in cases.iter().enumerate() {
            let case_name = case["name"].as_str().unwrap_or_default();
            for (local, spec) in case["tokens"].as_object().into_iter().flatten() {
                let name = format!("{case_name}.{local}");
                let secret = random_secret(n, tokens.len());
                let file = dir.join(format!("{name}.secret"));
                std::fs::write(&file, &secret)?;
                let mut token = json!({"name": name, "secret_file": file, "roles": spec["roles"]});
                for (kind, prefix) in [("queues", format!("{case_name}.")), ("functions", format!("{case_name}::"))] {
                    if let Some(globs) = spec[kind].as_array() {
                        let globs: Vec<String> =
                            globs.iter().map(|g| format!("{prefix}{}", g.as_str().unwrap_or_default())).collect();
                        token[kind] = json!(globs);
                    }
                }
                tokens.push(token);
                secrets.insert(name, secret);
            }
        }
        let certs = dir.join("engine");
        let engine = Engine::start(
            &json!({
                "shutdown_grace_ms": 1000, "queue_configs": queues,
                "tls": {"cert_file": certs.join("server.pem"), "key_file": certs.join("server-key.pem")},
                "auth": {"tokens": tokens},
            }),
            "secure",
        )?;
        Ok(Self { addr: engine.addr.clone(), _engine: engine, ca, secrets })
    }
}

/// A secret nobody guesses: std's per-process random hash keys (no extra dependency),
/// made unique per token by its position.
fn random_secret(case: usize, token: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = |salt: usize| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(salt);
        h.finish()
    };
    format!("sy{:016x}{:016x}-{case}-{token}", word(case), word(token))
}

/// Whether a case talks to the secure engine.
fn needs_secure(case: &Value) -> bool {
    case.get("tokens").is_some() || case["steps"].to_string().contains("{secure_engine}")
}

async fn run_case(
    case: &Value,
    engine: &str,
    secure: Option<&Secure>,
    closed_port: u16,
    logs: &Logs,
) -> anyhow::Result<()> {
    let mut run = Run::new(case, engine, secure, closed_port, logs).await?;
    let mut outcome = Ok(());
    for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
        let step = step.as_object().ok_or_else(|| anyhow!("step {i} is not a map"))?;
        if let Err(e) = run.step(step).await {
            outcome = Err(e.context(format!("step {} {}", i + 1, Value::Object(step.clone()))));
            break;
        }
    }
    run.finish().await;
    outcome
}

/// The config of a case with `schedules`: its queues and its schedules, local names made
/// engine names (queue `jobs` → `<case>.jobs`, function `f` → `function_id: <case>::f`,
/// schedule `tick` → `<case>.tick`).
fn own_config(case: &Value) -> Value {
    let name = case["name"].as_str().unwrap_or_default();
    let queues: Map<String, Value> =
        case["queues"].as_object().into_iter().flatten().map(|(q, cfg)| (format!("{name}.{q}"), cfg.clone())).collect();
    let mut schedules = Map::new();
    for (local, spec) in case["schedules"].as_object().into_iter().flatten() {
        let mut spec = spec.as_object().cloned().unwrap_or_default();
        if let Some(q) = spec.get("queue").and_then(Value::as_str) {
            spec.insert("queue".into(), json!(format!("{name}.{q}")));
        }
        if let Some(f) = spec.remove("function").as_ref().and_then(Value::as_str) {
            spec.insert("function_id".into(), json!(format!("{name}::{f}")));
        }
        schedules.insert(format!("{name}.{local}"), Value::Object(spec));
    }
    json!({"shutdown_grace_ms": 1000, "queue_configs": queues, "schedules": schedules})
}

/// A local port nothing listens on: bound, then closed.
fn closed_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn main() -> anyhow::Result<()> {
    // Cases say which token they send; one from the environment would blur that. Removed
    // before any thread exists.
    // SAFETY: single-threaded here: the runtime is built below.
    unsafe { std::env::remove_var("SWITCHYARD_TOKEN") };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run_all())
}

async fn run_all() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../cases.yaml"))?;
    let cases = to_json(&marked_yaml::parse_yaml(0, &text).map_err(|e| anyhow!("cases.yaml: {e}"))?)["cases"].clone();
    let cases = cases.as_array().cloned().unwrap_or_default();
    let only: Vec<String> = std::env::var("CONFORMANCE_CASES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();

    let mut queues = Map::new();
    for case in &cases {
        for (q, cfg) in case["queues"].as_object().into_iter().flatten() {
            queues.insert(format!("{}.{q}", case["name"].as_str().unwrap_or_default()), cfg.clone());
        }
    }
    let mut topics = Map::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or_default();
        for (t, cfg) in case["topics"].as_object().into_iter().flatten() {
            let mut cfg = cfg.clone();
            let subscribers: Vec<Value> = cfg["subscribers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| json!(format!("{name}::{}", f.as_str().unwrap_or_default())))
                .collect();
            cfg["subscribers"] = json!(subscribers);
            topics.insert(format!("{name}.{t}"), cfg);
        }
    }
    let engine =
        Engine::start(&json!({"shutdown_grace_ms": 1000, "queue_configs": queues, "topic_configs": topics}), "plain")?;
    let mut secure: Option<Secure> = None;
    let closed_port = closed_port()?;
    let logs = Logs::install();

    let (mut failed, mut skipped) = (Vec::new(), 0);
    for case in &cases {
        let name = case["name"].as_str().unwrap_or_default();
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            skipped += 1;
            continue;
        }
        let started = Instant::now();
        if needs_secure(case) && secure.is_none() {
            secure = Some(Secure::start(&cases, &queues).context("starting the secure engine")?);
        }
        // A case with schedules gets an engine of its own, started now: a schedule enqueues
        // from its engine's start, and on the shared engine its jobs would pile up until
        // the case's worker comes.
        let own = match case.get("schedules") {
            Some(_) => {
                Some(Engine::start(&own_config(case), name).with_context(|| format!("starting {name}'s engine"))?)
            }
            None => None,
        };
        let addr = own.as_ref().map_or(engine.addr.as_str(), |e| e.addr.as_str());
        let run = run_case(case, addr, secure.as_ref(), closed_port, &logs);
        let outcome = match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow!("case timed out after 60 s")),
        };
        match outcome {
            Ok(()) => println!("ok    {name} ({:?})", started.elapsed()),
            Err(e) => {
                println!("FAIL  {name}: {e:#}");
                failed.push(name.to_string());
            }
        }
    }
    drop(engine);
    drop(secure);
    if !failed.is_empty() {
        println!("{} of {} conformance cases failed (rust): {}", failed.len(), cases.len(), failed.join(", "));
        std::process::exit(1);
    }
    println!("all {} conformance cases run passed (rust)", cases.len() - skipped);
    Ok(())
}

//! The connecting and logging steps (README "Connecting and logs", "TLS and tokens"):
//! clients and a second worker built from a step's URL, token and CA, registration waits,
//! and the SDK's log records.

use super::{Run, WAIT_MS, options};
use crate::check::json_eq;
use anyhow::{anyhow, bail};
use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sdk::{Error, InitOptions, RegisterFunction, TriggerRequest};

/// The outer error is a failed expectation, the inner one the SDK's.
type Outcome = anyhow::Result<Result<Value, Error>>;

const STEPS: &[&str] =
    &["connect", "start_worker", "await_registration", "await_registered", "stop_worker", "await_log"];

impl Run {
    /// Runs `action` if it is a connecting or logging step; `None` when it is not one.
    pub(super) async fn connecting(&mut self, action: &str, a: &Value) -> Option<Outcome> {
        if !STEPS.contains(&action) {
            return None;
        }
        Some(self.connecting_step(action, a).await)
    }

    async fn connecting_step(&mut self, action: &str, a: &Value) -> Outcome {
        let ok = |v: Value| Ok(Ok(v));
        match action {
            "connect" => {
                let url = a["url"].as_str().unwrap_or_default();
                let client = match switchyard_sdk::register_worker(url, self.security(a)?).await {
                    Ok(client) => client,
                    Err(e) => return Ok(Err(e)),
                };
                if let Some(name) = a["as"].as_str() {
                    self.clients.insert(name.to_string(), client);
                    return ok(Value::Null);
                }
                let listed = client.queues().list_queues().await.map(|q| json!(q.len()));
                client.shutdown().await;
                Ok(listed.map(|_| Value::Null))
            }
            "start_worker" => {
                if let Some(w) = self.second.take() {
                    w.shutdown().await;
                }
                let url = a["url"].as_str().unwrap_or_default();
                let options = InitOptions { fail_fast: a["fail_fast"].as_bool().unwrap_or(false), ..self.security(a)? };
                let worker = match switchyard_sdk::register_worker(url, options).await {
                    Ok(w) => w,
                    Err(e) => return Ok(Err(e)),
                };
                let functions = a["functions"].as_array().cloned().unwrap_or_else(|| vec![json!("dummy")]);
                for f in &functions {
                    worker.register_function(RegisterFunction::new_async(self.function(f), |_, _| async {
                        Ok(Value::Null)
                    }));
                }
                self.second = Some(worker);
                ok(Value::Null)
            }
            "await_registration" => {
                let worker = self.second.as_ref().ok_or_else(|| anyhow!("await_registration needs start_worker"))?;
                let timeout = Duration::from_millis(a["timeout_ms"].as_u64().unwrap_or(WAIT_MS));
                Ok(worker.wait_registered(&self.function(&a["function"]), timeout).await.map(|()| Value::Null))
            }
            "await_registered" => {
                let function = self.function(&a["function"]);
                self.wait(a, || async {
                    let request = TriggerRequest { function_id: function.clone(), ..Default::default() };
                    match self.via(a)?.trigger(request).await {
                        Ok(_) => Ok(true),
                        Err(e) if e.reason.as_str() == "FUNCTION_NOT_FOUND" => Ok(false),
                        Err(e) => bail!("calling {function}: {e}"),
                    }
                })
                .await?;
                ok(Value::Null)
            }
            "stop_worker" => {
                if let Some(w) = self.second.take() {
                    w.shutdown().await;
                }
                ok(Value::Null)
            }
            "await_log" => {
                let level = crate::logs::level(a["level"].as_str().unwrap_or("debug"))?;
                let fields: Vec<(String, Value)> = a["fields"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), self.log_value(v)))
                    .collect();
                let contains: Vec<String> = match &a["contains"] {
                    Value::Null => vec![],
                    Value::Array(texts) => texts.iter().map(|t| t.as_str().unwrap_or_default().to_string()).collect(),
                    text => vec![text.as_str().unwrap_or_default().to_string()],
                };
                let found = || {
                    self.logs.since(self.logs_from).into_iter().any(|r| {
                        r.level <= level
                            && fields.iter().all(|(k, v)| r.fields.get(k).is_some_and(|got| json_eq(got, v)))
                            && contains.iter().all(|t| r.message.contains(t.as_str()))
                    })
                };
                self.wait(a, || async { Ok(found()) }).await?;
                ok(Value::Null)
            }
            other => bail!("'{other}' is not a connecting step"),
        }
    }

    /// `options()` with the step's `token` / `secret` / `ca` (README "TLS and tokens").
    fn security(&self, a: &Value) -> anyhow::Result<InitOptions> {
        let secure = || self.secure.as_ref().ok_or_else(|| anyhow!("no secure engine for this case"));
        let mut step = StepSecurity { token: None, ca_file: None };
        if let Some(local) = a["token"].as_str() {
            let name = format!("{}.{local}", self.name);
            step.token = Some(secure()?.secrets.get(&name).cloned().ok_or_else(|| anyhow!("no token {name}"))?);
        }
        if let Some(secret) = a["secret"].as_str() {
            step.token = Some(secret.to_string());
        }
        if let Some(which) = a["ca"].as_str() {
            step.ca_file = Some(secure()?.ca.get(which).cloned().ok_or_else(|| anyhow!("no CA '{which}'"))?);
        }
        Ok(with_security(options(), step))
    }
}

/// Which CA a step trusts, and which secret it sends (README "TLS and tokens").
struct StepSecurity {
    token: Option<String>,
    ca_file: Option<std::path::PathBuf>,
}

/// The Rust SDK's spelling of a step's token and CA.
fn with_security(options: InitOptions, step: StepSecurity) -> InitOptions {
    InitOptions {
        // An explicit empty token: none, whatever the environment says.
        token: Some(step.token.unwrap_or_default()),
        tls: step.ca_file.map(|ca_file| switchyard_sdk::TlsOptions { ca_file: Some(ca_file), ..Default::default() }),
        ..options
    }
}

//! The operator commands of the `switchyard` binary: `queues`, `dlq list|redrive|discard`,
//! `enqueue` (with `--delay-ms`, `--idempotency-key`), `publish`, `workers`. Each talks gRPC to a running engine (the `Queues` and `Engine`
//! services) and prints a table, or JSON with `--json`.
//!
//! Invariant: the exit code says what happened, so scripts can rely on it —
//! [`EXIT_OK`] done, [`EXIT_REFUSED`] the engine answered with an error (its reason is
//! printed: `QUEUE_NOT_FOUND: …`), [`EXIT_USAGE`] bad arguments (clap's own code too),
//! [`EXIT_UNREACHABLE`] no engine answered at the address, [`EXIT_NOT_CONFIRMED`] a
//! discard the operator did not confirm.
//!
//! The protocol of a command:
//! 1. The address: `--addr` (or `$SWITCHYARD_ADDR`), else the `listen` of the config
//!    (`--config`, `$SWITCHYARD_CONFIG`, `./iii-config.yaml`), else the default.
//! 2. Connect (bounded: [`CONNECT_TIMEOUT`]), make the call(s), print ([`render`]). An
//!    `https://` address is TLS, checked against `--ca-file` (`$SWITCHYARD_CA_FILE`, needed
//!    for https); `--token` (`$SWITCHYARD_TOKEN`) goes as `authorization: Bearer …`.
//!
//! Deliberately not done: no retries (a script decides), no colour.

mod render;

use crate::config::{DEFAULT_LISTEN, EngineConfig};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;
use switchyard_proto::wire::engine_client::EngineClient;
use switchyard_proto::wire::queues_client::QueuesClient;
use switchyard_proto::wire::{
    CancelJobRequest, DiscardDeadLettersRequest, EnqueueAction, GetJobRequest, ListDeadLettersRequest,
    ListQueuesRequest, ListWorkersRequest, PublishAction, RedriveDeadLettersRequest, TriggerRequest, trigger_request,
    trigger_response,
};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

pub const EXIT_OK: i32 = 0;
pub const EXIT_REFUSED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_UNREACHABLE: i32 = 3;
pub const EXIT_NOT_CONFIRMED: i32 = 4;

/// How long a command waits for the engine to accept its connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The operator commands (flattened into the binary's command list).
#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// A table of every queue with its stats.
    Queues(Target),
    /// Dead letters: list, redrive, discard.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Enqueue one job: `switchyard enqueue QUEUE FUNCTION PAYLOAD_JSON`.
    Enqueue {
        queue: String,
        function: String,
        /// The payload, as JSON (`'{"orderId":"ord_1"}'`).
        payload: String,
        #[command(flatten)]
        options: EnqueueFlags,
        #[command(flatten)]
        target: Target,
    },
    /// Publish to a topic (one job per subscriber): `switchyard publish TOPIC PAYLOAD_JSON`.
    Publish {
        topic: String,
        /// The payload, as JSON.
        payload: String,
        #[command(flatten)]
        options: EnqueueFlags,
        #[command(flatten)]
        target: Target,
    },
    /// The workers connected to the engine and the functions each serves.
    Workers(Target),
    /// One job by its receipt: get its state and result, or cancel it.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// The job's state, attempts, last error, progress and (completed) result.
    Get {
        queue: String,
        /// Its message_receipt_id.
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel it: a job that has not started never runs; a running one is stopped.
    Cancel {
        queue: String,
        /// Its message_receipt_id.
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// The queue's dead letters, oldest dead-lettering first.
    List {
        queue: String,
        /// At most this many (default 100).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Move dead letters back to the queue with a fresh retry budget (all without --id).
    Redrive {
        queue: String,
        /// A dead letter's message_receipt_id (repeatable).
        #[arg(long = "id", value_name = "ID", num_args = 1..)]
        ids: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Delete dead letters for good: the ones named with --id, or every one with --all.
    Discard {
        queue: String,
        #[arg(long = "id", value_name = "ID", num_args = 1.., required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead letter of the queue.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// The enqueue options of `enqueue` and `publish`.
#[derive(Args, Debug)]
pub struct EnqueueFlags {
    /// Delay the job(s) by this many milliseconds.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// A second enqueue with this key within the queue's dedup_window_ms creates no job.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// 0 (default, lowest) to 9: ready jobs of higher priority run first (standard queues).
    #[arg(long)]
    priority: Option<u32>,
}

/// Where the engine is, and how to print.
#[derive(Args, Debug)]
pub struct Target {
    /// The engine's gRPC address (default: the config's `listen`).
    #[arg(long, env = "SWITCHYARD_ADDR")]
    addr: Option<String>,
    /// The config whose `listen` is the default address.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The bearer token, for an engine with an `auth` block (needs the admin role for
    /// queues/dlq/workers, producer for enqueue).
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA that signed the engine's certificate, for an https:// address.
    #[arg(long, env = "SWITCHYARD_CA_FILE")]
    ca_file: Option<PathBuf>,
}

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

type Conn = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// Why a command did not do its job, and its exit code.
#[derive(Debug, thiserror::Error)]
enum CtlError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot connect to {addr}: {why}")]
    Unreachable { addr: String, why: String },
    /// The engine answered with an error; `reason` is its ErrorInfo reason.
    #[error("{message}")]
    Refused { reason: String, message: String },
    #[error("not confirmed: nothing was discarded")]
    NotConfirmed,
}

impl CtlError {
    fn exit_code(&self) -> i32 {
        match self {
            CtlError::Usage(_) => EXIT_USAGE,
            CtlError::Unreachable { .. } => EXIT_UNREACHABLE,
            CtlError::Refused { .. } => EXIT_REFUSED,
            CtlError::NotConfirmed => EXIT_NOT_CONFIRMED,
        }
    }

    fn reason(&self) -> &str {
        match self {
            CtlError::Usage(_) => "USAGE",
            CtlError::Unreachable { .. } => "UNREACHABLE",
            CtlError::Refused { reason, .. } => reason,
            CtlError::NotConfirmed => "NOT_CONFIRMED",
        }
    }

    /// A status from the engine: its ErrorInfo reason when it has one. A status with none
    /// comes from the transport (nobody answered), not from the engine.
    fn from_status(status: tonic::Status, addr: &str) -> Self {
        match status.get_details_error_info() {
            Some(info) => CtlError::Refused { reason: info.reason, message: status.message().to_string() },
            None if status.code() == tonic::Code::Unavailable => {
                CtlError::Unreachable { addr: addr.to_string(), why: status.message().to_string() }
            }
            None => CtlError::Refused {
                reason: format!("{:?}", status.code()).to_uppercase(),
                message: status.message().to_string(),
            },
        }
    }
}

/// Runs an operator command; returns the exit code.
pub async fn run(command: OpsCommand) -> i32 {
    let json = match &command {
        OpsCommand::Queues(t)
        | OpsCommand::Workers(t)
        | OpsCommand::Enqueue { target: t, .. }
        | OpsCommand::Publish { target: t, .. } => t.json,
        OpsCommand::Dlq { command } => match command {
            DlqCommand::List { target, .. }
            | DlqCommand::Redrive { target, .. }
            | DlqCommand::Discard { target, .. } => target.json,
        },
        OpsCommand::Job { command: JobCommand::Get { target, .. } | JobCommand::Cancel { target, .. } } => target.json,
    };
    match execute(command).await {
        Ok(out) => {
            print!("{out}");
            EXIT_OK
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({"error": {"reason": e.reason(), "message": e.to_string()}}));
            }
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn execute(command: OpsCommand) -> Result<String, CtlError> {
    match command {
        OpsCommand::Queues(t) => {
            let (mut q, addr) = queues(&t).await?;
            let r = q.list_queues(ListQueuesRequest {}).await.map_err(|s| CtlError::from_status(s, &addr))?;
            Ok(render::queues(&r.into_inner().queues, t.json))
        }
        OpsCommand::Workers(t) => {
            let (mut q, addr) = queues(&t).await?;
            let r = q.list_workers(ListWorkersRequest {}).await.map_err(|s| CtlError::from_status(s, &addr))?;
            Ok(render::workers(&r.into_inner().workers, t.json))
        }
        OpsCommand::Enqueue { queue, function, payload, options, target } => {
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| CtlError::Usage(format!("PAYLOAD_JSON is not JSON: {e}")))?;
            let (channel, addr) = connect(&target).await?;
            let action = EnqueueAction {
                queue,
                delay_ms: options.delay_ms,
                idempotency_key: options.idempotency_key.unwrap_or_default(),
                priority: options.priority,
                ..Default::default()
            };
            let request = TriggerRequest {
                function_id: function,
                payload: crate::wire::json_to_wire(&value),
                action: Some(trigger_request::Action::Enqueue(action)),
                timeout_ms: None,
            };
            let r = EngineClient::new(channel).trigger(request).await.map_err(|s| CtlError::from_status(s, &addr))?;
            match r.into_inner().outcome {
                Some(trigger_response::Outcome::Receipt(receipt)) => {
                    Ok(render::receipt(&receipt.message_receipt_id, receipt.duplicate, target.json))
                }
                other => Err(CtlError::Refused {
                    reason: "UNEXPECTED_ANSWER".into(),
                    message: format!("the engine answered an enqueue with {other:?}"),
                }),
            }
        }
        OpsCommand::Publish { topic, payload, options, target } => {
            let value: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| CtlError::Usage(format!("PAYLOAD_JSON is not JSON: {e}")))?;
            let (channel, addr) = connect(&target).await?;
            let action = PublishAction {
                topic,
                delay_ms: options.delay_ms,
                idempotency_key: options.idempotency_key.unwrap_or_default(),
                ..Default::default()
            };
            let request = TriggerRequest {
                function_id: String::new(),
                payload: crate::wire::json_to_wire(&value),
                action: Some(trigger_request::Action::Publish(action)),
                timeout_ms: None,
            };
            let r = EngineClient::new(channel).trigger(request).await.map_err(|s| CtlError::from_status(s, &addr))?;
            match r.into_inner().outcome {
                Some(trigger_response::Outcome::Published(p)) => Ok(render::published(&p.receipts, target.json)),
                other => Err(CtlError::Refused {
                    reason: "UNEXPECTED_ANSWER".into(),
                    message: format!("the engine answered a publish with {other:?}"),
                }),
            }
        }
        OpsCommand::Dlq { command } => dlq(command).await,
        OpsCommand::Job { command: JobCommand::Get { queue, id, target } } => {
            let (mut q, addr) = queues(&target).await?;
            let request = GetJobRequest { queue, message_receipt_id: id };
            let r = q.get_job(request).await.map_err(|s| CtlError::from_status(s, &addr))?.into_inner();
            Ok(render::job(&r.job.unwrap_or_default(), None, target.json))
        }
        OpsCommand::Job { command: JobCommand::Cancel { queue, id, target } } => {
            let (mut q, addr) = queues(&target).await?;
            let request = CancelJobRequest { queue, message_receipt_id: id };
            let r = q.cancel_job(request).await.map_err(|s| CtlError::from_status(s, &addr))?.into_inner();
            Ok(render::job(&r.job.unwrap_or_default(), Some(&r.outcome), target.json))
        }
    }
}

async fn dlq(command: DlqCommand) -> Result<String, CtlError> {
    match command {
        DlqCommand::List { queue, limit, target } => {
            let (mut q, addr) = queues(&target).await?;
            let mut entries = Vec::new();
            let mut page_token = String::new();
            while entries.len() < limit {
                let page_size = (limit - entries.len()).min(crate::api::queues::MAX_PAGE_SIZE as usize) as u32;
                let request = ListDeadLettersRequest { queue: queue.clone(), page_size, page_token };
                let page = q.list_dead_letters(request).await.map_err(|s| CtlError::from_status(s, &addr))?;
                let page = page.into_inner();
                entries.extend(page.entries);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            entries.truncate(limit);
            Ok(render::dead_letters(&entries, target.json))
        }
        DlqCommand::Redrive { queue, ids, target } => {
            let (mut q, addr) = queues(&target).await?;
            let request = RedriveDeadLettersRequest { queue: queue.clone(), ids };
            let r = q.redrive_dead_letters(request).await.map_err(|s| CtlError::from_status(s, &addr))?;
            Ok(render::count("redriven", r.into_inner().count, &queue, target.json))
        }
        DlqCommand::Discard { queue, ids, all, yes, target } => {
            let what = if all { "every dead letter".to_string() } else { format!("{} dead letter(s)", ids.len()) };
            if !yes {
                confirm(&format!("discard {what} of queue '{queue}' for good?"))?;
            }
            let (mut q, addr) = queues(&target).await?;
            let request = DiscardDeadLettersRequest { queue: queue.clone(), ids };
            let r = q.discard_dead_letters(request).await.map_err(|s| CtlError::from_status(s, &addr))?;
            Ok(render::count("discarded", r.into_inner().count, &queue, target.json))
        }
    }
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> Result<(), CtlError> {
    if !std::io::stdin().is_terminal() {
        return Err(CtlError::Usage("stdin is not a terminal: pass --yes to discard without confirmation".into()));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" => Ok(()),
        _ => Err(CtlError::NotConfirmed),
    }
}

async fn queues(target: &Target) -> Result<(QueuesClient<Conn>, String), CtlError> {
    let (channel, addr) = connect(target).await?;
    Ok((QueuesClient::new(channel), addr))
}

async fn connect(target: &Target) -> Result<(Conn, String), CtlError> {
    let addr = address(target)?;
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| CtlError::Usage(format!("--addr '{addr}' is not an address: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if addr.starts_with("https://") {
        let Some(ca) = &target.ca_file else {
            return Err(CtlError::Usage(format!(
                "{addr} is TLS: give the engine's CA with --ca-file (or SWITCHYARD_CA_FILE)"
            )));
        };
        let pem = std::fs::read(ca).map_err(|e| CtlError::Usage(format!("--ca-file {}: {e}", ca.display())))?;
        let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem));
        endpoint = endpoint.tls_config(tls).map_err(|e| CtlError::Usage(format!("--ca-file: {e}")))?;
    }
    let token = match target.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(
            format!("Bearer {t}").parse().map_err(|_| CtlError::Usage("--token: must be printable ASCII".into()))?,
        ),
        None => None,
    };
    match endpoint.connect().await {
        Ok(channel) => Ok((tonic::service::interceptor::InterceptedService::new(channel, Bearer(token)), addr)),
        Err(e) => {
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            Err(CtlError::Unreachable { addr, why })
        }
    }
}

/// `http://HOST:PORT` of the engine (see the module doc, step 1).
fn address(target: &Target) -> Result<String, CtlError> {
    let addr = match &target.addr {
        Some(a) => a.clone(),
        None => {
            let path = target.config.clone().or_else(|| std::env::var_os("SWITCHYARD_CONFIG").map(PathBuf::from));
            let path = path.or_else(|| Some(PathBuf::from("iii-config.yaml")).filter(|p| p.exists()));
            match path {
                Some(path) => EngineConfig::load(&path).map_err(|e| CtlError::Usage(e.to_string()))?.listen.to_string(),
                None => DEFAULT_LISTEN.to_string(),
            }
        }
    };
    Ok(if addr.contains("://") { addr } else { format!("http://{addr}") })
}

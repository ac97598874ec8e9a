//! The `switchyard` command: `serve` runs the engine, `check-config` validates a config,
//! and the operator commands ([`crate::ctl`]) talk to a running engine.
//!
//! Config path: `--config PATH`, else `$SWITCHYARD_CONFIG`, else `./iii-config.yaml`.
//! A missing file at the implicit default path starts the engine on the built-in defaults
//! (one `default` queue, in-memory store) with a warning; a missing file that was named
//! explicitly is an error.
//!
//! `serve` sets up logging ([`crate::logging`]) once the config is loaded, so that its
//! `log_format` applies to every line after the config's own problems; other commands log
//! as text (or as `SWITCHYARD_LOG_FORMAT` says).

use crate::clock::SystemClock;
use crate::config::{ConfigError, EngineConfig, LogFormat};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about = "Switchyard job engine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine.
    Serve {
        /// Config file (default: $SWITCHYARD_CONFIG, else ./iii-config.yaml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address, overriding the config's `listen`: IP:PORT or HOST:PORT
        /// (e.g. 127.0.0.1:0, localhost:49300) [env: SWITCHYARD_LISTEN].
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate a config file: print the effective queues, or every problem found.
    CheckConfig {
        /// Config file to check.
        path: PathBuf,
    },
    /// Write a fresh CA and the server and client certificates it signs (for local TLS
    /// and tests; not for production): ca.pem ca-key.pem server.pem server-key.pem
    /// client.pem client-key.pem.
    DevCerts {
        /// Directory to write into (created if missing; files in it are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Another name or IP address for the server certificate, beside localhost,
        /// 127.0.0.1 and ::1 (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
    },
    /// The operator commands, talking gRPC to a running engine (`crate::ctl`).
    #[command(flatten)]
    Ops(crate::ctl::OpsCommand),
}

const IMPLICIT_CONFIG: &str = "iii-config.yaml";

fn resolve(config: Option<PathBuf>) -> Result<EngineConfig, ConfigError> {
    let explicit = config.or_else(|| std::env::var_os("SWITCHYARD_CONFIG").map(PathBuf::from));
    match explicit {
        Some(path) => EngineConfig::load(&path),
        None => {
            let path = PathBuf::from(IMPLICIT_CONFIG);
            if path.exists() {
                EngineConfig::load(&path)
            } else {
                let mut config = EngineConfig::default();
                config.warnings.push(format!(
                    "no {IMPLICIT_CONFIG} here: running on the built-in defaults (queue 'default', in-memory)"
                ));
                Ok(config)
            }
        }
    }
}

/// Entry point of the binary; returns the process exit code.
pub async fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen).await,
        command => {
            match crate::logging::format_from_env() {
                Ok(format) => crate::logging::init(format.unwrap_or(LogFormat::Text)),
                Err(e) => {
                    eprintln!("switchyard: {e}");
                    return 2;
                }
            }
            match command {
                Command::CheckConfig { path } => check_config(&path).await,
                Command::Ops(command) => crate::ctl::run(command).await,
                Command::DevCerts { out, hosts } => dev_certs(&out, &hosts),
                Command::Serve { .. } => unreachable!("matched above"),
            }
        }
    }
}

fn dev_certs(out: &std::path::Path, hosts: &[String]) -> i32 {
    match crate::tls::dev_certs::write(out, hosts) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            0
        }
        Err(e) => {
            eprintln!("switchyard dev-certs: {e}");
            1
        }
    }
}

async fn check_config(path: &std::path::Path) -> i32 {
    match EngineConfig::load(path) {
        Ok(config) => {
            for w in &config.warnings {
                println!("warning: {w}");
            }
            if let Err(e) = crate::store::check(&config.adapter) {
                println!("{}: 1 problem\n  - adapter: {e}", path.display());
                return 1;
            }
            match config.plaintext_check(config.listen) {
                Ok(Some(w)) => println!("warning: {w}"),
                Ok(None) => {}
                Err(e) => {
                    println!("{}: 1 problem\n  - {e}", path.display());
                    return 1;
                }
            }
            println!("{}: ok — listen {}, adapter {}", path.display(), config.listen, config.adapter.describe());
            if let Some(tls) = &config.tls {
                let mtls =
                    tls.client_ca_file.as_ref().map(|p| format!(", client certificates signed by {}", p.display()));
                println!("  tls: {}{}", tls.cert_file.display(), mtls.unwrap_or_default());
            }
            if let Some(auth) = &config.auth {
                for t in &auth.tokens {
                    println!("  {}", crate::auth::describe(t));
                }
            }
            for (name, q) in &config.queues {
                println!("  {name}: {}", q.describe());
            }
            for (name, t) in &config.topics {
                println!("  topic {name}: subscribers [{}]", t.subscribers.join(", "));
            }
            for (name, s) in &config.schedules {
                println!("  schedule {name}: {}", s.describe());
            }
            0
        }
        Err(e) => {
            println!("{e}");
            1
        }
    }
}

async fn serve(config: Option<PathBuf>, listen: Option<String>) -> i32 {
    let mut config = match resolve(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: refusing to start\n{e}");
            return 2;
        }
    };
    let listen = listen.map(|v| ("--listen", v)).or_else(|| env_listen().map(|v| ("SWITCHYARD_LISTEN", v)));
    let listen = match listen.map(|(source, value)| listen_addr(source, &value)).transpose() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("switchyard: refusing to start\n  - {e}");
            return 2;
        }
    };
    match crate::logging::format_from_env() {
        Ok(format) => crate::logging::init(format.unwrap_or(config.log_format)),
        Err(e) => {
            eprintln!("switchyard: refusing to start\n  - {e}");
            return 2;
        }
    }
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if let Some(addr) = listen {
        config.listen = addr;
    }
    match config.plaintext_check(config.listen) {
        Ok(Some(w)) => tracing::warn!("{w}"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!("refusing to start: {e}");
            eprintln!("switchyard: refusing to start\n  - {e}");
            return 2;
        }
    }
    let store = match crate::store::open(&config.adapter).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("refusing to start: adapter: {e}");
            return 2;
        }
    };
    let queues: Vec<String> = config.queue_names().into_iter().map(String::from).collect();
    if let Err(e) = store.declare(&queues).await {
        eprintln!("switchyard: refusing to start\n  - adapter: {e}");
        return 2;
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("refusing to start: cannot listen on {}: {e}", config.listen);
            return 2;
        }
    };
    let shutdown = shutdown_signal();
    let side = match crate::server::SideListeners::bind(&config).await {
        Ok(side) => side,
        Err(e) => {
            eprintln!("switchyard: refusing to start\n  - {e}");
            return 2;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, adapter = %config.adapter.describe(), queues = ?config.queue_names(), "serving");
    // Scripts and test fixtures read this line to learn the port.
    println!("switchyard listening on {addr}");
    // Then one line per HTTP listener: "switchyard metrics on …", "switchyard console on …".
    // Written, not printed: a reader that took the first line and closed the pipe is fine.
    let mut out = std::io::stdout();
    for (what, addr) in side.addresses() {
        let _ = writeln!(out, "switchyard {what} on {addr}");
    }
    let _ = std::io::stdout().flush();
    let clock = Arc::new(SystemClock);
    match crate::server::serve_with(listener, side, Arc::new(config), store, clock, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("stopped on an error: {e}");
            1
        }
    }
}

fn env_listen() -> Option<String> {
    std::env::var("SWITCHYARD_LISTEN").ok().filter(|v| !v.trim().is_empty())
}

/// An address to listen on from `--listen` or `SWITCHYARD_LISTEN` (named by `source` in
/// the error): `IP:PORT`, or `HOST:PORT` resolved now (an IPv4 address first, as
/// `localhost` is usually meant).
fn listen_addr(source: &str, value: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let value = value.trim();
    if let Ok(addr) = value.parse() {
        return Ok(addr);
    }
    let bad =
        |why: String| format!("{source}: expected IP:PORT or HOST:PORT (e.g. 127.0.0.1:49134), got '{value}': {why}");
    let addrs: Vec<_> = value.to_socket_addrs().map_err(|e| bad(e.to_string()))?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| bad("the name has no address".into()))
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when it is first polled, so a signal sent right after the `listening` line is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

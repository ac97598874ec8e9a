//! The `switchyard` command: `serve` runs the engine, `check-config` validates a config.
//!
//! Config path: `--config PATH`, else `$SWITCHYARD_CONFIG`, else `./iii-config.yaml`.
//! A missing file at the implicit default path starts the engine on the built-in defaults
//! (one `default` queue, in-memory store) with a warning; a missing file that was named
//! explicitly is an error.

use crate::clock::SystemClock;
use crate::config::{ConfigError, EngineConfig};
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
        /// Listen address, overriding the config's `listen` (e.g. 127.0.0.1:0).
        #[arg(long, env = "SWITCHYARD_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config file: print the effective queues, or every problem found.
    CheckConfig {
        /// Config file to check.
        path: PathBuf,
    },
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
                tracing::warn!(
                    "no {IMPLICIT_CONFIG} here: running on the built-in defaults (queue 'default', in-memory)"
                );
                Ok(EngineConfig::default())
            }
        }
    }
}

/// Entry point of the binary; returns the process exit code.
pub async fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => check_config(&path).await,
        Command::Serve { config, listen } => serve(config, listen).await,
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
            println!("{}: ok — listen {}, adapter {}", path.display(), config.listen, config.adapter.describe());
            for (name, q) in &config.queues {
                println!(
                    "  {name}: type={} max_retries={} backoff_ms={} concurrency={} timeout_ms={}{}",
                    q.kind.as_str(),
                    q.max_retries,
                    q.backoff_ms,
                    q.concurrency,
                    q.timeout_ms,
                    q.message_group_field.as_ref().map(|f| format!(" message_group_field={f}")).unwrap_or_default()
                );
            }
            0
        }
        Err(e) => {
            println!("{e}");
            1
        }
    }
}

async fn serve(config: Option<PathBuf>, listen: Option<std::net::SocketAddr>) -> i32 {
    let mut config = match resolve(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: refusing to start\n{e}");
            return 2;
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let store = match crate::store::open(&config.adapter).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchyard: refusing to start\n  - adapter: {e}");
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
            eprintln!("switchyard: cannot listen on {}: {e}", config.listen);
            return 2;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, adapter = %config.adapter.describe(), queues = ?config.queue_names(), "serving");
    // Scripts and test fixtures read this line to learn the port.
    println!("switchyard listening on {addr}");
    let _ = std::io::stdout().flush();
    match crate::server::serve(listener, Arc::new(config), store, Arc::new(SystemClock), shutdown_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("switchyard: {e}");
            1
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

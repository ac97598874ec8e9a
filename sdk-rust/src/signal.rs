//! Drain on SIGTERM: a plain `kill` lets running jobs finish instead of costing them an
//! attempt.
//!
//! Invariant: when a process whose workers keep [`crate::InitOptions::drain_on_sigterm`]
//! gets SIGTERM, every such worker still alive drains (no new work; running handlers
//! finish, up to its `shutdown_grace`), and then the process dies of SIGTERM exactly as it
//! would have without the SDK — only later — so supervisors see the same exit.
//!
//! 1. The first such worker starts one listener, on a thread of its own with its own
//!    small runtime, so it outlives no runtime and depends on none of the application's.
//! 2. Every such worker adds itself (weakly: a dropped worker is skipped).
//! 3. On SIGTERM: every worker drains, concurrently; then SIGTERM's default action is
//!    restored and the signal raised again.
//!
//! Deliberately not done: SIGINT (Ctrl-C keeps its default; an application that wants to
//! drain on it calls [`crate::Worker::shutdown`]), and anything on non-Unix systems.

use crate::worker::Shared;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock, Weak};

static WORKERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static LISTENER: OnceLock<()> = OnceLock::new();

/// Adds `worker` to those drained on SIGTERM, starting the listener if need be.
pub(crate) fn drain_on_sigterm(worker: &Arc<Shared>) {
    {
        let mut workers = WORKERS.lock();
        workers.retain(|w| w.strong_count() > 0);
        workers.push(Arc::downgrade(worker));
    }
    LISTENER.get_or_init(start_listener);
}

#[cfg(unix)]
fn start_listener() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("switchyard-sigterm".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => return ready_tx.send(Err(e.to_string())).unwrap_or(()),
        };
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => return ready_tx.send(Err(e.to_string())).unwrap_or(()),
            };
            let _ = ready_tx.send(Ok(()));
            term.recv().await;
            let workers: Vec<Arc<Shared>> = WORKERS.lock().iter().filter_map(Weak::upgrade).collect();
            tracing::info!(workers = workers.len(), "SIGTERM: draining in-flight work, then exiting");
            futures::future::join_all(workers.iter().map(|w| w.shutdown())).await;
            drop(workers);
            // SAFETY: restoring the default disposition and raising a signal are async-signal-
            // safe libc calls with no memory effects on this process.
            unsafe {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::raise(libc::SIGTERM);
            }
        });
    });
    // Wait until the handler is installed, so a SIGTERM right after `register_worker`
    // returns drains too.
    let outcome = match spawned {
        Ok(_) => ready_rx.recv().unwrap_or_else(|_| Err("the listener thread ended".into())),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "cannot listen for SIGTERM; workers will not drain on it");
    }
}

#[cfg(not(unix))]
fn start_listener() {}

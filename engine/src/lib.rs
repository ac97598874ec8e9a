//! Switchyard: a job engine. Callers enqueue jobs to named queues; the engine delivers each
//! job to the function it names on a connected worker, retries failures with exponential
//! backoff, keeps FIFO order per message group, limits concurrency per queue and parks
//! exhausted jobs in a dead-letter queue.
//!
//! The map, from the outside in:
//! - [`cli`] — the `switchyard` command: `serve`, `check-config`.
//! - [`server`] — `run(listener, config, clock, shutdown)`: the whole engine as a function.
//! - [`api`] — thin gRPC services: validate, convert, call. [`api::error`] is the one
//!   mapping from failures to gRPC statuses.
//! - [`limits`] — resource bounds per client: worker streams, calls per connection,
//!   queue backpressure (`max_ready`), the handshake timeout.
//! - [`dispatch`] — workers, leases, per-queue concurrency, invocation timeouts.
//! - [`store`] — the seam every store implements (atomic job transitions), the stores,
//!   and the conformance suite they all pass.
//! - [`retention`] — the dead-letter sweeper (`dlq_retention_ms`).
//! - [`schedule`] — `schedules:`: cron ticks in a time zone, each enqueued once per store.
//! - [`queue`] — jobs, their states, the retry policy and FIFO groups: pure data and rules.
//! - [`config`] — `iii-config.yaml` → a validated [`config::EngineConfig`].
//! - [`logging`] — stderr as text or JSON, colour only on a terminal; one line per job
//!   event ([`logging::jobs`]).
//! - [`metrics`] — Prometheus counters and histograms, and `/metrics`.
//! - [`console`] — the web console: queues, dead letters, workers.
//! - [`ctl`] — the operator commands (`queues`, `dlq`, `enqueue`, `workers`) over gRPC.
//! - [`http`] — the small HTTP server under `/metrics` and the console.
//! - [`clock`] — injected time.
//! - [`suggest`] — "did you mean …?" for mistyped queue names and config keys.
//! - [`wire`] — conversions to and from the wire types.

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod ctl;
pub mod dispatch;
pub mod http;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod retention;
pub mod schedule;
pub mod server;
pub mod store;
pub mod suggest;
pub mod tls;
pub mod wire;

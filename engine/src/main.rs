//! The `switchyard` binary: allocator and logging set-up, then [`switchyard_engine::cli`].

/// mimalloc: the engine allocates many small, short-lived buffers per job; glibc's
/// allocator showed up as a fifth of the engine's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    std::process::exit(switchyard_engine::cli::main().await);
}

//! The `switchyard` binary: allocator and memory set-up, then [`switchyard_engine::cli`]
//! (which sets up logging, [`switchyard_engine::logging`]).

/// mimalloc: the engine allocates many small, short-lived buffers per job; glibc's
/// allocator showed up as a fifth of the engine's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    without_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    // Logging is set up by the command once it knows the config's `log_format`.
    let code = runtime.block_on(switchyard_engine::cli::main());
    drop(runtime);
    std::process::exit(code);
}

/// mimalloc asks the kernel for transparent huge pages on its arenas; each 2 MiB page is
/// then resident as a whole however little of it is used, which made a queue of a million
/// small jobs cost 125 MB instead of 87 MB. The engine keeps its memory in 4 KiB pages
/// (measured: no throughput difference beyond the noise). Set `SWITCHYARD_HUGE_PAGES=1`
/// to keep them.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("SWITCHYARD_HUGE_PAGES").is_none_or(|v| v != "1") {
        // SAFETY: prctl(PR_SET_THP_DISABLE) only sets a flag on this process.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

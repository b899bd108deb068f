//! How every City Twin binary runs its async main.

use std::{fmt::Display, future::Future, process::ExitCode};

/// Runs `main` on a multi-threaded tokio runtime and turns its outcome into the process's exit code: its own
/// code on success; on an error, `program: error` on stderr (with the whole chain of an `anyhow` error) and
/// failure.
pub fn block_on<E: Display>(program: &str, main: impl Future<Output = Result<ExitCode, E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

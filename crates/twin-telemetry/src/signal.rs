//! The shutdown signals every City Twin binary obeys.

use std::{io::Read, sync::OnceLock};

use tokio::sync::watch;

/// The environment variable a supervisor (`citytwin`) sets for its children, with the value [`LIFELINE_STDIN`]:
/// the child's stdin is a pipe the supervisor holds open and never writes, so when the supervisor dies, even
/// by SIGKILL, the pipe closes and the child shuts down as on SIGTERM instead of running on as an orphan that
/// holds its data folder's lock.
pub const LIFELINE_ENV: &str = "CITYTWIN_LIFELINE";
/// The value of [`LIFELINE_ENV`] that makes stdin the lifeline.
pub const LIFELINE_STDIN: &str = "stdin";

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, logging which, so a binary can drain and exit cleanly; and, when
/// [`LIFELINE_ENV`] says so, when stdin closes (the supervisor is gone).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let lifeline = async {
        match std::env::var(LIFELINE_ENV).as_deref() {
            Ok(LIFELINE_STDIN) => stdin_closed().await,
            _ => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
        () = lifeline => tracing::warn!("stdin closed: the supervisor is gone; shutting down"),
    }
}

/// Resolves once stdin reaches its end or fails. One thread reads it for the whole process (a plain thread,
/// not the runtime's blocking pool: a blocked read there would hold up the runtime's shutdown); every caller
/// watches the same flag.
async fn stdin_closed() {
    static CLOSED: OnceLock<watch::Receiver<bool>> = OnceLock::new();
    let mut closed = CLOSED
        .get_or_init(|| {
            let (tx, rx) = watch::channel(false);
            let reader = std::thread::Builder::new().name("stdin-lifeline".into()).spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buf = [0u8; 256];
                // Whatever the supervisor writes is ignored; only the end of the pipe matters.
                while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
                let _ = tx.send(true);
            });
            if let Err(e) = reader {
                tracing::warn!(error = %e, "cannot watch stdin for the supervisor's end");
            }
            rx
        })
        .clone();
    // An error means the reader thread is gone without saying so (it could not start): never resolve then.
    if closed.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

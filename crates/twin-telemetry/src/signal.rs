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

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM, logging which, so a binary can drain and exit
/// cleanly; and, when [`LIFELINE_ENV`] says so, when stdin closes (the supervisor is gone).
///
/// The handlers are installed by this call, not when the future is first polled: call it (inside the runtime)
/// before printing a ready line, or a supervisor that sends SIGTERM as soon as it reads that line kills the
/// process the default way instead of stopping it cleanly.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    let lifeline = match std::env::var(LIFELINE_ENV) {
        Ok(value) if value == LIFELINE_STDIN => Some(stdin_closed()),
        Ok(value) => {
            tracing::warn!(%value, "{LIFELINE_ENV} is not {LIFELINE_STDIN:?}; no lifeline is watched");
            None
        }
        Err(_) => None,
    };
    async move {
        let lifeline = async {
            match lifeline {
                Some(closed) => closed.await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        {
            let interrupt = recv_or_pending(interrupt, "SIGINT");
            let term = recv_or_pending(term, "SIGTERM");
            tokio::select! {
                () = interrupt => tracing::info!("SIGINT received"),
                () = term => tracing::info!("SIGTERM received"),
                () = lifeline => tracing::warn!("stdin closed: the supervisor is gone; shutting down"),
            }
        }
        #[cfg(not(unix))]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
            () = lifeline => tracing::warn!("stdin closed: the supervisor is gone; shutting down"),
        }
    }
}

/// Waits for the signal, or forever if its handler could not be installed (logged).
#[cfg(unix)]
async fn recv_or_pending(signal: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match signal {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for {name}");
            std::future::pending::<()>().await;
        }
    }
}

/// Starts watching stdin (once per process) and returns a future that resolves once it reaches its end or
/// fails. One plain thread reads it for the whole process (not the runtime's blocking pool: a blocked read
/// there would hold up the runtime's shutdown); every caller watches the same flag.
fn stdin_closed() -> impl Future<Output = ()> + Send + 'static {
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
    async move {
        // An error means the reader thread is gone without saying so (it could not start): never resolve then.
        if closed.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

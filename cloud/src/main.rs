//! `cloud`: the City Twin cloud service binary.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    let flags = cloud::Flags::parse();
    let settings = match cloud::config::load(&flags, std::env::vars().collect()).and_then(|raw| raw.validate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cloud: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if flags.print_config {
        print!("{}", settings.raw.to_toml());
        return std::process::ExitCode::SUCCESS;
    }
    twin_telemetry::runtime::block_on("cloud", async {
        serve(settings).await.map(|()| std::process::ExitCode::SUCCESS)
    })
}

async fn serve(settings: cloud::Settings) -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let telemetry = twin_telemetry::init(&twin_telemetry::TelemetryConfig {
        log_filter: settings.raw.log.clone(),
        otlp_endpoint: Some(settings.raw.otlp_endpoint.clone()).filter(|e| !e.is_empty()),
        service_name: "twin-cloud".into(),
        ansi,
    })
    .context("cannot set up telemetry")?;
    let catalog = cloud::server::load_catalog(&settings)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr().context("listener has no address")?;
    // Before the line below: a supervisor may send SIGTERM as soon as it reads it.
    let signal = twin_telemetry::signal::shutdown_signal();
    // Scripts and tests read this line to find the port when listening on port 0.
    println!("cloud listening on {addr}");
    std::io::stdout().flush().ok();
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            signal.await;
            shutdown.cancel();
        }
    });
    let result =
        cloud::server::run_with_catalog(settings, catalog, listener, shutdown).await.context("cloud service failed");
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.ok();
    result
}

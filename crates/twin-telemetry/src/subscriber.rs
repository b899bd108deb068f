//! [`init`]: the global `tracing` subscriber, the OTLP span exporter and the W3C propagator; the
//! [`TelemetryGuard`] that flushes and shuts the exporter down.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{ParseError, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::TelemetryConfig;
use crate::propagation;

/// Crates whose spans never reach the OpenTelemetry layer: the OTLP exporter runs on them, so exporting
/// their spans would create more spans to export. Their log lines are still subject to the log filter.
const EXPORTER_TRANSPORT_TARGETS: &[&str] =
    &["h2", "hyper", "hyper_util", "tonic", "tower", "opentelemetry", "opentelemetry_sdk", "opentelemetry_otlp"];

/// Why [`init`] failed.
#[derive(thiserror::Error, Debug)]
pub enum TelemetryError {
    /// A directive of [`TelemetryConfig::log_filter`] does not parse.
    #[error("invalid log filter directive `{directive}`")]
    InvalidFilter {
        /// The directive that failed to parse.
        directive: String,
        /// What is wrong with it.
        #[source]
        source: ParseError,
    },
    /// An OTLP endpoint is set but [`init`] was called outside a tokio runtime (the exporter's gRPC
    /// channel needs one to run on).
    #[error("an otlp endpoint is set but init was called outside a tokio runtime")]
    NoTokioRuntime,
    /// The OTLP span exporter could not be built (for example, the endpoint is not a valid URI).
    #[error("cannot build the otlp span exporter for `{endpoint}`")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// The exporter's reason.
        #[source]
        source: ExporterBuildError,
    },
    /// A global `tracing` subscriber was already installed (by an earlier [`init`] or by someone else).
    #[error("a global tracing subscriber is already set")]
    SubscriberAlreadySet,
}

/// Installs the global subscriber (fmt layer to stderr + EnvFilter + an OpenTelemetry layer when an endpoint is
/// set) and the W3C TraceContext propagator. Must be called inside a tokio runtime when an endpoint is set (the
/// OTLP exporter is built there).
///
/// Spans are exported in batches from a background thread; the exporter's gRPC connection is driven by the
/// runtime `init` was called in, so that runtime must outlive the export (shut the guard down before the
/// runtime). The tracer provider is also installed as OpenTelemetry's global tracer provider.
///
/// Can succeed once per process; later calls fail with [`TelemetryError::SubscriberAlreadySet`].
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let env_filter = config.env_filter()?;
    if tracing::dispatcher::has_been_set() {
        // Checked early so a second call does not build (and then tear down) an exporter for nothing;
        // set_global_default below stays the authority.
        return Err(TelemetryError::SubscriberAlreadySet);
    }

    let provider =
        config.export_endpoint().map(|endpoint| tracer_provider(endpoint, &config.service_name)).transpose()?;
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
            .with_filter(filter_fn(|metadata| !is_exporter_transport(metadata.target())))
    });
    let fmt_layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(config.ansi);
    let subscriber = tracing_subscriber::registry().with(env_filter).with(fmt_layer).with(otel_layer);

    // On failure `provider` is dropped here, which shuts its (still empty) batch processor down.
    tracing::subscriber::set_global_default(subscriber).map_err(|_| TelemetryError::SubscriberAlreadySet)?;

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    propagation::mark_global_propagator_installed();
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    Ok(TelemetryGuard { provider })
}

/// Builds the OTLP/gRPC exporter and a tracer provider that batches spans into it.
fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    // tonic's `connect_lazy` spawns the channel's worker task: outside a runtime it would panic.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoTokioRuntime);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.to_owned(), source })?;
    let resource = Resource::builder().with_service_name(service_name.to_owned()).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

fn is_exporter_transport(target: &str) -> bool {
    EXPORTER_TRANSPORT_TARGETS
        .iter()
        .any(|krate| target.strip_prefix(krate).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

/// Keeps the OTLP exporter alive; returned by [`init`].
///
/// Flushes and shuts the tracer provider down; provider.shutdown() blocks, so this is safe to call from async
/// code only via spawn_blocking — call [`shutdown`](Self::shutdown) (blocking) before the tokio runtime that
/// [`init`] ran in stops:
///
/// ```no_run
/// # async fn stop(guard: twin_telemetry::TelemetryGuard) -> Result<(), tokio::task::JoinError> {
/// tokio::task::spawn_blocking(move || guard.shutdown()).await
/// # }
/// ```
///
/// Dropping the guard without `shutdown` does not panic: off a runtime thread it shuts down in place; on a
/// runtime thread (where blocking could stall the very runtime the export needs) it hands the shutdown to a
/// detached thread, which the process may exit before, losing the last batch of spans.
#[derive(Debug)]
#[must_use = "dropping the guard early stops span export; keep it until shutdown"]
pub struct TelemetryGuard {
    /// `None` when export is disabled, or once shut down.
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports the spans still queued and stops the exporter, blocking for up to about 5 s (plus the export's
    /// own timeout); failures are logged. Call it off the runtime threads, e.g. via
    /// `tokio::task::spawn_blocking`, while the runtime [`init`] ran in is still running. Log lines keep
    /// flowing afterwards; spans are no longer exported. A no-op when export is disabled.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            shutdown_provider(&provider);
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else { return };
        if tokio::runtime::Handle::try_current().is_err() {
            shutdown_provider(&provider);
            return;
        }
        // Blocking here could deadlock a current-thread runtime (the export runs on it) and would stall a
        // worker thread of a multi-thread one. If the thread cannot be spawned, the spans are lost.
        let _ = std::thread::Builder::new()
            .name("telemetry-shutdown".to_owned())
            .spawn(move || shutdown_provider(&provider));
    }
}

fn shutdown_provider(provider: &SdkTracerProvider) {
    if let Err(err) = provider.shutdown() {
        tracing::warn!(error = %err, "telemetry shutdown did not complete; recent spans may be lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_transport_targets_match_whole_crate_names() {
        assert!(is_exporter_transport("h2"));
        assert!(is_exporter_transport("h2::proto::connection"));
        assert!(is_exporter_transport("opentelemetry_otlp::exporter"));
        assert!(is_exporter_transport("hyper_util::client"));
        assert!(!is_exporter_transport("h2o"));
        assert!(!is_exporter_transport("cloud::grpc"));
        assert!(!is_exporter_transport("twin_telemetry"));
    }

    #[test]
    fn dropping_a_guard_without_export_does_nothing() {
        drop(TelemetryGuard { provider: None });
        TelemetryGuard { provider: None }.shutdown();
    }

    #[test]
    fn dropping_an_unshut_guard_outside_a_runtime_does_not_panic() {
        let guard = TelemetryGuard { provider: Some(SdkTracerProvider::builder().build()) };
        drop(guard);
    }

    #[tokio::test]
    async fn dropping_an_unshut_guard_on_a_runtime_thread_does_not_panic() {
        let guard = TelemetryGuard { provider: Some(SdkTracerProvider::builder().build()) };
        drop(guard);
    }

    #[test]
    fn endpoint_without_runtime_is_an_error_not_a_panic() {
        let err = tracer_provider("http://127.0.0.1:4317", "test").unwrap_err();
        assert!(matches!(err, TelemetryError::NoTokioRuntime), "{err:?}");
    }

    #[tokio::test]
    async fn invalid_endpoint_is_an_exporter_error() {
        let err = tracer_provider("not a uri", "test").unwrap_err();
        match err {
            TelemetryError::Exporter { endpoint, .. } => assert_eq!(endpoint, "not a uri"),
            other => panic!("unexpected error: {other:?}"),
        }
    }
}

//! Tracing and OpenTelemetry setup shared by every City Twin binary (cloud, edge agent, viewer), and W3C
//! trace-context propagation over gRPC metadata.
//!
//! # Modules
//! - [`config`]: [`TelemetryConfig`], what a binary passes in (log filter, OTLP endpoint, service name,
//!   colours).
//! - [`subscriber`]: [`init`] installs the global `tracing` subscriber and the W3C propagator and returns a
//!   [`TelemetryGuard`] that flushes spans on [`TelemetryGuard::shutdown`]; [`TelemetryError`].
//! - [`propagation`]: [`set_parent_from_metadata`] (servers) and [`inject_into_metadata`] (clients) carry
//!   `traceparent` / `tracestate` through tonic [`MetadataMap`](tonic::metadata::MetadataMap)s.
//! - `testing` (feature `test-util`): an in-process OTLP trace receiver for tests.
//!
//! # Design
//! Log lines always go to stderr through a `tracing-subscriber` fmt layer filtered by an `EnvFilter`. When an
//! OTLP endpoint is configured, a `tracing-opentelemetry` layer turns the same (filtered) spans into
//! OpenTelemetry spans, which a batch processor exports over OTLP/gRPC from a background thread. The spans of
//! the transport crates the exporter itself uses (`h2`, `hyper`, `tonic`, `tower`, `opentelemetry*`) are kept
//! out of the OpenTelemetry layer, so an export never produces spans that need exporting.
//!
//! Without an endpoint there is no OpenTelemetry layer: spans are logged only, and
//! [`inject_into_metadata`] writes nothing (there is no trace to continue).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = twin_telemetry::init(&twin_telemetry::TelemetryConfig {
//!     log_filter: "info,cloud=debug".to_owned(),
//!     otlp_endpoint: Some("http://127.0.0.1:4317".to_owned()),
//!     service_name: "twin-cloud".to_owned(),
//!     ansi: false,
//! })?;
//! // ... serve ...
//! tokio::task::spawn_blocking(move || guard.shutdown()).await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod propagation;
pub mod runtime;
pub mod signal;
pub mod subscriber;
#[cfg(feature = "test-util")]
pub mod testing;

pub use config::TelemetryConfig;
pub use propagation::{MetadataExtractor, MetadataInjector, inject_into_metadata, set_parent_from_metadata};
pub use subscriber::{TelemetryError, TelemetryGuard, init};

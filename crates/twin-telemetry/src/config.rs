//! [`TelemetryConfig`]: what a binary passes to [`init`](crate::init), and the log filter it parses into.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{Directive, LevelFilter};

use crate::TelemetryError;

/// How a binary wants its logs and traces; built by each binary from its own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// tracing-subscriber EnvFilter directives, e.g. "info,cloud=debug".
    ///
    /// The filter applies to both the log lines and the exported spans. A blank filter means `info`.
    pub log_filter: String,
    /// OTLP/gRPC endpoint such as "http://127.0.0.1:4317"; None disables export.
    ///
    /// A blank string disables export too (so an empty environment variable can turn it off). When set,
    /// it takes precedence over the `OTEL_EXPORTER_OTLP_*ENDPOINT` environment variables; the exporter's
    /// other `OTEL_EXPORTER_OTLP_*` variables (timeout, headers, compression) still apply.
    pub otlp_endpoint: Option<String>,
    /// service.name resource attribute, e.g. "twin-cloud".
    pub service_name: String,
    /// Whether log lines use ANSI colours (binaries pass false when stderr is not a terminal or
    /// CARGO_TERM_COLOR/NO_COLOR says so).
    pub ansi: bool,
}

impl TelemetryConfig {
    /// The configured OTLP endpoint, or `None` when export is disabled (unset or blank).
    pub fn export_endpoint(&self) -> Option<&str> {
        self.otlp_endpoint.as_deref().map(str::trim).filter(|endpoint| !endpoint.is_empty())
    }

    /// Parses [`log_filter`](Self::log_filter) into an [`EnvFilter`].
    ///
    /// Unlike `EnvFilter::parse`, the error names the directive that failed to parse.
    pub fn env_filter(&self) -> Result<EnvFilter, TelemetryError> {
        // EnvFilter splits on every comma (it has no quoting), so checking each piece finds exactly the
        // directive it would reject.
        let directives = self.log_filter.split(',').map(str::trim).filter(|d| !d.is_empty()).collect::<Vec<_>>();
        for directive in &directives {
            if let Err(source) = directive.parse::<Directive>() {
                return Err(TelemetryError::InvalidFilter { directive: (*directive).to_owned(), source });
            }
        }
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse(directives.join(","))
            .map_err(|source| TelemetryError::InvalidFilter { directive: self.log_filter.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(log_filter: &str, otlp_endpoint: Option<&str>) -> TelemetryConfig {
        TelemetryConfig {
            log_filter: log_filter.to_owned(),
            otlp_endpoint: otlp_endpoint.map(str::to_owned),
            service_name: "test".to_owned(),
            ansi: false,
        }
    }

    #[test]
    fn bad_directive_is_named_in_the_error() {
        let err = config("info, cloud=loud ,twin_store=debug", None).env_filter().unwrap_err();
        match &err {
            TelemetryError::InvalidFilter { directive, .. } => assert_eq!(directive, "cloud=loud"),
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(err.to_string().contains("`cloud=loud`"), "{err}");
    }

    #[test]
    fn valid_filters_parse_and_keep_their_levels() {
        let filter = config("warn,cloud=debug, twin_store[sync]=trace", None).env_filter().unwrap();
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::TRACE));
        let filter = config("warn", None).env_filter().unwrap();
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::WARN));
    }

    #[test]
    fn blank_filter_means_info() {
        let filter = config(" , ", None).env_filter().unwrap();
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn blank_endpoint_disables_export() {
        assert_eq!(config("info", None).export_endpoint(), None);
        assert_eq!(config("info", Some("  ")).export_endpoint(), None);
        assert_eq!(config("info", Some(" http://127.0.0.1:4317 ")).export_endpoint(), Some("http://127.0.0.1:4317"));
    }
}

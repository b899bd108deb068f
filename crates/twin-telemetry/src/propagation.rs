//! W3C trace context (`traceparent` / `tracestate`) carried in tonic gRPC metadata.
//!
//! Servers call [`set_parent_from_metadata`] on a request's span before entering it; clients call
//! [`inject_into_metadata`] on the span of an outgoing call. Both use OpenTelemetry's global text-map propagator
//! once [`init`](crate::init) has installed it, and a [`TraceContextPropagator`] of their own before that (so
//! they work in tests and tools that never call `init`).

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, KeyRef, MetadataMap};
use tracing_opentelemetry::{OpenTelemetrySpanExt as _, SetParentError};

/// Set by `init` once it has installed the global propagator.
static GLOBAL_PROPAGATOR_INSTALLED: AtomicBool = AtomicBool::new(false);

/// The W3C trace-context header that carries the trace id and parent span id.
const TRACEPARENT: &str = "traceparent";

pub(crate) fn mark_global_propagator_installed() {
    GLOBAL_PROPAGATOR_INSTALLED.store(true, Ordering::Release);
}

/// Reads propagation fields from gRPC metadata: ASCII entries only; binary (`-bin`) entries and values that
/// are not visible ASCII are skipped.
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // `get` answers None for keys that are not valid ASCII metadata keys, `-bin` ones included.
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values = self.0.get_all(key).iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes propagation fields into gRPC metadata as ASCII entries, replacing existing ones; a field whose key
/// is not a valid ASCII metadata key (e.g. ends in `-bin`) or whose value is not visible ASCII is skipped.
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = AsciiMetadataKey::from_bytes(key.as_bytes()) else { return };
        let Ok(value) = AsciiMetadataValue::try_from(value) else { return };
        self.0.insert(key, value);
    }
}

fn with_propagator<T>(mut f: impl FnMut(&dyn TextMapPropagator) -> T) -> T {
    if GLOBAL_PROPAGATOR_INSTALLED.load(Ordering::Acquire) {
        opentelemetry::global::get_text_map_propagator(f)
    } else {
        f(&TraceContextPropagator::new())
    }
}

/// The remote context found in `metadata`, if it carries a valid one.
fn extract(metadata: &MetadataMap) -> Option<Context> {
    let extractor = MetadataExtractor(metadata);
    // The SDK's TraceContextPropagator does not check field lengths: it reads a 31-digit trace id as a
    // different, zero-padded id. Reject what the W3C grammar rejects before it gets there.
    if extractor.get(TRACEPARENT).is_some_and(|traceparent| !is_well_formed_traceparent(traceparent)) {
        return None;
    }
    let cx = with_propagator(|propagator| propagator.extract(&extractor));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Whether `value` follows the W3C trace-context `traceparent` grammar:
/// `version "-" trace-id "-" parent-id "-" trace-flags`, 2-32-16-2 lowercase hex digits, version `ff` invalid,
/// and for versions after `00` possibly more fields after a further `-`.
fn is_well_formed_traceparent(value: &str) -> bool {
    const LEN: usize = 55;
    let bytes = value.trim().as_bytes();
    if bytes.len() < LEN {
        return false;
    }
    let is_hex = |range: std::ops::Range<usize>| bytes[range].iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let dashes = bytes[2] == b'-' && bytes[35] == b'-' && bytes[52] == b'-';
    let fields = is_hex(0..2) && is_hex(3..35) && is_hex(36..52) && is_hex(53..55);
    let version = &bytes[0..2];
    let tail = match version {
        b"00" => bytes.len() == LEN,
        _ => bytes.len() == LEN || bytes[LEN] == b'-',
    };
    dashes && fields && version != b"ff" && tail
}

/// Makes `span` a child of the W3C `traceparent`/`tracestate` found in gRPC request metadata (no-op if absent or
/// malformed).
///
/// Call it right after creating the span, before entering it or calling [`inject_into_metadata`] on it: an
/// OpenTelemetry span is started on first use, and its parent cannot change after that. Also a no-op when no
/// OpenTelemetry layer is installed (export disabled) or the span is filtered out.
pub fn set_parent_from_metadata(span: &tracing::Span, metadata: &MetadataMap) {
    let Some(parent) = extract(metadata) else { return };
    match span.set_parent(parent) {
        Ok(()) | Err(SetParentError::LayerNotFound | SetParentError::SpanDisabled) => {}
        Err(SetParentError::AlreadyStarted) => {
            tracing::debug!("remote trace context ignored: the span was already started");
        }
    }
}

/// Writes the current context of `span` as W3C traceparent/tracestate into outgoing gRPC metadata (for clients
/// such as the edge agent).
///
/// Writes nothing when `span` has no OpenTelemetry context (export disabled, or the span is filtered out).
pub fn inject_into_metadata(span: &tracing::Span, metadata: &mut MetadataMap) {
    let cx = span.context();
    with_propagator(|propagator| propagator.inject_context(&cx, &mut MetadataInjector(metadata)));
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tonic::metadata::MetadataValue;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const REMOTE_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE_ID: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
    const PARENT_SPAN_ID: u64 = 0x00f0_67aa_0ba9_02b7;

    /// Runs `f` with a thread-local subscriber that has an OpenTelemetry layer (no exporter), as `init` would
    /// install with an endpoint, but without touching the global subscriber.
    fn with_otel_subscriber<T>(f: impl FnOnce() -> T) -> T {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("twin-telemetry-test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    fn metadata_with(entries: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for (key, value) in entries {
            metadata.insert(*key, MetadataValue::from_static(value));
        }
        metadata
    }

    fn trace_id_of(span: &tracing::Span) -> TraceId {
        span.context().span().span_context().trace_id()
    }

    #[test]
    fn server_span_continues_the_remote_trace() {
        let metadata = metadata_with(&[("traceparent", REMOTE_TRACEPARENT), ("tracestate", "city=twin")]);
        with_otel_subscriber(|| {
            let span = tracing::info_span!("handle");
            set_parent_from_metadata(&span, &metadata);
            let cx = span.context();
            let span_context = cx.span().span_context().clone();
            assert_eq!(span_context.trace_id(), TraceId::from(TRACE_ID));
            // The span is a new child, not the remote span itself.
            assert_ne!(span_context.span_id(), SpanId::from(PARENT_SPAN_ID));
            assert_eq!(span_context.trace_state().get("city"), Some("twin"));
        });
    }

    #[test]
    fn inject_then_extract_round_trips_the_trace_id() {
        with_otel_subscriber(|| {
            let client_span = tracing::info_span!("call");
            let mut outgoing = MetadataMap::new();
            inject_into_metadata(&client_span, &mut outgoing);

            let client_trace_id = trace_id_of(&client_span);
            assert_ne!(client_trace_id, TraceId::INVALID);
            let traceparent = outgoing.get("traceparent").expect("traceparent injected").to_str().unwrap();
            assert!(traceparent.contains(&client_trace_id.to_string()), "{traceparent}");

            let server_span = tracing::info_span!("handle");
            set_parent_from_metadata(&server_span, &outgoing);
            assert_eq!(trace_id_of(&server_span), client_trace_id);
        });
    }

    #[test]
    fn injected_child_keeps_the_remote_trace() {
        let incoming = metadata_with(&[("traceparent", REMOTE_TRACEPARENT)]);
        with_otel_subscriber(|| {
            let server_span = tracing::info_span!("handle");
            set_parent_from_metadata(&server_span, &incoming);
            let _entered = server_span.enter();
            let client_span = tracing::info_span!("forward");
            let mut outgoing = MetadataMap::new();
            inject_into_metadata(&client_span, &mut outgoing);
            let traceparent = outgoing.get("traceparent").unwrap().to_str().unwrap();
            assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
            assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
        });
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        for bad in [
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7x01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let metadata = metadata_with(&[("traceparent", bad)]);
            assert!(extract(&metadata).is_none(), "{bad} was accepted");
            with_otel_subscriber(|| {
                let span = tracing::info_span!("handle");
                set_parent_from_metadata(&span, &metadata);
                let trace_id = trace_id_of(&span);
                // A fresh root trace, not one derived from the bad header.
                assert_ne!(trace_id, TraceId::INVALID, "{bad}");
                assert_ne!(trace_id, TraceId::from(TRACE_ID), "{bad}");
            });
        }
    }

    #[test]
    fn traceparent_grammar() {
        assert!(is_well_formed_traceparent(REMOTE_TRACEPARENT));
        assert!(is_well_formed_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 "));
        // Later versions may append fields.
        assert!(is_well_formed_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"));
        assert!(!is_well_formed_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
        assert!(!is_well_formed_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"));
        assert!(!is_well_formed_traceparent(""));
        assert!(!is_well_formed_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é"));
    }

    #[test]
    fn missing_traceparent_is_a_no_op() {
        assert!(extract(&MetadataMap::new()).is_none());
        with_otel_subscriber(|| {
            let span = tracing::info_span!("handle");
            set_parent_from_metadata(&span, &MetadataMap::new());
            assert_ne!(trace_id_of(&span), TraceId::INVALID);
        });
    }

    #[test]
    fn works_without_any_subscriber() {
        let metadata = metadata_with(&[("traceparent", REMOTE_TRACEPARENT)]);
        let span = tracing::Span::none();
        set_parent_from_metadata(&span, &metadata);
        let mut outgoing = MetadataMap::new();
        inject_into_metadata(&span, &mut outgoing);
        assert!(outgoing.is_empty());
    }

    #[test]
    fn extractor_skips_binary_entries() {
        let mut metadata = metadata_with(&[("traceparent", REMOTE_TRACEPARENT)]);
        metadata.insert_bin("traceparent-bin", MetadataValue::from_bytes(b"\x00\x01"));
        let extractor = MetadataExtractor(&metadata);
        assert_eq!(extractor.keys(), vec!["traceparent"]);
        assert_eq!(extractor.get("traceparent-bin"), None);
        assert_eq!(extractor.get("traceparent"), Some(REMOTE_TRACEPARENT));
        assert_eq!(extractor.get_all("traceparent"), Some(vec![REMOTE_TRACEPARENT]));
        assert_eq!(extractor.get_all("absent"), None);
        assert_eq!(extract(&metadata).unwrap().span().span_context().trace_id(), TraceId::from(TRACE_ID));
    }

    #[test]
    fn injector_skips_keys_and_values_metadata_cannot_carry() {
        let mut metadata = MetadataMap::new();
        let mut injector = MetadataInjector(&mut metadata);
        injector.set("tracestate-bin", "a=b".to_owned());
        injector.set("bad key", "a=b".to_owned());
        injector.set("tracestate", "line\nbreak".to_owned());
        injector.set("traceparent", REMOTE_TRACEPARENT.to_owned());
        injector.set("traceparent", REMOTE_TRACEPARENT.to_owned());
        assert_eq!(metadata.len(), 1);
        assert_eq!(metadata.get("traceparent").unwrap(), REMOTE_TRACEPARENT);
    }
}

//! End to end: `init` with an in-process OTLP/gRPC receiver on 127.0.0.1, a span continued from a W3C
//! `traceparent` in gRPC metadata, and `TelemetryGuard::shutdown` flushing it to the receiver.
//!
//! One test only: the global subscriber can be set once per process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::time::timeout;
use tonic::metadata::{MetadataMap, MetadataValue};
use twin_telemetry::{
    TelemetryConfig, TelemetryError, init, inject_into_metadata, set_parent_from_metadata, testing::OtlpReceiver,
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: [u8; 16] = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
const PARENT_SPAN_ID: [u8; 8] = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
const SERVICE_NAME: &str = "twin-telemetry-otlp-test";
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_span_parented_from_grpc_metadata() {
    let mut receiver = OtlpReceiver::start().await.unwrap();

    let config = TelemetryConfig {
        log_filter: "info".to_owned(),
        otlp_endpoint: Some(receiver.endpoint()),
        service_name: SERVICE_NAME.to_owned(),
        ansi: false,
    };
    let guard = init(&config).expect("init");
    assert!(matches!(init(&config), Err(TelemetryError::SubscriberAlreadySet)), "second init must fail");

    let mut incoming = MetadataMap::new();
    incoming.insert("traceparent", MetadataValue::from_static(TRACEPARENT));
    let span = tracing::info_span!("handle_update", entity = "sensor-7");
    set_parent_from_metadata(&span, &incoming);
    let mut outgoing = MetadataMap::new();
    {
        let _entered = span.enter();
        tracing::info!("handling update");
        let child = tracing::info_span!("forward_to_store");
        inject_into_metadata(&child, &mut outgoing);
    }
    // A span is exported when it closes, i.e. when its last handle is dropped.
    drop(span);

    // The global propagator installed by init carries the remote trace into outgoing calls.
    let traceparent = outgoing.get("traceparent").expect("traceparent injected").to_str().unwrap().to_owned();
    assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");

    timeout(WAIT, tokio::task::spawn_blocking(move || guard.shutdown()))
        .await
        .expect("shutdown timed out")
        .expect("shutdown panicked");

    let received = receiver.span_named("handle_update", WAIT).await.expect("the span was exported");
    let exported = received.span;
    let resource_service_name = received.service_name;

    let (trace_id, parent_span_id, span_id) = (&exported.trace_id, &exported.parent_span_id, &exported.span_id);
    assert_eq!(trace_id.as_slice(), TRACE_ID.as_slice(), "trace id continued from traceparent");
    assert_eq!(parent_span_id.as_slice(), PARENT_SPAN_ID.as_slice(), "parent is the remote span");
    assert_ne!(span_id.as_slice(), PARENT_SPAN_ID.as_slice());
    assert_eq!(resource_service_name.as_deref(), Some(SERVICE_NAME));
}

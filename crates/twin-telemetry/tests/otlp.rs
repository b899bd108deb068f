//! End to end: `init` with an in-process OTLP/gRPC receiver on 127.0.0.1, a span continued from a W3C
//! `traceparent` in gRPC metadata, and `TelemetryGuard::shutdown` flushing it to the receiver.
//!
//! One test only: the global subscriber can be set once per process.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use twin_telemetry::{TelemetryConfig, TelemetryError, init, inject_into_metadata, set_parent_from_metadata};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: [u8; 16] = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
const PARENT_SPAN_ID: [u8; 8] = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
const SERVICE_NAME: &str = "twin-telemetry-otlp-test";
const WAIT: Duration = Duration::from_secs(15);

/// Forwards every export request it receives to the test.
struct Receiver {
    requests: mpsc::Sender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        // The test stops reading once it has what it needs; later batches are dropped.
        let _ = self.requests.try_send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn service_name(resource: Option<&Resource>) -> Option<&str> {
    resource?.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| match kv.value.as_ref()?.value {
        Some(Value::StringValue(ref name)) => Some(name.as_str()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_span_parented_from_grpc_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (requests_tx, mut requests_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver { requests: requests_tx }))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stop_rx.await;
            }),
    );

    let config = TelemetryConfig {
        log_filter: "info".to_owned(),
        otlp_endpoint: Some(format!("http://{addr}")),
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

    let deadline = Instant::now() + WAIT;
    let (exported, resource_service_name) = 'wait: loop {
        let request = timeout_at(deadline, requests_rx.recv())
            .await
            .expect("timed out waiting for the exported span")
            .expect("receiver stopped");
        for resource_spans in &request.resource_spans {
            for scope_spans in &resource_spans.scope_spans {
                if let Some(span) = scope_spans.spans.iter().find(|span| span.name == "handle_update") {
                    let name = service_name(resource_spans.resource.as_ref()).map(str::to_owned);
                    break 'wait (span.clone(), name);
                }
            }
        }
    };

    let Span { trace_id, parent_span_id, span_id, .. } = &exported;
    assert_eq!(trace_id.as_slice(), TRACE_ID.as_slice(), "trace id continued from traceparent");
    assert_eq!(parent_span_id.as_slice(), PARENT_SPAN_ID.as_slice(), "parent is the remote span");
    assert_ne!(span_id.as_slice(), PARENT_SPAN_ID.as_slice());
    assert_eq!(resource_service_name.as_deref(), Some(SERVICE_NAME));

    let _ = stop_tx.send(());
    timeout(WAIT, server).await.expect("receiver did not stop").unwrap().unwrap();
}

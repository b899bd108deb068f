//! Test support (feature `test-util`): an in-process OTLP/gRPC trace receiver on 127.0.0.1.

use std::{net::SocketAddr, time::Duration};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    resource::v1::Resource,
    trace::v1::Span,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::TcpListenerStream;

/// Forwards every export request it receives to the test.
struct Forwarder {
    requests: mpsc::Sender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Forwarder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        // A test stops reading once it has what it needs; later batches are dropped.
        let _ = self.requests.try_send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// An exported span and the `service.name` of its resource.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The span.
    pub span: Span,
    /// The exporting service's name.
    pub service_name: Option<String>,
}

/// An OTLP trace receiver serving on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// Where it listens; export to `http://{addr}`.
    pub addr: SocketAddr,
    requests: mpsc::Receiver<ExportTraceServiceRequest>,
    _stop: oneshot::Sender<()>,
}

impl OtlpReceiver {
    /// Starts the receiver on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, requests) = mpsc::channel(256);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Forwarder { requests: tx }))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        Ok(OtlpReceiver { addr, requests, _stop: stop })
    }

    /// The endpoint URL to configure exporters with.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits up to `wait` for a span named `name`.
    pub async fn span_named(&mut self, name: &str, wait: Duration) -> Option<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let request = tokio::time::timeout_at(deadline, self.requests.recv()).await.ok()??;
            for resource_spans in &request.resource_spans {
                for scope_spans in &resource_spans.scope_spans {
                    if let Some(span) = scope_spans.spans.iter().find(|s| s.name == name) {
                        let service_name = service_name(resource_spans.resource.as_ref()).map(str::to_owned);
                        return Some(ReceivedSpan { span: span.clone(), service_name });
                    }
                }
            }
        }
    }

    /// Every span received until none has arrived for `idle` (or `wait` has passed in all).
    pub async fn spans(&mut self, idle: Duration, wait: Duration) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while let Ok(Some(request)) =
            tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + idle), self.requests.recv()).await
        {
            for resource_spans in &request.resource_spans {
                let service_name = service_name(resource_spans.resource.as_ref()).map(str::to_owned);
                for scope_spans in &resource_spans.scope_spans {
                    out.extend(
                        scope_spans
                            .spans
                            .iter()
                            .map(|span| ReceivedSpan { span: span.clone(), service_name: service_name.clone() }),
                    );
                }
            }
        }
        out
    }
}

fn service_name(resource: Option<&Resource>) -> Option<&str> {
    resource?.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| match kv.value.as_ref()?.value {
        Some(Value::StringValue(ref name)) => Some(name.as_str()),
        _ => None,
    })
}

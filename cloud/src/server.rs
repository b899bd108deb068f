//! Wiring: catalog, store, gRPC services, health, reflection, graceful shutdown.

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{codec::CompressionEncoding, transport::server::TcpIncoming};
use twin_model::{Catalog, CatalogError};
use twin_proto::pb::{
    admin_service_server::AdminServiceServer, ingest_service_server::IngestServiceServer,
    twin_service_server::TwinServiceServer,
};
use twin_store::{Store, StoreError};

use crate::{admin::AdminSvc, config::Settings, ingest::IngestSvc, twin::TwinSvc};

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The extra catalog file could not be read.
    #[error("cannot read catalog file {path}: {source}")]
    CatalogFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The extra catalog file is invalid.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The store could not open.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// gRPC reflection could not be built.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A start-up task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The built-in catalog plus the configured extra types.
pub fn load_catalog(settings: &Settings) -> Result<Catalog, ServeError> {
    let mut catalog = Catalog::builtin();
    if let Some(path) = &settings.catalog_file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServeError::CatalogFile { path: path.display().to_string(), source })?;
        let added = catalog.extend_from_toml(&text, &path.display().to_string())?;
        tracing::info!(path = %path.display(), added, "loaded extra entity types");
    }
    Ok(catalog)
}

/// Serves the twin on `listener` until `shutdown` is cancelled, then drains streams (up to the configured
/// grace period), flushes the store and returns.
pub async fn run(settings: Settings, listener: TcpListener, shutdown: CancellationToken) -> Result<(), ServeError> {
    let catalog = load_catalog(&settings)?;
    run_with_catalog(settings, catalog, listener, shutdown).await
}

/// [`run`] with the catalog already loaded (the binary loads it before it binds, so a bad catalog file
/// fails the start before anything listens).
pub async fn run_with_catalog(
    settings: Settings,
    catalog: Catalog,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let catalog = Arc::new(catalog);
    let store_config = settings.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(store_config, catalog)).await??;
    let result = serve(&settings, listener, store.clone(), shutdown).await;
    // Flush and fsync whatever was acknowledged, whatever happened to the server.
    tokio::task::spawn_blocking(move || store.close()).await?;
    tracing::info!("store closed");
    result
}

async fn serve(
    settings: &Settings,
    listener: TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let limits = settings.limits;
    let max = limits.max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(twin_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(twin_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Streams end when `streams` is cancelled; the server stops accepting when `shutdown` is.
    let streams = CancellationToken::new();
    let ingest = IngestServiceServer::new(IngestSvc { store: store.clone(), limits, shutdown: streams.clone() })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Zstd);
    let twin = TwinServiceServer::new(TwinSvc { store: store.clone(), shutdown: streams.clone() })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);
    let admin = AdminServiceServer::new(AdminSvc { store: store.clone() })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
    health_reporter.set_serving::<IngestServiceServer<IngestSvc>>().await;
    health_reporter.set_serving::<TwinServiceServer<TwinSvc>>().await;
    health_reporter.set_serving::<AdminServiceServer<AdminSvc>>().await;

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "serving");
    let grace = settings.shutdown_grace;
    let stopping = {
        let shutdown = shutdown.clone();
        let streams = streams.clone();
        let health_reporter = health_reporter.clone();
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: draining streams");
            health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            streams.cancel();
        }
    };
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ingest)
        .add_service(twin)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming(listener), stopping);
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r?,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "streams did not drain within the grace period; stopping anyway");
        }
    }
    Ok(())
}

/// Accepted connections with `TCP_NODELAY`. tonic sets it only on listeners it binds itself; without it,
/// Nagle's algorithm holds back the tail of an ack or a watch message until the peer's delayed ACK
/// (up to 40 ms on Linux), which showed as a 40-50 ms floor under the end-to-end freshness (issue 6).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use futures::StreamExt;

    /// Regression (issue 6): connections accepted through `serve_with_incoming` had Nagle's algorithm on.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.expect("a connection").unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}

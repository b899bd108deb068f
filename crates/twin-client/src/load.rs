use std::time::{Duration, Instant};

use futures::StreamExt;

use tonic::transport::{Channel, Endpoint};
use twin_model::{Catalog, Entity};
use twin_proto::{convert::entity_to_pb, pb};

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The cloud address is not a URL.
    #[error("invalid cloud address {url:?}: {source}")]
    BadUrl {
        /// The address given.
        url: String,
        /// Why it is invalid.
        source: tonic::transport::Error,
    },
    /// The cloud could not be reached.
    #[error("cannot reach the cloud at {url} within {waited:?}: {source}")]
    Unreachable {
        /// The address.
        url: String,
        /// How long connecting was retried.
        waited: Duration,
        /// The last error.
        source: tonic::transport::Error,
    },
    /// The cloud refused a chunk.
    #[error("the cloud refused entities {first}..{end}: {status}")]
    Refused {
        /// Index of the chunk's first entity.
        first: usize,
        /// One past its last.
        end: usize,
        /// The status returned.
        status: tonic::Status,
    },
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadSummary {
    /// Entities created or changed.
    pub loaded: u64,
    /// Entities already stored as sent.
    pub unchanged: u64,
    /// Attribute values that changed the stored state.
    pub attributes_applied: u64,
    /// Rejections the cloud reported (entity or attribute), with its message.
    pub rejected: Vec<pb::Rejection>,
    /// The store revision after the load.
    pub revision: u64,
}

/// A channel to `url` (e.g. `http://127.0.0.1:50051`), retrying for up to `wait` while the cloud starts.
pub async fn connect(url: &str, wait: Duration) -> Result<Channel, LoadError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| LoadError::BadUrl { url: url.to_owned(), source })?
        .connect_timeout(Duration::from_secs(5));
    let started = Instant::now();
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(source) if started.elapsed() >= wait => {
                return Err(LoadError::Unreachable { url: url.to_owned(), waited: wait, source });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How many LoadEntities calls are in flight at once: enough to overlap encoding and transfer with the
/// cloud's commit, few enough not to queue much behind it.
const CALLS_IN_FLIGHT: usize = 4;

/// Loads `entities` in chunks of `chunk` through `AdminService.LoadEntities`, a few calls in flight, calling
/// `progress(done, total)` as chunks complete. Units come from `catalog`. Rejections are collected, not
/// fatal; a refused chunk (e.g. the cloud went away) stops the load.
pub async fn load_entities(
    channel: Channel,
    catalog: &Catalog,
    entities: &[Entity],
    chunk: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<LoadSummary, LoadError> {
    let admin = pb::admin_service_client::AdminServiceClient::new(channel)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let chunk = chunk.max(1);
    let calls = entities.chunks(chunk).enumerate().map(|(n, part)| {
        let first = n * chunk;
        let wire: Vec<pb::Entity> = part
            .iter()
            .map(|e| {
                let def = catalog.get(&e.header.entity_type);
                entity_to_pb(e, |a| def.and_then(|d| d.attributes.get(a)).and_then(|a| a.unit.as_deref()))
            })
            .collect();
        let mut admin = admin.clone();
        async move {
            let end = first + wire.len();
            let response = admin
                .load_entities(pb::LoadEntitiesRequest { entities: wire })
                .await
                .map_err(|status| LoadError::Refused { first, end, status })?
                .into_inner();
            Ok::<_, LoadError>((first, end, response))
        }
    });
    let mut responses = futures::stream::iter(calls).buffered(CALLS_IN_FLIGHT);
    let mut summary = LoadSummary::default();
    while let Some(result) = responses.next().await {
        let (first, end, response) = result?;
        summary.loaded += u64::from(response.loaded);
        summary.unchanged += u64::from(response.unchanged);
        summary.attributes_applied += u64::from(response.attributes_applied);
        summary.revision = summary.revision.max(response.revision);
        summary.rejected.extend(response.rejected.into_iter().map(|mut r| {
            r.index += first as u32;
            r
        }));
        progress(end, entities.len());
    }
    Ok(summary)
}

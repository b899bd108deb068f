//! `TwinService`: Get, BatchGet, List, History and Watch.

use std::pin::Pin;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use twin_model::{AttrName, EntityId, now_unix_ms};
use twin_proto::pb;
use twin_store::Store;

use crate::{
    request::{self, Selection, page_token},
    status, watch,
};

/// Default and largest List page size.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest List page; larger requests are served this many.
pub const MAX_PAGE_SIZE: u32 = 5_000;
/// The most ids in one BatchGet.
pub const MAX_BATCH_GET: usize = 1_000;
/// Default and largest number of raw history points.
pub const DEFAULT_HISTORY_LIMIT: u32 = 1_000;
/// The largest number of raw history points per request.
pub const MAX_HISTORY_LIMIT: u32 = 100_000;
/// The most buckets a History request may span.
pub const MAX_HISTORY_BUCKETS: i64 = 1_000_000;

/// The twin query service.
#[derive(Debug, Clone)]
pub struct TwinSvc {
    pub(crate) store: Store,
    pub(crate) shutdown: CancellationToken,
}

fn entity_id(field: &str, s: &str) -> Result<EntityId, Status> {
    EntityId::new(s).map_err(|e| status::from_id(field, e))
}

/// Runs blocking store work (sled reads) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Status> + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(format!("query task failed: {e}")))?
}

type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::twin_service_server::TwinService for TwinSvc {
    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Entity>, Status> {
        let r = request.into_inner();
        let id = entity_id("id", &r.id)?;
        let selection = Selection::from_mask(r.field_mask)?;
        let catalog = self.store.catalog();
        self.store
            .with_state(|s| s.get(&id).map(|e| selection.render(e, catalog)))
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("entity {id} not found")))
    }

    async fn batch_get(&self, request: Request<pb::BatchGetRequest>) -> Result<Response<pb::BatchGetResponse>, Status> {
        let r = request.into_inner();
        if r.ids.len() > MAX_BATCH_GET {
            return Err(Status::invalid_argument(format!("ids: {} given; at most {MAX_BATCH_GET}", r.ids.len())));
        }
        let ids = r.ids.iter().map(|id| entity_id("ids", id)).collect::<Result<Vec<_>, _>>()?;
        let selection = Selection::from_mask(r.field_mask)?;
        let catalog = self.store.catalog();
        let mut out = pb::BatchGetResponse::default();
        self.store.with_state(|s| {
            for id in ids {
                match s.get(&id) {
                    Some(e) => out.entities.push(selection.render(e, catalog)),
                    None => out.missing_ids.push(id.to_string()),
                }
            }
        });
        Ok(Response::new(out))
    }

    async fn list(&self, request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let r = request.into_inner();
        let filter = request::filter(r.filter.clone(), self.store.catalog())?;
        let after = page_token::decode(&r.filter, &r.page_token)?;
        let selection = Selection::from_mask(r.field_mask)?;
        let size = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        } as usize;
        let catalog = self.store.catalog();
        let (entities, next, revision) = self.store.with_state(|s| {
            let page = twin_store::query::list(s, &filter, after.as_deref(), size);
            let entities: Vec<pb::Entity> = page.entities.iter().map(|e| selection.render(e, catalog)).collect();
            (entities, page.next_after, page.revision)
        });
        let next_page_token = next.map(|last| page_token::encode(&r.filter, &last)).unwrap_or_default();
        Ok(Response::new(pb::ListResponse { entities, next_page_token, revision }))
    }

    async fn history(&self, request: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let r = request.into_inner();
        let entity = entity_id("entity_id", &r.entity_id)?;
        let attribute = AttrName::new(&r.attribute).map_err(|e| status::from_id("attribute", e))?;
        let to = if r.to_unix_ms == 0 { now_unix_ms() + 1 } else { r.to_unix_ms };
        let from = r.from_unix_ms;
        if from > to {
            return Err(Status::invalid_argument(format!("from_unix_ms {from} is after to_unix_ms {to}")));
        }
        let store = self.store.clone();
        if r.bucket_ms < 0 {
            return Err(Status::invalid_argument("bucket_ms must not be negative"));
        }
        if r.bucket_ms > 0 {
            let spans = (to - from) / r.bucket_ms;
            if spans > MAX_HISTORY_BUCKETS {
                return Err(Status::invalid_argument(format!(
                    "bucket_ms {} over this window makes {spans} buckets; at most {MAX_HISTORY_BUCKETS}",
                    r.bucket_ms
                )));
            }
            let width = r.bucket_ms;
            let buckets = blocking(move || {
                store.history_buckets(&entity, &attribute, from, to, width).map_err(status::from_store)
            })
            .await?;
            let buckets = buckets
                .into_iter()
                .map(|b| pb::HistoryBucket {
                    start_unix_ms: b.start,
                    count: b.count,
                    min: b.min,
                    max: b.max,
                    avg: b.avg,
                })
                .collect();
            return Ok(Response::new(pb::HistoryResponse { buckets, ..Default::default() }));
        }
        let limit = match r.limit {
            0 => DEFAULT_HISTORY_LIMIT,
            n => n.min(MAX_HISTORY_LIMIT),
        } as usize;
        let points =
            blocking(move || store.history_points(&entity, &attribute, from, to, limit).map_err(status::from_store))
                .await?;
        Ok(Response::new(pb::HistoryResponse {
            points: points
                .points
                .iter()
                .map(|(t, v)| pb::HistoryPoint { observed_at_unix_ms: *t, value: Some(v.into()) })
                .collect(),
            buckets: Vec::new(),
            truncated: points.truncated,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let span = tracing::info_span!("watch");
        twin_telemetry::set_parent_from_metadata(&span, request.metadata());
        let deadline = request::deadline(request.metadata())?;
        let r = request.into_inner();
        if r.initial_snapshot && r.after_revision.is_some() {
            return Err(Status::invalid_argument("initial_snapshot and after_revision cannot be combined"));
        }
        let filter = request::filter(r.filter, self.store.catalog())?;
        let start = match (r.after_revision, r.initial_snapshot) {
            (Some(after), _) => {
                let current = self.store.revision();
                if after > current {
                    return Err(status::from_store(twin_store::StoreError::ResumeAhead { requested: after, current }));
                }
                watch::Start::After(after)
            }
            (None, true) => watch::Start::Snapshot,
            (None, false) => watch::Start::Now,
        };
        let rx = watch::spawn(self.store.clone(), filter, start, deadline, self.shutdown.clone(), span.clone());
        span.in_scope(|| tracing::debug!("watch started"));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

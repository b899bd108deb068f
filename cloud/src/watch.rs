//! Watch streams: one task per watcher, fed from the store's live broadcast and, for resumes, from the
//! change log.
//!
//! The task subscribes to the broadcast *before* it reads the snapshot, the log or the durable revision,
//! so no group can fall between the two; groups at or below what was already delivered are skipped by
//! revision. A watcher whose client reads too slowly falls behind the broadcast buffer: ingest never
//! waits for it; it is ended with ABORTED and told the revision to resume after.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;
use twin_model::{AttrName, AttributeState, Catalog, Entity, Reported};
use twin_proto::{
    convert::{attribute_to_pb, header_to_pb},
    pb::{self, change::Kind},
};
use twin_store::{Change, Filter, Store, changes::SharedChanges, state::State};

use crate::request::Selection;

/// Messages buffered per watcher between its task and the gRPC stream.
const CHANNEL_MESSAGES: usize = 16;
/// Entities per snapshot message.
const SNAPSHOT_CHUNK: usize = 500;
/// Changes read from the log per step when resuming.
const REPLAY_CHUNK: usize = 10_000;
/// How often a watcher with nothing matching still hears the current revision.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// From the next change.
    Now,
    /// From the change after this revision.
    After(u64),
    /// With every matching entity first.
    Snapshot,
}

type Tx = mpsc::Sender<Result<pb::WatchResponse, Status>>;

/// Starts a watcher task; its messages come out of the returned receiver.
pub fn spawn(
    store: Store,
    filter: Filter,
    start: Start,
    deadline: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
    span: tracing::Span,
) -> mpsc::Receiver<Result<pb::WatchResponse, Status>> {
    let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
    let live = store.subscribe();
    let watcher = Watcher { store, filter, tx };
    tokio::spawn(async move { watcher.run(live, start, deadline, shutdown).await }.instrument(span));
    rx
}

struct Watcher {
    store: Store,
    filter: Filter,
    tx: Tx,
}

/// The client is gone; stop quietly.
struct Gone;

impl Watcher {
    async fn run(
        self,
        mut live: broadcast::Receiver<SharedChanges>,
        start: Start,
        deadline: Option<tokio::time::Instant>,
        shutdown: CancellationToken,
    ) {
        let first = match start {
            Start::Now => Ok(self.store.durable_revision()),
            Start::Snapshot => self.snapshot().await,
            Start::After(after) => self.replay(after).await,
        };
        let Ok(mut last) = first else { return };
        let mut last_sent = Instant::now();
        loop {
            let group = tokio::select! {
                _ = shutdown.cancelled() => {
                    let msg = format!("the server is shutting down; resume with after_revision={last}");
                    let _ = self.tx.send(Err(Status::unavailable(msg))).await;
                    return;
                }
                _ = self.tx.closed() => return,
                () = crate::request::until(deadline) => {
                    let msg = format!("the client's deadline passed; resume with after_revision={last}");
                    let _ = self.tx.send(Err(Status::deadline_exceeded(msg))).await;
                    return;
                }
                r = live.recv() => r,
            };
            match group {
                Ok(group) if group.revision <= last => {}
                Ok(group) => {
                    let changes = self.render(group.changes.iter().filter(|c| c.revision() > last));
                    last = group.revision;
                    if !changes.is_empty() || last_sent.elapsed() >= PROGRESS_EVERY {
                        let msg = pb::WatchResponse { changes, revision: last, snapshot_complete: false };
                        if self.send(msg).await.is_err() {
                            return;
                        }
                        last_sent = Instant::now();
                    }
                }
                Err(broadcast::error::RecvError::Lagged(groups)) => {
                    tracing::info!(groups, last, "watcher fell behind; telling it to resync");
                    let msg = format!(
                        "watch fell behind: {groups} change groups were dropped after revision {last}; \
                         resume with after_revision={last}, or re-list and watch again"
                    );
                    let _ = self.tx.send(Err(Status::aborted(msg))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = self.tx.send(Err(Status::unavailable("the store closed"))).await;
                    return;
                }
            }
        }
    }

    async fn send(&self, msg: pb::WatchResponse) -> Result<(), Gone> {
        self.tx.send(Ok(msg)).await.map_err(|_| Gone)
    }

    async fn fail(&self, status: Status) -> Gone {
        let _ = self.tx.send(Err(status)).await;
        Gone
    }

    /// Sends every matching entity; returns the snapshot's revision.
    async fn snapshot(&self) -> Result<u64, Gone> {
        let catalog = self.store.catalog();
        let everything = Selection::default_all();
        let (entities, revision) = self.store.with_state(|s| {
            let matching: Vec<pb::Entity> =
                s.iter().filter(|e| self.filter.matches(e)).map(|e| everything.render(e, catalog)).collect();
            (matching, s.revision)
        });
        let mut chunks = entities.chunks(SNAPSHOT_CHUNK).peekable();
        if chunks.peek().is_none() {
            return self
                .send(pb::WatchResponse { changes: vec![], revision, snapshot_complete: true })
                .await
                .map(|()| revision);
        }
        while let Some(chunk) = chunks.next() {
            let changes = chunk
                .iter()
                .map(|e| pb::Change {
                    kind: Kind::Snapshot as i32,
                    revision: e.revision,
                    entity_id: e.id.clone(),
                    entity_type: e.r#type.clone(),
                    entity: Some(e.clone()),
                    attributes: Vec::new(),
                })
                .collect();
            let snapshot_complete = chunks.peek().is_none();
            self.send(pb::WatchResponse { changes, revision, snapshot_complete }).await?;
        }
        Ok(revision)
    }

    /// Sends the logged changes after `after`, up to the durable revision; returns the last revision sent.
    async fn replay(&self, mut after: u64) -> Result<u64, Gone> {
        loop {
            let ceiling = self.store.durable_revision();
            if after >= ceiling {
                return Ok(after);
            }
            let store = self.store.clone();
            let read = tokio::task::spawn_blocking(move || store.changes_after(after, REPLAY_CHUNK)).await;
            let changes = match read {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(self.fail(crate::status::from_store(e)).await),
                Err(e) => return Err(self.fail(Status::internal(format!("watch replay failed: {e}"))).await),
            };
            let upto: Vec<&Change> = changes.iter().take_while(|c| c.revision() <= ceiling).collect();
            let Some(last) = upto.last().map(|c| c.revision()) else { return Ok(after) };
            let rendered = self.render(upto.into_iter());
            self.send(pb::WatchResponse { changes: rendered, revision: last, snapshot_complete: false }).await?;
            after = last;
        }
    }

    /// The changes that match the filter, in wire form. Attribute changes are matched against the
    /// entity's current state; consecutive ones of one entity share a [`pb::Change`] (see the proto): a fifth
    /// of the messages' size and allocations, on both ends, when a station reports five values at once.
    fn render<'a>(&self, changes: impl Iterator<Item = &'a Change>) -> Vec<pb::Change> {
        let catalog = self.store.catalog();
        self.store.with_state(|s| {
            let mut out: Vec<pb::Change> = Vec::new();
            for c in changes {
                if let Change::Attribute { revision, entity: id, attribute, reported } = c
                    && let Some(last) = out.last_mut()
                    && last.kind == Kind::Attributes as i32
                    && last.entity_id == id.as_str()
                    && !last.attributes.iter().any(|a| a.name == attribute.as_str())
                    && let Some(entity) = s.get(id)
                {
                    // The same entity as the change before, so the filter matched it already.
                    last.attributes.push(render_attribute(catalog, entity, attribute, reported));
                    last.revision = *revision;
                    continue;
                }
                out.extend(render_change(s, catalog, &self.filter, c));
            }
            out
        })
    }
}

fn render_change(s: &State, catalog: &Catalog, filter: &Filter, c: &Change) -> Option<pb::Change> {
    let entity = s.get(c.entity())?;
    if !filter.matches(entity) {
        return None;
    }
    let entity_type = entity.header.entity_type.to_string();
    Some(match c {
        Change::Upsert { revision, header } => pb::Change {
            kind: Kind::Upsert as i32,
            revision: *revision,
            entity_id: header.id.to_string(),
            entity_type,
            entity: Some(header_to_pb(header, *revision)),
            attributes: Vec::new(),
        },
        Change::Attribute { revision, entity: id, attribute, reported } => pb::Change {
            kind: Kind::Attributes as i32,
            revision: *revision,
            entity_id: id.to_string(),
            entity_type,
            entity: None,
            attributes: vec![render_attribute(catalog, entity, attribute, reported)],
        },
    })
}

fn render_attribute(catalog: &Catalog, entity: &Entity, attribute: &AttrName, reported: &Reported) -> pb::Attribute {
    let unit = catalog
        .get(&entity.header.entity_type)
        .and_then(|d| d.attributes.get(attribute))
        .and_then(|a| a.unit.as_deref());
    let state = AttributeState { reported: Some(reported.clone()), desired: None };
    attribute_to_pb(attribute, &state, unit)
}

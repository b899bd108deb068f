//! The committer thread: the only writer. See the crate docs for the guarantees it gives.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use parking_lot::RwLock;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use twin_model::{AttrName, Catalog, EntityId, Reported, UnixMs, now_unix_ms};

use crate::{
    Durability, StoreError,
    changes::{Change, ChangeGroup, MAX_CHANGES_PER_RECORD, SharedChanges},
    durability::FileSyncer,
    keys,
    state::State,
    write::{
        MAX_CLOCK_AHEAD_MS, MIN_OBSERVED_AT, RejectReason, Rejected, Target, WriteBatch, WriteOutcome, WriteSummary,
    },
};

/// A write waiting for the committer.
#[derive(Debug)]
pub(crate) struct Request {
    pub batch: WriteBatch,
    pub reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// Encodes an in-memory record. Our records are plain data that postcard always encodes.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    postcard::to_allocvec(value).expect("postcard encodes plain in-memory records")
}

/// The committer's state; runs on its own thread.
#[derive(Debug)]
pub(crate) struct Committer {
    pub db: sled::Db,
    pub state: Arc<RwLock<State>>,
    pub catalog: Arc<Catalog>,
    pub durability: Durability,
    pub syncer: FileSyncer,
    pub changes_tx: broadcast::Sender<SharedChanges>,
    pub failed: Arc<AtomicBool>,
    pub durable_revision: Arc<AtomicU64>,
    pub max_group: usize,
    pub history_retention_ms: i64,
    /// Attributes changed in the current group; their state records are written once per group.
    pub dirty: HashSet<(EntityId, AttrName)>,
    /// Changes of the current group.
    pub changes: Vec<Change>,
}

impl Committer {
    /// Commits groups until every sender is gone, then flushes.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(self.max_group);
        while let Some(first) = rx.blocking_recv() {
            group.push(first);
            while group.len() < self.max_group {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
        }
        if let Err(e) = self.make_durable() {
            tracing::error!(error = %e, "final flush of the store failed");
        }
        tracing::debug!("committer stopped");
    }

    fn make_durable(&mut self) -> Result<(), StoreError> {
        self.db.flush()?;
        if self.durability == Durability::Fsync {
            self.syncer.sync()?;
        }
        Ok(())
    }

    fn commit(&mut self, group: &mut Vec<Request>) {
        let _span = tracing::trace_span!("commit_group", batches = group.len()).entered();
        if self.failed.load(Ordering::Acquire) {
            for req in group.drain(..) {
                let _ = req.reply.send(Err(StoreError::Failed));
            }
            return;
        }
        let now = now_unix_ms();
        let mut sled_batch = sled::Batch::default();
        let mut replies = Vec::with_capacity(group.len());
        let state_lock = self.state.clone();
        let revision = {
            let mut state = state_lock.write();
            let before = state.revision;
            for req in group.drain(..) {
                let outcome = self.apply(&mut state, req.batch, now, &mut sled_batch);
                replies.push((req.reply, outcome));
            }
            for (id, attribute) in self.dirty.drain() {
                if let Some(a) = state.get(&id).and_then(|e| e.attributes.get(&attribute)) {
                    sled_batch.insert(keys::attribute(&id, &attribute), encode(a));
                }
            }
            if state.revision != before {
                sled_batch.insert(keys::REVISION, &state.revision.to_be_bytes());
            }
            state.revision
        };
        for chunk in self.changes.chunks(MAX_CHANGES_PER_RECORD) {
            sled_batch.insert(&keys::changelog(chunk[0].revision()), encode(chunk));
        }
        let result = self.db.apply_batch(sled_batch).map_err(StoreError::from).and_then(|()| self.make_durable());
        match result {
            Ok(()) => {
                // Before the broadcast, so a watcher that subscribes and then reads this never misses a group.
                self.durable_revision.store(revision, Ordering::Release);
                if !self.changes.is_empty() {
                    let changes = std::mem::take(&mut self.changes);
                    // No receiver is fine: nobody is watching.
                    let _ = self.changes_tx.send(Arc::new(ChangeGroup { revision, changes }));
                }
                for (reply, outcome) in replies {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; the store stops accepting writes");
                self.failed.store(true, Ordering::Release);
                self.changes.clear();
                for (reply, _) in replies {
                    let _ = reply.send(Err(StoreError::Failed));
                }
            }
        }
    }

    /// Applies one batch to memory and to the pending sled batch.
    fn apply(&mut self, state: &mut State, batch: WriteBatch, now: UnixMs, out: &mut sled::Batch) -> WriteOutcome {
        if let Some((edge, seq)) = &batch.origin {
            let last = state.edge_seq(edge);
            if *seq <= last {
                return WriteOutcome::Duplicate { last_applied_seq: last, revision: state.revision };
            }
        }
        let mut summary = WriteSummary::default();
        let mut revision = state.revision;
        for (i, header) in batch.upserts.into_iter().enumerate() {
            let reject = |reason| Rejected { target: Target::Upsert(i), reason };
            if let Err(violation) = self.catalog.check_type(&header.entity_type) {
                summary.rejected.push(reject(RejectReason::Catalog { entity: header.id, violation }));
                continue;
            }
            match state.get(&header.id) {
                Some(e) if e.header.entity_type != header.entity_type => {
                    summary.rejected.push(reject(RejectReason::TypeChange {
                        existing: e.header.entity_type.clone(),
                        requested: header.entity_type,
                        entity: header.id,
                    }));
                }
                Some(e) if e.header == header => summary.upserts_unchanged += 1,
                _ => {
                    revision += 1;
                    out.insert(keys::entity(&header.id), encode(&(revision, &header)));
                    self.changes.push(Change::Upsert { revision, header: header.clone() });
                    state.put_header(header, revision);
                    summary.upserts_changed += 1;
                }
            }
        }
        let history_floor = now - self.history_retention_ms;
        for (i, u) in batch.updates.into_iter().enumerate() {
            let reject = |reason| Rejected { target: Target::Update(i), reason };
            if u.observed_at < MIN_OBSERVED_AT || u.observed_at > now + MAX_CLOCK_AHEAD_MS {
                summary.rejected.push(reject(RejectReason::InvalidTimestamp {
                    entity: u.entity,
                    attribute: u.attribute,
                    observed_at: u.observed_at,
                }));
                continue;
            }
            let Some(entity) = state.get_mut(&u.entity) else {
                summary.rejected.push(reject(RejectReason::UnknownEntity(u.entity)));
                continue;
            };
            let value = match self.catalog.check_value(&entity.header.entity_type, &u.attribute, u.value) {
                Ok(v) => v,
                Err(violation) => {
                    summary.rejected.push(reject(RejectReason::Catalog { entity: u.entity, violation }));
                    continue;
                }
            };
            if u.observed_at >= history_floor {
                out.insert(keys::history(&u.entity, &u.attribute, u.observed_at), encode(&value));
            }
            let slot = entity.attributes.entry(u.attribute.clone()).or_default();
            if slot.reported.as_ref().is_some_and(|r| r.observed_at >= u.observed_at) {
                summary.stale += 1;
                continue;
            }
            revision += 1;
            let reported = Reported { value, observed_at: u.observed_at, received_at: now, revision };
            slot.reported = Some(reported.clone());
            entity.revision = revision;
            self.changes.push(Change::Attribute {
                revision,
                entity: u.entity.clone(),
                attribute: u.attribute.clone(),
                reported,
            });
            self.dirty.insert((u.entity, u.attribute));
            summary.applied += 1;
        }
        if let Some((edge, seq)) = batch.origin {
            out.insert(keys::edge(&edge), &seq.to_be_bytes());
            state.set_edge_seq(edge, seq);
        }
        state.revision = revision;
        summary.revision = revision;
        WriteOutcome::Applied(summary)
    }
}

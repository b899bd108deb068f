use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc as std_mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};
use twin_fsync::FileSyncer;

use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot};
use twin_model::{AttributeState, Catalog, EdgeId, Entity, EntityId, EntityStatic, UnixMs};

use crate::{
    Change, EdgeProgress, StoreConfig, StoreError,
    changes::StalePoint,
    changes::{LogCompressor, SharedChanges, decode_log_record},
    commit::{Checkpoint, Committer, DirtyAttributes, Request, checkpoint_thread},
    history,
    history::HistoryWriter,
    keys,
    state::State,
    write::{WriteBatch, WriteOutcome},
};

/// A write queued by [`Store::submit`].
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<WriteOutcome, StoreError>>);

impl PendingWrite {
    /// Waits until the batch is applied and durable.
    pub async fn wait(self) -> Result<WriteOutcome, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// The twin state store. Cheap to clone; every clone is the same store. See the crate docs.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    state: Arc<RwLock<State>>,
    catalog: Arc<Catalog>,
    config: StoreConfig,
    writer: RwLock<Option<mpsc::Sender<Request>>>,
    changes_tx: broadcast::Sender<SharedChanges>,
    failed: Arc<AtomicBool>,
    durable_revision: Arc<AtomicU64>,
    history: Arc<Mutex<HistoryWriter>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_retention: Mutex<Option<std_mpsc::Sender<()>>>,
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt { key: keys::escaped(key), reason: e.to_string() })
}

fn utf8_key(key: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(key).map_err(|e| StoreError::Corrupt { key: keys::escaped(key), reason: e.to_string() })
}

fn parse<T: std::str::FromStr>(key: &[u8], s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| StoreError::Corrupt { key: keys::escaped(key), reason: e.to_string() })
}

impl Store {
    /// Opens (or creates) the store, recovers the latest state from disk and starts the committer and the
    /// retention threads.
    pub fn open(config: StoreConfig, catalog: Arc<Catalog>) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_bytes)
            // The committer flushes every group itself; sled's own background flush would only add I/O.
            .flush_every_ms(None)
            .open()?;
        let recovered = recover(&db, twin_model::now_unix_ms().saturating_sub(config.history_retention_ms()))?;
        let state = Arc::new(RwLock::new(recovered.state));
        let history = Arc::new(Mutex::new(recovered.history));
        let syncer = FileSyncer::new(&config.path)?;
        let (checkpoint_jobs, jobs_rx) = std_mpsc::channel();
        let (done_tx, checkpoint_done) = std_mpsc::channel();
        let checkpoint_hurry = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let (db, syncer, durability) = (db.clone(), FileSyncer::new(&config.path)?, config.durability);
            let (state, history, hurry) = (state.clone(), history.clone(), checkpoint_hurry.clone());
            std::thread::Builder::new()
                .name("twin-checkpoint".into())
                .spawn(move || checkpoint_thread(db, syncer, durability, state, history, hurry, jobs_rx, done_tx))?
        };
        let (tx, rx) = mpsc::channel(config.queue_batches.max(1));
        let (changes_tx, _) = broadcast::channel(config.watch_buffer_groups.max(1));
        let failed = Arc::new(AtomicBool::new(false));
        let durable_revision = Arc::new(AtomicU64::new(state.read().revision));
        let mut committer = Committer {
            db: db.clone(),
            state: state.clone(),
            catalog: catalog.clone(),
            durability: config.durability,
            syncer,
            changes_tx: changes_tx.clone(),
            failed: failed.clone(),
            durable_revision: durable_revision.clone(),
            max_group: config.max_group_batches.max(1),
            history_retention_ms: config.history_retention_ms(),
            checkpoint_interval: config.checkpoint_interval,
            history: history.clone(),
            checkpoint: recovered.checkpoint,
            last_checkpoint: std::time::Instant::now(),
            checkpoint_jobs: Some(checkpoint_jobs),
            checkpoint_done,
            checkpoint_in_flight: false,
            checkpoint_hurry,
            stale_seq: recovered.stale_seq,
            dirty: recovered.dirty,
            changes: Vec::new(),
            log_compressor: LogCompressor::new(),
            stale: Vec::new(),
        };
        if recovered.replayed > 0 {
            // Fold the replayed log into a checkpoint now, so the next start does not replay it again.
            committer.write_checkpoint()?;
            tracing::info!(changes = recovered.replayed, "replayed the change log after the last checkpoint");
        }
        let committer = std::thread::Builder::new().name("twin-committer".into()).spawn(move || committer.run(rx))?;
        let (stop_tx, stop_rx) = std_mpsc::channel();
        let inner = Arc::new(Inner {
            db,
            state,
            catalog,
            config,
            writer: RwLock::new(Some(tx)),
            changes_tx,
            failed,
            durable_revision,
            history,
            threads: Mutex::new(vec![committer, checkpointer]),
            stop_retention: Mutex::new(Some(stop_tx)),
        });
        let store = Store { inner };
        let retention = store.clone();
        let handle = std::thread::Builder::new()
            .name("twin-retention".into())
            .spawn(move || retention.retention_loop(stop_rx))?;
        store.inner.threads.lock().push(handle);
        let (entities, revision) = store.with_state(|s| (s.len(), s.revision));
        tracing::info!(path = %store.inner.config.path.display(), entities, revision, "store open");
        Ok(store)
    }

    /// Applies a batch atomically and returns once it is durable (see [`crate::Durability`]).
    pub async fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError> {
        self.submit(batch).await?.wait().await
    }

    /// Queues a batch for the committer and returns as soon as it is queued (waiting only while the queue
    /// is full). Batches are applied in the order they were submitted, so a caller that pipelines several
    /// batches keeps their order by submitting them one after the other.
    pub async fn submit(&self, batch: WriteBatch) -> Result<PendingWrite, StoreError> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        let tx = self.inner.writer.read().clone().ok_or(StoreError::Closed)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request::Write { batch, reply }).await.map_err(|_| StoreError::Closed)?;
        Ok(PendingWrite(rx))
    }

    /// The highest revision that is durable and has been broadcast to [`Store::subscribe`]rs.
    pub fn durable_revision(&self) -> u64 {
        self.inner.durable_revision.load(Ordering::Acquire)
    }

    /// Runs `f` over the latest state under a read lock. Keep `f` short: the committer waits for it.
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.inner.state.read())
    }

    /// A copy of one entity.
    pub fn get(&self, id: &str) -> Option<Entity> {
        self.with_state(|s| s.get(id).cloned())
    }

    /// The catalog updates are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The highest revision applied.
    pub fn revision(&self) -> u64 {
        self.with_state(|s| s.revision)
    }

    /// The highest batch sequence number applied for an edge (0 if none).
    pub fn edge_seq(&self, edge: &EdgeId) -> u64 {
        self.with_state(|s| s.edge_seq(edge))
    }

    /// What an edge has delivered: its highest applied seq and the updates its applied batches carried.
    pub fn edge_progress(&self, edge: &EdgeId) -> EdgeProgress {
        self.with_state(|s| s.edge_progress(edge))
    }

    /// Live changes, one message per committed group, delivered only once durable. A receiver that falls
    /// more than `watch_buffer_groups` groups behind gets `Lagged` and must resync.
    pub fn subscribe(&self) -> broadcast::Receiver<SharedChanges> {
        self.inner.changes_tx.subscribe()
    }

    /// Up to about `max` changes with a revision above `after`, in revision order, from the change log.
    /// Blocking (reads sled): call from a blocking context.
    pub fn changes_after(&self, after: u64, max: usize) -> Result<Vec<Change>, StoreError> {
        let current = self.revision();
        if after > current {
            return Err(StoreError::ResumeAhead { requested: after, current });
        }
        if after == current {
            return Ok(Vec::new());
        }
        let db = &self.inner.db;
        let oldest = match db.scan_prefix([keys::CHANGELOG]).next() {
            Some(entry) => keys::u64_from(&entry?.0[1..]).unwrap_or(0),
            None => current + 1,
        };
        if oldest > after + 1 {
            return Err(StoreError::ResumeTooOld { requested: after, oldest });
        }
        let start = changelog_start(db, after)?;
        let mut out = Vec::new();
        for entry in db.range(start..) {
            let (k, v) = entry?;
            if k.first() != Some(&keys::CHANGELOG) || out.len() >= max {
                break;
            }
            let record = decode_log_record(&k, &v)?;
            out.extend(record.into_iter().filter(|c| c.revision() > after));
        }
        Ok(out)
    }

    /// Raw history of one attribute in `[from, to)`, oldest first, at most `limit` points; the flag says
    /// whether more points were left. Blocking.
    pub fn history_points(
        &self,
        entity: &EntityId,
        attribute: &twin_model::AttrName,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<history::HistoryPoints, StoreError> {
        self.check_history_target(entity, attribute, false)?;
        history::points(&self.inner.db, &self.inner.history, entity, attribute, from, to, limit)
    }

    /// History of one numeric attribute in `[from, to)` downsampled into buckets of `bucket_ms`. Blocking.
    pub fn history_buckets(
        &self,
        entity: &EntityId,
        attribute: &twin_model::AttrName,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<history::HistoryBucket>, StoreError> {
        self.check_history_target(entity, attribute, true)?;
        history::buckets(&self.inner.db, &self.inner.history, entity, attribute, from, to, bucket_ms)
    }

    fn check_history_target(
        &self,
        entity: &EntityId,
        attribute: &twin_model::AttrName,
        numeric: bool,
    ) -> Result<(), StoreError> {
        let entity_type = self
            .with_state(|s| s.get(entity).map(|e| e.header.entity_type.clone()))
            .ok_or_else(|| StoreError::NotFound(entity.clone()))?;
        let def = self.inner.catalog.get(&entity_type).and_then(|t| t.attributes.get(attribute));
        let Some(def) = def else {
            return Err(StoreError::UnknownAttribute {
                entity: entity.clone(),
                entity_type,
                attribute: attribute.clone(),
            });
        };
        use twin_model::ValueKind::*;
        if numeric && !matches!(def.kind, Number | Integer | Bool) {
            return Err(StoreError::NotNumeric { attribute: attribute.clone() });
        }
        Ok(())
    }

    /// Stops accepting writes, commits what is queued, flushes (and fsyncs) and stops the threads.
    /// Blocking: call from a blocking context. Later writes fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.inner.writer.write().take();
        self.inner.stop_retention.lock().take();
        let threads = std::mem::take(&mut *self.inner.threads.lock());
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a store thread panicked");
            }
        }
    }

    /// Runs retention now: deletes history observed longer than the retention window ago, and change-log and
    /// stale-point records the last durable checkpoint covers, keeping the newest `changelog_revisions` for
    /// watch resume. Returns (history points, log records) deleted.
    ///
    /// A pass never stalls the commit path (issue 6: done by the committer with a checkpoint first, it stopped
    /// every write for 1.2 s a minute at 50,000 attributes). It finds expired history chunks by reading, here,
    /// and hands them to the committer [`RETENTION_SLICE_CHUNKS`] at a time, between groups; the log records,
    /// which the committer only ever appends after, it deletes itself.
    pub async fn run_retention(&self) -> Result<(usize, usize), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.retention_pass())
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(format!("the retention pass failed: {e}"))))?
    }

    /// One retention pass (see [`Store::run_retention`]). Blocking.
    fn retention_pass(&self) -> Result<(usize, usize), StoreError> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        let cutoff = twin_model::now_unix_ms().saturating_sub(self.inner.config.history_retention_ms());
        let mut expired = history::expired_chunks(&self.inner.db, cutoff)?.into_iter();
        let mut points = 0;
        while expired.len() > 0 {
            let keys: Vec<Vec<u8>> = expired.by_ref().take(RETENTION_SLICE_CHUNKS).collect();
            points += self.committer_request(|reply| Request::RetainHistory { keys, cutoff, reply })??;
        }
        // Then the chunks in memory, which are not all on disk yet, a slice at a time too.
        let mut from = Some(0);
        while let Some(start) = from {
            let (deleted, next) =
                self.committer_request(|reply| Request::RetainPending { cutoff, from: start, reply })??;
            points += deleted;
            from = next;
        }
        let records = self.trim_log()?;
        Ok((points, records))
    }

    /// Sends the committer a request and waits for its answer. Blocking.
    fn committer_request<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, StoreError> {
        let tx = self.inner.writer.read().clone().ok_or(StoreError::Closed)?;
        let (reply, rx) = oneshot::channel();
        tx.blocking_send(request(reply)).map_err(|_| StoreError::Closed)?;
        // Not held while waiting: the committer stops once every sender is gone.
        drop(tx);
        rx.blocking_recv().map_err(|_| StoreError::Closed)
    }

    /// Deletes the change-log records below the kept revisions and the stale-point records, both only as far
    /// as the last durable checkpoint covers them (a restart replays the log after it). The committer only
    /// appends records after those, so this runs beside it, one key at a time. Returns the change-log records
    /// deleted.
    fn trim_log(&self) -> Result<usize, StoreError> {
        let db = &self.inner.db;
        let Some(covers) = db.get(keys::CHECKPOINT)?.and_then(|b| Checkpoint::decode(&b)) else {
            return Ok(0);
        };
        let floor = covers.revision.saturating_sub(self.inner.config.changelog_revisions);
        let mut deleted = 0;
        let mut previous: Option<sled::IVec> = None;
        for entry in db.scan_prefix([keys::CHANGELOG]) {
            let (k, _) = entry?;
            let first = keys::u64_from(&k[1..]).unwrap_or(0);
            // The previous record ends just before this one starts; the newest record is always kept.
            if first.saturating_sub(1) > floor {
                break;
            }
            if let Some(p) = previous.replace(k) {
                db.remove(p)?;
                deleted += 1;
            }
        }
        for entry in db.range(keys::stale(0)..=keys::stale(covers.stale_seq)) {
            db.remove(entry?.0)?;
        }
        Ok(deleted)
    }

    fn retention_loop(self, stop: std_mpsc::Receiver<()>) {
        let interval = self.inner.config.retention_interval.max(Duration::from_millis(10));
        while let Err(std_mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
            match self.retention_pass() {
                Ok((0, 0)) => {}
                Ok((points, records)) => tracing::debug!(points, records, "retention deleted old history and log"),
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
            }
        }
    }
}

/// The most expired history chunks one retention request hands the committer: each request holds up group
/// commits for about as long as trimming these takes (a few ms).
const RETENTION_SLICE_CHUNKS: usize = 256;

/// The key to scan the change log from to find every change after revision `after`: the record holding
/// revision `after + 1`, which starts at or before it.
fn changelog_start(db: &sled::Db, after: u64) -> Result<Vec<u8>, StoreError> {
    let first_wanted = keys::changelog(after + 1);
    match db.range(..=first_wanted).next_back() {
        Some(entry) => {
            let (k, _) = entry?;
            Ok(if k.first() == Some(&keys::CHANGELOG) { k.to_vec() } else { first_wanted.to_vec() })
        }
        None => Ok(first_wanted.to_vec()),
    }
}

/// What recovery found.
struct Recovered {
    state: State,
    history: HistoryWriter,
    checkpoint: Checkpoint,
    stale_seq: u64,
    /// Attributes the replay changed (not yet in a checkpoint).
    dirty: DirtyAttributes,
    /// Changes and stale points replayed.
    replayed: usize,
}

/// Reads the checkpoint back from disk and replays the change log and stale points after it; history only
/// from `history_floor` on, as the committer records it.
fn recover(db: &sled::Db, history_floor: UnixMs) -> Result<Recovered, StoreError> {
    let mut entities = BTreeMap::new();
    for entry in db.scan_prefix([keys::ENTITY]) {
        let (k, v) = entry?;
        let (revision, header): (u64, EntityStatic) = decode(&k, &v)?;
        let mut entity = Entity::new(header);
        entity.revision = revision;
        entities.insert(entity.header.id.clone(), entity);
    }
    for entry in db.scan_prefix([keys::ATTRIBUTE]) {
        let (k, v) = entry?;
        let text = utf8_key(&k[1..])?;
        let Some((id, name)) = text.split_once('\0') else {
            return Err(StoreError::Corrupt { key: keys::escaped(&k), reason: "no separator".into() });
        };
        let state: AttributeState = decode(&k, &v)?;
        let Some(e) = entities.get_mut(id) else {
            return Err(StoreError::Corrupt { key: keys::escaped(&k), reason: "attribute of a missing entity".into() });
        };
        let revision = state.reported.as_ref().map_or(0, |r| r.revision);
        e.revision = e.revision.max(revision);
        e.attributes.insert(parse(&k, name)?, state);
    }
    let mut edges = HashMap::new();
    for entry in db.scan_prefix([keys::EDGE]) {
        let (k, v) = entry?;
        let edge: EdgeId = parse(&k, utf8_key(&k[1..])?)?;
        let progress = EdgeProgress::from_bytes(&v).ok_or_else(|| StoreError::Corrupt {
            key: keys::escaped(&k),
            reason: "edge progress is not 8 or 16 bytes".into(),
        })?;
        edges.insert(edge, progress);
    }
    let counter = |key: &[u8]| -> Result<u64, StoreError> {
        match db.get(key)? {
            Some(v) => keys::u64_from(&v).ok_or_else(|| StoreError::Corrupt {
                key: keys::escaped(key),
                reason: "counter is not 8 bytes".into(),
            }),
            None => Ok(0),
        }
    };
    let revision = counter(keys::REVISION)?;
    let stale_seq = counter(keys::STALE_SEQ)?;
    let checkpoint = match db.get(keys::CHECKPOINT)? {
        Some(v) => Checkpoint::decode(&v).ok_or_else(|| StoreError::Corrupt {
            key: keys::escaped(keys::CHECKPOINT),
            reason: "checkpoint is not 16 bytes".into(),
        })?,
        None => Checkpoint::default(),
    };
    let mut state = State::from_parts(entities, edges, revision);
    let mut history = HistoryWriter::default();
    let mut dirty = DirtyAttributes::default();
    let mut replayed = 0;
    // Changes after the checkpoint, in revision order: latest state (last writer wins, as when they were
    // applied) and history.
    for entry in db.range(changelog_start(db, checkpoint.revision)?..) {
        let (k, v) = entry?;
        if k.first() != Some(&keys::CHANGELOG) {
            break;
        }
        let record = decode_log_record(&k, &v)?;
        for change in record.into_iter().filter(|c| c.revision() > checkpoint.revision) {
            replayed += 1;
            match change {
                Change::Upsert { revision, header } => state.put_header(header, revision),
                Change::Attribute { revision, entity, attribute, reported } => {
                    // As when it was applied: a change older than the retention window is not history.
                    if reported.observed_at >= history_floor {
                        history.record(db, &entity, &attribute, reported.observed_at, reported.value.clone())?;
                    }
                    if let Some(e) = state.get_mut(&entity) {
                        let slot = e.attributes.entry(attribute.clone()).or_default();
                        if slot.reported.as_ref().is_none_or(|r| r.observed_at < reported.observed_at) {
                            slot.reported = Some(reported);
                            e.revision = e.revision.max(revision);
                        }
                        dirty.insert((entity, attribute));
                    }
                }
            }
        }
    }
    for entry in db.range(keys::stale(checkpoint.stale_seq + 1)..) {
        let (k, v) = entry?;
        if k.first() != Some(&keys::STALE) {
            break;
        }
        let points: Vec<StalePoint> = decode(&k, &v)?;
        for p in points.into_iter().filter(|p| p.observed_at >= history_floor) {
            replayed += 1;
            history.record(db, &p.entity, &p.attribute, p.observed_at, p.value)?;
        }
    }
    Ok(Recovered { state, history, checkpoint, stale_seq, dirty, replayed })
}

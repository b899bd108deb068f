//! The committer thread: the only writer. See the crate docs for the guarantees it gives.
//!
//! Per group it writes the durable record: change-log records (`C`), stale points (`W`), entity headers,
//! the edges' sequence numbers and the revision, as one atomic sled batch, then flushes and fsyncs. The
//! latest attribute state and the history chunks it keeps in memory and writes as a **checkpoint** every
//! `checkpoint_interval`: between two groups it takes the lists of what changed (in constant time) and hands
//! them to the checkpoint thread, which reads each attribute's current state and shares its newest history
//! chunk (copy-on-write) a slice at a time, writes them record by record, paced, while groups go on, then, once
//! those are durable, a marker of the revision it covers. At shutdown it checkpoints synchronously. Recovery
//! replays the log after the marker. Retention hands it expired history chunks a slice at a time, between
//! groups.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc as std_mpsc,
    },
    time::{Duration, Instant},
};
use twin_fsync::FileSyncer;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use twin_model::{AttrName, AttributeState, Catalog, EntityId, Reported, UnixMs, now_unix_ms};

use crate::{
    Durability, EdgeProgress, StoreError,
    changes::{Change, ChangeGroup, LogCompressor, SharedChanges, StalePoint, log_records},
    history::{AttrKey, DirtyChunks, HistoryWriter},
    keys,
    state::State,
    write::{
        MAX_CLOCK_AHEAD_MS, MIN_OBSERVED_AT, RejectReason, Rejected, Target, WriteBatch, WriteOutcome, WriteSummary,
    },
};

/// Work for the committer.
#[derive(Debug)]
pub(crate) enum Request {
    /// Apply a batch.
    Write { batch: WriteBatch, reply: oneshot::Sender<Result<WriteOutcome, StoreError>> },
    /// Trims the history chunks at `keys`, found by a retention pass, to their points observed at or after
    /// `cutoff`; replies with the points deleted.
    RetainHistory { keys: Vec<Vec<u8>>, cutoff: UnixMs, reply: oneshot::Sender<Result<usize, StoreError>> },
    /// Trims the chunks in memory the same way, the newest ones from index `from` on, a slice at a time
    /// ([`RETENTION_SLICE_NEWEST`]); replies with the points deleted and where the next slice starts (`None`:
    /// done).
    RetainPending { cutoff: UnixMs, from: usize, reply: oneshot::Sender<Result<(usize, Option<usize>), StoreError>> },
}

/// How many newest history chunks in memory one [`Request::RetainPending`] trims: a few ms on the committer.
pub(crate) const RETENTION_SLICE_NEWEST: usize = 20_000;

/// A write in the current group.
#[derive(Debug)]
pub(crate) struct Write {
    batch: WriteBatch,
    reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// Encodes an in-memory record. Our records are plain data that postcard always encodes.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    postcard::to_allocvec(value).expect("postcard encodes plain in-memory records")
}

/// What the last checkpoint covers: every change up to `revision` and every stale-point record up to
/// `stale_seq` is in the `A` and `H` records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub revision: u64,
    pub stale_seq: u64,
}

impl Checkpoint {
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0; 16];
        b[..8].copy_from_slice(&self.revision.to_be_bytes());
        b[8..].copy_from_slice(&self.stale_seq.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Checkpoint> {
        Some(Checkpoint { revision: keys::u64_from(b.get(..8)?)?, stale_seq: keys::u64_from(b.get(8..16)?)? })
    }
}

/// Attributes whose latest state changed since the last checkpoint without a history point marking them
/// (an observation older than the retention window, a replay): rare, next to [`DirtyChunks`].
pub(crate) type DirtyAttributes = foldhash::HashSet<(EntityId, AttrName)>;

/// A checkpoint to write: the attributes whose history chunk changed, whose latest state may have changed
/// too, and the few whose state changed without a history point (both resolved while writing), and what it
/// covers.
#[derive(Debug)]
pub(crate) struct CheckpointJob {
    attributes: DirtyAttributes,
    chunks: DirtyChunks,
    covers: Checkpoint,
}

/// A written (or failed) checkpoint: on success, the pending older chunks it wrote, with their generations.
#[derive(Debug)]
pub(crate) struct CheckpointDone {
    covers: Checkpoint,
    result: Result<Vec<(Vec<u8>, u64)>, StoreError>,
}

/// How many records a checkpoint writes between two rests ([`execute_checkpoint`]).
pub(crate) const CHECKPOINT_BATCH_RECORDS: usize = 500;

/// Writes a checkpoint: its records one by one, made durable, then its marker, made durable. A crash before
/// the marker leaves records newer than the marker on disk; that is safe because recovery replays the log
/// after the marker over them and replay is idempotent: the latest state takes the newest observation (last
/// writer wins by observed time), and a history point replaces a point of the same time. So the records need
/// no atomic batch, and must not use one: sled 0.34's `apply_batch` holds a process-wide write lock while it
/// applies (every other write, read and flush of every sled tree in the process waits), so each batch of
/// checkpoint records stalled group commits, and with them acks and watchers, for as long as it took
/// (issue 6: 100,000 records in one batch stopped them for half a second; batches of 500 still set the p99).
/// A single insert takes that lock shared, and a group commit waits for at most one of them.
///
/// Paced unless `hurry` is raised: after every [`CHECKPOINT_BATCH_RECORDS`] records it rests three times as
/// long as they took, so it takes at most about a quarter of a core from the commit path (a checkpoint at
/// 50,000 updates/s is 100,000 records) and each group commit's `flush`, which writes and fsyncs
/// whatever is in sled's buffers (one log per database), carries little of its data (issue 6). The committer
/// raises `hurry` when it waits for the checkpoint (at shutdown).
fn execute_checkpoint(
    db: &sled::Db,
    syncer: &mut FileSyncer,
    durability: Durability,
    state: &RwLock<State>,
    history: &Mutex<HistoryWriter>,
    job: &CheckpointJob,
    hurry: &AtomicBool,
) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
    let mut writer = PacedWriter { db, hurry, records: 0, started: Instant::now() };
    let extra: Vec<&AttrKey> = if job.attributes.is_empty() {
        Vec::new()
    } else {
        let listed: foldhash::HashSet<&AttrKey> = job.chunks.iter().collect();
        job.attributes.iter().filter(|k| !listed.contains(k)).collect()
    };
    for slice in extra.chunks(CHECKPOINT_BATCH_RECORDS) {
        for (key, attribute) in attribute_states(state, slice.iter().copied()) {
            writer.write(key, Some(encode(&attribute)))?;
        }
    }
    for slice in job.chunks.chunks(CHECKPOINT_BATCH_RECORDS) {
        // Each lock is held only to copy this slice's states or share its chunks, never while encoding or
        // writing, and never both at once.
        for (key, attribute) in attribute_states(state, slice) {
            writer.write(key, Some(encode(&attribute)))?;
        }
        let chunks = history.lock().newest_chunks(slice);
        for (key, chunk) in chunks {
            writer.write(key, chunk.encode_record())?;
        }
    }
    // Last, so that chunks that filled up while the others were written are included.
    let older = history.lock().pending_older();
    for (key, chunk) in older.chunks {
        writer.write(key, chunk.encode_record())?;
    }
    let durable = |syncer: &mut FileSyncer| -> Result<(), StoreError> {
        db.flush()?;
        if durability == Durability::Fsync {
            syncer.sync()?;
        }
        Ok(())
    };
    durable(syncer)?;
    db.insert(keys::CHECKPOINT, &job.covers.encode())?;
    durable(syncer)?;
    Ok(older.older)
}

/// The `A` record key and current state of each of `attrs` that has one, copied under the state's read lock.
/// The state may be newer than the checkpoint's revision; recovery replays the log over it, which is
/// idempotent (last writer wins by observed time).
fn attribute_states<'a>(
    state: &RwLock<State>,
    attrs: impl IntoIterator<Item = &'a AttrKey>,
) -> Vec<(Vec<u8>, AttributeState)> {
    let s = state.read();
    attrs
        .into_iter()
        .filter_map(|(id, attribute)| {
            let current = s.get(id)?.attributes.get(attribute)?;
            Some((keys::attribute(id, attribute), current.clone()))
        })
        .collect()
}

/// Writes a checkpoint's records, resting after every [`CHECKPOINT_BATCH_RECORDS`] unless `hurry` is raised.
struct PacedWriter<'a> {
    db: &'a sled::Db,
    hurry: &'a AtomicBool,
    records: usize,
    started: Instant,
}

impl PacedWriter<'_> {
    /// Inserts `key`, or deletes it when `value` is `None` (a history chunk retention emptied).
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.db.insert(key, value)?,
            None => self.db.remove(key)?,
        };
        self.records += 1;
        if self.records == CHECKPOINT_BATCH_RECORDS {
            self.records = 0;
            if !self.hurry.load(Ordering::Acquire) {
                std::thread::sleep(self.started.elapsed() * 3);
            }
            self.started = Instant::now();
        }
        Ok(())
    }
}

/// The checkpoint thread: writes jobs until the committer hangs up, paced ([`execute_checkpoint`]) so that the
/// committer and the request handlers, whose latency matters, keep the CPU. It does not lower its own
/// priority: a thread cannot raise it again unprivileged, and when the committer waits for it (at shutdown)
/// it must finish quickly even on a busy machine.
#[allow(clippy::too_many_arguments)] // one thread's whole context, passed once
pub(crate) fn checkpoint_thread(
    db: sled::Db,
    mut syncer: FileSyncer,
    durability: Durability,
    state: Arc<RwLock<State>>,
    history: Arc<Mutex<HistoryWriter>>,
    hurry: Arc<AtomicBool>,
    jobs: std_mpsc::Receiver<CheckpointJob>,
    done: std_mpsc::Sender<CheckpointDone>,
) {
    for job in jobs {
        let result = execute_checkpoint(&db, &mut syncer, durability, &state, &history, &job, &hurry);
        if done.send(CheckpointDone { covers: job.covers, result }).is_err() {
            return;
        }
    }
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
    pub checkpoint_interval: Duration,
    pub history: Arc<Mutex<HistoryWriter>>,
    /// What the last durable checkpoint covers.
    pub checkpoint: Checkpoint,
    pub last_checkpoint: Instant,
    /// Jobs for the checkpoint thread; `None` once the committer stops.
    pub checkpoint_jobs: Option<std_mpsc::Sender<CheckpointJob>>,
    pub checkpoint_done: std_mpsc::Receiver<CheckpointDone>,
    pub checkpoint_in_flight: bool,
    /// Raised while the committer waits for the background checkpoint, which then stops pacing itself.
    pub checkpoint_hurry: Arc<AtomicBool>,
    /// The last stale-point record written.
    pub stale_seq: u64,
    /// Attributes changed since the last checkpoint that no history point marks dirty; the checkpoint
    /// takes them whole, with the history's dirty list, in constant time.
    pub dirty: DirtyAttributes,
    /// Changes of the current group.
    pub changes: Vec<Change>,
    /// Compresses the change-log records.
    pub log_compressor: LogCompressor,
    /// Stale points of the current group.
    pub stale: Vec<StalePoint>,
}

impl Committer {
    /// Commits groups until every sender is gone, then checkpoints and flushes.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(self.max_group);
        let mut next = rx.blocking_recv();
        while let Some(request) = next.take() {
            match request {
                Request::RetainHistory { keys, cutoff, reply } => {
                    let _ = reply.send(self.retain_history(&keys, cutoff));
                }
                Request::RetainPending { cutoff, from, reply } => {
                    let _ = reply.send(self.retain_pending(cutoff, from));
                }
                Request::Write { batch, reply } => {
                    group.push(Write { batch, reply });
                    // Take what is already queued, up to a group; a retention request ends the group.
                    while group.len() < self.max_group {
                        match rx.try_recv() {
                            Ok(Request::Write { batch, reply }) => group.push(Write { batch, reply }),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(&mut group);
                    if let Err(e) = self.checkpoint_in_background() {
                        self.fail(&e);
                    }
                }
            }
            if next.is_none() {
                next = rx.blocking_recv();
            }
        }
        if !self.failed.load(Ordering::Acquire)
            && let Err(e) = self.write_checkpoint()
        {
            tracing::error!(error = %e, "final checkpoint of the store failed; the next start replays the log");
        }
        // Hanging up ends the checkpoint thread.
        self.checkpoint_jobs = None;
        tracing::debug!("committer stopped");
    }

    fn make_durable(&mut self) -> Result<(), StoreError> {
        self.db.flush()?;
        if self.durability == Durability::Fsync {
            self.syncer.sync()?;
        }
        Ok(())
    }

    fn commit(&mut self, group: &mut Vec<Write>) {
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
        let history_lock = self.history.clone();
        let applied: Result<u64, StoreError> = (|| {
            let mut state = state_lock.write();
            let mut history = history_lock.lock();
            let before = state.revision;
            for req in group.drain(..) {
                let outcome = self.apply(&mut state, &mut history, req.batch, now, &mut sled_batch);
                replies.push((req.reply, outcome?));
            }
            if state.revision != before {
                sled_batch.insert(keys::REVISION, &state.revision.to_be_bytes());
            }
            Ok(state.revision)
        })();
        let revision = match applied {
            Ok(r) => r,
            Err(e) => {
                // Reading a history chunk failed; nothing of the group was written, but memory may hold part
                // of it, so stop, as for a failed write.
                self.fail(&e);
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Failed));
                }
                for (reply, _) in replies {
                    let _ = reply.send(Err(StoreError::Failed));
                }
                return;
            }
        };
        for (first_revision, record) in log_records(&self.changes, &mut self.log_compressor) {
            sled_batch.insert(&keys::changelog(first_revision), record);
        }
        if !self.stale.is_empty() {
            self.stale_seq += 1;
            sled_batch.insert(&keys::stale(self.stale_seq), encode(&self.stale));
            sled_batch.insert(keys::STALE_SEQ, &self.stale_seq.to_be_bytes());
            self.stale.clear();
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
                self.fail(&e);
                for (reply, _) in replies {
                    let _ = reply.send(Err(StoreError::Failed));
                }
            }
        }
    }

    fn fail(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "the store stops accepting writes after a storage failure");
        self.failed.store(true, Ordering::Release);
        self.changes.clear();
        self.stale.clear();
        self.dirty.clear();
        self.history.lock().discard();
    }

    /// Takes what changed since the last checkpoint, marking it clean. Runs between groups, so it must be
    /// cheap whatever the number of changes (with 50,000 attributes changed, copying them here paused
    /// commits for about 100 ms, and even collecting the changed history chunks took up to 30 ms): the
    /// attribute states and the set of changed chunks are handed over whole, in constant time.
    fn snapshot_checkpoint(&mut self) -> CheckpointJob {
        let revision = self.state.read().revision;
        let attributes = std::mem::take(&mut self.dirty);
        let chunks = self.history.lock().take_dirty();
        CheckpointJob { attributes, chunks, covers: Checkpoint { revision, stale_seq: self.stale_seq } }
    }

    fn finish_checkpoint(&mut self, done: CheckpointDone) -> Result<(), StoreError> {
        let older = done.result?;
        self.checkpoint = done.covers;
        self.history.lock().written(&older);
        tracing::trace!(revision = done.covers.revision, "checkpoint durable");
        Ok(())
    }

    /// Collects a finished background checkpoint and starts the next one when due.
    fn checkpoint_in_background(&mut self) -> Result<(), StoreError> {
        if self.checkpoint_in_flight {
            match self.checkpoint_done.try_recv() {
                Ok(done) => {
                    self.checkpoint_in_flight = false;
                    self.finish_checkpoint(done)?;
                }
                Err(std_mpsc::TryRecvError::Empty) => return Ok(()),
                Err(std_mpsc::TryRecvError::Disconnected) => return Err(checkpoint_thread_gone()),
            }
        }
        if self.last_checkpoint.elapsed() < self.checkpoint_interval {
            return Ok(());
        }
        let job = self.snapshot_checkpoint();
        let jobs = self.checkpoint_jobs.as_ref().ok_or_else(checkpoint_thread_gone)?;
        jobs.send(job).map_err(|_| checkpoint_thread_gone())?;
        self.checkpoint_in_flight = true;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Writes a checkpoint now, after any in flight: everything applied so far is then in `A` and `H`.
    pub fn write_checkpoint(&mut self) -> Result<(), StoreError> {
        if self.checkpoint_in_flight {
            self.checkpoint_hurry.store(true, Ordering::Release);
            let done = self.checkpoint_done.recv();
            self.checkpoint_hurry.store(false, Ordering::Release);
            self.checkpoint_in_flight = false;
            self.finish_checkpoint(done.map_err(|_| checkpoint_thread_gone())?)?;
        }
        let job = self.snapshot_checkpoint();
        // Nothing else runs on the commit path meanwhile: no pacing.
        let hurry = AtomicBool::new(true);
        let result =
            execute_checkpoint(&self.db, &mut self.syncer, self.durability, &self.state, &self.history, &job, &hurry);
        self.finish_checkpoint(CheckpointDone { covers: job.covers, result })?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Trims one slice of the expired chunks a retention pass found on disk ([`Request::RetainHistory`]). It
    /// needs no checkpoint first and waits for none: chunks pending in memory are trimmed there (see
    /// [`HistoryWriter::retain_chunks`]). With [`Request::RetainPending`], also a slice at a time, a pass holds
    /// up group commits for a few ms at most.
    fn retain_history(&mut self, chunk_keys: &[Vec<u8>], cutoff: UnixMs) -> Result<usize, StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        let mut batch = sled::Batch::default();
        let mut history = self.history.lock();
        let deleted = history.retain_chunks(&self.db, chunk_keys, cutoff, &mut batch)?;
        drop(history);
        // Made durable by the next group's flush; lost in a crash, the next pass deletes them again.
        self.db.apply_batch(batch)?;
        Ok(deleted)
    }

    /// Trims one slice of the history chunks in memory for a retention pass ([`Request::RetainPending`]).
    fn retain_pending(&mut self, cutoff: UnixMs, from: usize) -> Result<(usize, Option<usize>), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        Ok(self.history.lock().retain_pending(cutoff, from, RETENTION_SLICE_NEWEST))
    }

    /// Applies one batch to memory and to the pending sled batch.
    fn apply(
        &mut self,
        state: &mut State,
        history: &mut HistoryWriter,
        batch: WriteBatch,
        now: UnixMs,
        out: &mut sled::Batch,
    ) -> Result<WriteOutcome, StoreError> {
        if let Some((edge, seq)) = &batch.origin {
            let last = state.edge_seq(edge);
            if *seq <= last {
                return Ok(WriteOutcome::Duplicate { last_applied_seq: last, revision: state.revision });
            }
        }
        let mut summary = WriteSummary::default();
        let mut revision = state.revision;
        let carried = batch.updates.len() as u64;
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
            // The same observation again (a resend, or the edge's latest-first snapshot followed by its
            // backlog) is not a new fact: it changes nothing and adds no second history point.
            if let Some(r) = entity.attributes.get(&u.attribute).and_then(|s| s.reported.as_ref())
                && r.observed_at == u.observed_at
                && r.value == value
            {
                summary.repeated += 1;
                continue;
            }
            let in_history = u.observed_at >= history_floor;
            if in_history {
                history.record(&self.db, &u.entity, &u.attribute, u.observed_at, value.clone())?;
            }
            let slot = entity.attributes.entry(u.attribute.clone()).or_default();
            if slot.reported.as_ref().is_some_and(|r| r.observed_at >= u.observed_at) {
                summary.stale += 1;
                if in_history {
                    self.stale.push(StalePoint {
                        entity: u.entity,
                        attribute: u.attribute,
                        observed_at: u.observed_at,
                        value,
                    });
                }
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
            if !in_history {
                // A history point would have listed it for the next checkpoint.
                self.dirty.insert((u.entity, u.attribute));
            }
            summary.applied += 1;
        }
        if let Some((edge, seq)) = batch.origin {
            let before = state.edge_progress(&edge);
            let progress = EdgeProgress { seq, updates: before.updates + carried };
            out.insert(keys::edge(&edge), &progress.to_bytes());
            state.set_edge_progress(edge, progress);
        }
        state.revision = revision;
        summary.revision = revision;
        Ok(WriteOutcome::Applied(summary))
    }
}

fn checkpoint_thread_gone() -> StoreError {
    StoreError::Io(std::io::Error::other("the checkpoint thread stopped"))
}

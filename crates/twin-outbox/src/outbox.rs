//! The [`Outbox`] handle: append, seal, read, ack, the latest-value snapshot, dead letters and stats.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};
use twin_fsync::FileSyncer;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use twin_model::{AttrName, EntityId, UnixMs, Value, now_unix_ms};

use crate::{
    OutboxConfig, OutboxError, WhenFull,
    format::{
        self, DEAD, DeadLetterRecord, FragmentRange, LAST_ACKED, LAST_SEALED, OPEN, RANGE_RECORD_MAX, RECORD_OVERHEAD,
        SEALED, SealedEntry, key,
    },
};

/// One attribute value waiting to be sent to the cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxUpdate {
    /// The entity it belongs to.
    pub entity: EntityId,
    /// The attribute.
    pub attribute: AttrName,
    /// The value.
    pub value: Value,
    /// When the source observed it.
    pub observed_at: UnixMs,
}

/// A sealed batch: immutable, and always sent under the same `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBatch {
    /// The batch sequence number, the cloud's exactly-once key for this edge.
    pub seq: u64,
    /// When it was sealed (box clock).
    pub sealed_at_ms: UnixMs,
    /// Its updates in append order.
    pub updates: Vec<OutboxUpdate>,
}

/// A batch that was just sealed, as announced by [`Outbox::subscribe_seals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Its seq.
    pub seq: u64,
    /// The updates it holds.
    pub updates: usize,
    /// When its seal became durable (this process's monotonic clock; finer than `sealed_at_ms`).
    pub at: Instant,
}

/// Seal announcements a subscriber may fall behind by before it loses the oldest.
pub const SEAL_EVENTS: usize = 1_024;

/// How many of the newest sealed batches the outbox also keeps in memory, so that the uplink sends a batch it
/// just sealed without reading it back from sled and decoding it ([`Outbox::recent_sealed_after`]). A few
/// times the uplink's in-flight window; a backlog beyond it is read from disk.
pub const RECENT_SEALED_BATCHES: usize = 32;

/// An update the cloud rejected, set aside with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The batch it was sent in.
    pub seq: u64,
    /// When it was set aside (box clock).
    pub dead_at_ms: UnixMs,
    /// The update.
    pub update: OutboxUpdate,
    /// The cloud's reason.
    pub reason: String,
}

/// What one [`Outbox::append`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Updates stored (all of them: an append is all or nothing).
    pub appended: usize,
    /// Batches sealed by this append because they became full, in seq order.
    pub sealed: Vec<u64>,
    /// Older updates deleted to make room ([`WhenFull::DropOldestHistory`]).
    pub dropped_by_policy: u64,
    /// Latest values moved from deleted batches into the open batch so they survive.
    pub carried_forward: usize,
}

/// A snapshot of the outbox's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Updates not yet acknowledged (sealed and open).
    pub depth_updates: u64,
    /// Sealed batches not yet acknowledged.
    pub sealed_batches: u64,
    /// Updates in the open batch.
    pub open_updates: u64,
    /// Encoded bytes of the stored batches, the quantity the disk budget limits.
    pub used_bytes: u64,
    /// The configured disk budget.
    pub budget_bytes: u64,
    /// The oldest `observed_at` not yet acknowledged.
    pub oldest_observed_at: Option<UnixMs>,
    /// Now minus `oldest_observed_at`, in milliseconds.
    pub oldest_age_ms: Option<i64>,
    /// Attributes with an unacknowledged value (the size of [`Outbox::latest`]).
    pub latest_attributes: u64,
    /// Updates deleted by [`WhenFull::DropOldestHistory`] since open.
    pub dropped_by_policy: u64,
    /// Updates refused because the outbox was full, since open.
    pub rejected_when_full: u64,
    /// Dead letters stored now.
    pub dead_letters: u64,
    /// Dead letters recorded since open.
    pub dead_lettered: u64,
    /// Dead letters deleted to respect `max_dead_letters`, since open.
    pub dead_letters_dropped: u64,
    /// The highest seq assigned to a batch.
    pub last_sealed_seq: u64,
    /// The highest seq acknowledged.
    pub last_acked_seq: u64,
}

/// The durable outbox. Cheap to clone; all clones share one store. Methods take `&self` and lock
/// internally: mutations are serialized by a writer lock held across their sled write and fsync; readers
/// ([`Outbox::latest`], [`Outbox::stats`], [`Outbox::sealed_after`], [`Outbox::dead_letters`]) never wait
/// for I/O.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    config: OutboxConfig,
    writer: Mutex<Writer>,
    state: Mutex<State>,
    /// Announces each seal once it is durable; sent with the writer lock held, so in seq order.
    seals: broadcast::Sender<Sealed>,
}

/// Owned by whoever mutates; everything here mirrors disk.
#[derive(Debug)]
struct Writer {
    open: Vec<OutboxUpdate>,
    /// The open batch's fragments are `open_first..next_fragment`.
    open_first: u64,
    next_fragment: u64,
    /// The encoded bytes of the open batch's fragments.
    open_disk_bytes: u64,
    next_dead_id: u64,
    syncer: Option<FileSyncer>,
    failed: bool,
}

type AttrKey = (EntityId, AttrName);

/// A sealed batch's fragment ids (inclusive), or `None` for a batch stored inline (format version 1).
type FragmentIds = Option<(u64, u64)>;

#[derive(Debug)]
struct Latest {
    update: OutboxUpdate,
    /// The batch holding it; for the open batch, the seq it will be sealed under (`last_sealed + 1`).
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    updates: u64,
    /// What it takes on disk: its `B` record and its fragments.
    bytes: u64,
    oldest_observed_at: UnixMs,
    fragments: FragmentIds,
}

/// In-memory index and counters, rebuilt on open.
#[derive(Debug, Default)]
struct State {
    latest: foldhash::HashMap<AttrKey, Latest>,
    batches: BTreeMap<u64, BatchMeta>,
    /// The updates of recently sealed batches still unacknowledged (at most [`RECENT_SEALED_BATCHES`]), with
    /// when each was sealed: the same content as their `B` records.
    recent: BTreeMap<u64, (UnixMs, Arc<[OutboxUpdate]>)>,
    sealed_bytes: u64,
    sealed_updates: u64,
    open_updates: u64,
    /// The encoded size of the open batch's updates, which decides when it is full.
    open_bytes: u64,
    /// What the open batch's fragments take on disk.
    open_disk_bytes: u64,
    open_oldest: Option<UnixMs>,
    last_sealed: u64,
    last_acked: u64,
    dead: VecDeque<(u64, u64)>,
    dead_stored: u64,
    dropped_by_policy: u64,
    rejected_when_full: u64,
    dead_lettered: u64,
    dead_letters_dropped: u64,
    full_episode: bool,
}

impl State {
    fn used_bytes(&self) -> u64 {
        self.sealed_bytes + self.open_disk_bytes
    }

    fn add_batch(&mut self, seq: u64, meta: BatchMeta) {
        self.sealed_bytes += meta.bytes;
        self.sealed_updates += meta.updates;
        self.batches.insert(seq, meta);
    }

    /// Keeps a batch just sealed in memory too, while there is room.
    fn remember(&mut self, sealed: SealedNow) {
        if self.recent.len() < RECENT_SEALED_BATCHES {
            self.recent.insert(sealed.seq, (sealed.sealed_at_ms, sealed.updates));
        }
    }

    fn remove_batch(&mut self, seq: u64) -> Option<BatchMeta> {
        self.recent.remove(&seq);
        let meta = self.batches.remove(&seq)?;
        self.sealed_bytes -= meta.bytes;
        self.sealed_updates -= meta.updates;
        Some(meta)
    }

    fn set_open(&mut self, open: &[OutboxUpdate], open_bytes: u64, open_disk_bytes: u64) {
        self.open_updates = open.len() as u64;
        self.open_bytes = open_bytes;
        self.open_disk_bytes = open_disk_bytes;
        self.open_oldest = open.iter().map(|u| u.observed_at).min();
    }

    /// The first refusal or drop of an episode is logged; the episode ends when an append fits again.
    fn note_full(&mut self, what: &str, used: u64, budget: u64) {
        if !self.full_episode {
            self.full_episode = true;
            tracing::warn!(used_bytes = used, budget_bytes = budget, policy = what, "outbox full");
        }
    }
}

/// Records `u` as the latest value of its attribute if it is at least as new as the one known.
fn note_latest(latest: &mut foldhash::HashMap<AttrKey, Latest>, u: &OutboxUpdate, seq: u64) {
    match latest.get_mut(&(u.entity.clone(), u.attribute.clone())) {
        Some(l) if u.observed_at < l.update.observed_at => {}
        Some(l) => *l = Latest { update: u.clone(), seq },
        None => {
            latest.insert((u.entity.clone(), u.attribute.clone()), Latest { update: u.clone(), seq });
        }
    }
}

/// What must go to make room for an append.
#[derive(Debug, Default)]
struct Room {
    /// Sealed batches to delete, with their fragments and the number of their updates lost.
    drop: Vec<(u64, FragmentIds, u64)>,
    /// Latest values to move into the open batch, with their encoded size.
    carried: Vec<(OutboxUpdate, usize)>,
}

impl Outbox {
    /// Opens (or creates) the outbox and rebuilds its in-memory index and latest-value map from disk.
    pub fn open(config: OutboxConfig) -> Result<Outbox, OutboxError> {
        config.validate()?;
        let db = sled::Config::new().path(&config.path).cache_capacity(config.cache_bytes).open()?;
        let syncer = if config.fsync { Some(FileSyncer::new(&config.path)?) } else { None };
        let (writer, state) = recover(&db, syncer)?;
        tracing::info!(
            path = %config.path.display(),
            sealed_batches = state.batches.len(),
            depth_updates = state.sealed_updates + state.open_updates,
            last_sealed_seq = state.last_sealed,
            last_acked_seq = state.last_acked,
            "outbox open"
        );
        let (seals, _) = broadcast::channel(SEAL_EVENTS);
        let inner = Inner { db, config, writer: Mutex::new(writer), state: Mutex::new(state), seals };
        Ok(Outbox { inner: Arc::new(inner) })
    }

    /// Appends `updates` to the open batch, sealing it whenever it becomes full, and returns once they
    /// are durable (fsynced when `fsync` is set). All or nothing. When the disk budget would be exceeded
    /// the configured [`WhenFull`] policy applies; with [`WhenFull::RejectNew`] the result is
    /// [`OutboxError::Full`]. Callers should batch: each call costs one flush and fsync.
    pub fn append(&self, updates: &[OutboxUpdate]) -> Result<AppendOutcome, OutboxError> {
        if updates.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let config = &self.inner.config;
        let max_update = config.max_batch_bytes - RECORD_OVERHEAD;
        let mut sizes = Vec::with_capacity(updates.len());
        for u in updates {
            let size = format::update_size(u);
            if size > max_update {
                return Err(OutboxError::UpdateTooLarge {
                    entity: u.entity.to_string(),
                    attribute: u.attribute.to_string(),
                    bytes: size,
                    max: max_update,
                });
            }
            sizes.push(size);
        }
        let incoming: u64 = sizes.iter().map(|&s| s as u64).sum();

        let mut w = self.inner.writer.lock();
        if w.failed {
            return Err(OutboxError::Failed);
        }
        let room = self.make_room(incoming, updates.len())?;
        let (mut last_sealed, mut open_bytes) = {
            let st = self.inner.state.lock();
            (st.last_sealed, st.open_bytes)
        };
        let now = now_unix_ms();
        let mut batch = sled::Batch::default();
        for &(seq, fragments, _) in &room.drop {
            remove_sealed(&mut batch, seq, fragments);
        }
        let mut placed = Vec::with_capacity(room.carried.len() + updates.len());
        let mut sealed_now = Vec::new();
        let mut fragment_start = w.open.len();
        let items = room.carried.iter().map(|(u, s)| (u, *s)).chain(updates.iter().zip(sizes.iter().copied()));
        for (u, size) in items {
            if !w.open.is_empty() && open_bytes as usize + size + RECORD_OVERHEAD > config.max_batch_bytes {
                sealed_now.push(seal_open(&mut w, &mut batch, &mut last_sealed, now, fragment_start));
                open_bytes = 0;
                fragment_start = 0;
            }
            w.open.push(u.clone());
            open_bytes += size as u64;
            placed.push(last_sealed + 1);
            if w.open.len() >= config.max_batch_updates {
                sealed_now.push(seal_open(&mut w, &mut batch, &mut last_sealed, now, fragment_start));
                open_bytes = 0;
                fragment_start = 0;
            }
        }
        if w.open.len() > fragment_start {
            write_fragment(&mut w, &mut batch, fragment_start);
        }
        self.commit(&mut w, batch, true)?;

        let mut st = self.inner.state.lock();
        let mut outcome =
            AppendOutcome { appended: updates.len(), carried_forward: room.carried.len(), ..Default::default() };
        for &(seq, _, lost) in &room.drop {
            st.remove_batch(seq);
            outcome.dropped_by_policy += lost;
        }
        st.dropped_by_policy += outcome.dropped_by_policy;
        let announcements: Vec<(u64, usize)> = sealed_now.iter().map(|s| (s.seq, s.meta.updates as usize)).collect();
        for sealed in sealed_now {
            st.add_batch(sealed.seq, sealed.meta);
            outcome.sealed.push(sealed.seq);
            st.remember(sealed);
        }
        st.last_sealed = last_sealed;
        st.set_open(&w.open, open_bytes, w.open_disk_bytes);
        let items = room.carried.iter().map(|(u, _)| u).chain(updates);
        for (u, seq) in items.zip(placed) {
            note_latest(&mut st.latest, u, seq);
        }
        drop(st);
        let at = Instant::now();
        for (seq, updates) in announcements {
            self.announce(Sealed { seq, updates, at });
        }
        Ok(outcome)
    }

    /// Seals the open batch now if it holds anything, durably, and returns its seq. The uplink calls this
    /// when it wants to send what is buffered without waiting for the batch to fill.
    pub fn seal(&self) -> Result<Option<u64>, OutboxError> {
        let mut w = self.inner.writer.lock();
        if w.failed {
            return Err(OutboxError::Failed);
        }
        if w.open.is_empty() {
            return Ok(None);
        }
        let mut last_sealed = self.inner.state.lock().last_sealed;
        let mut batch = sled::Batch::default();
        let stored = w.open.len();
        let sealed = seal_open(&mut w, &mut batch, &mut last_sealed, now_unix_ms(), stored);
        self.commit(&mut w, batch, true)?;
        let (seq, updates) = (sealed.seq, sealed.meta.updates as usize);
        let mut st = self.inner.state.lock();
        st.add_batch(seq, sealed.meta);
        st.remember(sealed);
        st.last_sealed = last_sealed;
        st.set_open(&[], 0, 0);
        drop(st);
        self.announce(Sealed { seq, updates, at: Instant::now() });
        Ok(Some(seq))
    }

    /// Announces every seal from now on, in seq order, as soon as it is durable (by [`Outbox::append`] when a
    /// batch fills, or by [`Outbox::seal`]). The uplink waits on this to send a batch the moment it is sealed
    /// instead of at its next timer tick; benchmarks use [`Sealed::at`] to time the batching stage. A
    /// subscriber more than [`SEAL_EVENTS`] behind loses the oldest announcements
    /// (`RecvError::Lagged`); [`Outbox::sealed_after`] still has the batches.
    pub fn subscribe_seals(&self) -> broadcast::Receiver<Sealed> {
        self.inner.seals.subscribe()
    }

    /// Called with the writer lock held, after the seal is durable and in the in-memory state.
    fn announce(&self, sealed: Sealed) {
        // No subscriber is fine: nobody is waiting for seals.
        let _ = self.inner.seals.send(sealed);
    }

    /// Up to `max_batches` sealed, unacknowledged batches with a seq above `after`, in seq order. A batch
    /// read twice (e.g. after a restart) has the same seq and the same content.
    pub fn sealed_after(&self, after: u64, max_batches: usize) -> Result<Vec<SealedBatch>, OutboxError> {
        let Some(first) = after.checked_add(1) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for item in self.inner.db.range(key(SEALED, first)..=key(SEALED, u64::MAX)) {
            if out.len() >= max_batches {
                break;
            }
            let (k, v) = item?;
            let seq = format::number(&k)?;
            let (sealed_at_ms, updates) = match format::decode_sealed(&k, &v)? {
                SealedEntry::Inline(record) => (record.sealed_at_ms, record.updates),
                SealedEntry::Range(range) => match self.fragments_unlocked(seq, &range)? {
                    Some(updates) => (range.sealed_at_ms, updates),
                    // Acknowledged (or dropped for room) while we read it: it is no longer to be sent.
                    None => continue,
                },
            };
            out.push(SealedBatch { seq, sealed_at_ms, updates });
        }
        Ok(out)
    }

    /// The sealed, unacknowledged batches with a seq above `after` that are still in memory, up to
    /// `max_batches`, in seq order: a prefix of what [`Outbox::sealed_after`] returns (empty when the first of
    /// them is only on disk, e.g. a backlog from before a restart). Never touches the disk, so it can be called
    /// from async code: the uplink sends a batch it was told was sealed without a blocking read.
    pub fn recent_sealed_after(&self, after: u64, max_batches: usize) -> Vec<SealedBatch> {
        let st = self.inner.state.lock();
        let mut out = Vec::new();
        for (&seq, _) in st.batches.range(after.saturating_add(1)..).take(max_batches) {
            let Some((sealed_at_ms, updates)) = st.recent.get(&seq) else { break };
            out.push(SealedBatch { seq, sealed_at_ms: *sealed_at_ms, updates: updates.to_vec() });
        }
        out
    }

    /// Whether a sealed, unacknowledged batch with a seq above `after` exists (in memory, never waits for I/O).
    pub fn has_sealed_after(&self, after: u64) -> bool {
        self.inner.state.lock().batches.range(after.saturating_add(1)..).next().is_some()
    }

    /// Acknowledges every batch with a seq up to `up_to_seq` (cumulative, idempotent): they are deleted and
    /// their values leave [`Outbox::latest`]. An ack above every seq assigned so far (e.g. the cloud's
    /// `Welcome.last_applied_seq` after the box lost its disk) also moves the seq counter past it, so no
    /// later batch reuses a seq the cloud has applied. Not fsynced: an ack lost in a crash only causes the
    /// batches to be sent again, which the cloud answers as duplicates.
    pub fn ack(&self, up_to_seq: u64) -> Result<(), OutboxError> {
        let mut w = self.inner.writer.lock();
        if w.failed {
            return Err(OutboxError::Failed);
        }
        let (last_acked, last_sealed, seqs) = {
            let st = self.inner.state.lock();
            let seqs = st.batches.range(..=up_to_seq).map(|(&s, m)| (s, m.fragments)).collect::<Vec<_>>();
            (st.last_acked, st.last_sealed, seqs)
        };
        if up_to_seq <= last_acked && seqs.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for &(seq, fragments) in &seqs {
            remove_sealed(&mut batch, seq, fragments);
        }
        let acked = last_acked.max(up_to_seq);
        batch.insert(LAST_ACKED, &acked.to_be_bytes());
        let bump = up_to_seq > last_sealed;
        if bump {
            batch.insert(LAST_SEALED, &up_to_seq.to_be_bytes());
        }
        self.commit(&mut w, batch, bump)?;
        let mut st = self.inner.state.lock();
        for (seq, _) in seqs {
            st.remove_batch(seq);
        }
        st.last_acked = acked;
        if bump {
            let (old, new) = (last_sealed + 1, up_to_seq + 1);
            for l in st.latest.values_mut().filter(|l| l.seq == old) {
                l.seq = new;
            }
            st.last_sealed = up_to_seq;
        }
        st.latest.retain(|_, l| l.seq > up_to_seq);
        Ok(())
    }

    /// The latest unacknowledged value of each attribute (newest `observed_at`; on a tie the later
    /// append), sorted by entity and attribute. After an outage the uplink sends these first so the cloud
    /// shows the current state early, then the batches in seq order.
    pub fn latest(&self) -> Vec<OutboxUpdate> {
        let mut out: Vec<_> = self.inner.state.lock().latest.values().map(|l| l.update.clone()).collect();
        out.sort_unstable_by(|a, b| (&a.entity, &a.attribute).cmp(&(&b.entity, &b.attribute)));
        out
    }

    /// Sets aside the updates of batch `seq` the cloud rejected, with its reasons, durably. Keeps at most
    /// `max_dead_letters`; beyond it the oldest are deleted and counted. The batch itself is still removed
    /// by [`Outbox::ack`], so dead letters never block later updates.
    pub fn dead_letter(&self, seq: u64, rejected: Vec<(OutboxUpdate, String)>) -> Result<(), OutboxError> {
        if rejected.is_empty() {
            return Ok(());
        }
        let max = self.inner.config.max_dead_letters as u64;
        let mut letters = rejected;
        let recorded = letters.len() as u64;
        let excess = (letters.len() as u64).saturating_sub(max) as usize;
        letters.drain(..excess);
        let mut w = self.inner.writer.lock();
        if w.failed {
            return Err(OutboxError::Failed);
        }
        let mut batch = sled::Batch::default();
        let id = w.next_dead_id;
        let n = letters.len() as u64;
        if n > 0 {
            let record = DeadLetterRecord { seq, dead_at_ms: now_unix_ms(), letters };
            batch.insert(&key(DEAD, id), format::encode(&record));
        }
        let evict = {
            let st = self.inner.state.lock();
            let mut stored = st.dead_stored + n;
            let mut evict = 0;
            for &(old_id, count) in &st.dead {
                if stored <= max {
                    break;
                }
                batch.remove(&key(DEAD, old_id));
                stored -= count;
                evict += 1;
            }
            evict
        };
        self.commit(&mut w, batch, true)?;
        w.next_dead_id += 1;
        let mut st = self.inner.state.lock();
        let mut dropped = excess as u64;
        for _ in 0..evict {
            if let Some((_, count)) = st.dead.pop_front() {
                st.dead_stored -= count;
                dropped += count;
            }
        }
        if n > 0 {
            st.dead.push_back((id, n));
            st.dead_stored += n;
        }
        st.dead_lettered += recorded;
        st.dead_letters_dropped += dropped;
        tracing::warn!(seq, rejected = recorded, stored = st.dead_stored, "updates rejected by the cloud set aside");
        Ok(())
    }

    /// Up to `limit` stored dead letters, oldest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut out = Vec::new();
        for item in self.inner.db.scan_prefix([DEAD]) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let record: DeadLetterRecord = format::decode(&k, &v)?;
            let room = limit - out.len();
            out.extend(record.letters.into_iter().take(room).map(|(update, reason)| DeadLetter {
                seq: record.seq,
                dead_at_ms: record.dead_at_ms,
                update,
                reason,
            }));
        }
        Ok(out)
    }

    /// The current counters.
    pub fn stats(&self) -> OutboxStats {
        let st = self.inner.state.lock();
        let oldest = st.batches.values().map(|m| m.oldest_observed_at).chain(st.open_oldest).min();
        OutboxStats {
            depth_updates: st.sealed_updates + st.open_updates,
            sealed_batches: st.batches.len() as u64,
            open_updates: st.open_updates,
            used_bytes: st.used_bytes(),
            budget_bytes: self.inner.config.disk_budget_bytes,
            oldest_observed_at: oldest,
            oldest_age_ms: oldest.map(|t| now_unix_ms().saturating_sub(t)),
            latest_attributes: st.latest.len() as u64,
            dropped_by_policy: st.dropped_by_policy,
            rejected_when_full: st.rejected_when_full,
            dead_letters: st.dead_stored,
            dead_lettered: st.dead_lettered,
            dead_letters_dropped: st.dead_letters_dropped,
            last_sealed_seq: st.last_sealed,
            last_acked_seq: st.last_acked,
        }
    }

    /// Decides what to delete so that `incoming` more bytes fit, or refuses. Called with the writer lock.
    fn make_room(&self, incoming: u64, count: usize) -> Result<Room, OutboxError> {
        let config = &self.inner.config;
        let budget = config.disk_budget_bytes;
        // An upper bound on what `bytes` of updates take once stored, record headers included: an append
        // seals a batch per `max_batch_updates`, at most two per `max_batch_bytes`, and leaves one open.
        // Each seal also writes a fragment (its part of this append) and a `B` record naming its fragments.
        let overhead = RECORD_OVERHEAD as u64;
        let stored = |bytes: u64, count: u64| {
            let seals =
                3 + count / config.max_batch_updates as u64 + 2 * bytes / (config.max_batch_bytes as u64 - overhead);
            bytes + (overhead + RANGE_RECORD_MAX as u64) * seals
        };
        let count = count as u64;
        let (used, seqs) = {
            let mut st = self.inner.state.lock();
            let used = st.used_bytes();
            if used + stored(incoming, count) <= budget {
                if st.full_episode {
                    st.full_episode = false;
                    tracing::info!(used_bytes = used, budget_bytes = budget, "outbox no longer full");
                }
                return Ok(Room::default());
            }
            if self.inner.config.when_full == WhenFull::RejectNew {
                st.note_full("reject_new", used, budget);
                st.rejected_when_full += count;
                return Err(OutboxError::Full { needed_bytes: incoming, used_bytes: used, budget_bytes: budget });
            }
            (used, st.batches.iter().map(|(&s, m)| (s, m.bytes, m.fragments)).collect::<Vec<_>>())
        };
        let mut room = Room::default();
        let (mut freed, mut added) = (0u64, 0u64);
        let mut carried_keys = HashSet::new();
        for (seq, bytes, fragments) in seqs {
            if used - freed + stored(added + incoming, count + room.carried.len() as u64) <= budget {
                break;
            }
            let Some(updates) = self.read_sealed(seq)? else { continue };
            let mut carried_here = 0u64;
            let st = self.inner.state.lock();
            for u in &updates {
                let attr = (u.entity.clone(), u.attribute.clone());
                if let Some(l) = st.latest.get(&attr)
                    && l.seq == seq
                    && carried_keys.insert(attr)
                {
                    let size = format::update_size(&l.update);
                    room.carried.push((l.update.clone(), size));
                    added += size as u64;
                    carried_here += 1;
                }
            }
            drop(st);
            freed += bytes;
            room.drop.push((seq, fragments, updates.len() as u64 - carried_here));
        }
        let mut st = self.inner.state.lock();
        st.note_full("drop_oldest_history", used, budget);
        if used - freed + stored(added + incoming, count + room.carried.len() as u64) > budget {
            st.rejected_when_full += count;
            return Err(OutboxError::Full { needed_bytes: incoming, used_bytes: used, budget_bytes: budget });
        }
        Ok(room)
    }

    /// The store itself, for tests that look at or damage the records.
    #[cfg(test)]
    pub(crate) fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// The updates of sealed batch `seq` as stored, `None` if it is not stored. Called with the writer lock.
    fn read_sealed(&self, seq: u64) -> Result<Option<Vec<OutboxUpdate>>, OutboxError> {
        let k = key(SEALED, seq);
        let Some(v) = self.inner.db.get(k)? else { return Ok(None) };
        match format::decode_sealed(&k, &v)? {
            SealedEntry::Inline(record) => Ok(Some(record.updates)),
            SealedEntry::Range(range) => self.fragments(seq, &range).map(Some),
        }
    }

    /// The updates of `range`, batch `seq`, read without the writer lock: `None` when the batch was deleted
    /// (acknowledged, or dropped for room) while they were read.
    fn fragments_unlocked(&self, seq: u64, range: &FragmentRange) -> Result<Option<Vec<OutboxUpdate>>, OutboxError> {
        let updates = read_fragments(&self.inner.db, range)?;
        if updates.len() as u64 == range.updates {
            return Ok(Some(updates));
        }
        // Short: either a write deleted the batch meanwhile, or fragments are missing. With the writer lock
        // nothing changes, and the in-memory index (updated before the lock is released) tells which.
        let _w = self.inner.writer.lock();
        if !self.inner.state.lock().batches.contains_key(&seq) {
            return Ok(None);
        }
        self.fragments(seq, range).map(Some)
    }

    /// The updates of `range`, batch `seq`; missing ones are corruption. Called with the writer lock.
    fn fragments(&self, seq: u64, range: &FragmentRange) -> Result<Vec<OutboxUpdate>, OutboxError> {
        let updates = read_fragments(&self.inner.db, range)?;
        if updates.len() as u64 != range.updates {
            return Err(missing_fragments(seq, range, updates.len() as u64));
        }
        Ok(updates)
    }

    /// Applies `batch` atomically and, with `durable`, flushes and fsyncs. Any failure stops the outbox.
    fn commit(&self, w: &mut Writer, batch: sled::Batch, durable: bool) -> Result<(), OutboxError> {
        let result = (|| {
            self.inner.db.apply_batch(batch)?;
            if durable {
                self.inner.db.flush()?;
                if let Some(syncer) = w.syncer.as_mut() {
                    syncer.sync()?;
                }
            }
            Ok(())
        })();
        if let Err(e) = &result {
            w.failed = true;
            tracing::error!(error = %e, "outbox write failed; refusing further writes until reopened");
        }
        result
    }
}

/// A batch sealed by the current write: its seq, counters and updates.
#[derive(Debug)]
struct SealedNow {
    seq: u64,
    meta: BatchMeta,
    sealed_at_ms: UnixMs,
    updates: Arc<[OutboxUpdate]>,
}

/// Writes `w.open[from..]`, the current append's share of the open batch, as its next fragment.
fn write_fragment(w: &mut Writer, batch: &mut sled::Batch, from: usize) {
    let bytes = format::encode(&w.open[from..]);
    w.open_disk_bytes += bytes.len() as u64;
    batch.insert(&key(OPEN, w.next_fragment), bytes);
    w.next_fragment += 1;
}

/// Seals the open batch in `batch` as `last_sealed + 1`: writes what this append added since `fragment_start`
/// as a fragment, then the `B` record naming all of the batch's fragments. Nothing is copied or deleted.
fn seal_open(
    w: &mut Writer,
    batch: &mut sled::Batch,
    last_sealed: &mut u64,
    now: UnixMs,
    fragment_start: usize,
) -> SealedNow {
    if w.open.len() > fragment_start {
        write_fragment(w, batch, fragment_start);
    }
    *last_sealed += 1;
    let seq = *last_sealed;
    let range = FragmentRange {
        sealed_at_ms: now,
        first: w.open_first,
        last: w.next_fragment.saturating_sub(1),
        updates: w.open.len() as u64,
    };
    let record = format::encode_range(&range);
    let meta = BatchMeta {
        updates: range.updates,
        bytes: w.open_disk_bytes + record.len() as u64,
        oldest_observed_at: w.open.iter().map(|u| u.observed_at).min().unwrap_or(now),
        fragments: Some((range.first, range.last)),
    };
    batch.insert(&key(SEALED, seq), record);
    batch.insert(LAST_SEALED, &seq.to_be_bytes());
    w.open_first = w.next_fragment;
    w.open_disk_bytes = 0;
    let capacity = w.open.len();
    let updates = std::mem::replace(&mut w.open, Vec::with_capacity(capacity));
    SealedNow { seq, meta, sealed_at_ms: now, updates: updates.into() }
}

/// Deletes sealed batch `seq` and its fragments in `batch`.
fn remove_sealed(batch: &mut sled::Batch, seq: u64, fragments: FragmentIds) {
    batch.remove(&key(SEALED, seq));
    if let Some((first, last)) = fragments {
        for id in first..=last {
            batch.remove(&key(OPEN, id));
        }
    }
}

/// The updates stored in the fragments of `range`, in order (fewer than it names if some are missing).
fn read_fragments(db: &sled::Db, range: &FragmentRange) -> Result<Vec<OutboxUpdate>, OutboxError> {
    // The count comes from disk: cap the reservation so a corrupt record cannot ask for a huge allocation.
    let mut updates = Vec::with_capacity(range.updates.min(100_000) as usize);
    for item in db.range(key(OPEN, range.first)..=key(OPEN, range.last)) {
        let (k, v) = item?;
        updates.extend(format::decode::<Vec<OutboxUpdate>>(&k, &v)?);
    }
    Ok(updates)
}

fn missing_fragments(seq: u64, range: &FragmentRange, found: u64) -> OutboxError {
    format::corrupt(
        &key(SEALED, seq),
        &format!(
            "sealed batch names {} updates in fragments {}..={}, but they hold {found}",
            range.updates, range.first, range.last
        ),
    )
}

/// What recovery found of one sealed batch stored as a fragment range.
#[derive(Debug)]
struct RangeFound {
    seq: u64,
    range: FragmentRange,
    record_bytes: u64,
    updates: u64,
    fragment_bytes: u64,
    oldest: Option<UnixMs>,
}

/// Rebuilds the writer and the in-memory state from disk.
fn recover(db: &sled::Db, syncer: Option<FileSyncer>) -> Result<(Writer, State), OutboxError> {
    let mut st = State {
        last_sealed: format::meta_u64(LAST_SEALED, db.get(LAST_SEALED)?.as_deref())?,
        last_acked: format::meta_u64(LAST_ACKED, db.get(LAST_ACKED)?.as_deref())?,
        ..State::default()
    };
    let mut stale = sled::Batch::default();
    let mut ranges: Vec<RangeFound> = Vec::new();
    for item in db.scan_prefix([SEALED]) {
        let (k, v) = item?;
        let seq = format::number(&k)?;
        let entry = format::decode_sealed(&k, &v)?;
        if seq <= st.last_acked {
            // Cannot happen (ack deletes atomically with the LAST_ACKED write); tidy up if it does.
            let fragments = match entry {
                SealedEntry::Range(r) => Some((r.first, r.last)),
                SealedEntry::Inline(_) => None,
            };
            remove_sealed(&mut stale, seq, fragments);
            continue;
        }
        st.last_sealed = st.last_sealed.max(seq);
        match entry {
            SealedEntry::Inline(record) => {
                // Format 1, from before fragment ranges; these precede every range-sealed batch.
                let oldest = record.updates.iter().map(|u| u.observed_at).min().unwrap_or(record.sealed_at_ms);
                for u in &record.updates {
                    note_latest(&mut st.latest, u, seq);
                }
                let meta = BatchMeta {
                    updates: record.updates.len() as u64,
                    bytes: v.len() as u64,
                    oldest_observed_at: oldest,
                    fragments: None,
                };
                st.add_batch(seq, meta);
            }
            SealedEntry::Range(range) => {
                if ranges.last().is_some_and(|prev| prev.range.last >= range.first) {
                    return Err(format::corrupt(&k, "fragment range overlaps the previous batch's"));
                }
                let record_bytes = v.len() as u64;
                ranges.push(RangeFound { seq, range, record_bytes, updates: 0, fragment_bytes: 0, oldest: None });
            }
        }
    }
    st.last_sealed = st.last_sealed.max(st.last_acked);
    // Gone before the fragments are read, so that none of theirs looks like part of the open batch.
    db.apply_batch(std::mem::take(&mut stale))?;

    // Fragments in id order: each belongs to the batch whose range holds it, or, past every range, to the
    // open batch.
    let mut w = Writer {
        open: Vec::new(),
        open_first: 0,
        next_fragment: ranges.last().map_or(0, |r| r.range.last + 1),
        open_disk_bytes: 0,
        next_dead_id: 0,
        syncer,
        failed: false,
    };
    let mut open_bytes = 0u64;
    let mut open_first = None;
    let mut next_range = 0;
    for item in db.scan_prefix([OPEN]) {
        let (k, v) = item?;
        let id = format::number(&k)?;
        while ranges.get(next_range).is_some_and(|r| r.range.last < id) {
            next_range += 1;
        }
        let updates: Vec<OutboxUpdate> = format::decode(&k, &v)?;
        match ranges.get_mut(next_range) {
            Some(found) if found.range.first <= id => {
                found.updates += updates.len() as u64;
                found.fragment_bytes += v.len() as u64;
                let oldest = updates.iter().map(|u| u.observed_at).min();
                found.oldest = found.oldest.into_iter().chain(oldest).min();
                for u in &updates {
                    note_latest(&mut st.latest, u, found.seq);
                }
            }
            // Between or before sealed batches but in none: cannot happen (a batch's fragments are deleted
            // with it); tidy up if it does.
            Some(_) => stale.remove(k),
            None => {
                open_first.get_or_insert(id);
                w.open_disk_bytes += v.len() as u64;
                for u in updates {
                    open_bytes += format::update_size(&u) as u64;
                    note_latest(&mut st.latest, &u, st.last_sealed + 1);
                    w.open.push(u);
                }
                w.next_fragment = id + 1;
            }
        }
    }
    db.apply_batch(stale)?;
    for found in ranges {
        if found.updates != found.range.updates {
            return Err(missing_fragments(found.seq, &found.range, found.updates));
        }
        let meta = BatchMeta {
            updates: found.updates,
            bytes: found.record_bytes + found.fragment_bytes,
            oldest_observed_at: found.oldest.unwrap_or(found.range.sealed_at_ms),
            fragments: Some((found.range.first, found.range.last)),
        };
        st.add_batch(found.seq, meta);
    }
    w.open_first = open_first.unwrap_or(w.next_fragment);
    st.set_open(&w.open, open_bytes, w.open_disk_bytes);

    for item in db.scan_prefix([DEAD]) {
        let (k, v) = item?;
        let id = format::number(&k)?;
        let record: DeadLetterRecord = format::decode(&k, &v)?;
        st.dead.push_back((id, record.letters.len() as u64));
        st.dead_stored += record.letters.len() as u64;
        w.next_dead_id = id + 1;
    }
    Ok((w, st))
}

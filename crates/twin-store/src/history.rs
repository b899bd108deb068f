//! Per-attribute history, stored in chunks.
//!
//! Every accepted observation (including ones older than the latest value) is kept until retention
//! deletes it. Points are grouped into **chunks** of up to [`CHUNK_POINTS`] points per attribute, keyed
//! `H id 0x00 attribute 0x00 start` where `start` is the chunk's first observed time. sled's memory use
//! grows with every distinct key it has ever stored (about 1.8 KB each, whatever its cache size), while
//! rewriting an existing key is cheap: chunking keeps the key count at 1/64 of the point count.
//!
//! Invariant: chunk `C` holds only points in `[start(C), start(next chunk))`, sorted, one per observed
//! time. New points extend the newest chunk (kept in memory by the committer) until it is full and the
//! point is newer than its last one, which starts a new chunk. A late point goes
//! into the closest chunk starting at or before it, or starts a chunk of its own when it predates them all.
//! So a scan in key order yields points in time order.
//!
//! Chunks changed since the last checkpoint live only in the [`HistoryWriter`] (their points are durable in
//! the change log and the stale-point records); queries merge them over what is on disk.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use twin_model::{AttrName, EntityId, UnixMs, Value};

use crate::{StoreError, commit::encode, keys};

/// The most points a chunk gets before a newer point starts the next one.
pub const CHUNK_POINTS: usize = 64;

/// Raw history points, oldest first, and whether the limit cut them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPoints {
    /// (observed time, value) pairs.
    pub points: Vec<(UnixMs, Value)>,
    /// True when more points were in the window.
    pub truncated: bool,
}

/// Min/max/avg of the points in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryBucket {
    /// Bucket start (a multiple of the bucket width).
    pub start: UnixMs,
    /// Points in the bucket.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub avg: f64,
}

/// A chunk on disk: offsets from the chunk start (small varints) and values.
#[derive(Serialize, Deserialize)]
struct ChunkRecord {
    points: Vec<(u64, Value)>,
}

/// A chunk in memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    start: UnixMs,
    points: Vec<(UnixMs, Value)>,
}

impl Chunk {
    /// The chunk in its on-disk form; `None` for a chunk retention emptied, whose key is to be deleted.
    pub(crate) fn encode_record(&self) -> Option<Vec<u8>> {
        (!self.points.is_empty()).then(|| self.encode())
    }

    fn new(t: UnixMs, value: Value) -> Self {
        Chunk { start: t, points: vec![(t, value)] }
    }

    fn decode(key: &[u8], bytes: &[u8]) -> Result<Chunk, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { key: keys::escaped(key), reason };
        let start = keys::time_from_key(key).ok_or_else(|| corrupt("short history key".into()))?;
        let record: ChunkRecord = postcard::from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
        let points = record.points.into_iter().map(|(offset, v)| (start.saturating_add(offset as i64), v)).collect();
        Ok(Chunk { start, points })
    }

    fn encode(&self) -> Vec<u8> {
        let points = self.points.iter().map(|(t, v)| ((t - self.start) as u64, v.clone())).collect();
        encode(&ChunkRecord { points })
    }

    /// Inserts in time order; a second point at the same time replaces the first (a replayed observation).
    fn insert(&mut self, t: UnixMs, value: Value) {
        // Nearly every point is the attribute's newest: a binary search over a chunk the cache rarely holds
        // was a tenth of the committer's time (issue 6).
        if self.points.last().is_none_or(|p| p.0 < t) {
            self.points.push((t, value));
            return;
        }
        match self.points.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => self.points[i].1 = value,
            Err(i) => self.points.insert(i, (t, value)),
        }
    }

    fn last_time(&self) -> UnixMs {
        self.points.last().map_or(self.start, |p| p.0)
    }

    /// How many of its points were observed before `cutoff` (they come first: points are in time order).
    fn expired(&self, cutoff: UnixMs) -> usize {
        self.points.partition_point(|(t, _)| *t < cutoff)
    }
}

pub(crate) type AttrKey = (EntityId, AttrName);

/// An [`AttrKey`] by reference, to look one up without cloning its ids; hashes as the key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AttrRef<'a>(&'a str, &'a str);

impl indexmap::Equivalent<AttrKey> for AttrRef<'_> {
    fn equivalent(&self, key: &AttrKey) -> bool {
        self.0 == key.0.as_str() && self.1 == key.1.as_str()
    }
}

/// An attribute's newest chunk, and the dirty-list epoch it was last listed in.
#[derive(Debug)]
struct Newest {
    chunk: Arc<Chunk>,
    listed: u64,
}

/// The committer's history writer: the newest chunk of each attribute in memory, and every chunk not yet
/// in a durable checkpoint.
///
/// A checkpoint must not stall the committer, whatever the number of changed chunks (50,000 at 50,000
/// updates/s): it takes only the *set* of changed attributes from the committer
/// ([`HistoryWriter::take_dirty`], constant time), then resolves their chunks a slice at a time
/// ([`HistoryWriter::newest_chunks`]) and the pending older chunks last ([`HistoryWriter::pending_older`]).
/// What it writes is each chunk as it is when resolved, at or after the checkpoint's revision, which is safe
/// because replaying the log over newer records is idempotent. A chunk that filled up in between has moved
/// to the pending older chunks, which are resolved after all the slices, so it is written too. Resolved chunks
/// are shared, not copied; a chunk the checkpoint still holds is copied if it changes meanwhile.
#[derive(Debug, Default)]
pub(crate) struct HistoryWriter {
    /// Indexed by insertion order too, so that retention can walk it a slice at a time between group commits
    /// ([`HistoryWriter::retain_pending`]); entries are never removed one by one, so an index stays valid.
    newest: indexmap::IndexMap<AttrKey, Newest, foldhash::fast::RandomState>,
    /// Attributes whose newest chunk changed since the last checkpoint snapshot, each once: an entry is listed
    /// when its `listed` epoch is behind `epoch`, which [`HistoryWriter::take_dirty`] advances. A list, not a
    /// set: a hash set insert per point was a twentieth of the committer's time (issue 6).
    dirty: DirtyChunks,
    epoch: u64,
    /// Older chunks not yet in a durable checkpoint (late points, full chunks replaced), by key, with a
    /// generation that changes whenever the chunk does.
    older: BTreeMap<Vec<u8>, (Arc<Chunk>, u64)>,
    generation: u64,
}

/// Chunks to write in a checkpoint, and which pending older chunks they cover.
#[derive(Debug, Default)]
pub(crate) struct ChunkSnapshot {
    /// (key, chunk) to write.
    pub chunks: Vec<(Vec<u8>, Arc<Chunk>)>,
    /// Older chunks included, with their generation: dropped from memory once written, if unchanged since.
    pub older: Vec<(Vec<u8>, u64)>,
}

/// The attributes whose newest chunk changed since the previous checkpoint, each once.
pub(crate) type DirtyChunks = Vec<AttrKey>;

/// Lists `key` as dirty unless it already is in this epoch.
fn mark_dirty(dirty: &mut DirtyChunks, epoch: u64, key: &AttrKey, newest: &mut Newest) {
    if newest.listed != epoch {
        newest.listed = epoch;
        dirty.push(key.clone());
    }
}

/// The newest chunk of an attribute on disk.
fn load_newest(db: &sled::Db, id: &str, attr: &str) -> Result<Option<Chunk>, StoreError> {
    let prefix = keys::history_prefix(id, attr);
    match db.scan_prefix(&prefix).next_back() {
        Some(entry) => {
            let (k, v) = entry?;
            Ok(Some(Chunk::decode(&k, &v)?))
        }
        None => Ok(None),
    }
}

/// The key of the chunk that holds (or would hold) time `t`: the last chunk starting at or before `t`.
fn chunk_key_at(db: &sled::Db, id: &str, attr: &str, t: UnixMs) -> Result<Option<sled::IVec>, StoreError> {
    let prefix = keys::history_prefix(id, attr);
    match db.range(prefix.clone()..=keys::history(id, attr, t)).next_back() {
        Some(entry) => Ok(Some(entry?.0)),
        None => Ok(None),
    }
}

impl HistoryWriter {
    /// Adds one point.
    pub fn record(
        &mut self,
        db: &sled::Db,
        id: &EntityId,
        attr: &AttrName,
        t: UnixMs,
        value: Value,
    ) -> Result<(), StoreError> {
        let probe = AttrRef(id, attr);
        let index = match self.newest.get_index_of(&probe) {
            Some(index) => index,
            None => {
                let key = (id.clone(), attr.clone());
                let Some(chunk) = load_newest(db, id, attr)? else {
                    let newest = Newest { chunk: Arc::new(Chunk::new(t, value)), listed: self.epoch };
                    self.newest.insert(key.clone(), newest);
                    self.dirty.push(key);
                    return Ok(());
                };
                // Not listed yet (an earlier epoch): what follows lists it.
                let newest = Newest { chunk: Arc::new(chunk), listed: self.epoch.wrapping_sub(1) };
                self.newest.insert_full(key, newest).0
            }
        };
        #[allow(clippy::expect_used)]
        let (key, newest) = self.newest.get_index_mut(index).expect("the index was just found or inserted");
        if t >= newest.chunk.start {
            if newest.chunk.points.len() >= CHUNK_POINTS && t > newest.chunk.last_time() {
                // The full chunk may not be in a durable checkpoint yet: keep it pending (rewriting it once
                // more costs little next to its 64 points).
                let full = std::mem::replace(&mut newest.chunk, Arc::new(Chunk::new(t, value)));
                self.generation += 1;
                self.older.insert(keys::history(id, attr, full.start), (full, self.generation));
            } else {
                Arc::make_mut(&mut newest.chunk).insert(t, value);
            }
            mark_dirty(&mut self.dirty, self.epoch, key, newest);
            return Ok(());
        }
        // A late point, older than the newest chunk: into the closest earlier chunk, pending or on disk.
        let target = keys::history(id, attr, t);
        let prefix = keys::history_prefix(id, attr);
        let pending = self.older.range(prefix.clone()..=target.clone()).next_back().map(|(k, _)| k.clone());
        let on_disk = chunk_key_at(db, id, attr, t)?.map(|k| k.to_vec());
        let chosen = match (pending, on_disk) {
            (Some(p), Some(d)) => Some(p.max(d)),
            (p, d) => p.or(d),
        };
        self.generation += 1;
        match chosen {
            Some(k) => {
                if !self.older.contains_key(&k) {
                    let bytes = db.get(&k)?.ok_or_else(|| StoreError::Corrupt {
                        key: keys::escaped(&k),
                        reason: "history chunk vanished".into(),
                    })?;
                    let chunk = Chunk::decode(&k, &bytes)?;
                    self.older.insert(k.clone(), (Arc::new(chunk), self.generation));
                }
                if let Some((chunk, generation)) = self.older.get_mut(&k) {
                    Arc::make_mut(chunk).insert(t, value);
                    *generation = self.generation;
                }
            }
            None => {
                self.older.insert(target, (Arc::new(Chunk::new(t, value)), self.generation));
            }
        }
        Ok(())
    }

    /// The chunks of one attribute that may be newer in memory than on disk, by key: its newest chunk and
    /// its pending older ones.
    pub fn pending_chunks(&self, id: &EntityId, attr: &AttrName) -> Vec<(Vec<u8>, Chunk)> {
        let prefix = keys::history_prefix(id, attr);
        let mut out: Vec<(Vec<u8>, Chunk)> = self
            .older
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, (c, _))| (k.clone(), Chunk::clone(c)))
            .collect();
        if let Some(n) = self.newest.get(&AttrRef(id, attr)) {
            out.push((keys::history(id, attr, n.chunk.start), Chunk::clone(&n.chunk)));
        }
        out
    }

    /// Takes the attributes whose newest chunk changed since the last call, marking them clean: constant
    /// time, so the committer never waits on a checkpoint's size.
    pub fn take_dirty(&mut self) -> DirtyChunks {
        self.epoch += 1;
        std::mem::take(&mut self.dirty)
    }

    /// The newest chunk of each of `attrs` as it is now, by key, shared rather than copied.
    pub fn newest_chunks<'a>(&self, attrs: impl IntoIterator<Item = &'a AttrKey>) -> Vec<(Vec<u8>, Arc<Chunk>)> {
        attrs
            .into_iter()
            .filter_map(|(id, attr)| {
                let n = self.newest.get(&AttrRef(id, attr))?;
                Some((keys::history(id, attr, n.chunk.start), n.chunk.clone()))
            })
            .collect()
    }

    /// The older chunks not yet in a durable checkpoint, as they are now, with their generations (for
    /// [`HistoryWriter::written`]).
    pub fn pending_older(&self) -> ChunkSnapshot {
        let mut snap = ChunkSnapshot::default();
        for (k, (c, generation)) in &self.older {
            snap.chunks.push((k.clone(), c.clone()));
            snap.older.push((k.clone(), *generation));
        }
        snap
    }

    /// A checkpoint holding `older` is durable: drops those chunks from memory unless they changed since.
    pub fn written(&mut self, older: &[(Vec<u8>, u64)]) {
        for (k, generation) in older {
            if self.older.get(k).is_some_and(|(_, g)| g == generation) {
                self.older.remove(k);
            }
        }
    }

    /// Writes every chunk changed since the last checkpoint into `out` (a synchronous checkpoint).
    #[cfg(test)]
    pub fn flush_into(&mut self, out: &mut sled::Batch) {
        let dirty = self.take_dirty();
        self.write_into(&dirty, out);
    }

    /// Writes the newest chunks of `dirty`, taken earlier, and the pending older chunks into `out`, the way
    /// a background checkpoint does.
    #[cfg(test)]
    fn write_into(&mut self, dirty: &DirtyChunks, out: &mut sled::Batch) {
        let newest = self.newest_chunks(dirty);
        let older = self.pending_older();
        for (k, chunk) in newest.iter().chain(&older.chunks) {
            match chunk.encode_record() {
                Some(record) => out.insert(k.as_slice(), record),
                None => out.remove(k.as_slice()),
            }
        }
        self.written(&older.older);
    }

    /// Forgets everything (after a failed commit the store stops; a restart recovers from disk).
    pub fn discard(&mut self) {
        self.epoch += 1;
        self.dirty.clear();
        self.older.clear();
        self.newest.clear();
    }

    /// Trims the chunks at `keys` (found by [`expired_chunks`]) to their points observed at or after
    /// `cutoff`; returns how many points it deleted. A chunk pending in memory is trimmed there and written by
    /// the next checkpoint (an emptied one stays in memory, empty, and the checkpoint deletes its key), never
    /// on disk directly: a checkpoint in flight may still write the version it took earlier, and the next
    /// one then overwrites it. A chunk only on disk is trimmed into `out`.
    pub fn retain_chunks(
        &mut self,
        db: &sled::Db,
        chunk_keys: &[Vec<u8>],
        cutoff: UnixMs,
        out: &mut sled::Batch,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for k in chunk_keys {
            let corrupt = |reason: &str| StoreError::Corrupt { key: keys::escaped(k), reason: reason.into() };
            let (id, attr) = keys::history_parts(k).ok_or_else(|| corrupt("not a history key"))?;
            let attr_key = (
                EntityId::new(id).map_err(|e| corrupt(&e.to_string()))?,
                AttrName::new(attr).map_err(|e| corrupt(&e.to_string()))?,
            );
            if let Some(newest) = self.newest.get_mut(&attr_key)
                && keys::time_from_key(k) == Some(newest.chunk.start)
            {
                let n = trim(&mut newest.chunk, cutoff);
                if n > 0 {
                    mark_dirty(&mut self.dirty, self.epoch, &attr_key, newest);
                }
                deleted += n;
            } else if let Some((chunk, generation)) = self.older.get_mut(k.as_slice()) {
                let n = trim(chunk, cutoff);
                if n > 0 {
                    self.generation += 1;
                    *generation = self.generation;
                }
                deleted += n;
            } else if let Some(bytes) = db.get(k)? {
                let mut chunk = Chunk::decode(k, &bytes)?;
                let old = chunk.expired(cutoff);
                if old > 0 {
                    chunk.points.drain(..old);
                    // The chunk keeps its key (its start); its points stay within its range.
                    match chunk.encode_record() {
                        Some(record) => out.insert(k.as_slice(), record),
                        None => out.remove(k.as_slice()),
                    }
                    deleted += old;
                }
            }
        }
        Ok(deleted)
    }

    /// Trims the chunks in memory to their points observed at or after `cutoff`, as [`Self::retain_chunks`]
    /// does: chunks not yet checkpointed are not on disk for [`expired_chunks`] to find. One call trims the
    /// newest chunks from index `from` on, at most `max` of them, and returns the points it deleted and where
    /// the next call starts; the call that reaches the end also trims the pending older chunks and returns
    /// `None`. A whole pass at once held the committer for 52 ms with nothing to trim and 185 ms trimming, at
    /// the demo's 700,000 attributes (issue 6).
    pub fn retain_pending(&mut self, cutoff: UnixMs, from: usize, max: usize) -> (usize, Option<usize>) {
        let mut deleted = 0;
        let end = from.saturating_add(max).min(self.newest.len());
        for i in from..end {
            let Some((attr_key, newest)) = self.newest.get_index_mut(i) else { break };
            let n = trim(&mut newest.chunk, cutoff);
            if n > 0 {
                mark_dirty(&mut self.dirty, self.epoch, attr_key, newest);
                deleted += n;
            }
        }
        if end < self.newest.len() {
            return (deleted, Some(end));
        }
        for (chunk, generation) in self.older.values_mut() {
            let n = trim(chunk, cutoff);
            if n > 0 {
                self.generation += 1;
                *generation = self.generation;
                deleted += n;
            }
        }
        (deleted, None)
    }
}

/// Drops a chunk's points observed before `cutoff`, copying it only if it has some; returns how many.
fn trim(chunk: &mut Arc<Chunk>, cutoff: UnixMs) -> usize {
    let old = chunk.expired(cutoff);
    if old > 0 {
        Arc::make_mut(chunk).points.drain(..old);
    }
    old
}

/// The keys of the history chunks on disk that hold points observed before `cutoff`. Read-only, so a retention
/// pass finds them off the commit path; per attribute it reads only the chunks starting before `cutoff`, then
/// skips to the next attribute.
pub(crate) fn expired_chunks(db: &sled::Db, cutoff: UnixMs) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut expired = Vec::new();
    let mut from = vec![keys::HISTORY];
    while let Some(entry) = db.range(from.as_slice()..).next() {
        let (first, _) = entry?;
        if first.first() != Some(&keys::HISTORY) {
            break;
        }
        // `H id 0 attribute 0`: the attribute's prefix, ending in its separator.
        let prefix = &first[..first.len().saturating_sub(8)];
        if keys::history_parts(&first).is_none() {
            return Err(StoreError::Corrupt { key: keys::escaped(&first), reason: "not a history key".into() });
        }
        let mut end = prefix.to_vec();
        end.extend_from_slice(&keys::time_bytes(cutoff));
        for entry in db.range(first.to_vec()..end) {
            let (k, v) = entry?;
            let chunk = Chunk::decode(&k, &v)?;
            if chunk.expired(cutoff) > 0 {
                expired.push(k.to_vec());
            }
        }
        // The first key after every key with this prefix: its separator 0x00 raised to 0x01.
        from = prefix.to_vec();
        if let Some(separator) = from.last_mut() {
            *separator = 1;
        }
    }
    Ok(expired)
}

/// The chunks that may hold points of one attribute in `[from, to)`, in key (so time) order: those on
/// disk, overridden by the writer's pending versions.
fn chunks_for(
    db: &sled::Db,
    writer: &parking_lot::Mutex<HistoryWriter>,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
) -> Result<Vec<Chunk>, StoreError> {
    let mut chunks: BTreeMap<Vec<u8>, Chunk> = BTreeMap::new();
    if from < to {
        // Start at the chunk holding `from`, which may start before it.
        let start = match chunk_key_at(db, entity, attribute, from)? {
            Some(k) => k.to_vec(),
            None => keys::history(entity, attribute, from),
        };
        for entry in db.range(start..keys::history(entity, attribute, to)) {
            let (k, v) = entry?;
            chunks.insert(k.to_vec(), Chunk::decode(&k, &v)?);
        }
    }
    chunks.extend(writer.lock().pending_chunks(entity, attribute));
    Ok(chunks.into_values().collect())
}

fn scan(
    db: &sled::Db,
    writer: &parking_lot::Mutex<HistoryWriter>,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
) -> Result<impl Iterator<Item = (UnixMs, Value)>, StoreError> {
    let chunks = chunks_for(db, writer, entity, attribute, from, to)?;
    Ok(chunks.into_iter().flat_map(|c| c.points).filter(move |(t, _)| *t >= from && *t < to))
}

pub(crate) fn points(
    db: &sled::Db,
    writer: &parking_lot::Mutex<HistoryWriter>,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
    limit: usize,
) -> Result<HistoryPoints, StoreError> {
    let mut out = HistoryPoints::default();
    for p in scan(db, writer, entity, attribute, from, to)? {
        if out.points.len() == limit {
            out.truncated = true;
            break;
        }
        out.points.push(p);
    }
    Ok(out)
}

pub(crate) fn buckets(
    db: &sled::Db,
    writer: &parking_lot::Mutex<HistoryWriter>,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
    bucket_ms: i64,
) -> Result<Vec<HistoryBucket>, StoreError> {
    let mut out: Vec<HistoryBucket> = Vec::new();
    let mut sum = 0.0;
    for (t, value) in scan(db, writer, entity, attribute, from, to)? {
        let Some(v) = value.as_f64() else { continue };
        let start = t.div_euclid(bucket_ms) * bucket_ms;
        match out.last_mut() {
            Some(b) if b.start == start => {
                b.count += 1;
                b.min = b.min.min(v);
                b.max = b.max.max(v);
                sum += v;
                b.avg = sum / b.count as f64;
            }
            _ => {
                sum = v;
                out.push(HistoryBucket { start, count: 1, min: v, max: v, avg: v });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EntityId {
        EntityId::new(s).unwrap()
    }

    fn commit(db: &sled::Db, w: &mut HistoryWriter) {
        let mut b = sled::Batch::default();
        w.flush_into(&mut b);
        db.apply_batch(b).unwrap();
    }

    /// A sled database in a temp dir and one attribute to write history for.
    fn fixture() -> (tempfile::TempDir, sled::Db, EntityId, AttrName) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, db, id("urn:a"), AttrName::new("x").unwrap())
    }

    fn all(db: &sled::Db, e: &EntityId, a: &AttrName) -> Vec<UnixMs> {
        let none = parking_lot::Mutex::new(HistoryWriter::default());
        points(db, &none, e, a, i64::MIN, i64::MAX, usize::MAX).unwrap().points.into_iter().map(|p| p.0).collect()
    }

    /// Lookups by reference find keys only if both hash alike: a change to how ids hash would otherwise
    /// make every point start a chunk of its own.
    #[test]
    fn an_attribute_found_by_reference_hashes_as_its_key() {
        use std::hash::BuildHasher;
        let state = foldhash::fast::RandomState::default();
        let key: AttrKey = (id("urn:ngsi-ld:AirQualityObserved:a:1"), AttrName::new("pm25").unwrap());
        let probe = AttrRef("urn:ngsi-ld:AirQualityObserved:a:1", "pm25");
        assert_eq!(state.hash_one(&key), state.hash_one(probe));
        assert!(indexmap::Equivalent::equivalent(&probe, &key));
        assert!(!indexmap::Equivalent::equivalent(&AttrRef("urn:ngsi-ld:AirQualityObserved:a:1", "pm10"), &key));
    }

    #[test]
    fn a_point_is_listed_dirty_once_per_checkpoint_and_again_after() {
        let (_dir, db, e, a) = fixture();
        let mut w = HistoryWriter::default();
        for t in 0..10 {
            w.record(&db, &e, &a, t, Value::Number(t as f64)).unwrap();
        }
        assert_eq!(w.take_dirty().len(), 1);
        assert!(w.take_dirty().is_empty());
        w.record(&db, &e, &a, 10, Value::Number(10.0)).unwrap();
        assert_eq!(w.take_dirty().len(), 1, "listed again in the next epoch");
    }

    #[test]
    fn chunks_roll_over_and_late_points_land_in_order() {
        let (_dir, db, e, a) = fixture();
        let mut w = HistoryWriter::default();
        // 200 points, 10 per group, every other millisecond.
        for group in 0..20 {
            for i in 0..10 {
                let t = 1_000 + (group * 10 + i) * 2;
                w.record(&db, &e, &a, t, Value::Number(t as f64)).unwrap();
            }
            commit(&db, &mut w);
        }
        let chunks = db.scan_prefix(keys::history_prefix(&e, &a)).count();
        assert_eq!(chunks, 200usize.div_ceil(CHUNK_POINTS));
        // Late points: in the middle of old chunks, before every chunk, and a replay of an existing time.
        let mut late = HistoryWriter::default();
        for t in [1_001, 1_201, 1_203, 500, 1_100] {
            late.record(&db, &e, &a, t, Value::Number(-1.0)).unwrap();
        }
        commit(&db, &mut late);
        let mut expected: Vec<UnixMs> = (0..200).map(|k| 1_000 + k * 2).collect();
        expected.extend([1_001, 1_201, 1_203, 500]);
        expected.sort();
        assert_eq!(all(&db, &e, &a), expected);
        let none = parking_lot::Mutex::new(HistoryWriter::default());
        let window = points(&db, &none, &e, &a, 1_199, 1_204, 100).unwrap().points;
        assert_eq!(window.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1_200, 1_201, 1_202, 1_203]);
        assert_eq!(window[1].1, Value::Number(-1.0));
        // A fresh writer (as after a restart) continues the newest chunk from disk.
        let mut again = HistoryWriter::default();
        again.record(&db, &e, &a, 5_000, Value::Number(1.0)).unwrap();
        commit(&db, &mut again);
        assert_eq!(db.scan_prefix(keys::history_prefix(&e, &a)).count(), chunks + 1, "one chunk for the late point");
        assert_eq!(*all(&db, &e, &a).last().unwrap(), 5_000);
    }

    /// One retention pass as the store runs it: expired chunks found on disk, then trimmed with the ones in
    /// memory.
    fn retain(db: &sled::Db, w: &mut HistoryWriter, cutoff: UnixMs) -> usize {
        let expired = expired_chunks(db, cutoff).unwrap();
        let mut b = sled::Batch::default();
        let mut deleted = w.retain_chunks(db, &expired, cutoff, &mut b).unwrap();
        // Slices of 1, so that the tests cross slice boundaries.
        let mut from = Some(0);
        while let Some(start) = from {
            let (n, next) = w.retain_pending(cutoff, start, 1);
            deleted += n;
            from = next;
        }
        db.apply_batch(b).unwrap();
        deleted
    }

    #[test]
    fn retention_trims_the_chunks_in_memory_a_slice_at_a_time() {
        let (_dir, db, e, _) = fixture();
        let attrs: Vec<AttrName> = ["a", "b", "c"].iter().map(|n| AttrName::new(n).unwrap()).collect();
        let mut w = HistoryWriter::default();
        for t in 0..10 {
            for a in &attrs {
                w.record(&db, &e, a, t, Value::Integer(t)).unwrap();
            }
        }
        w.take_dirty();
        // Two of the three newest chunks, then the rest; each slice trims only its own.
        assert_eq!(w.retain_pending(5, 0, 2), (10, Some(2)));
        assert_eq!(w.take_dirty().len(), 2);
        assert_eq!(w.retain_pending(5, 2, 2), (5, None));
        assert_eq!(w.take_dirty().len(), 1);
        // A slice past the end (as when the writer was discarded during a pass) trims nothing and ends it.
        assert_eq!(w.retain_pending(5, 7, 2), (0, None));
        for a in &attrs {
            let key = (e.clone(), a.clone());
            assert_eq!(w.newest[&key].chunk.points.first().map(|p| p.0), Some(5), "{a}: points from the cutoff on");
        }
    }

    #[test]
    fn retention_removes_old_points_and_keeps_the_rest() {
        let (_dir, db, e, a) = fixture();
        let other = AttrName::new("y").unwrap();
        let mut w = HistoryWriter::default();
        for t in 0..300 {
            w.record(&db, &e, &a, t, Value::Integer(t)).unwrap();
            w.record(&db, &e, &other, t + 1_000, Value::Integer(t)).unwrap();
        }
        commit(&db, &mut w);
        assert_eq!(expired_chunks(&db, 150).unwrap().len(), 150usize.div_ceil(CHUNK_POINTS), "only `x` has old chunks");
        assert_eq!(retain(&db, &mut w, 150), 150);
        commit(&db, &mut w);
        assert_eq!(all(&db, &e, &a), (150..300).collect::<Vec<_>>());
        assert_eq!(all(&db, &e, &other), (1_000..1_300).collect::<Vec<_>>());
        assert_eq!(retain(&db, &mut w, 150), 0, "a second pass finds nothing more");
        // The writer's newest chunk is still consistent with disk.
        w.record(&db, &e, &a, 300, Value::Integer(300)).unwrap();
        commit(&db, &mut w);
        assert_eq!(all(&db, &e, &a), (150..=300).collect::<Vec<_>>());
        // Everything expires: the emptied chunks are deleted, on disk and by the next checkpoint.
        assert_eq!(retain(&db, &mut w, 10_000), 151 + 300);
        commit(&db, &mut w);
        assert_eq!(db.scan_prefix([keys::HISTORY]).count(), 0);
    }

    #[test]
    fn retention_trims_pending_chunks_in_memory_and_the_next_checkpoint_wins_over_one_in_flight() {
        let (_dir, db, e, a) = fixture();
        let writer = parking_lot::Mutex::new(HistoryWriter::default());
        for t in 0..10 {
            writer.lock().record(&db, &e, &a, t, Value::Integer(t)).unwrap();
        }
        // A checkpoint takes the chunk before retention runs, and writes it after.
        let dirty = writer.lock().take_dirty();
        let in_flight = writer.lock().newest_chunks(&dirty);
        assert_eq!(retain(&db, &mut writer.lock(), 5), 5, "not on disk yet, trimmed in memory");
        assert_eq!(points(&db, &writer, &e, &a, 0, 100, 100).unwrap().points.len(), 5);
        for (k, chunk) in &in_flight {
            db.insert(k, chunk.encode_record().unwrap()).unwrap();
        }
        assert_eq!(points(&db, &writer, &e, &a, 0, 100, 100).unwrap().points.len(), 5, "memory wins over disk");
        commit(&db, &mut writer.lock());
        assert_eq!(all(&db, &e, &a), (5..10).collect::<Vec<_>>(), "the next checkpoint writes the trimmed chunk");
    }

    #[test]
    fn a_checkpoint_shares_chunks_and_keeps_them_as_they_were() {
        let (_dir, db, e, a) = fixture();
        let mut w = HistoryWriter::default();
        for t in 0..10 {
            w.record(&db, &e, &a, t, Value::Integer(t)).unwrap();
        }
        let dirty = w.take_dirty();
        assert!(w.take_dirty().is_empty(), "taking the dirty set marks the chunks clean");
        let chunks = w.newest_chunks(&dirty);
        assert_eq!(chunks.len(), 1);
        assert!(Arc::ptr_eq(&chunks[0].1, &w.newest[&(e.clone(), a.clone())].chunk), "no copy while commits wait");
        // The writer goes on while the checkpoint is written: the chunk is copied on this write.
        w.record(&db, &e, &a, 10, Value::Integer(10)).unwrap();
        assert_eq!(chunks[0].1.points.len(), 10, "the checkpoint writes the chunk as it was");
        assert_eq!(w.pending_chunks(&e, &a)[0].1.points.len(), 11);
    }

    #[test]
    fn a_chunk_that_fills_after_the_dirty_set_is_taken_is_still_checkpointed() {
        let (_dir, db, e, a) = fixture();
        let mut w = HistoryWriter::default();
        let full = CHUNK_POINTS as UnixMs;
        for t in 0..full {
            w.record(&db, &e, &a, t, Value::Integer(t)).unwrap();
        }
        let dirty = w.take_dirty();
        // Before the checkpoint resolves it, the chunk fills and a new newest chunk starts.
        w.record(&db, &e, &a, full, Value::Integer(full)).unwrap();
        let mut b = sled::Batch::default();
        w.write_into(&dirty, &mut b);
        db.apply_batch(b).unwrap();
        assert_eq!(all(&db, &e, &a), (0..=full).collect::<Vec<_>>(), "every point up to the checkpoint is on disk");
        assert!(w.older.is_empty(), "written older chunks leave memory");
    }

    #[test]
    fn queries_see_chunks_not_yet_checkpointed() {
        let (_dir, db, e, a) = fixture();
        let writer = parking_lot::Mutex::new(HistoryWriter::default());
        for t in 0..100 {
            writer.lock().record(&db, &e, &a, t, Value::Integer(t)).unwrap();
        }
        // Checkpoint the first 100, then add more that stay pending, including a late one.
        commit(&db, &mut writer.lock());
        for t in [100, 101, 150, 50] {
            writer.lock().record(&db, &e, &a, t, Value::Integer(-t)).unwrap();
        }
        let got = points(&db, &writer, &e, &a, 0, 1_000, 1_000).unwrap().points;
        let times: Vec<UnixMs> = got.iter().map(|p| p.0).collect();
        let mut expected: Vec<UnixMs> = (0..102).collect();
        expected.push(150);
        assert_eq!(times, expected);
        assert_eq!(got[50].1, Value::Integer(-50), "the pending version of a chunk wins over the one on disk");
        let b = buckets(&db, &writer, &e, &a, 100, 200, 100).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].count, 3);
    }
}

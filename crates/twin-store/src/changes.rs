//! Change records: what the change log stores and what watchers receive.
//!
//! Every change that alters the latest state gets its own revision. The committer writes the changes of a
//! group as change-log records ([`log_records`]), keyed by their first revision, and broadcasts the group to
//! live watchers after it is durable. A record is the postcard encoding of a `[Change]` slice, compressed
//! with zstd unless that does not make it smaller; records written before compression (bare postcard) read
//! as they always did ([`decode_log_record`]).

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};
use twin_model::{AttrName, EntityId, EntityStatic, Reported, UnixMs, Value};

use crate::{StoreError, keys};

/// The most bytes a change-log record takes as stored. sled 0.34 keeps up to 17 records in a leaf and rewrites
/// the whole leaf when it consolidates it; a leaf over 128 KiB goes to a separate blob file, which the group
/// commit must then fsync with its directory. With records of up to 512 changes (about 45 KB) a fifth of the
/// group commits paid that (0.9 ms more, issue 6); 17 records of this size stay inline.
pub const LOG_RECORD_BYTES: usize = 6 * 1024;

/// How many encoded bytes of changes a record takes before compression. These records compress about
/// fivefold (ids, attribute names and times repeat), so one record holds a group of 250 updates; a record that
/// compresses worse than [`LOG_RECORD_BYTES`] is cut again into raw pieces of that size.
const RAW_RECORD_BYTES: usize = 4 * LOG_RECORD_BYTES;

/// The first bytes of a zstd frame. An uncompressed record (a postcard `[Change]` slice) never starts with
/// them: its second byte would begin a variant index above 6,000, and `Change` has two variants.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The committer's zstd context for change-log records, reused: a fresh context per record cost as much as
/// compressing it.
pub(crate) struct LogCompressor(Option<zstd::bulk::Compressor<'static>>);

impl LogCompressor {
    /// Level 1: about 11 us per 6 KB record on this project's machines, fivefold smaller.
    pub(crate) fn new() -> Self {
        LogCompressor(zstd::bulk::Compressor::new(1).ok())
    }

    /// `raw` compressed, or `raw` itself when compressing fails or does not make it smaller.
    fn compress(&mut self, raw: Vec<u8>) -> Vec<u8> {
        match self.0.as_mut().and_then(|c| c.compress(&raw).ok()) {
            Some(compressed) if compressed.len() < raw.len() => compressed,
            _ => raw,
        }
    }
}

impl fmt::Debug for LogCompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCompressor").field("zstd", &self.0.is_some()).finish()
    }
}

/// Encodes `changes` (in revision order) as change-log records of at most about [`LOG_RECORD_BYTES`] as
/// stored (only a record ending in a change that large itself is larger): (first revision, record).
pub(crate) fn log_records(changes: &[Change], compressor: &mut LogCompressor) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    for (range, raw) in raw_records(changes, RAW_RECORD_BYTES) {
        let first = changes[range.start].revision();
        let stored = compressor.compress(raw);
        if stored.len() <= LOG_RECORD_BYTES || range.len() == 1 {
            records.push((first, stored));
            continue;
        }
        // Compressed worse than expected: cut it into pieces that are small enough even uncompressed.
        let part = &changes[range];
        for (piece, raw) in raw_records(part, LOG_RECORD_BYTES) {
            records.push((part[piece.start].revision(), compressor.compress(raw)));
        }
    }
    records
}

/// `changes` as uncompressed records: each closed by the change that takes it to `limit` bytes or past.
fn raw_records(changes: &[Change], limit: usize) -> Vec<(std::ops::Range<usize>, Vec<u8>)> {
    let mut records = Vec::new();
    let mut body = Vec::with_capacity(limit * 2);
    let mut start = 0;
    for (i, change) in changes.iter().enumerate() {
        #[allow(clippy::expect_used)]
        {
            body = postcard::to_extend(change, body).expect("postcard encodes plain in-memory records");
        }
        if body.len() >= limit {
            records.push((start..i + 1, seq_record(i + 1 - start, &body)));
            body.clear();
            start = i + 1;
        }
    }
    if start < changes.len() {
        records.push((start..changes.len(), seq_record(changes.len() - start, &body)));
    }
    records
}

/// A postcard sequence: its length (postcard writes a sequence's length as it writes a `usize`), then the
/// elements already encoded in `body`.
fn seq_record(count: usize, body: &[u8]) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    let mut out = postcard::to_extend(&count, Vec::with_capacity(body.len() + 10))
        .expect("postcard encodes plain in-memory records");
    out.extend_from_slice(body);
    out
}

/// The changes of the change-log record stored at `key`, compressed or not; [`StoreError::Corrupt`] names the
/// key and what is wrong with the record.
pub(crate) fn decode_log_record(key: &[u8], record: &[u8]) -> Result<Vec<Change>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: keys::escaped(key), reason };
    if record.starts_with(&ZSTD_MAGIC) {
        let raw = zstd::decode_all(record).map_err(|e| corrupt(format!("compressed change-log record: {e}")))?;
        postcard::from_bytes(&raw).map_err(|e| corrupt(e.to_string()))
    } else {
        postcard::from_bytes(record).map_err(|e| corrupt(e.to_string()))
    }
}

/// One change to the latest state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// An entity was created or its static part changed.
    Upsert {
        /// The revision of this change.
        revision: u64,
        /// The new static part.
        header: EntityStatic,
    },
    /// An attribute's reported value changed.
    Attribute {
        /// The revision of this change.
        revision: u64,
        /// The entity.
        entity: EntityId,
        /// The attribute.
        attribute: AttrName,
        /// The new reported value.
        reported: Reported,
    },
}

impl Change {
    /// The revision of this change.
    pub fn revision(&self) -> u64 {
        match self {
            Change::Upsert { revision, .. } | Change::Attribute { revision, .. } => *revision,
        }
    }

    /// The entity changed.
    pub fn entity(&self) -> &EntityId {
        match self {
            Change::Upsert { header, .. } => &header.id,
            Change::Attribute { entity, .. } => entity,
        }
    }
}

/// The changes of one committed group, in revision order; what watchers receive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeGroup {
    /// The store revision after the group.
    pub revision: u64,
    /// The changes (possibly none, e.g. when every update was stale).
    pub changes: Vec<Change>,
}

/// A shared, immutable change group.
pub type SharedChanges = Arc<ChangeGroup>;

/// An accepted observation older than the attribute's latest value: it goes to history only, so it is not a
/// change and has no revision; the `W` records keep it durable until the next checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StalePoint {
    /// The entity.
    pub entity: EntityId,
    /// The attribute.
    pub attribute: AttrName,
    /// When it was observed.
    pub observed_at: UnixMs,
    /// The value.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_model::UnixMs;

    fn change(revision: u64, sensor: u64) -> Change {
        let at: UnixMs = 1_700_000_000_000 + revision as i64;
        Change::Attribute {
            revision,
            entity: EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:changsha:yuelu:{sensor:05}")).unwrap(),
            attribute: AttrName::new("pm25").unwrap(),
            reported: Reported {
                value: Value::Number(revision as f64 / 10.0),
                observed_at: at,
                received_at: at,
                revision,
            },
        }
    }

    /// A change whose text value does not compress.
    fn noisy(revision: u64, len: usize) -> Change {
        let mut x = revision.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let text: String = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        let Change::Attribute { entity, attribute, mut reported, .. } = change(revision, 1) else { unreachable!() };
        reported.value = Value::Text(text);
        Change::Attribute { revision, entity, attribute, reported }
    }

    fn decoded(records: &[(u64, Vec<u8>)]) -> Vec<Change> {
        let mut out = Vec::new();
        for (first, record) in records {
            let part = decode_log_record(&keys::changelog(*first), record).unwrap();
            assert_eq!(part[0].revision(), *first);
            out.extend(part);
        }
        out
    }

    #[test]
    fn records_are_compressed_stay_under_sleds_blob_threshold_and_decode_to_the_changes() {
        let changes: Vec<Change> = (1..=1_000).map(|r| change(r, r % 300)).collect();
        let records = log_records(&changes, &mut LogCompressor::new());
        for (_, record) in &records {
            assert!(record.starts_with(&ZSTD_MAGIC), "compressed");
            // 17 records in one sled leaf must stay under its 128 KiB blob threshold.
            assert!(record.len() <= LOG_RECORD_BYTES, "record of {} bytes", record.len());
        }
        let stored: usize = records.iter().map(|(_, r)| r.len()).sum();
        let raw: usize = changes.iter().map(|c| postcard::to_allocvec(c).unwrap().len()).sum();
        assert!(stored * 3 < raw, "{stored} bytes stored for {raw} encoded");
        assert_eq!(decoded(&records), changes);
    }

    #[test]
    fn incompressible_changes_are_cut_into_records_small_enough_uncompressed() {
        let changes: Vec<Change> = (1..=200).map(|r| noisy(r, 200)).collect();
        let records = log_records(&changes, &mut LogCompressor::new());
        assert!(records.len() > 4);
        for (_, record) in &records {
            assert!(record.len() <= LOG_RECORD_BYTES + 400, "record of {} bytes", record.len());
        }
        assert_eq!(decoded(&records), changes);
    }

    #[test]
    fn records_written_before_compression_still_decode() {
        let changes: Vec<Change> = (1..=20).map(|r| change(r, r)).collect();
        let old = postcard::to_allocvec(&changes).unwrap();
        assert!(!old.starts_with(&ZSTD_MAGIC));
        assert_eq!(decode_log_record(&keys::changelog(1), &old).unwrap(), changes);
        // Without a working compressor the records are bare postcard, as before.
        let records = log_records(&changes, &mut LogCompressor(None));
        assert_eq!(records, vec![(1, old)]);
    }

    #[test]
    fn a_large_change_closes_its_record_and_no_changes_make_no_record() {
        let mut compressor = LogCompressor::new();
        assert!(log_records(&[], &mut compressor).is_empty());
        let big = noisy(7, 3 * RAW_RECORD_BYTES);
        let records = log_records(&[change(6, 1), big.clone(), change(8, 2)], &mut compressor);
        assert_eq!(records.iter().map(|(first, _)| *first).collect::<Vec<_>>(), vec![6, 8]);
        assert_eq!(decoded(&records), vec![change(6, 1), big, change(8, 2)]);
    }

    #[test]
    fn a_damaged_compressed_record_is_an_error_not_a_panic() {
        let changes: Vec<Change> = (1..=100).map(|r| change(r, r)).collect();
        let (_, mut record) = log_records(&changes, &mut LogCompressor::new()).remove(0);
        let middle = record.len() / 2;
        record.truncate(middle);
        let err = decode_log_record(&keys::changelog(1), &record).unwrap_err().to_string();
        assert!(err.contains("compressed change-log record"), "{err}");
    }
}

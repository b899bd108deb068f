//! Change records: what the change log stores and what watchers receive.
//!
//! Every change that alters the latest state gets its own revision. The committer writes the changes of a
//! group as log records of about [`LOG_RECORD_BYTES`] each ([`log_records`]), keyed by their first revision,
//! and broadcasts the group to live watchers after it is durable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use twin_model::{AttrName, EntityId, EntityStatic, Reported, UnixMs, Value};

/// The size at which a change-log record is closed: the change that takes it past this is its last. sled 0.34 keeps up to 17 records in a leaf and rewrites the whole leaf when it
/// consolidates it; a leaf over 128 KiB goes to a separate blob file, which the group commit must then fsync
/// with its directory. With records of up to 512 changes (about 45 KB) a fifth of the group commits paid
/// that (0.9 ms more, issue 6); 17 records of this size stay inline.
pub const LOG_RECORD_BYTES: usize = 6 * 1024;

/// Encodes `changes` (in revision order) as change-log records of about [`LOG_RECORD_BYTES`]: (first
/// revision, record). A record is the postcard encoding of a `[Change]` slice, as the log readers decode it.
pub fn log_records(changes: &[Change]) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    let mut body = Vec::with_capacity(LOG_RECORD_BYTES * 2);
    let (mut first, mut count) = (0, 0usize);
    for change in changes {
        if count == 0 {
            first = change.revision();
        }
        #[allow(clippy::expect_used)]
        {
            body = postcard::to_extend(change, body).expect("postcard encodes plain in-memory records");
        }
        count += 1;
        if body.len() >= LOG_RECORD_BYTES {
            records.push((first, seq_record(count, &body)));
            body.clear();
            count = 0;
        }
    }
    if count > 0 {
        records.push((first, seq_record(count, &body)));
    }
    records
}

/// A postcard sequence: its length as a varint, then the elements already encoded in `body`.
fn seq_record(count: usize, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 10);
    let mut n = count as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(body);
    out
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

    #[test]
    fn records_stay_under_sleds_blob_threshold_and_decode_as_change_slices() {
        let changes: Vec<Change> = (1..=1_000).map(|r| change(r, r % 300)).collect();
        let records = log_records(&changes);
        assert!(records.len() > 5, "1,000 changes of ~90 bytes make several records, got {}", records.len());
        let mut decoded = Vec::new();
        for (first, record) in &records {
            assert!(record.len() < LOG_RECORD_BYTES + 200, "record of {} bytes", record.len());
            // 17 records in one sled leaf must stay under its 128 KiB blob threshold.
            assert!(17 * record.len() < 128 * 1024);
            let part: Vec<Change> = postcard::from_bytes(record).unwrap();
            assert_eq!(part[0].revision(), *first);
            // The same bytes as encoding the slice whole: readers of older logs see no difference.
            assert_eq!(*record, postcard::to_allocvec(&part).unwrap());
            decoded.extend(part);
        }
        assert_eq!(decoded, changes);
    }

    #[test]
    fn a_large_change_closes_its_record_and_no_changes_make_no_record() {
        assert!(log_records(&[]).is_empty());
        let big = Change::Upsert {
            revision: 7,
            header: twin_model::EntityStatic {
                id: EntityId::new(&"b".repeat(200)).unwrap(),
                entity_type: twin_model::TypeName::new("Building").unwrap(),
                geometry: Some(twin_model::Geometry::point(112.9, 28.2)),
                relationships: (0..400)
                    .map(|i| {
                        (AttrName::new(&format!("ref{i}")).unwrap(), EntityId::new(&format!("urn:x:{i:020}")).unwrap())
                    })
                    .collect(),
            },
        };
        let records = log_records(&[change(6, 1), big.clone(), change(8, 2)]);
        assert_eq!(records.iter().map(|(first, _)| *first).collect::<Vec<_>>(), vec![6, 8]);
        let first: Vec<Change> = postcard::from_bytes(&records[0].1).unwrap();
        assert_eq!(first, vec![change(6, 1), big]);
    }
}

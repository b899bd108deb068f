//! The on-disk format. Everything lives in sled's default tree so that each operation is one atomic
//! `apply_batch`. Numbers in keys are big-endian so byte order is numeric order. Every value starts with
//! a format version byte ([`FORMAT_VERSION`], or [`RANGE_VERSION`] for a sealed batch that names its
//! fragments), followed by its postcard encoding.
//!
//! | key                      | value (version byte + postcard)                         | written by            |
//! |--------------------------|---------------------------------------------------------|-----------------------|
//! | `P` fragment id (8 B)    | `Vec<OutboxUpdate>`: one append's share of a batch      | append                |
//! | `B` seq (8 B)            | [`FragmentRange`] (version 2): a sealed batch, immutable | append (when full), seal |
//! | `X` dead-letter id (8 B) | [`DeadLetterRecord`]: the rejects of one batch          | dead_letter           |
//! | `Mlast-sealed`           | the highest seq ever assigned (8 B, no version byte)    | every seal, ack       |
//! | `Mlast-acked`            | the highest seq acknowledged (8 B, no version byte)     | ack                   |
//!
//! Every update is written once, in a `P` fragment; fragment ids increase with append order and are unique
//! among the stored fragments. Sealing writes a small `B` record naming the batch's fragments (an inclusive
//! range of ids, all of them the batch's) instead of copying its updates, which halved what a seal wrote.
//! The open batch is the fragments no `B` record names, in id order. An ack (or a drop for room) deletes a
//! batch's `B` record and its fragments in one atomic batch. Outboxes written before fragment ranges hold
//! `B` records of version 1 ([`SealedRecord`], the updates themselves); they are still read, and acked as
//! before. Records stay under about 100 KB (see [`crate::OutboxConfig::max_batch_bytes`]) because sled
//! writes larger values to blob files it never fsyncs, and one key per append (never per update) because
//! sled 0.34 keeps about 1.8 KB of memory per key.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use twin_model::UnixMs;

use crate::{OutboxError, OutboxUpdate};

/// The version byte every record value starts with, except [`FragmentRange`]'s.
pub const FORMAT_VERSION: u8 = 1;
/// The version byte of a sealed batch stored as a [`FragmentRange`].
pub const RANGE_VERSION: u8 = 2;
/// Prefix of sealed batches.
pub const SEALED: u8 = b'B';
/// Prefix of open-batch fragments.
pub const OPEN: u8 = b'P';
/// Prefix of dead-letter groups.
pub const DEAD: u8 = b'X';
/// The highest batch seq ever assigned.
pub const LAST_SEALED: &[u8] = b"Mlast-sealed";
/// The highest batch seq acknowledged.
pub const LAST_ACKED: &[u8] = b"Mlast-acked";
/// An upper bound on a record's bytes besides its updates: version byte, `sealed_at_ms` and the length.
pub const RECORD_OVERHEAD: usize = 1 + 10 + 5;

/// An upper bound on the encoded size of a [`FragmentRange`]: version byte and four varints.
pub const RANGE_RECORD_MAX: usize = 1 + 4 * 10;

/// A sealed batch as stored under `B` seq since fragment ranges: its updates are those of the `P` fragments
/// `first..=last`, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentRange {
    /// When the batch was sealed (box clock).
    pub sealed_at_ms: UnixMs,
    /// Its first fragment id.
    pub first: u64,
    /// Its last fragment id (inclusive).
    pub last: u64,
    /// How many updates its fragments hold, checked when they are read.
    pub updates: u64,
}

/// A `B` record, of either version.
#[derive(Debug, Clone, PartialEq)]
pub enum SealedEntry {
    /// Version 1: the updates themselves.
    Inline(SealedRecord),
    /// Version 2: the fragments that hold them.
    Range(FragmentRange),
}

/// A sealed batch as stored under `B` seq by outboxes written before fragment ranges (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedRecord {
    /// When the batch was sealed (box clock).
    pub sealed_at_ms: UnixMs,
    /// Its updates in append order.
    pub updates: Vec<OutboxUpdate>,
}

/// The updates of one sealed batch the cloud rejected, as stored under `X` id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    /// The batch they came in.
    pub seq: u64,
    /// When they were set aside (box clock).
    pub dead_at_ms: UnixMs,
    /// Each rejected update with the cloud's reason.
    pub letters: Vec<(OutboxUpdate, String)>,
}

/// A prefix byte and a big-endian number.
pub fn key(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [prefix; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

/// The number in a `key` of the form prefix + 8 bytes.
pub fn number(key: &[u8]) -> Result<u64, OutboxError> {
    key.get(1..9)
        .filter(|_| key.len() == 9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt(key, "key is not a prefix byte and 8 bytes"))
}

/// A big-endian u64 meta value.
pub fn meta_u64(key: &[u8], value: Option<&[u8]>) -> Result<u64, OutboxError> {
    match value {
        None => Ok(0),
        Some(v) => v.try_into().map(u64::from_be_bytes).map_err(|_| corrupt(key, "meta value is not 8 bytes")),
    }
}

/// Encodes a record: version byte, then postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for these types (no maps with non-string keys, no unsized length).
    postcard::to_extend(value, vec![FORMAT_VERSION]).unwrap_or_else(|_| vec![FORMAT_VERSION])
}

/// Encodes a [`FragmentRange`] with its own version byte.
pub fn encode_range(range: &FragmentRange) -> Vec<u8> {
    postcard::to_extend(range, vec![RANGE_VERSION]).unwrap_or_else(|_| vec![RANGE_VERSION])
}

/// Decodes a `B` record of either version.
pub fn decode_sealed(key: &[u8], bytes: &[u8]) -> Result<SealedEntry, OutboxError> {
    match bytes.split_first() {
        Some((&RANGE_VERSION, rest)) => {
            let range: FragmentRange = postcard::from_bytes(rest).map_err(|e| corrupt(key, &e.to_string()))?;
            if range.first > range.last {
                return Err(corrupt(key, "fragment range ends before it starts"));
            }
            Ok(SealedEntry::Range(range))
        }
        _ => decode(key, bytes).map(SealedEntry::Inline),
    }
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, OutboxError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| corrupt(key, &e.to_string())),
        Some((v, _)) => Err(corrupt(key, &format!("unknown format version {v}"))),
        None => Err(corrupt(key, "empty value")),
    }
}

/// The encoded size of one update inside a record.
pub fn update_size(update: &OutboxUpdate) -> usize {
    postcard::experimental::serialized_size(update).unwrap_or(usize::MAX / 4)
}

/// The error for a record that cannot be what its key says.
pub(crate) fn corrupt(key: &[u8], reason: &str) -> OutboxError {
    OutboxError::Corrupt { key: key.escape_ascii().to_string(), reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_round_trip() {
        let ns = [0, 1, 255, 256, 1 << 40, u64::MAX];
        let keys: Vec<_> = ns.iter().map(|&n| key(SEALED, n)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (k, n) in keys.iter().zip(ns) {
            assert_eq!(number(k).ok(), Some(n));
        }
        assert!(number(b"Bshort").is_err());
    }

    #[test]
    fn records_carry_a_version_byte_and_reject_unknown_versions() {
        let record = SealedRecord { sealed_at_ms: 5, updates: vec![] };
        let mut bytes = encode(&record);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<SealedRecord>(b"k", &bytes).ok(), Some(record));
        bytes[0] = 99;
        assert!(matches!(decode::<SealedRecord>(b"k", &bytes), Err(OutboxError::Corrupt { .. })));
    }

    #[test]
    fn sealed_records_of_both_versions_decode_and_a_backwards_range_is_refused() {
        let inline = SealedRecord { sealed_at_ms: 5, updates: vec![] };
        assert_eq!(decode_sealed(b"B1", &encode(&inline)).ok(), Some(SealedEntry::Inline(inline)));
        let range = FragmentRange { sealed_at_ms: 5, first: 7, last: 9, updates: 1_000 };
        let bytes = encode_range(&range);
        assert!(bytes.len() <= RANGE_RECORD_MAX);
        assert_eq!(decode_sealed(b"B2", &bytes).ok(), Some(SealedEntry::Range(range)));
        let max = FragmentRange { sealed_at_ms: i64::MIN, first: u64::MAX, last: u64::MAX, updates: u64::MAX };
        assert!(encode_range(&max).len() <= RANGE_RECORD_MAX);
        let backwards = encode_range(&FragmentRange { first: 9, last: 7, ..range });
        let err = decode_sealed(b"B3", &backwards).unwrap_err().to_string();
        assert!(err.contains("ends before it starts"), "{err}");
    }
}

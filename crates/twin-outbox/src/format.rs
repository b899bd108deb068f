//! The on-disk format. Everything lives in sled's default tree so that each operation is one atomic
//! `apply_batch`. Numbers in keys are big-endian so byte order is numeric order. Every value starts with
//! a format version byte ([`FORMAT_VERSION`]), followed by its postcard encoding.
//!
//! | key                      | value (version byte + postcard)                         | written by            |
//! |--------------------------|---------------------------------------------------------|-----------------------|
//! | `B` seq (8 B)            | [`SealedRecord`]: a sealed batch, immutable             | append (when full), seal |
//! | `P` fragment id (8 B)    | `Vec<OutboxUpdate>`: one append's share of the open batch | append              |
//! | `X` dead-letter id (8 B) | [`DeadLetterRecord`]: the rejects of one batch          | dead_letter           |
//! | `Mlast-sealed`           | the highest seq ever assigned (8 B, no version byte)    | every seal, ack       |
//! | `Mlast-acked`            | the highest seq acknowledged (8 B, no version byte)     | ack                   |
//!
//! The open batch is the concatenation of the `P` records in key order. Sealing writes the open batch's
//! updates as one `B` record and deletes the `P` records in the same atomic batch, so an update is in
//! exactly one place at any time. Records stay under about 100 KB (see
//! [`crate::OutboxConfig::max_batch_bytes`]) because sled writes larger values to blob files it never
//! fsyncs, and one key per batch (never per update) because sled 0.34 keeps about 1.8 KB of memory per key.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use twin_model::UnixMs;

use crate::{OutboxError, OutboxUpdate};

/// The version byte every record value starts with.
pub const FORMAT_VERSION: u8 = 1;
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

/// A sealed batch as stored under `B` seq.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedRecord {
    /// When the batch was sealed (box clock).
    pub sealed_at_ms: UnixMs,
    /// Its updates in append order.
    pub updates: Vec<OutboxUpdate>,
}

/// [`SealedRecord`] borrowing its updates, for encoding without a copy (same encoding).
#[derive(Serialize)]
pub(crate) struct SealedRecordRef<'a> {
    pub sealed_at_ms: UnixMs,
    pub updates: &'a [OutboxUpdate],
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

fn corrupt(key: &[u8], reason: &str) -> OutboxError {
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
}

//! The on-disk key layout. Everything lives in sled's default tree so that one group commit is one atomic
//! `apply_batch`. Numbers are big-endian so byte order is numeric order. Entity ids are printable ASCII,
//! so the `0x00` separator cannot occur inside them.
//!
//! | key                                          | value (postcard)                                  | written          |
//! |----------------------------------------------|---------------------------------------------------|------------------|
//! | `C` first revision (8 B)                     | `Vec<`[`crate::Change`]`>`: the change log, zstd-compressed (bare before 2026-12-04) | every group |
//! | `W` sequence (8 B)                           | `Vec<`[`crate::changes::StalePoint`]`>`           | groups with stale points |
//! | `D` edge id                                  | last applied seq, updates delivered (8 B + 8 B)   | every group      |
//! | `M` `revision`                               | current revision (8 B)                            | every group      |
//! | `M` `wal-seq`                                | last `W` sequence (8 B)                           | with a `W` record |
//! | `E` id                                       | (revision, [`twin_model::EntityStatic`])          | every group      |
//! | `A` id `0x00` attribute                      | [`twin_model::AttributeState`]                    | checkpoint       |
//! | `H` id `0x00` attribute `0x00` start (8 B)   | a history chunk (see [`crate::history`])          | checkpoint       |
//! | `M` `checkpoint`                             | revision and `W` sequence the checkpoint covers (16 B) | checkpoint  |
//!
//! The change log (`C`) and the stale points (`W`) are the durable record of every accepted update; the
//! latest attribute state (`A`) and history (`H`) are checkpoints of them, written every few seconds, so the
//! ack path writes a few large records per group instead of rewriting thousands of small ones (sled 0.34
//! keeps a copy of a node in memory for each rewrite until it consolidates). Recovery loads the checkpoint
//! and replays the `C` and `W` records after it.
//!
//! `observed_at` and chunk starts are stored with their sign bit flipped so that negative times sort first.

/// Prefix of entity headers.
pub const ENTITY: u8 = b'E';
/// Prefix of attribute state.
pub const ATTRIBUTE: u8 = b'A';
/// Prefix of history points.
pub const HISTORY: u8 = b'H';
/// Prefix of change log records.
pub const CHANGELOG: u8 = b'C';
/// Prefix of per-edge dedup records.
pub const EDGE: u8 = b'D';
/// Prefix of stale-point records.
pub const STALE: u8 = b'W';
/// The revision counter.
pub const REVISION: &[u8] = b"Mrevision";
/// The last stale-point record sequence.
pub const STALE_SEQ: &[u8] = b"Mwal-seq";
/// What the checkpoint covers.
pub const CHECKPOINT: &[u8] = b"Mcheckpoint";

/// `W` sequence.
pub fn stale(seq: u64) -> [u8; 9] {
    let mut k = [STALE; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `E` id.
pub fn entity(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(ENTITY);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `A` id 0 attribute.
pub fn attribute(id: &str, attribute: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + id.len() + attribute.len());
    k.push(ATTRIBUTE);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(attribute.as_bytes());
    k
}

/// The history prefix of one attribute: `H` id 0 attribute 0.
pub fn history_prefix(id: &str, attribute: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(11 + id.len() + attribute.len());
    k.push(HISTORY);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(attribute.as_bytes());
    k.push(0);
    k
}

/// One history point's key.
pub fn history(id: &str, attribute: &str, observed_at: i64) -> Vec<u8> {
    let mut k = history_prefix(id, attribute);
    k.extend_from_slice(&time_bytes(observed_at));
    k
}

/// The entity id and attribute of a history key: the inverse of [`history`].
pub fn history_parts(key: &[u8]) -> Option<(&str, &str)> {
    let inner = key.strip_prefix(&[HISTORY])?;
    let body = inner.get(..inner.len().checked_sub(8)?)?.strip_suffix(&[0])?;
    let separator = body.iter().position(|b| *b == 0)?;
    Some((std::str::from_utf8(&body[..separator]).ok()?, std::str::from_utf8(&body[separator + 1..]).ok()?))
}

/// An observed time as sortable bytes.
pub fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time_bytes`] on the last 8 bytes of a history key.
pub fn time_from_key(key: &[u8]) -> Option<i64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some((u64::from_be_bytes(tail) ^ (1 << 63)) as i64)
}

/// `C` revision.
pub fn changelog(first_revision: u64) -> [u8; 9] {
    let mut k = [CHANGELOG; 9];
    k[1..].copy_from_slice(&first_revision.to_be_bytes());
    k
}

/// `D` edge id.
pub fn edge(edge_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + edge_id.len());
    k.push(EDGE);
    k.extend_from_slice(edge_id.as_bytes());
    k
}

/// A big-endian u64 value.
pub fn u64_from(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// A key as text for error messages.
pub fn escaped(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_time_including_negative() {
        let times = [-5_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        let keys: Vec<_> = times.iter().map(|&t| history("urn:a", "x", t)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (k, t) in keys.iter().zip(times) {
            assert_eq!(time_from_key(k), Some(t));
        }
    }

    #[test]
    fn history_keys_give_back_their_entity_and_attribute() {
        // Times whose bytes hold 0x00 must not confuse the separators.
        for t in [0, 1, -1, 256, i64::MIN, i64::MAX] {
            assert_eq!(history_parts(&history("urn:a:1", "pm25", t)), Some(("urn:a:1", "pm25")));
        }
        assert_eq!(history_parts(&attribute("urn:a:1", "pm25")), None);
        assert_eq!(history_parts(b"Hshort"), None);
    }

    #[test]
    fn attribute_keys_of_one_entity_share_a_prefix_no_other_entity_has() {
        // "urn:a" must not be a key prefix of "urn:ab"'s attributes thanks to the separator.
        let a = attribute("urn:a", "x");
        let ab = attribute("urn:ab", "x");
        let mut prefix = vec![ATTRIBUTE];
        prefix.extend_from_slice(b"urn:a\0");
        assert!(a.starts_with(&prefix));
        assert!(!ab.starts_with(&prefix));
    }
}

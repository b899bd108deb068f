//! Per-attribute history: every accepted observation (including ones older than the latest value) is kept
//! under `H` id attribute observed_at until retention deletes it. Queries scan one attribute's key range.

use twin_model::{AttrName, EntityId, UnixMs, Value};

use crate::{StoreError, keys};

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

fn scan(
    db: &sled::Db,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
) -> impl Iterator<Item = Result<(UnixMs, Value), StoreError>> {
    let start = keys::history(entity, attribute, from);
    let end = keys::history(entity, attribute, to);
    let range = if from < to { db.range(start..end) } else { db.range(start.clone()..start) };
    range.map(|entry| {
        let (k, v) = entry?;
        let t = keys::time_from_key(&k)
            .ok_or_else(|| StoreError::Corrupt { key: keys::escaped(&k), reason: "short history key".into() })?;
        let value = postcard::from_bytes(&v)
            .map_err(|e| StoreError::Corrupt { key: keys::escaped(&k), reason: e.to_string() })?;
        Ok((t, value))
    })
}

pub(crate) fn points(
    db: &sled::Db,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
    limit: usize,
) -> Result<HistoryPoints, StoreError> {
    let mut out = HistoryPoints::default();
    for p in scan(db, entity, attribute, from, to) {
        if out.points.len() == limit {
            out.truncated = true;
            break;
        }
        out.points.push(p?);
    }
    Ok(out)
}

pub(crate) fn buckets(
    db: &sled::Db,
    entity: &EntityId,
    attribute: &AttrName,
    from: UnixMs,
    to: UnixMs,
    bucket_ms: i64,
) -> Result<Vec<HistoryBucket>, StoreError> {
    let mut out: Vec<HistoryBucket> = Vec::new();
    let mut sum = 0.0;
    for p in scan(db, entity, attribute, from, to) {
        let (t, value) = p?;
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

/// Deletes every history point observed before `cutoff` of the given attributes.
pub(crate) fn delete_before(
    db: &sled::Db,
    targets: &[(EntityId, Vec<AttrName>)],
    cutoff: UnixMs,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for (entity, attributes) in targets {
        for attribute in attributes {
            let start = keys::history_prefix(entity, attribute);
            let end = keys::history(entity, attribute, cutoff);
            for entry in db.range(start..end) {
                let (k, _) = entry?;
                batch.remove(k);
                pending += 1;
            }
            if pending >= 10_000 {
                db.apply_batch(std::mem::take(&mut batch))?;
                deleted += pending;
                pending = 0;
            }
        }
    }
    if pending > 0 {
        db.apply_batch(batch)?;
        deleted += pending;
    }
    Ok(deleted)
}

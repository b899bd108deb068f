//! Latest first: after an outage, every attribute's latest value goes to the cloud before the backlog.
//!
//! The values go on their own ingest stream under the identity `<edge>.latest`, so they take no seqs from
//! the outbox's numbering (a seq must always mean the same sealed batch). That identity's seqs only need to
//! increase: each snapshot continues after the Welcome's `last_applied_seq`. A snapshot is best effort and
//! adds no obligation: every value in it is also in the backlog, which follows in order and is what the
//! outbox waits for; the cloud treats the backlog's copy of an observation it already holds as a repeat and
//! does not apply it again. So a snapshot lost half-way, or acknowledged as a duplicate because an earlier
//! stream of the same identity got there first, loses nothing.

use tonic::transport::Channel;
use twin_model::EdgeId;
use twin_outbox::OutboxUpdate;
use twin_proto::pb;

use super::{ACK_TIMEOUT, BoxError, open_stream};
use crate::wire::{SessionEncoder, UpdateRef};

/// The suffix of the snapshot identity.
const SUFFIX: &str = ".latest";
/// The most updates per snapshot batch, whatever the cloud allows: keeps each message well under 1 MB.
const MAX_UPDATES_PER_BATCH: usize = 5_000;

/// The identity snapshots are sent under, or `None` (latest first disabled, with a warning) when the edge id
/// is too long to take the suffix.
pub(super) fn identity(edge: &EdgeId) -> Option<EdgeId> {
    match EdgeId::new(&format!("{edge}{SUFFIX}")) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(edge = %edge, error = %e, "latest-first delivery disabled: edge id too long for its suffix");
            None
        }
    }
}

/// Sends `snapshot` on a new stream as `identity`, in batches of at most `max_updates`, and waits for every
/// ack. Returns how many updates the cloud applied (the rest were already there or rejected; rejections are
/// left to the backlog, whose copy becomes a dead letter with the same reason).
pub(super) async fn send(
    channel: Channel,
    identity: &EdgeId,
    snapshot: Vec<OutboxUpdate>,
    max_updates: usize,
    span: &tracing::Span,
) -> Result<u64, BoxError> {
    if snapshot.is_empty() {
        return Ok(0);
    }
    let per_batch = max_updates.clamp(1, MAX_UPDATES_PER_BATCH);
    let batches = snapshot.len().div_ceil(per_batch);
    let mut stream = open_stream(channel, identity, batches + 1, span).await?;
    let first = stream.welcome.last_applied_seq + 1;
    let mut encoder = SessionEncoder::new();
    for (i, chunk) in snapshot.chunks(per_batch).enumerate() {
        let batch = encoder.encode(first + i as u64, chunk.iter().map(UpdateRef::from));
        let msg = pb::IngestRequest { message: Some(pb::ingest_request::Message::Batch(batch)) };
        stream.tx.send(msg).await.map_err(|_| "latest-first stream closed")?;
    }
    let mut applied = 0u64;
    for _ in 0..batches {
        let next = tokio::time::timeout(ACK_TIMEOUT, stream.responses.message()).await;
        match next.map_err(|_| "no ack for the latest-first snapshot in time")?? {
            Some(pb::IngestResponse { message: Some(pb::ingest_response::Message::Ack(ack)) }) => {
                applied += u64::from(ack.applied);
            }
            other => return Err(format!("expected an ack for the latest-first snapshot, got {other:?}").into()),
        }
    }
    Ok(applied)
}

//! The uplink: sends the outbox's sealed batches to the cloud over the ingest stream of API v1.
//!
//! One task owns the connection. Per session it connects (zstd both ways), sends `Hello`, reads `Welcome`
//! and acknowledges the outbox up to `last_applied_seq` (the cloud already has those), then keeps up to
//! `max_in_flight` batches in flight: each sealed batch goes out under its outbox seq (never renumbered),
//! encoded compactly by a fresh [`SessionEncoder`]. The open batch is sealed at least every
//! `seal_interval`, so batches form by size (the outbox seals full batches itself) and by time.
//!
//! A batch leaves the outbox only when the cloud acknowledges it. Updates the cloud rejected are first set
//! aside as dead letters with the cloud's reason, then the batch is acknowledged, so a rejected update never
//! blocks the ones behind it. When the stream fails (an error, its end, no ack for [`ACK_TIMEOUT`]) the
//! uplink waits an exponential backoff with jitter and starts over: the next session resumes after the
//! Welcome's `last_applied_seq` and replays unacknowledged batches exactly as sealed; the cloud answers
//! replays as duplicates, so each batch is applied exactly once.
//!
//! Not done yet: sending [`Outbox::latest`] first after an outage (under its own dedup identity), and
//! splitting a sealed batch larger than the cloud's `max_batch_updates`.

use std::{
    collections::BTreeMap,
    error::Error,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{codec::CompressionEncoding, transport::Endpoint};
use twin_model::EdgeId;
use twin_outbox::{Outbox, OutboxError, OutboxUpdate};
use twin_proto::pb::{self, ingest_service_client::IngestServiceClient};

use crate::wire::{SessionEncoder, UpdateRef};

/// How long connecting, and waiting for the Welcome, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// With batches in flight, the longest wait for the next ack before the stream is deemed dead.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown may spend sending what is sealed and waiting for its acks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the uplink reaches the cloud.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// This box's id, the cloud's deduplication key for its batches.
    pub edge_id: EdgeId,
    /// The cloud's gRPC address, e.g. `http://twin.example:50051`.
    pub cloud_url: String,
    /// The open outbox batch is sealed at least this often (e.g. 200 ms).
    pub seal_interval: Duration,
    /// The most batches sent and not yet acknowledged.
    pub max_in_flight: usize,
    /// The shortest wait before a reconnect.
    pub backoff_min: Duration,
    /// The longest wait before a reconnect.
    pub backoff_max: Duration,
}

/// The uplink's counters, published on a watch channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Whether a session is established (Welcome received) now.
    pub connected: bool,
    /// Acks received since start (duplicates included).
    pub batches_acked: u64,
    /// The highest seq the cloud has acknowledged (or reported as applied in its Welcome).
    pub last_acked_seq: u64,
    /// Sessions that ended other than by shutdown, or failed to start.
    pub reconnects: u64,
    /// Updates the cloud rejected and that were set aside as dead letters.
    pub dead_lettered: u64,
}

/// The uplink task.
#[derive(Debug)]
pub struct Uplink;

type BoxError = Box<dyn Error + Send + Sync>;

/// How a session ended without an error.
enum SessionEnd {
    /// Shutdown was requested.
    Shutdown,
}

impl Uplink {
    /// Starts the uplink on the current Tokio runtime. It runs until `shutdown` is cancelled, then seals,
    /// sends what is sealed and waits for acks for at most [`SHUTDOWN_GRACE`] (if connected), and returns.
    pub fn spawn(
        config: UplinkConfig,
        outbox: Outbox,
        shutdown: CancellationToken,
    ) -> (JoinHandle<()>, watch::Receiver<UplinkStats>) {
        let (tx, rx) = watch::channel(UplinkStats::default());
        let handle = tokio::spawn(run(config, outbox, shutdown, tx));
        (handle, rx)
    }
}

async fn run(config: UplinkConfig, outbox: Outbox, shutdown: CancellationToken, stats: watch::Sender<UplinkStats>) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max, config.edge_id.as_str());
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let mut welcomed = false;
        let result = session(&config, &outbox, &shutdown, &stats, &mut welcomed).await;
        stats.send_modify(|s| s.connected = false);
        match result {
            Ok(SessionEnd::Shutdown) => break,
            Err(e) => {
                if shutdown.is_cancelled() {
                    break;
                }
                if welcomed {
                    backoff.reset();
                }
                stats.send_modify(|s| s.reconnects += 1);
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "uplink session ended");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracing::info!("uplink stopped");
}

/// Runs a blocking outbox call off the async threads.
async fn blocking<T, F>(outbox: &Outbox, f: F) -> Result<T, BoxError>
where
    T: Send + 'static,
    F: FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
{
    let outbox = outbox.clone();
    Ok(tokio::task::spawn_blocking(move || f(&outbox)).await??)
}

async fn session(
    config: &UplinkConfig,
    outbox: &Outbox,
    shutdown: &CancellationToken,
    stats: &watch::Sender<UplinkStats>,
    welcomed: &mut bool,
) -> Result<SessionEnd, BoxError> {
    let endpoint = Endpoint::from_shared(config.cloud_url.clone())?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    let channel = tokio::select! {
        () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        c = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect()) => c.map_err(|_| "connect timed out")??,
    };
    let mut client = IngestServiceClient::new(channel)
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let max_in_flight = config.max_in_flight.max(1);
    let (tx, rx) = mpsc::channel(max_in_flight + 2);
    let hello = pb::Hello { edge_id: config.edge_id.as_str().to_owned(), protocol_version: 1 };
    tx.send(pb::IngestRequest { message: Some(pb::ingest_request::Message::Hello(hello)) }).await?;

    let welcome = tokio::select! {
        () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        w = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut responses = client.ingest(ReceiverStream::new(rx)).await?.into_inner();
            match responses.message().await? {
                Some(pb::IngestResponse { message: Some(pb::ingest_response::Message::Welcome(w)) }) => {
                    Ok::<_, BoxError>((w, responses))
                }
                other => Err(format!("expected a welcome, got {other:?}").into()),
            }
        }) => w.map_err(|_| "no welcome in time")??,
    };
    let (welcome, mut responses) = welcome;
    let resume = welcome.last_applied_seq;
    blocking(outbox, move |o| o.ack(resume)).await?;
    *welcomed = true;
    stats.send_modify(|s| {
        s.connected = true;
        s.last_acked_seq = s.last_acked_seq.max(resume);
    });
    tracing::info!(last_applied_seq = resume, "uplink connected");

    let mut encoder = SessionEncoder::new();
    let mut last_sent = resume;
    let mut in_flight: BTreeMap<u64, Vec<OutboxUpdate>> = BTreeMap::new();
    let mut seal_tick = tokio::time::interval(config.seal_interval.max(Duration::from_millis(1)));
    seal_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_progress = Instant::now();
    let mut drain_deadline: Option<Instant> = None;

    loop {
        // Fill the window with sealed batches not yet sent on this stream.
        let mut more_sealed = false;
        if in_flight.len() < max_in_flight {
            let room = max_in_flight - in_flight.len();
            let after = last_sent;
            let batches = blocking(outbox, move |o| o.sealed_after(after, room)).await?;
            more_sealed = batches.len() == room;
            for b in batches {
                let refs = b.updates.iter().map(|u| UpdateRef {
                    entity: &u.entity,
                    attribute: &u.attribute,
                    value: &u.value,
                    observed_at: u.observed_at,
                });
                let batch = encoder.encode(b.seq, refs);
                let msg = pb::IngestRequest { message: Some(pb::ingest_request::Message::Batch(batch)) };
                tx.send(msg).await.map_err(|_| "ingest stream closed")?;
                if in_flight.is_empty() {
                    last_progress = Instant::now();
                }
                last_sent = b.seq;
                in_flight.insert(b.seq, b.updates);
            }
        }
        if let Some(deadline) = drain_deadline
            && ((in_flight.is_empty() && !more_sealed) || Instant::now() >= deadline)
        {
            if !in_flight.is_empty() {
                tracing::warn!(in_flight = in_flight.len(), "uplink shutdown before every batch was acked");
            }
            return Ok(SessionEnd::Shutdown);
        }
        let ack_deadline = last_progress + ACK_TIMEOUT;
        let wake = drain_deadline.map_or(ack_deadline, |d| d.min(ack_deadline));
        tokio::select! {
            () = shutdown.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
                blocking(outbox, |o| o.seal()).await?;
            }
            msg = responses.message() => {
                let ack = match msg? {
                    Some(pb::IngestResponse { message: Some(pb::ingest_response::Message::Ack(a)) }) => a,
                    Some(other) => {
                        tracing::debug!(?other, "ignoring an unexpected ingest response");
                        continue;
                    }
                    None => return Err("the cloud ended the ingest stream".into()),
                };
                handle_ack(outbox, stats, &mut in_flight, ack).await?;
                last_progress = Instant::now();
            }
            _ = seal_tick.tick() => {
                blocking(outbox, |o| o.seal()).await?;
            }
            () = tokio::time::sleep_until(wake), if !in_flight.is_empty() || drain_deadline.is_some() => {
                if Instant::now() >= ack_deadline && !in_flight.is_empty() {
                    return Err(format!("no ack for {ACK_TIMEOUT:?}").into());
                }
            }
        }
    }
}

async fn handle_ack(
    outbox: &Outbox,
    stats: &watch::Sender<UplinkStats>,
    in_flight: &mut BTreeMap<u64, Vec<OutboxUpdate>>,
    ack: pb::Ack,
) -> Result<(), BoxError> {
    let seq = ack.seq;
    let Some(updates) = in_flight.remove(&seq) else {
        return Err(format!("ack for seq {seq}, which is not in flight").into());
    };
    // Acks come in order: anything below is acknowledged too.
    in_flight.retain(|s, _| *s > seq);
    let rejected: Vec<(OutboxUpdate, String)> = ack
        .rejected
        .iter()
        .filter(|r| !r.upsert)
        .filter_map(|r| updates.get(r.index as usize).map(|u| (u.clone(), r.message.clone())))
        .collect();
    let dead = rejected.len() as u64;
    if !rejected.is_empty() {
        // Set aside before the ack deletes the batch, so a crash in between loses nothing.
        blocking(outbox, move |o| o.dead_letter(seq, rejected)).await?;
    }
    blocking(outbox, move |o| o.ack(seq)).await?;
    stats.send_modify(|s| {
        s.batches_acked += 1;
        s.last_acked_seq = s.last_acked_seq.max(seq);
        s.dead_lettered += dead;
    });
    Ok(())
}

/// Exponential backoff with jitter: the n-th consecutive wait is uniform in `[min, min(max, min * 2^n)]`.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    fn new(min: Duration, max: Duration, salt: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let salt =
            salt.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Backoff { min, max: max.max(min), attempt: 0, rng: SmallRng::seed_from_u64(nanos ^ salt) }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let cap = self.min.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let (lo, hi) = (self.min.as_micros() as u64, cap.as_micros() as u64);
        if hi <= lo {
            return cap;
        }
        Duration::from_micros(self.rng.random_range(lo..=hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(500));
        let mut b = Backoff::new(min, max, "edge-1");
        for n in 0..12u32 {
            let cap = min.saturating_mul(1 << n).min(max);
            let d = b.next_delay();
            assert!(d >= min && d <= cap, "attempt {n}: {d:?} not in {min:?}..={cap:?}");
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }
}

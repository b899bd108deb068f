//! The uplink: sends the outbox's sealed batches to the cloud over the ingest stream of API v1.
//!
//! One task owns the connection. Per session it connects (batches zstd-compressed, bytes counted by
//! [`crate::link`]), sends `Hello`, reads `Welcome` and acknowledges the outbox up to `last_applied_seq`
//! (the cloud already has those), then keeps up to `max_in_flight` batches in flight: each sealed batch goes
//! out under its outbox seq (never renumbered), encoded compactly by a fresh [`SessionEncoder`]. The open
//! batch is sealed at least every `seal_interval`, so batches form by size (the outbox seals full batches
//! itself) and by time. A batch goes out as soon as it is sealed: the task wakes on the outbox's seal
//! announcements ([`Outbox::subscribe_seals`]), not only on acks and its own timer, which with nothing in
//! flight used to leave a full batch waiting up to `seal_interval` for no reason.
//!
//! A batch leaves the outbox only when the cloud acknowledges it. Updates the cloud rejected are first set
//! aside as dead letters with the cloud's reason, then the batch is acknowledged, so a rejected update never
//! blocks the ones behind it. Acks are applied to the outbox by a task of their own, several at once, so that
//! sending the next sealed batch never waits for the outbox's writer; a session ends only after the acks it
//! received are applied. When the stream fails (an error, its end, no ack for [`ACK_TIMEOUT`]) the
//! uplink waits an exponential backoff with jitter and starts over: the next session resumes after the
//! Welcome's `last_applied_seq` and replays unacknowledged batches exactly as sealed; the cloud answers
//! replays as duplicates, so each batch is applied exactly once.
//!
//! **Latest first.** When a session starts with a backlog whose oldest update is at least `latest_first_after`
//! old and that fills more than the in-flight window (an outage, not a brief reconnect), the latest value of every attribute in the outbox goes first, on a second stream
//! under the identity `<edge>.latest` (see [`latest`]), and the backlog follows in order. The backlog then
//! carries those observations again; the cloud recognises a repeat of an attribute's latest observation and
//! does not apply it twice.
//!
//! A sealed batch larger than the cloud's Welcome limits cannot be sent and is never split (a seq must keep
//! meaning the same updates): the session fails with an error naming both limits, and retries with backoff
//! until an operator raises the cloud's limit. An outbox that has failed ([`OutboxError::Failed`]) stops the
//! uplink with that error: nothing more can be sent or acknowledged safely until the agent restarts.

mod latest;

use std::{collections::BTreeMap, error::Error, sync::Arc, time::Duration};

use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    codec::CompressionEncoding,
    transport::{Channel, Endpoint},
};
use tracing::Instrument;
use twin_model::{EdgeId, now_unix_ms};
use twin_outbox::{Outbox, OutboxError, OutboxUpdate};
use twin_proto::pb::{self, ingest_service_client::IngestServiceClient};

use crate::backoff::Backoff;
use crate::{
    link::{CountingConnector, LinkBytes},
    wire::{SessionEncoder, UpdateRef},
};

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
    /// A session that starts with a backlog older than this (and larger than the in-flight window) sends
    /// every attribute's latest value first (zero: never).
    pub latest_first_after: Duration,
    /// Entities to create (or confirm) in the cloud before the first batch is sent: the box's own entity and
    /// the sensors it reads. Loading is idempotent; it is done once per process, on the first session.
    pub register: Option<Registration>,
}

/// Entities the uplink registers through `AdminService.LoadEntities` before sending.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The catalog (units of the entities' attributes).
    pub catalog: Arc<twin_model::Catalog>,
    /// The entities.
    pub entities: Arc<Vec<twin_model::Entity>>,
}

impl UplinkConfig {
    /// The settings for `edge_id` and `cloud_url` with the defaults: seal every 200 ms, 8 batches in flight,
    /// backoff 200 ms to 30 s, latest first after a 30 s backlog.
    pub fn new(edge_id: EdgeId, cloud_url: impl Into<String>) -> Self {
        UplinkConfig {
            edge_id,
            cloud_url: cloud_url.into(),
            seal_interval: Duration::from_millis(200),
            max_in_flight: 8,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            latest_first_after: Duration::from_secs(30),
            register: None,
        }
    }
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
    /// Updates sent in batches, resends after a reconnect included.
    pub updates_sent: u64,
    /// Updates in acknowledged batches (each counted once).
    pub updates_acked: u64,
    /// Bytes written to the link: after compression, with HTTP/2 framing.
    pub bytes_sent: u64,
    /// Bytes read from the link.
    pub bytes_received: u64,
    /// When the cloud last acknowledged a batch (box clock, Unix ms).
    pub last_ack_at_ms: Option<i64>,
    /// When the last session ended other than by shutdown, or failed to start (box clock, Unix ms).
    pub last_failure_at_ms: Option<i64>,
    /// Latest-first snapshots sent after outages.
    pub latest_first_snapshots: u64,
    /// Updates sent in latest-first snapshots.
    pub latest_first_updates: u64,
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
    ) -> (JoinHandle<Result<(), OutboxError>>, watch::Receiver<UplinkStats>) {
        let (tx, rx) = watch::channel(UplinkStats::default());
        let link = Link { stats: tx, bytes: Arc::new(LinkBytes::default()) };
        let handle = tokio::spawn(run(config, outbox, shutdown, link));
        (handle, rx)
    }
}

/// The stats channel and the byte counters it reports.
struct Link {
    stats: watch::Sender<UplinkStats>,
    bytes: Arc<LinkBytes>,
}

impl Link {
    /// Changes the stats and refreshes the byte counts.
    fn update(&self, f: impl FnOnce(&mut UplinkStats)) {
        self.stats.send_modify(|s| {
            f(s);
            s.bytes_sent = self.bytes.sent();
            s.bytes_received = self.bytes.received();
        });
    }
}

async fn run(config: UplinkConfig, outbox: Outbox, shutdown: CancellationToken, link: Link) -> Result<(), OutboxError> {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max, config.edge_id.as_str());
    let latest_identity = latest::identity(&config.edge_id);
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    let mut registered = config.register.is_none();
    let outcome = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        let mut welcomed = false;
        let span = tracing::info_span!("uplink_session", edge = %config.edge_id);
        let state = SessionState { welcomed: &mut welcomed, registered: &mut registered };
        let result = session(&config, latest_identity.as_ref(), &outbox, &shutdown, &link, state, &span)
            .instrument(span.clone())
            .await;
        link.update(|s| s.connected = false);
        match result {
            Ok(SessionEnd::Shutdown) => break Ok(()),
            Err(e) => {
                if let Some(OutboxError::Failed) = e.downcast_ref::<OutboxError>() {
                    tracing::error!("uplink stopped: the outbox failed and must be reopened");
                    break Err(OutboxError::Failed);
                }
                if shutdown.is_cancelled() {
                    break Ok(());
                }
                if welcomed {
                    backoff.reset();
                }
                link.update(|s| {
                    s.reconnects += 1;
                    s.last_failure_at_ms = Some(now_unix_ms());
                });
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "uplink session ended");
                let until = Instant::now() + delay;
                loop {
                    // Keep the byte counters fresh while waiting (keep-alives of a dying connection).
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(until) => break,
                        _ = refresh.tick() => link.update(|_| {}),
                    }
                }
            }
        }
    };
    link.update(|_| {});
    tracing::info!("uplink stopped");
    outcome
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

/// The ingest client for a channel: batches zstd-compressed, messages up to 64 MiB. Responses (the Welcome
/// and acks, a few dozen bytes each) come uncompressed: tonic compresses each message with a fresh zstd
/// context, which for an ack costs more CPU on both ends than the whole ack and adds bytes (issue 6).
fn ingest_client(channel: Channel) -> IngestServiceClient<Channel> {
    IngestServiceClient::new(channel)
        .send_compressed(CompressionEncoding::Zstd)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20)
}

/// An open ingest stream: where to send requests, and its responses after the Welcome.
struct IngestStream {
    tx: mpsc::Sender<pb::IngestRequest>,
    responses: tonic::Streaming<pb::IngestResponse>,
    welcome: pb::Welcome,
}

/// Opens an ingest stream on `channel` as `edge_id` (with the session span's trace context in its metadata)
/// and waits for the Welcome.
async fn open_stream(
    channel: Channel,
    edge_id: &EdgeId,
    buffer: usize,
    span: &tracing::Span,
) -> Result<IngestStream, BoxError> {
    let (tx, rx) = mpsc::channel(buffer);
    let hello = pb::Hello { edge_id: edge_id.as_str().to_owned(), protocol_version: 1 };
    tx.send(pb::IngestRequest { message: Some(pb::ingest_request::Message::Hello(hello)) }).await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    twin_telemetry::propagation::inject_into_metadata(span, request.metadata_mut());
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut responses = ingest_client(channel).ingest(request).await?.into_inner();
        match responses.message().await? {
            Some(pb::IngestResponse { message: Some(pb::ingest_response::Message::Welcome(welcome)) }) => {
                Ok::<_, BoxError>(IngestStream { tx, responses, welcome })
            }
            other => Err(format!("expected a welcome, got {other:?}").into()),
        }
    });
    opened.await.map_err(|_| "no welcome in time")?
}

/// What outlives a session: whether it got as far as the Welcome, and whether registration is done.
struct SessionState<'a> {
    welcomed: &'a mut bool,
    registered: &'a mut bool,
}

/// Loads the registration entities; rejections are logged (the entity's updates will become dead letters
/// with the reason), a transport failure fails the session so it is retried.
async fn register(channel: Channel, registration: &Registration) -> Result<(), BoxError> {
    let entities = &registration.entities;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel)
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_encoding_message_size(64 << 20);
    let (mut loaded, mut unchanged, mut rejected) = (0u64, 0u64, 0usize);
    for chunk in entities.chunks(2_000) {
        let wire = chunk.iter().map(|e| entity_pb(&registration.catalog, e)).collect();
        let response = admin.load_entities(pb::LoadEntitiesRequest { entities: wire }).await?.into_inner();
        for r in response.rejected.iter().take(10) {
            tracing::warn!(entity = %r.entity_id, reason = %r.message, "the cloud rejected an entity this box reads");
        }
        loaded += u64::from(response.loaded);
        unchanged += u64::from(response.unchanged);
        rejected += response.rejected.len();
    }
    tracing::info!(entities = entities.len(), created_or_changed = loaded, unchanged, rejected, "entities registered");
    Ok(())
}

fn entity_pb(catalog: &twin_model::Catalog, e: &twin_model::Entity) -> pb::Entity {
    let def = catalog.get(&e.header.entity_type);
    twin_proto::convert::entity_to_pb(e, |a| def.and_then(|d| d.attributes.get(a)).and_then(|a| a.unit.as_deref()))
}

async fn session(
    config: &UplinkConfig,
    latest_identity: Option<&EdgeId>,
    outbox: &Outbox,
    shutdown: &CancellationToken,
    link: &Link,
    state: SessionState<'_>,
    span: &tracing::Span,
) -> Result<SessionEnd, BoxError> {
    let endpoint = Endpoint::from_shared(config.cloud_url.clone())?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    let connector = CountingConnector::new(link.bytes.clone());
    let channel = tokio::select! {
        () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        c = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect_with_connector(connector)) => {
            c.map_err(|_| "connect timed out")??
        }
    };
    let max_in_flight = config.max_in_flight.max(1);
    let stream = tokio::select! {
        () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        s = open_stream(channel.clone(), &config.edge_id, max_in_flight + 2, span) => s?,
    };
    let IngestStream { tx, responses, welcome } = stream;
    let resume = welcome.last_applied_seq;
    blocking(outbox, move |o| o.ack(resume)).await?;
    *state.welcomed = true;
    link.update(|s| {
        s.connected = true;
        s.last_acked_seq = s.last_acked_seq.max(resume);
    });
    tracing::info!(last_applied_seq = resume, "uplink connected");
    let limits = Limits::from(&welcome);
    if let Some(registration) = config.register.as_ref().filter(|_| !*state.registered) {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            r = register(channel.clone(), registration) => r?,
        }
        *state.registered = true;
    }

    let waiting = outbox.stats();
    let backlog = waiting.sealed_batches;
    let age = Duration::from_millis(waiting.oldest_age_ms.unwrap_or(0).max(0) as u64);
    if let Some(identity) = latest_identity
        && !config.latest_first_after.is_zero()
        && age >= config.latest_first_after
        && backlog > max_in_flight as u64
    {
        let snapshot = outbox.latest();
        let count = snapshot.len() as u64;
        tracing::info!(
            backlog_batches = backlog,
            backlog_age_s = age.as_secs(),
            attributes = count,
            "sending latest values first"
        );
        tokio::select! {
            () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            sent = latest::send(channel.clone(), identity, snapshot, limits.max_updates, span) => {
                let applied = sent?;
                tracing::debug!(applied, "latest-first snapshot acknowledged");
            }
        }
        link.update(|s| {
            s.latest_first_snapshots += 1;
            s.latest_first_updates += count;
        });
    }

    // The cloud's acks are applied to the outbox by their own task, off the send path: deleting acked batches
    // waits for the outbox's writer, which an append holds through its fsync, and a batch sealed meanwhile
    // must go out at once (issue 6).
    let (acks, rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(apply_acks(outbox.clone(), rx));
    let open = OpenStream { tx, responses, limits, resume, max_in_flight };
    let streamed = stream_batches(config, outbox, shutdown, link, open, &acks).await;
    drop(acks);
    // Whatever ended the session, the acks received are applied before the next session starts. A failed
    // ack task (the outbox failed) ends the stream at the next ack, and its error is the one to report.
    acker.await??;
    streamed
}

/// A session's ingest stream after the Welcome.
struct OpenStream {
    tx: mpsc::Sender<pb::IngestRequest>,
    responses: tonic::Streaming<pb::IngestResponse>,
    limits: Limits,
    resume: u64,
    max_in_flight: usize,
}

/// Sends sealed batches as they are sealed, keeping up to `max_in_flight` unacknowledged, and hands each ack
/// to the ack task, until shutdown (after draining) or a failure.
async fn stream_batches(
    config: &UplinkConfig,
    outbox: &Outbox,
    shutdown: &CancellationToken,
    link: &Link,
    open: OpenStream,
    acks: &mpsc::UnboundedSender<AckJob>,
) -> Result<SessionEnd, BoxError> {
    let OpenStream { tx, mut responses, limits, resume, max_in_flight } = open;
    // Subscribed before the first look at the outbox, so no seal can fall between the two.
    let mut seals = outbox.subscribe_seals();
    let mut seals_open = true;
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
        // Nothing to read when nothing was sealed since the last send (e.g. woken by an ack).
        if in_flight.len() < max_in_flight && outbox.has_sealed_after(last_sent) {
            let room = max_in_flight - in_flight.len();
            let after = last_sent;
            // A batch just sealed is still in memory; only a backlog needs a (blocking) read from disk.
            let mut batches = outbox.recent_sealed_after(after, room);
            if batches.is_empty() {
                batches = blocking(outbox, move |o| o.sealed_after(after, room)).await?;
            }
            for b in batches {
                limits.check(b.seq, b.updates.len())?;
                let batch = encoder.encode(b.seq, b.updates.iter().map(UpdateRef::from));
                limits.check_bytes(b.seq, prost::Message::encoded_len(&batch))?;
                let count = b.updates.len() as u64;
                let msg = pb::IngestRequest { message: Some(pb::ingest_request::Message::Batch(batch)) };
                tx.send(msg).await.map_err(|_| "ingest stream closed")?;
                if in_flight.is_empty() {
                    last_progress = Instant::now();
                }
                last_sent = b.seq;
                in_flight.insert(b.seq, b.updates);
                link.update(|s| s.updates_sent += count);
            }
            more_sealed = outbox.has_sealed_after(last_sent);
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
                handle_ack(link, &mut in_flight, ack, acks)?;
                last_progress = Instant::now();
            }
            _ = seal_tick.tick() => {
                blocking(outbox, |o| o.seal()).await?;
            }
            sealed = seals.recv(), if seals_open => {
                // Something was sealed: go round and fill the window now. Announcements already queued (or
                // lost to lag) are covered by the same look at the outbox.
                seals_open = !matches!(sealed, Err(broadcast::error::RecvError::Closed));
                while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = seals.try_recv() {}
            }
            () = tokio::time::sleep_until(wake), if !in_flight.is_empty() || drain_deadline.is_some() => {
                if Instant::now() >= ack_deadline && !in_flight.is_empty() {
                    return Err(format!("no ack for {ACK_TIMEOUT:?}").into());
                }
            }
        }
    }
}

/// An ack for the ack task: the batch, and its updates the cloud rejected, with the reasons.
struct AckJob {
    seq: u64,
    rejected: Vec<(OutboxUpdate, String)>,
}

/// Takes an ack off the in-flight window and passes it to the ack task.
fn handle_ack(
    link: &Link,
    in_flight: &mut BTreeMap<u64, Vec<OutboxUpdate>>,
    ack: pb::Ack,
    acks: &mpsc::UnboundedSender<AckJob>,
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
    let count = updates.len() as u64;
    // Unbounded: the ack task takes everything queued in one go (one cumulative ack), so the queue stays short.
    acks.send(AckJob { seq, rejected }).map_err(|_| "the ack task stopped")?;
    link.update(|s| {
        s.batches_acked += 1;
        s.last_acked_seq = s.last_acked_seq.max(seq);
        s.dead_lettered += dead;
        s.updates_acked += count;
        s.last_ack_at_ms = Some(now_unix_ms());
    });
    Ok(())
}

/// The ack task: applies acks in order until the session drops its sender. Whatever has arrived is applied
/// together: each batch's rejected updates are set aside as dead letters, then one cumulative ack deletes
/// every batch up to the newest (before the ack, so a crash in between loses nothing).
async fn apply_acks(outbox: Outbox, mut rx: mpsc::UnboundedReceiver<AckJob>) -> Result<(), BoxError> {
    let mut jobs = Vec::new();
    while rx.recv_many(&mut jobs, 256).await > 0 {
        let taken = std::mem::take(&mut jobs);
        blocking(&outbox, move |o| {
            let mut up_to = 0;
            for job in taken {
                up_to = up_to.max(job.seq);
                if !job.rejected.is_empty() {
                    o.dead_letter(job.seq, job.rejected)?;
                }
            }
            o.ack(up_to)
        })
        .await?;
    }
    Ok(())
}

/// What the cloud accepts per batch, from its Welcome.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_updates: usize,
    max_bytes: usize,
}

impl From<&pb::Welcome> for Limits {
    fn from(w: &pb::Welcome) -> Self {
        // 0 means the cloud did not say.
        let or_max = |v: u64| if v == 0 { usize::MAX } else { usize::try_from(v).unwrap_or(usize::MAX) };
        Limits { max_updates: or_max(u64::from(w.max_batch_updates)), max_bytes: or_max(w.max_message_bytes) }
    }
}

impl Limits {
    fn check(&self, seq: u64, updates: usize) -> Result<(), BoxError> {
        if updates > self.max_updates {
            return Err(format!(
                "sealed batch {seq} holds {updates} updates but the cloud accepts at most {} per batch: raise the \
                 cloud's max_batch_updates (batches are never split, a seq always means the same updates), and \
                 lower the edge's outbox.max_batch_updates for new batches",
                self.max_updates
            )
            .into());
        }
        Ok(())
    }

    fn check_bytes(&self, seq: u64, bytes: usize) -> Result<(), BoxError> {
        // Leave room for the request envelope.
        if bytes + 64 > self.max_bytes {
            return Err(format!(
                "sealed batch {seq} encodes to {bytes} bytes but the cloud accepts messages of at most {} bytes: \
                 raise the cloud's max_message_bytes",
                self.max_bytes
            )
            .into());
        }
        Ok(())
    }
}

//! The agent: wires sources, the deadband, the outbox, the uplink and the self-report, and shuts them down
//! in an order that loses nothing.
//!
//! ```text
//! sources --Vec<Reading>--> filter task (deadband) --append--> outbox <--sealed batches-- uplink --> cloud
//!                                      self-report task --append--^
//! ```
//!
//! Sources are started by the caller with [`Agent::sender`] and [`Agent::sources_shutdown`], so the agent
//! does not care what they are. The filter task owns the deadband (no lock) and appends what passes in
//! groups: whatever has queued up while the previous append was fsyncing goes into the next one, so the
//! number of fsyncs stays low however fast readings come. The self-report skips the deadband: its values
//! are few and each one is wanted.
//!
//! Shutdown ([`Agent::shutdown`]): stop the sources and wait for them; let the filter task append what
//! they sent; append a last self-report; then stop the uplink, which seals the open batch and sends what
//! is sealed for a short grace period. Whatever it could not send stays durable in the outbox for the
//! next start.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use twin_model::{Catalog, EntityId, now_unix_ms};
use twin_outbox::{Outbox, OutboxConfig, OutboxError, OutboxStats, OutboxUpdate};

use crate::{
    deadband::{Deadband, DeadbandConfig, DeadbandError},
    self_report::{ReportInput, SelfReport},
    source::{Counter, Reading, ReadingReceiver, ReadingSender},
    uplink::{Uplink, UplinkConfig, UplinkStats},
};

/// Readings queued between the sources and the filter task, in groups (a simulator tick, an MQTT message).
const CHANNEL_GROUPS: usize = 64;
/// The most readings the filter takes from the queue before appending.
const MAX_APPEND: usize = 20_000;

/// What the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentSetup {
    /// The catalog (deadband defaults, the self-report's checks).
    pub catalog: Arc<Catalog>,
    /// The box's own `EdgeNode` entity id.
    pub node_entity: EntityId,
    /// Sensors the box reads (for the self-report).
    pub sensors: u64,
    /// The deadband rules.
    pub deadband: DeadbandConfig,
    /// The outbox.
    pub outbox: OutboxConfig,
    /// The uplink.
    pub uplink: UplinkConfig,
    /// How often the box reports itself.
    pub self_report_interval: Duration,
}

/// Why the agent cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The deadband rules are invalid.
    #[error(transparent)]
    Deadband(#[from] DeadbandError),
    /// The outbox failed.
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// A task panicked.
    #[error("agent task {0} panicked")]
    Panicked(&'static str),
}

/// Counters of the filter task.
#[derive(Debug, Default)]
pub struct FilterStats {
    /// Readings received from sources.
    pub readings: Counter,
    /// Readings the deadband passed and the outbox stored.
    pub stored: Counter,
    /// Readings the deadband held back (unchanged within the threshold, heartbeat not due).
    pub suppressed: Counter,
    /// Readings lost because the outbox was full and its policy refuses new updates.
    pub refused_when_full: Counter,
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    outbox: Outbox,
    sender: Option<ReadingSender>,
    sources: CancellationToken,
    uplink_shutdown: CancellationToken,
    filter: JoinHandle<Result<(), OutboxError>>,
    filter_stats: Arc<FilterStats>,
    reporter: JoinHandle<()>,
    reporter_shutdown: CancellationToken,
    report: Arc<Reporter>,
    uplink: JoinHandle<Result<(), OutboxError>>,
    uplink_stats: watch::Receiver<UplinkStats>,
}

/// A source's count of messages it could not map, read at each self-report.
type UnmappableCount = Box<dyn Fn() -> u64 + Send + Sync>;

/// What the self-report needs, shared with its task.
struct Reporter {
    report: SelfReport,
    node: EntityId,
    sensors: u64,
    unmappable: parking_lot::Mutex<Vec<UnmappableCount>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("node", &self.node).field("sensors", &self.sensors).finish_non_exhaustive()
    }
}

impl Reporter {
    async fn append(&self, outbox: &Outbox, uplink: &UplinkStats) -> Result<(), OutboxError> {
        let stats = outbox.stats();
        let unmappable = self.unmappable.lock().iter().map(|count| count()).sum();
        let now = now_unix_ms();
        let input = ReportInput { entity: &self.node, uplink, outbox: &stats, sensors: self.sensors, unmappable, now };
        let updates: Vec<OutboxUpdate> = self.report.readings(&input).into_iter().map(|r| r.update).collect();
        let ob = outbox.clone();
        match tokio::task::spawn_blocking(move || ob.append(&updates)).await {
            Ok(Ok(_)) | Ok(Err(OutboxError::Full { .. })) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OutboxError::Failed),
        }
    }
}

/// What is left after a shutdown.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// The outbox's counters at the end (what was not acknowledged is still in it, durable).
    pub outbox: OutboxStats,
    /// The uplink's counters at the end.
    pub uplink: UplinkStats,
}

impl Agent {
    /// Opens the outbox and starts the filter, uplink and self-report tasks on the current runtime.
    pub fn start(setup: AgentSetup) -> Result<Agent, AgentError> {
        let deadband = Deadband::new(&setup.deadband, &setup.catalog)?;
        let outbox = Outbox::open(setup.outbox.clone())?;
        let (tx, rx) = mpsc::channel(CHANNEL_GROUPS);
        let filter_stats = Arc::new(FilterStats::default());
        let chunk = setup.outbox.max_batch_updates;
        let filter = tokio::spawn(filter_task(rx, deadband, outbox.clone(), chunk, filter_stats.clone()));
        let uplink_shutdown = CancellationToken::new();
        let (uplink, uplink_stats) = Uplink::spawn(setup.uplink.clone(), outbox.clone(), uplink_shutdown.clone());
        let report = Arc::new(Reporter {
            report: SelfReport::new(),
            node: setup.node_entity.clone(),
            sensors: setup.sensors,
            unmappable: parking_lot::Mutex::new(Vec::new()),
        });
        let reporter_shutdown = CancellationToken::new();
        let reporter = tokio::spawn(report_task(
            report.clone(),
            outbox.clone(),
            uplink_stats.clone(),
            setup.self_report_interval,
            reporter_shutdown.clone(),
        ));
        Ok(Agent {
            outbox,
            sender: Some(tx),
            sources: CancellationToken::new(),
            uplink_shutdown,
            filter,
            filter_stats,
            reporter,
            reporter_shutdown,
            report,
            uplink,
            uplink_stats,
        })
    }

    /// Where sources send readings.
    #[allow(clippy::expect_used)] // the sender is only taken by shutdown, which consumes the agent
    pub fn sender(&self) -> ReadingSender {
        self.sender.clone().expect("agent is running")
    }

    /// The token sources stop on; cancelled first by [`Agent::shutdown`].
    pub fn sources_shutdown(&self) -> CancellationToken {
        self.sources.clone()
    }

    /// Adds a source's count of unmappable messages to the self-report's `unmappableMessages`.
    pub fn report_unmappable(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        self.report.unmappable.lock().push(Box::new(count));
    }

    /// The outbox (stats, dead letters).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The uplink's counters.
    pub fn uplink_stats(&self) -> watch::Receiver<UplinkStats> {
        self.uplink_stats.clone()
    }

    /// The filter's counters.
    pub fn filter_stats(&self) -> Arc<FilterStats> {
        self.filter_stats.clone()
    }

    /// Resolves when a task stopped on its own with an error (the outbox failed): the agent cannot go on;
    /// drop it rather than calling [`Agent::shutdown`].
    pub async fn failed(&mut self) -> AgentError {
        let outcome = tokio::select! {
            r = &mut self.filter => r.map_err(|_| AgentError::Panicked("filter")),
            r = &mut self.uplink => r.map_err(|_| AgentError::Panicked("uplink")),
        };
        match outcome {
            Ok(Ok(())) => AgentError::Outbox(OutboxError::Failed),
            Ok(Err(e)) => AgentError::Outbox(e),
            Err(e) => e,
        }
    }

    /// Stops everything in order (see the module docs); `sources` are the caller's source tasks.
    pub async fn shutdown(mut self, sources: Vec<JoinHandle<()>>) -> Result<ShutdownReport, AgentError> {
        self.sources.cancel();
        for s in sources {
            if s.await.is_err() {
                tracing::warn!("a source task panicked");
            }
        }
        // The filter ends once every sender is gone and what they queued is appended.
        drop(self.sender.take());
        let filtered = (&mut self.filter).await.map_err(|_| AgentError::Panicked("filter"))?;
        self.reporter_shutdown.cancel();
        let _ = (&mut self.reporter).await;
        let uplink_now = self.uplink_stats.borrow().clone();
        let reported = self.report.append(&self.outbox, &uplink_now).await;
        self.uplink_shutdown.cancel();
        let uplinked = (&mut self.uplink).await.map_err(|_| AgentError::Panicked("uplink"))?;
        filtered?;
        reported?;
        uplinked?;
        let report = ShutdownReport { outbox: self.outbox.stats(), uplink: self.uplink_stats.borrow().clone() };
        Ok(report)
    }
}

async fn filter_task(
    mut rx: ReadingReceiver,
    mut deadband: Deadband,
    outbox: Outbox,
    append_chunk: usize,
    stats: Arc<FilterStats>,
) -> Result<(), OutboxError> {
    let append_chunk = append_chunk.max(1);
    let mut batch: Vec<OutboxUpdate> = Vec::new();
    while let Some(group) = rx.recv().await {
        let mut pending = vec![group];
        let mut queued = pending[0].len();
        while queued < MAX_APPEND {
            match rx.try_recv() {
                Ok(more) => {
                    queued += more.len();
                    pending.push(more);
                }
                Err(_) => break,
            }
        }
        // Fired after the appends below, so a source confirms upstream only what is durable here.
        let notify: Vec<_> = pending.iter_mut().filter_map(|g| g.on_stored.take()).collect();
        let (mut read, mut suppressed) = (0, 0);
        for r in pending.into_iter().flatten() {
            read += 1;
            let Reading { entity_type, update } = r;
            if deadband.admit(&entity_type, &update.entity, &update.attribute, &update.value, update.observed_at) {
                batch.push(update);
            } else {
                suppressed += 1;
            }
        }
        stats.readings.add(read);
        stats.suppressed.add(suppressed);
        if batch.is_empty() {
            confirm(notify);
            continue;
        }
        let ob = outbox.clone();
        let updates = std::mem::take(&mut batch);
        let chunk = append_chunk;
        let (outcomes, mut returned) = tokio::task::spawn_blocking(move || {
            // One append per batch-sized chunk: a full outbox makes room per chunk, and a chunk never
            // exceeds what a budget of a few batches can take.
            let outcomes: Vec<(u64, Result<(), OutboxError>)> =
                updates.chunks(chunk).map(|c| (c.len() as u64, ob.append(c).map(|_| ()))).collect();
            (outcomes, updates)
        })
        .await
        .map_err(|_| OutboxError::Failed)?;
        for (n, result) in outcomes {
            match result {
                Ok(()) => stats.stored.add(n),
                // The stated policy: refused and counted (the outbox logs the start of each full episode).
                Err(OutboxError::Full { .. }) => stats.refused_when_full.add(n),
                Err(e) => {
                    tracing::error!(error = %e, "the outbox failed; the agent stops reading");
                    return Err(e);
                }
            }
        }
        confirm(notify);
        returned.clear();
        batch = returned;
    }
    Ok(())
}

/// Tells the sources their groups are dealt with (a source that went away no longer cares).
fn confirm(notify: Vec<tokio::sync::oneshot::Sender<()>>) {
    for n in notify {
        let _ = n.send(());
    }
}

async fn report_task(
    report: Arc<Reporter>,
    outbox: Outbox,
    uplink: watch::Receiver<UplinkStats>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = uplink.borrow().clone();
        if let Err(e) = report.append(&outbox, &now).await {
            tracing::error!(error = %e, "self-report could not be stored");
            return;
        }
    }
}

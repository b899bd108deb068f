//! End-to-end freshness for BENCHMARKS.md (issue 6): how long after an edge samples a value a watcher of the
//! cloud receives the change, at a steady update rate.
//!
//! ```sh
//! cargo run --release -p edge --example freshness -- [--rate 50000] [--seconds 60] [--warmup 5] \
//!     [--sensors 10000] [--seal-interval-ms 200] [--batch-updates 250] [--per-second] \
//!     [--os-buffered] [--checkpoint-s 30] [--edge-no-fsync] [--cloud-binary target/release/cloud]
//! ```
//!
//! **What runs.** An in-process cloud (real gRPC on `127.0.0.1:0`, sled in a temp dir, `fsync` durability
//! unless `--os-buffered`, checkpoints every `--checkpoint-s`), a real edge [`Agent`] (deadband, durable outbox
//! with fsync unless `--edge-no-fsync`, uplink) fed by a synthetic source, and a Watch client on its own gRPC
//! connection to the cloud, all in this process so one monotonic clock times everything. With
//! `--cloud-binary` the cloud is that binary as a child process instead, as deployed: it shares the machine
//! but not the process (sled 0.34's batch lock is process-wide); every instant is still taken here.
//!
//! The `--sensors` `AirQualityObserved` stations report five attributes round-robin (pm25, pm10, no2, so2,
//! o3: `--sensors` x 5 attribute slots), so at 50,000 updates/s over 50,000 slots each attribute changes once
//! a second.
//!
//! **Pacing.** Every millisecond the source hands the agent the readings due by then (`--rate` / 1,000 per
//! tick on time; more after a late tick, so the average rate holds), as one group, the way a simulator tick
//! or an MQTT message arrives. The group's hand-over instant is its readings' **sample** time.
//!
//! **Which update is which.** Update number `g` goes to slot `g % slots` with the value `(g / slots) / 10`
//! (every value differs from the last, so a deadband of "any change" passes them all), so the watcher turns
//! (entity, attribute, value) back into `g` and looks up its exact sample instant: `observed_at` (ms) is too
//! coarse for this.
//!
//! **Stages.** For every update the watcher receives:
//! - *stored*: sample -> the agent made its group durable in the outbox (channel, deadband, append + fsync),
//!   timed when the group's `on_stored` notifier fires;
//! - *batching window*: stored -> its outbox batch was sealed ([`twin_outbox::Sealed::at`], announced by the
//!   outbox), 0 when the append that stored it also sealed it. Batches are sealed when full (`--batch-updates`
//!   or 100 KB) or every `--seal-interval-ms` by the uplink, so this window is set by configuration, not
//!   by speed;
//! - *after seal*: sealed -> received by the watcher: uplink (read, encode, zstd, gRPC), cloud (decode,
//!   validate, group commit with fsync), change broadcast, Watch stream, client decode;
//! - *total* = sample -> received; *excluding the batching window* = total - batching window.
//!
//! Updates sampled during `--warmup` are delivered and checked but not counted in the figures. Every update
//! generated must reach the watcher exactly once. `--per-second` adds p50 / p99 / max of each stage per
//! second of sample time, to see what the slow moments have in common.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use edge::{
    agent::{Agent, AgentSetup},
    deadband::{DeadbandConfig, Rule, Threshold},
    source::{Reading, Readings},
    uplink::{UplinkConfig, UplinkStats},
};
use hdrhistogram::Histogram;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use twin_e2e::{ChildProcess, Clients, InProcessCloud, connect, entity, load, station, station_id, thread_cpu_s};
use twin_model::{AttrName, Catalog, EdgeId, EntityId, TypeName, Value, now_unix_ms};
use twin_outbox::{OutboxConfig, OutboxUpdate, Sealed};
use twin_proto::pb::{self, twin_service_client::TwinServiceClient};

const ATTRIBUTES: [&str; 5] = ["pm25", "pm10", "no2", "so2", "o3"];
/// Values are `round / 10`; pm25, the narrowest range here, accepts up to 1,000.
const MAX_ROUNDS: u64 = 10_000;
const EDGE: &str = "bench-freshness";
/// The source's tick.
const TICK: Duration = Duration::from_millis(1);
/// How long the last updates may take to arrive after the source stops.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Args {
    rate: u64,
    seconds: f64,
    warmup: f64,
    sensors: usize,
    seal_interval_ms: u64,
    batch_updates: usize,
    os_buffered: bool,
    edge_fsync: bool,
    checkpoint_s: f64,
    per_second: bool,
    cloud_binary: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rate: 50_000,
        seconds: 60.0,
        warmup: 5.0,
        sensors: 10_000,
        seal_interval_ms: 200,
        batch_updates: OutboxConfig::new("").max_batch_updates,
        os_buffered: false,
        edge_fsync: true,
        checkpoint_s: 30.0,
        per_second: false,
        cloud_binary: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rate" => a.rate = value()?.parse().context("--rate")?,
            "--seconds" => a.seconds = value()?.parse().context("--seconds")?,
            "--warmup" => a.warmup = value()?.parse().context("--warmup")?,
            "--sensors" => a.sensors = value()?.parse().context("--sensors")?,
            "--seal-interval-ms" => a.seal_interval_ms = value()?.parse().context("--seal-interval-ms")?,
            "--batch-updates" => a.batch_updates = value()?.parse().context("--batch-updates")?,
            "--os-buffered" => a.os_buffered = true,
            "--per-second" => a.per_second = true,
            "--edge-no-fsync" => a.edge_fsync = false,
            "--checkpoint-s" => a.checkpoint_s = value()?.parse().context("--checkpoint-s")?,
            "--cloud-binary" => a.cloud_binary = Some(value()?.into()),
            other => bail!(
                "unknown flag {other}; flags: --rate N --seconds S --warmup S --sensors N --seal-interval-ms MS \
                 --batch-updates N --os-buffered --per-second --edge-no-fsync --checkpoint-s S --cloud-binary PATH"
            ),
        }
    }
    ensure!(a.rate > 0 && a.sensors > 0 && a.seconds > 0.0 && a.warmup >= 0.0, "values must be above 0");
    let slots = (a.sensors * ATTRIBUTES.len()) as f64;
    // Two updates of one attribute in the same millisecond would share an observed time: the second is stale.
    ensure!(slots / a.rate as f64 >= 0.002, "--sensors too few for --rate: each attribute at most every 2 ms");
    let rounds = (a.rate as f64 * (a.seconds + a.warmup) / slots).ceil() as u64;
    ensure!(rounds < MAX_ROUNDS, "{rounds} updates per attribute exceed the value encoding; add --sensors");
    Ok(a)
}

/// Where update `g` goes and what it says.
#[derive(Debug, Clone, Copy)]
struct Slots {
    sensors: usize,
}

impl Slots {
    fn count(&self) -> u64 {
        (self.sensors * ATTRIBUTES.len()) as u64
    }

    /// (sensor, attribute index, value) of update `g`.
    fn of(&self, g: u64) -> (usize, usize, f64) {
        let slot = (g % self.count()) as usize;
        let round = g / self.count();
        (slot / ATTRIBUTES.len(), slot % ATTRIBUTES.len(), round as f64 / 10.0)
    }

    /// The update number of a change the watcher received.
    fn number(&self, entity_id: &str, attribute: &str, value: f64) -> Option<u64> {
        let sensor: usize = entity_id.rsplit(':').next()?.parse().ok()?;
        let a = ATTRIBUTES.iter().position(|n| *n == attribute)?;
        let round = (value * 10.0).round();
        if sensor >= self.sensors || !(0.0..MAX_ROUNDS as f64).contains(&round) {
            return None;
        }
        Some(round as u64 * self.count() + (sensor * ATTRIBUTES.len() + a) as u64)
    }
}

/// One group handed to the agent: updates `first..first + count`, sampled at `at`.
#[derive(Debug, Clone, Copy)]
struct Group {
    first: u64,
    count: u64,
    at: Instant,
}

/// The source: hands the agent the readings due every tick until `until`; returns the groups it sent.
async fn source(
    tx: edge::source::ReadingSender,
    stored_tx: mpsc::Sender<oneshot::Receiver<()>>,
    slots: Slots,
    rate: u64,
    until: Duration,
    stop: CancellationToken,
) -> Result<Vec<Group>> {
    let ids: Vec<EntityId> = (0..slots.sensors).map(|i| EntityId::new(&station_id(i))).collect::<Result<_, _>>()?;
    let names: Vec<AttrName> = ATTRIBUTES.iter().map(|a| AttrName::new(a)).collect::<Result<_, _>>()?;
    let entity_type = TypeName::new("AirQualityObserved")?;
    let mut groups = Vec::with_capacity(until.as_millis() as usize + 16);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let elapsed = started.elapsed().min(until);
        let due = (elapsed.as_secs_f64() * rate as f64) as u64;
        if due > sent {
            let observed_at = now_unix_ms();
            let readings: Vec<Reading> = (sent..due)
                .map(|g| {
                    let (s, a, v) = slots.of(g);
                    let update = OutboxUpdate {
                        entity: ids[s].clone(),
                        attribute: names[a].clone(),
                        value: Value::Number(v),
                        observed_at,
                    };
                    Reading { entity_type: entity_type.clone(), update }
                })
                .collect();
            let (on_stored, stored) = oneshot::channel();
            let at = Instant::now();
            tx.send(Readings { readings, on_stored: Some(on_stored) }).await.context("the agent stopped")?;
            stored_tx.send(stored).await.context("the stored observer stopped")?;
            groups.push(Group { first: sent, count: due - sent, at });
            sent = due;
        }
        if elapsed >= until {
            break;
        }
    }
    Ok(groups)
}

/// The instant each group became durable in the outbox, in group order (groups are appended in order).
async fn stored_observer(mut rx: mpsc::Receiver<oneshot::Receiver<()>>) -> Result<Vec<Instant>> {
    let mut out = Vec::new();
    while let Some(stored) = rx.recv().await {
        stored.await.context("a group was never stored")?;
        out.push(Instant::now());
    }
    Ok(out)
}

/// Every seal until `stop`, and those announced before it.
async fn seal_observer(mut seals: broadcast::Receiver<Sealed>, stop: CancellationToken) -> Result<Vec<Sealed>> {
    let mut out = Vec::new();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            s = seals.recv() => s,
        };
        match next {
            Ok(s) => out.push(s),
            Err(broadcast::error::RecvError::Lagged(n)) => bail!("the seal observer missed {n} seals"),
            Err(broadcast::error::RecvError::Closed) => return Ok(out),
        }
    }
    loop {
        match seals.try_recv() {
            Ok(s) => out.push(s),
            Err(broadcast::error::TryRecvError::Lagged(n)) => bail!("the seal observer missed {n} seals"),
            Err(_) => return Ok(out),
        }
    }
}

/// When the uplink saw each ack: (highest seq acknowledged, instant), until `stop`.
async fn ack_observer(mut stats: watch::Receiver<UplinkStats>, stop: CancellationToken) -> Vec<(u64, Instant)> {
    let mut out: Vec<(u64, Instant)> = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return out,
            changed = stats.changed() => if changed.is_err() { return out },
        }
        let acked = stats.borrow_and_update().last_acked_seq;
        if out.last().is_none_or(|&(seq, _)| acked > seq) {
            out.push((acked, Instant::now()));
        }
    }
}

/// Reads the Watch stream until `stop`: (update number, receive instant) per change, and how many changes
/// it could not map.
async fn watcher(
    mut stream: tonic::Streaming<pb::WatchResponse>,
    slots: Slots,
    received: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<(Vec<(u64, Instant)>, u64)> {
    let mut out = Vec::new();
    let mut unknown = 0;
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => return Ok((out, unknown)),
            m = stream.message() => m?.context("the watch stream ended")?,
        };
        let now = Instant::now();
        for c in &msg.changes {
            for a in &c.attributes {
                let value = match a.reported.as_ref().and_then(|v| v.kind.as_ref()) {
                    Some(pb::value::Kind::Number(v)) => *v,
                    _ => f64::NAN,
                };
                match slots.number(&c.entity_id, &a.name, value) {
                    Some(g) => out.push((g, now)),
                    None => unknown += 1,
                }
            }
        }
        received.store(out.len() as u64, Ordering::Relaxed);
    }
}

/// Bytes this process has caused to be written to disk so far (Linux `/proc/self/io`), if known.
fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// Bytes the machine's disks have written so far, every process included (Linux `/sys/block/*/stat`, whole
/// disks, not loop or RAM devices), if known. Unlike `write_bytes`, which counts a page each time a write
/// dirties it again after a flush (several times per page for sled's small flushes), this is what the disk did.
fn device_write_bytes() -> Option<u64> {
    let mut sectors = 0u64;
    for entry in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        sectors += stat.split_whitespace().nth(6)?.parse::<u64>().ok()?;
    }
    Some(sectors * 512)
}

/// The CPU pressure line of the machine (Linux PSI): how often runnable tasks waited for a core.
fn cpu_pressure() -> String {
    std::fs::read_to_string("/proc/pressure/cpu")
        .ok()
        .and_then(|p| p.lines().next().map(|l| l.trim_start_matches("some ").to_owned()))
        .unwrap_or_else(|| "unknown".into())
}

fn histogram() -> Result<Histogram<u64>> {
    // Microseconds, 1 us to 10 min, 3 significant figures.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1_000.0)
}

fn row(name: &str, h: &Histogram<u64>) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} |",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        ms(h.mean() as u64),
    )
}

/// The cloud under test: in this process, or the real `cloud` binary as a child process.
#[derive(Debug)]
enum Cloud {
    InProcess(InProcessCloud),
    Process { addr: SocketAddr, clients: Clients, _process: ChildProcess, _dir: tempfile::TempDir },
}

impl Cloud {
    async fn start(args: &Args) -> Result<Cloud> {
        let checkpoint_interval = Duration::from_secs_f64(args.checkpoint_s);
        let Some(binary) = &args.cloud_binary else {
            let cloud = InProcessCloud::start_with(|c| {
                if args.os_buffered {
                    c.durability = twin_store::Durability::OsBuffered;
                }
                c.checkpoint_interval = checkpoint_interval;
            })
            .await?;
            return Ok(Cloud::InProcess(cloud));
        };
        let dir = tempfile::tempdir()?;
        let mut command = std::process::Command::new(binary);
        command
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--durability"])
            .arg(if args.os_buffered { "os-buffered" } else { "fsync" })
            .arg("--data-dir")
            .arg(dir.path())
            .env("TWIN__CHECKPOINT_INTERVAL", format!("{}ms", checkpoint_interval.as_millis()));
        let (process, addr) = ChildProcess::spawn_until("cloud", command, "cloud listening on ", None)?;
        let addr: SocketAddr = addr.parse().context("the cloud's listening address")?;
        let clients = Clients { channel: connect(addr).await? };
        Ok(Cloud::Process { addr, clients, _process: process, _dir: dir })
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Cloud::InProcess(c) => c.addr,
            Cloud::Process { addr, .. } => *addr,
        }
    }

    fn clients(&self) -> &Clients {
        match self {
            Cloud::InProcess(c) => &c.clients,
            Cloud::Process { clients, .. } => clients,
        }
    }

    /// Stops the cloud (the child process is killed on drop).
    async fn stop(self) -> Result<()> {
        if let Cloud::InProcess(c) = self {
            c.stop().await?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let slots = Slots { sensors: args.sensors };
    let cloud = Cloud::start(&args).await?;
    let node = EntityId::new(&format!("urn:ngsi-ld:EdgeNode:{EDGE}"))?;
    let mut entities: Vec<pb::Entity> = (0..args.sensors)
        .map(|i| station(i, 112.9 + (i % 100) as f64 * 0.002, 28.1 + (i / 100) as f64 * 0.002))
        .collect();
    entities.push(entity(node.as_str(), "EdgeNode", 112.98, 28.19));
    for chunk in entities.chunks(2_000) {
        load(cloud.clients(), chunk.to_vec()).await?;
    }

    // The watcher: its own connection, as an integrator's would be.
    let channel = connect(cloud.addr()).await?;
    let filter = pb::Filter { types: vec!["AirQualityObserved".into()], ..Default::default() };
    let stream = TwinServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .watch(pb::WatchRequest { filter: Some(filter), ..Default::default() })
        .await?
        .into_inner();

    let dir = tempfile::tempdir()?;
    let outbox = OutboxConfig {
        max_batch_updates: args.batch_updates,
        fsync: args.edge_fsync,
        ..OutboxConfig::new(dir.path().join("outbox"))
    };
    let uplink = UplinkConfig {
        seal_interval: Duration::from_millis(args.seal_interval_ms),
        latest_first_after: Duration::ZERO,
        ..UplinkConfig::new(EdgeId::new(EDGE)?, format!("http://{}", cloud.addr()))
    };
    let any_change = Rule { threshold: Some(Threshold::AnyChange), heartbeat: None };
    let setup = AgentSetup {
        catalog: Arc::new(Catalog::builtin()),
        node_entity: node,
        sensors: args.sensors as u64,
        deadband: DeadbandConfig { default: Some(any_change), ..Default::default() },
        outbox: outbox.clone(),
        uplink: uplink.clone(),
        // One report at start (before the measurement), none during it.
        self_report_interval: Duration::from_secs(24 * 3600),
    };
    let agent = Agent::start(setup)?;
    let stats = agent.uplink_stats();
    let filter_stats = agent.filter_stats();
    let ob = agent.outbox().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(stats.borrow().updates_acked > 0 && ob.stats().depth_updates == 0) {
        ensure!(Instant::now() < deadline, "the first self-report was not acknowledged: {:?}", stats.borrow());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // From here on only the source appends, so the n-th update stored is the n-th update of the seals.
    let seals = ob.subscribe_seals();
    let base = stats.borrow().clone();
    println!(
        "{} stations x {} attributes; {} updates/s in 1 ms ticks for {} s + {} s warm-up; outbox batches of at most \
         {} updates or {} bytes (fsync {}), sealed at least every {} ms; {} batches in flight; cloud {}, durability {}, \
         checkpoint every {} s",
        args.sensors,
        ATTRIBUTES.len(),
        args.rate,
        args.seconds,
        args.warmup,
        outbox.max_batch_updates,
        outbox.max_batch_bytes,
        if outbox.fsync { "on" } else { "off" },
        args.seal_interval_ms,
        uplink.max_in_flight,
        if args.cloud_binary.is_some() { "in its own process" } else { "in this process" },
        if args.os_buffered { "os-buffered" } else { "fsync" },
        args.checkpoint_s,
    );

    let stop = CancellationToken::new();
    let received = Arc::new(AtomicU64::new(0));
    let watch_task = tokio::spawn(watcher(stream, slots, received.clone(), stop.clone()));
    let seal_task = tokio::spawn(seal_observer(seals, stop.clone()));
    let ack_task = tokio::spawn(ack_observer(stats.clone(), stop.clone()));
    let (stored_tx, stored_rx) = mpsc::channel(1 << 16);
    let stored_task = tokio::spawn(stored_observer(stored_rx));
    let run_for = Duration::from_secs_f64(args.warmup + args.seconds);
    let cpu_before = thread_cpu_s();
    let written_before = disk_write_bytes();
    let device_before = device_write_bytes();
    let pressure_before = cpu_pressure();
    let started = Instant::now();
    let source_task =
        tokio::spawn(source(agent.sender(), stored_tx, slots, args.rate, run_for, agent.sources_shutdown()));
    let groups = source_task.await.context("the source panicked")??;
    let sourced_s = started.elapsed().as_secs_f64();
    let total: u64 = groups.last().map_or(0, |g| g.first + g.count);
    let drain_deadline = Instant::now() + DRAIN_WAIT;
    let acked_all = || {
        let o = ob.stats();
        o.depth_updates == 0 && stats.borrow().last_acked_seq >= o.last_sealed_seq
    };
    while received.load(Ordering::Relaxed) < total || !acked_all() {
        if watch_task.is_finished() {
            let ended = watch_task.await.context("the watcher panicked")?;
            bail!("the watcher stopped early: {:?}", ended.map(|(got, _)| got.len()));
        }
        if Instant::now() > drain_deadline {
            bail!(
                "only {} of {total} updates reached the watcher; uplink {:?}; outbox {:?}",
                received.load(Ordering::Relaxed),
                stats.borrow(),
                ob.stats()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = thread_cpu_s();
    let written = disk_write_bytes().zip(written_before).map(|(a, b)| a.saturating_sub(b));
    let device_written = device_write_bytes().zip(device_before).map(|(a, b)| a.saturating_sub(b));
    let pressure_after = cpu_pressure();
    let end = stats.borrow().clone();
    stop.cancel();
    let (got, unknown) = watch_task.await.context("the watcher panicked")??;
    let sealed = seal_task.await.context("the seal observer panicked")??;
    let stored = stored_task.await.context("the stored observer panicked")??;
    let acks = ack_task.await.context("the ack observer panicked")?;
    let filtered = (filter_stats.readings.get(), filter_stats.stored.get(), filter_stats.suppressed.get());
    agent.shutdown(Vec::new()).await?;
    cloud.stop().await?;

    // Checks: every update generated arrived once; the seals account for exactly the updates stored.
    ensure!(filtered.0 == total && filtered.1 == total, "the agent read/stored {filtered:?} of {total} updates");
    ensure!(stored.len() == groups.len(), "{} of {} groups were confirmed stored", stored.len(), groups.len());
    let mut seen = vec![false; total as usize];
    let mut duplicates = 0u64;
    for &(g, _) in &got {
        ensure!(g < total, "the watcher got update {g}, beyond the {total} generated");
        if std::mem::replace(&mut seen[g as usize], true) {
            duplicates += 1;
        }
    }
    let lost = seen.iter().filter(|s| !**s).count();
    ensure!(lost == 0 && duplicates == 0, "{lost} updates lost, {duplicates} delivered twice");
    ensure!(unknown == 0, "{unknown} changes of the stations could not be mapped to an update");
    // Batch i holds the updates from the end of batch i - 1 to `ends[i]`.
    let mut ends = Vec::with_capacity(sealed.len());
    let mut upto = 0u64;
    for (i, s) in sealed.iter().enumerate() {
        if i > 0 {
            ensure!(s.seq == sealed[i - 1].seq + 1, "seals {} and {} are not consecutive", sealed[i - 1].seq, s.seq);
        }
        upto += s.updates as u64;
        ends.push(upto);
    }
    ensure!(upto >= total, "seals account for {upto} updates, {total} were stored");

    let measure_from = started + Duration::from_secs_f64(args.warmup);
    let (mut total_h, mut excl_h, mut after_h, mut stored_h, mut window_h, mut acked_h) =
        (histogram()?, histogram()?, histogram()?, histogram()?, histogram()?, histogram()?);
    let mut measured = 0u64;
    // Per second of sample time: total, stored, batching window, after seal.
    let mut by_second: BTreeMap<u64, [Histogram<u64>; 4]> = BTreeMap::new();
    for &(g, at) in &got {
        let gi = groups.partition_point(|grp| grp.first + grp.count <= g);
        let group = groups[gi];
        if group.at < measure_from {
            continue;
        }
        let batch = sealed[ends.partition_point(|&e| e <= g)];
        let seal = batch.at;
        let acked = acks.get(acks.partition_point(|&(seq, _)| seq < batch.seq)).map(|&(_, at)| at);
        let acked = acked.context("a batch the watcher saw was never acknowledged")?;
        let us = |d: Duration| (d.as_micros() as u64).max(1);
        let sampled = group.at;
        let window = seal.saturating_duration_since(stored[gi]);
        let total = at.saturating_duration_since(sampled);
        total_h.record(us(total))?;
        excl_h.record(us(total.saturating_sub(window)))?;
        after_h.record(us(at.saturating_duration_since(seal)))?;
        stored_h.record(us(stored[gi].saturating_duration_since(sampled)))?;
        window_h.record(us(window))?;
        acked_h.record(us(acked.saturating_duration_since(seal)))?;
        measured += 1;
        if args.per_second {
            let second = sampled.duration_since(started).as_secs();
            let hs = match by_second.entry(second) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert([histogram()?, histogram()?, histogram()?, histogram()?])
                }
            };
            hs[0].record(us(total))?;
            hs[1].record(us(stored[gi].saturating_duration_since(sampled)))?;
            hs[2].record(us(window))?;
            hs[3].record(us(at.saturating_duration_since(seal)))?;
        }
    }

    let batches = sealed.len();
    println!(
        "generated {total} updates in {sourced_s:.1} s ({:.0}/s), {} groups; all {total} received exactly once by the \
         watcher; {measured} measured (after the warm-up); {batches} batches sealed ({:.0} updates per batch on \
         average); uplink: {} batches acked, {} reconnects, {} dead letters",
        total as f64 / sourced_s,
        groups.len(),
        total as f64 / batches.max(1) as f64,
        end.batches_acked - base.batches_acked,
        end.reconnects,
        end.dead_lettered,
    );
    println!();
    println!("| sample -> watcher (ms) | p50 | p90 | p99 | p99.9 | max | mean |");
    println!("|---|---|---|---|---|---|---|");
    println!("{}", row("**total**", &total_h));
    println!("{}", row("**excluding the batching window**", &excl_h));
    println!("{}", row("after seal (uplink, cloud commit, watch)", &after_h));
    println!("{}", row("sealed -> its ack reached the uplink (the parallel path)", &acked_h));
    println!("{}", row("stored durably at the edge (channel, deadband, append + fsync)", &stored_h));
    println!("{}", row("batching window (stored -> sealed)", &window_h));
    if args.per_second {
        println!();
        println!("| second | total p50 / p99 / max | stored | batching window | after seal |");
        println!("|---|---|---|---|---|");
        for (second, hs) in &by_second {
            let cell = |h: &Histogram<u64>| {
                format!("{} / {} / {}", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()))
            };
            println!("| {second} | {} | {} | {} | {} |", cell(&hs[0]), cell(&hs[1]), cell(&hs[2]), cell(&hs[3]));
        }
    }
    let mut used: Vec<(String, f64)> =
        cpu.into_iter().map(|(name, s)| (name.clone(), s - cpu_before.get(&name).copied().unwrap_or(0.0))).collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    let used: Vec<String> = used.iter().filter(|(_, s)| *s >= 0.05).map(|(n, s)| format!("{n} {s:.1} s")).collect();
    println!();
    println!("CPU during the run ({:.1} s), by thread (Linux): {}", started.elapsed().as_secs_f64(), used.join(", "));
    println!(
        "written by the machine's disks: {} (pages this process dirtied, counted again each time a flush made \
         them clean: {}); machine CPU pressure (PSI some) before: {pressure_before}; after: {pressure_after}",
        device_written.map_or("unknown".into(), |b| format!("{:.0} MB", b as f64 / 1e6)),
        written.map_or("unknown".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
    );
    Ok(())
}

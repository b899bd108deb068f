//! `twin-loadgen`: an end-to-end load generator for durable ingest over gRPC.
//!
//! It measures durable attribute updates per second and the ack latency of `IngestService.Ingest`, using
//! only the public API:
//!
//! 1. Start a `cloud` (`--spawn-cloud`, with a temporary data directory on `127.0.0.1:0`) or use a running
//!    one (`--cloud`).
//! 2. Check the catalog (`AdminService.GetCatalog`) and load `--entities` AirQualityObserved sensors with
//!    `AdminService.LoadEntities`, in chunks of 5000.
//! 3. Open `--edges` ingest streams (edge ids `loadgen-K`). Each owns every `--edges`-th sensor, sends
//!    Hello, resumes after the Welcome's `last_applied_seq`, defines its symbols once and keeps
//!    `--in-flight` batches of `--batch-updates` updates (pm25, pm10, no2) outstanding until the deadline.
//!    Observed times strictly increase per attribute, so no update is stale.
//! 4. Wait (bounded) for the remaining acks and print a summary (and a JSON line with `--json`).
//!
//! A rejected update or a duplicate ack means the generator is wrong: the run then fails with exit code 1.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    codec::CompressionEncoding,
    transport::{Channel, Endpoint},
};
use twin_proto::pb::{
    self, admin_service_client::AdminServiceClient, ingest_request, ingest_response,
    ingest_service_client::IngestServiceClient, update, value,
};

/// The entity type every generated sensor has.
const ENTITY_TYPE: &str = "AirQualityObserved";
/// Entities per `LoadEntities` call.
const LOAD_CHUNK: usize = 5000;
/// The reported attributes, with the value range generated for each (inside the catalog's range).
const ATTRIBUTES: [(&str, f64, f64); 3] = [("pm25", 5.0, 300.0), ("pm10", 10.0, 500.0), ("no2", 5.0, 200.0)];
/// Symbol ids: attributes take `1..=ATTRIBUTES.len()`, entities start here.
const FIRST_ENTITY_SYMBOL: u32 = 16;
/// Observed times within a batch spread over at most this many milliseconds.
const BATCH_SPAN_MS: i64 = 9;
/// How long to wait for the spawned cloud's `cloud listening on` line.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one RPC (connect, load, catalog, welcome) may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// While sending, the longest wait for the next ack before the server is declared stuck.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// After the deadline, the longest wait for the batches still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the spawned cloud may take to exit once killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Ack latencies are recorded in microseconds up to this (longer ones are clamped).
const MAX_LATENCY_US: u64 = 600_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "twin-loadgen",
    version,
    about = "End-to-end load generator: durable attribute updates per second and ack latency over gRPC ingest",
    after_help = "Without --cloud, the loadgen starts the cloud binary given by --spawn-cloud (default: `cloud` \
                  next to this binary) with a temporary data directory (under $TMPDIR) and stops it at the end."
)]
struct Flags {
    /// URL of a running cloud, e.g. http://127.0.0.1:50051.
    #[arg(long, value_name = "URL", conflicts_with = "spawn_cloud")]
    cloud: Option<String>,
    /// Path of the cloud binary to start for the run (when --cloud is not given).
    #[arg(long, value_name = "PATH")]
    spawn_cloud: Option<PathBuf>,
    /// Concurrent ingest streams (edges), 1 to 256.
    #[arg(long, value_name = "N", default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=256))]
    edges: u32,
    /// AirQualityObserved sensors to load and update, 1 to 1,000,000.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    entities: u32,
    /// Updates per batch (at most the server's `max_batch_updates`).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_updates: u32,
    /// Batches in flight (sent, not yet acknowledged) per stream, 1 to 1024.
    #[arg(long, value_name = "N", default_value_t = 8)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1024))]
    in_flight: u32,
    /// How long to send, in seconds, 1 to 3600.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Durability of the spawned cloud (ignored with --cloud: the server's setting applies).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
    /// Compression of the ingest stream.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    compression: CompressionArg,
    /// Also print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DurabilityArg {
    Fsync,
    OsBuffered,
}

impl DurabilityArg {
    fn as_str(self) -> &'static str {
        match self {
            DurabilityArg::Fsync => "fsync",
            DurabilityArg::OsBuffered => "os-buffered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Zstd,
}

impl CompressionArg {
    fn as_str(self) -> &'static str {
        match self {
            CompressionArg::None => "none",
            CompressionArg::Gzip => "gzip",
            CompressionArg::Zstd => "zstd",
        }
    }

    fn encoding(self) -> Option<CompressionEncoding> {
        match self {
            CompressionArg::None => None,
            CompressionArg::Gzip => Some(CompressionEncoding::Gzip),
            CompressionArg::Zstd => Some(CompressionEncoding::Zstd),
        }
    }
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    twin_telemetry::runtime::block_on("twin-loadgen", async { run(flags).await.map(|()| ExitCode::SUCCESS) })
}

/// A cloud process started for the run; killed and waited for by [`SpawnedCloud::stop`] (or on drop).
struct SpawnedCloud {
    child: Child,
    pid: Option<u32>,
    addr: SocketAddr,
    // Removed after the process has exited (field order: dropped last).
    _data_dir: tempfile::TempDir,
}

impl SpawnedCloud {
    async fn start(binary: &Path, durability: DurabilityArg) -> anyhow::Result<SpawnedCloud> {
        let data_dir =
            tempfile::Builder::new().prefix("twin-loadgen-").tempdir().context("cannot create a data dir")?;
        let mut child = Command::new(binary)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--durability")
            .arg(durability.as_str())
            .arg("--log")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("the cloud's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let wait_for_addr = async {
            while let Some(line) = lines.next_line().await.context("cannot read the cloud's stdout")? {
                if let Some(addr) = line.strip_prefix("cloud listening on ") {
                    return addr.trim().parse::<SocketAddr>().with_context(|| format!("bad listen line {line:?}"));
                }
            }
            bail!("the cloud closed its stdout without printing `cloud listening on ADDR`")
        };
        let addr = match tokio::time::timeout(SPAWN_TIMEOUT, wait_for_addr).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                let status = match tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await {
                    Ok(Ok(status)) => status.to_string(),
                    Ok(Err(wait)) => format!("unknown: {wait}"),
                    Err(_) => "still running".to_owned(),
                };
                return Err(e).context(format!("the cloud did not start ({status})"));
            }
            Err(_) => bail!("the cloud did not print its address within {SPAWN_TIMEOUT:?}"),
        };
        // Keep draining stdout so the cloud never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id();
        Ok(SpawnedCloud { child, pid, addr, _data_dir: data_dir })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait().context("cannot check the cloud process")? {
            bail!("the cloud exited during the run ({status})");
        }
        self.child.start_kill().context("cannot kill the cloud")?;
        tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .context("the cloud did not exit after being killed")?
            .context("cannot wait for the cloud")?;
        Ok(())
    }
}

/// What one edge stream achieved.
struct EdgeResult {
    batches: u64,
    applied: u64,
    stale: u64,
    rejected: u64,
    duplicates: u64,
    first_rejection: Option<String>,
    /// Ack latency in microseconds.
    latency_us: Histogram<u64>,
    first_send: Option<Instant>,
    last_ack: Option<Instant>,
    /// Batches that were sent but not acknowledged within the drain timeout.
    unacked: u64,
}

/// The settings every edge task shares.
#[derive(Clone, Copy)]
struct EdgeSettings {
    batch_updates: usize,
    in_flight: usize,
    compression: Option<CompressionEncoding>,
    deadline: tokio::time::Instant,
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    // Every edge owns at least one entity.
    ensure!(flags.edges <= flags.entities, "--edges {} is more than --entities {}", flags.edges, flags.entities);
    let mut spawned = None;
    let url = match (&flags.cloud, &flags.spawn_cloud) {
        (Some(url), _) => {
            if flags.durability != DurabilityArg::Fsync {
                eprintln!("twin-loadgen: --durability is ignored with --cloud (the server's setting applies)");
            }
            url.clone()
        }
        (None, spawn) => {
            let binary = match spawn {
                Some(p) => p.clone(),
                None => sibling_cloud_binary()?,
            };
            let cloud = SpawnedCloud::start(&binary, flags.durability).await?;
            let url = format!("http://{}", cloud.addr);
            eprintln!("twin-loadgen: started {} on {url}", binary.display());
            spawned = Some(cloud);
            url
        }
    };
    let cloud_pid = spawned.as_ref().and_then(|c| c.pid);
    let result = drive(&flags, &url, cloud_pid).await;
    let stopped = match spawned {
        Some(cloud) => cloud.stop().await,
        None => Ok(()),
    };
    let report = match (result, stopped) {
        (Ok(report), Ok(())) => report,
        (Err(e), Ok(())) => return Err(e),
        (Ok(_), Err(stop)) => return Err(stop),
        (Err(e), Err(stop)) => bail!("{e:#} (and stopping the spawned cloud failed: {stop:#})"),
    };
    print!("{}", report.human());
    if flags.json {
        println!("{}", report.json());
    }
    ensure!(
        report.rejected == 0,
        "{} updates were rejected, so the generator is wrong; first: {}",
        report.rejected,
        report.first_rejection.as_deref().unwrap_or("?")
    );
    ensure!(report.duplicates == 0, "{} batches were acknowledged as duplicates (sequence reused?)", report.duplicates);
    ensure!(report.unacked == 0, "{} batches were not acknowledged within {DRAIN_TIMEOUT:?}", report.unacked);
    ensure!(report.batches > 0, "no batch was acknowledged");
    Ok(())
}

/// The `cloud` binary next to this one (as cargo builds them).
fn sibling_cloud_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this binary's path")?;
    let sibling = me.with_file_name(format!("cloud{}", std::env::consts::EXE_SUFFIX));
    ensure!(sibling.is_file(), "give --cloud URL or --spawn-cloud PATH ({} does not exist)", sibling.display());
    Ok(sibling)
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a valid URL"))?
        .connect_timeout(RPC_TIMEOUT)
        .tcp_nodelay(true);
    endpoint.connect().await.with_context(|| format!("cannot connect to {url}"))
}

/// Loads the entities, runs the edges and gathers the report.
async fn drive(flags: &Flags, url: &str, cloud_pid: Option<u32>) -> anyhow::Result<Report> {
    let channel = connect(url).await?;
    let mut admin = AdminServiceClient::new(channel);
    check_catalog(&mut admin).await?;

    let ids: Vec<String> = (0..flags.entities).map(entity_id).collect();
    let load_start = Instant::now();
    load_entities(&mut admin, &ids).await?;
    let load_s = load_start.elapsed().as_secs_f64();

    let settings = EdgeSettings {
        batch_updates: flags.batch_updates as usize,
        in_flight: flags.in_flight as usize,
        compression: flags.compression.encoding(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(flags.duration),
    };
    let cpu_before = (process_cpu_s("self"), cloud_pid.map(thread_cpu_s));
    let mut tasks = Vec::new();
    for k in 0..flags.edges as usize {
        // Edge k owns entities k, k + edges, ...: no two streams update the same attribute.
        let owned: Vec<String> = ids.iter().skip(k).step_by(flags.edges as usize).cloned().collect();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let edge = format!("loadgen-{k}");
            run_edge(&edge, &url, owned, settings).await.with_context(|| format!("edge {edge}"))
        }));
    }
    let mut report = Report::new(flags, url, load_s)?;
    let mut first_error = None;
    for task in tasks {
        match task.await.context("an edge task panicked").and_then(|r| r) {
            Ok(edge) => report.add(edge)?,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let cpu_after = (process_cpu_s("self"), cloud_pid.map(thread_cpu_s));
    report.loadgen_cpu_s = cpu_before.0.zip(cpu_after.0).map(|(a, b)| b - a);
    if let Some((before, after)) = cpu_before.1.zip(cpu_after.1).filter(|(_, a)| !a.is_empty()) {
        report.cloud_cpu_s = Some(cpu_by_thread_name(&before, &after));
    }
    report.cloud_peak_rss_mib = cloud_pid.and_then(peak_rss_mib);
    Ok(report)
}

fn entity_id(i: u32) -> String {
    format!("urn:ngsi-ld:AirQualityObserved:loadgen:{i:06}")
}

/// Checks that the server's catalog has the attributes used, with ranges that hold the generated values.
async fn check_catalog(admin: &mut AdminServiceClient<Channel>) -> anyhow::Result<()> {
    let catalog = tokio::time::timeout(RPC_TIMEOUT, admin.get_catalog(pb::GetCatalogRequest {}))
        .await
        .context("GetCatalog timed out")?
        .context("GetCatalog failed")?
        .into_inner();
    let def = catalog
        .types
        .iter()
        .find(|t| t.name == ENTITY_TYPE)
        .with_context(|| format!("the server's catalog has no type {ENTITY_TYPE}"))?;
    for (name, low, high) in ATTRIBUTES {
        let attr = def
            .attributes
            .iter()
            .find(|a| a.name == name)
            .with_context(|| format!("{ENTITY_TYPE} has no attribute {name} in the server's catalog"))?;
        ensure!(attr.kind == "number", "{ENTITY_TYPE}.{name} is of kind {}, not number", attr.kind);
        ensure!(
            attr.min.is_none_or(|m| m <= low) && attr.max.is_none_or(|m| m >= high),
            "{ENTITY_TYPE}.{name} accepts {:?}..{:?}, not the generated {low}..{high}",
            attr.min,
            attr.max
        );
    }
    Ok(())
}

async fn load_entities(admin: &mut AdminServiceClient<Channel>, ids: &[String]) -> anyhow::Result<()> {
    for (chunk_no, chunk) in ids.chunks(LOAD_CHUNK).enumerate() {
        let first = chunk_no * LOAD_CHUNK;
        let entities = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = (first + i) as f64;
                // A spiral of sensors around Changsha, within about 0.1 degree.
                let (r, a) = (0.1 * (n / ids.len() as f64).sqrt(), n * 2.399_963);
                pb::Entity {
                    id: id.clone(),
                    r#type: ENTITY_TYPE.into(),
                    geometry: Some(pb::Geometry {
                        shape: Some(pb::geometry::Shape::Point(pb::GeoPoint {
                            lon: 112.94 + r * a.cos(),
                            lat: 28.23 + r * a.sin(),
                        })),
                        height_m: 0.0,
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let response = tokio::time::timeout(RPC_TIMEOUT, admin.load_entities(pb::LoadEntitiesRequest { entities }))
            .await
            .with_context(|| format!("LoadEntities of entities {first}.. timed out"))?
            .with_context(|| format!("LoadEntities of entities {first}.. failed"))?
            .into_inner();
        if let Some(r) = response.rejected.first() {
            bail!("LoadEntities rejected {} entities; first: {}", response.rejected.len(), r.message);
        }
    }
    Ok(())
}

/// A small deterministic generator for plausible readings (splitmix64).
struct Readings(u64);

impl Readings {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Builds the batches of one stream: cycles over (entity, attribute) slots with strictly increasing observed
/// times per slot.
struct BatchMaker {
    entities: Vec<String>,
    next_slot: usize,
    /// The last observed time sent per slot (`entity * ATTRIBUTES.len() + attribute`).
    last_observed: Vec<i64>,
    readings: Readings,
    /// Entities `0..defined` have their symbol defined on the stream (they are first used in order).
    defined: usize,
}

impl BatchMaker {
    fn new(entities: Vec<String>, seed: u64) -> Self {
        let slots = entities.len() * ATTRIBUTES.len();
        BatchMaker { entities, next_slot: 0, last_observed: vec![0; slots], readings: Readings(seed), defined: 0 }
    }

    fn make(&mut self, seq: u64, n: usize) -> pb::Batch {
        let mut symbols = Vec::new();
        if self.defined == 0 {
            // The first batch defines the attribute names.
            for (i, (name, _, _)) in ATTRIBUTES.iter().enumerate() {
                symbols.push(pb::Symbol { id: 1 + i as u32, name: (*name).into() });
            }
        }
        let base = twin_model::now_unix_ms();
        let span = BATCH_SPAN_MS.min(n as i64 - 1).max(0);
        let mut updates = Vec::with_capacity(n);
        for i in 0..n {
            let slot = self.next_slot;
            self.next_slot = (self.next_slot + 1) % self.last_observed.len();
            let (entity, attribute) = (slot / ATTRIBUTES.len(), slot % ATTRIBUTES.len());
            // Each entity's symbol is defined once, by the batch that first uses it.
            if entity >= self.defined {
                symbols
                    .push(pb::Symbol { id: FIRST_ENTITY_SYMBOL + entity as u32, name: self.entities[entity].clone() });
                self.defined = entity + 1;
            }
            // Spread over the batch, but always after this slot's previous observation.
            let wanted = base + span * i as i64 / n as i64;
            let observed = wanted.max(self.last_observed[slot] + 1);
            self.last_observed[slot] = observed;
            let (_, low, high) = ATTRIBUTES[attribute];
            let reading = low + (high - low) * self.readings.next_unit();
            updates.push(pb::Update {
                entity: Some(update::Entity::EntitySymbol(FIRST_ENTITY_SYMBOL + entity as u32)),
                attribute: Some(update::Attribute::AttributeSymbol(1 + attribute as u32)),
                value: Some(pb::Value { kind: Some(value::Kind::Number((reading * 10.0).round() / 10.0)) }),
                observed_offset_ms: observed - base,
            });
        }
        pb::Batch { seq, symbols, base_time_unix_ms: base, upserts: Vec::new(), updates }
    }
}

async fn run_edge(edge: &str, url: &str, entities: Vec<String>, settings: EdgeSettings) -> anyhow::Result<EdgeResult> {
    let channel = connect(url).await?;
    let mut client = IngestServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    if let Some(encoding) = settings.compression {
        client = client.send_compressed(encoding).accept_compressed(encoding);
    }
    // Room for every batch in flight plus Hello: sending never waits on this channel.
    let (tx, rx) = mpsc::channel(settings.in_flight + 1);
    let hello = pb::Hello { edge_id: edge.to_owned(), protocol_version: 1 };
    tx.send(pb::IngestRequest { message: Some(ingest_request::Message::Hello(hello)) })
        .await
        .context("cannot queue hello")?;
    let mut inbound = tokio::time::timeout(RPC_TIMEOUT, client.ingest(ReceiverStream::new(rx)))
        .await
        .context("opening the ingest stream timed out")?
        .context("cannot open the ingest stream")?
        .into_inner();
    let welcome = match tokio::time::timeout(RPC_TIMEOUT, inbound.message())
        .await
        .context("no welcome in time")?
        .context("the stream failed before welcome")?
    {
        Some(pb::IngestResponse { message: Some(ingest_response::Message::Welcome(w)) }) => w,
        other => bail!("expected welcome, got {other:?}"),
    };
    ensure!(
        settings.batch_updates <= welcome.max_batch_updates as usize,
        "--batch-updates {} is above the server's limit of {}",
        settings.batch_updates,
        welcome.max_batch_updates
    );

    let seed = edge.bytes().fold(0xC17E_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut maker = BatchMaker::new(entities, seed);
    let mut next_seq = welcome.last_applied_seq + 1;
    let mut outstanding: VecDeque<(u64, Instant)> = VecDeque::with_capacity(settings.in_flight);
    let mut result = EdgeResult {
        batches: 0,
        applied: 0,
        stale: 0,
        rejected: 0,
        duplicates: 0,
        first_rejection: None,
        latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create a histogram")?,
        first_send: None,
        last_ack: None,
        unacked: 0,
    };
    let drain_deadline = settings.deadline + DRAIN_TIMEOUT;
    loop {
        let sending = tokio::time::Instant::now() < settings.deadline;
        while sending && outstanding.len() < settings.in_flight {
            let batch = maker.make(next_seq, settings.batch_updates);
            let request = pb::IngestRequest { message: Some(ingest_request::Message::Batch(batch)) };
            let sent = Instant::now();
            tx.send(request).await.map_err(|_| anyhow::anyhow!("the ingest stream closed while sending"))?;
            result.first_send.get_or_insert(sent);
            outstanding.push_back((next_seq, sent));
            next_seq += 1;
        }
        if outstanding.is_empty() {
            break;
        }
        // While sending, a stuck server is an error; after the deadline, give the rest a bounded wait.
        let wait_until = if sending { tokio::time::Instant::now() + ACK_TIMEOUT } else { drain_deadline };
        let message = match tokio::time::timeout_at(wait_until, inbound.message()).await {
            Ok(m) => m.context("the ingest stream failed")?,
            Err(_) if !sending => {
                result.unacked = outstanding.len() as u64;
                break;
            }
            Err(_) => bail!("no ack within {ACK_TIMEOUT:?} ({} batches in flight)", outstanding.len()),
        };
        let ack = match message {
            Some(pb::IngestResponse { message: Some(ingest_response::Message::Ack(ack)) }) => ack,
            Some(other) => bail!("expected an ack, got {other:?}"),
            None => bail!("the server ended the stream with {} batches unacknowledged", outstanding.len()),
        };
        let now = Instant::now();
        let Some((seq, sent)) = outstanding.pop_front() else {
            bail!("ack for batch {} that was not sent", ack.seq);
        };
        ensure!(ack.seq == seq, "ack for batch {} while batch {seq} was the oldest in flight", ack.seq);
        result.latency_us.saturating_record(now.duration_since(sent).as_micros().max(1) as u64);
        result.last_ack = Some(now);
        result.batches += 1;
        if ack.duplicate {
            result.duplicates += 1;
            continue;
        }
        result.applied += u64::from(ack.applied);
        result.stale += u64::from(ack.stale);
        result.rejected += ack.rejected.len() as u64;
        if let Some(r) = ack.rejected.first() {
            result.first_rejection.get_or_insert_with(|| format!("batch {seq}: {}", r.message));
        }
    }
    drop(tx);
    Ok(result)
}

/// CPU seconds of a process or thread so far and its name, from a `/proc/.../stat` file; `None` where
/// unavailable (not Linux, or the process is gone).
fn stat_cpu_s(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may hold spaces; utime and stime are the 12th and 13th fields after it.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // In USER_HZ ticks: 100 per second on every mainstream Linux build.
    Some((name, (utime + stime) as f64 / 100.0))
}

/// The peak resident memory of a process so far (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (all threads) of a process so far.
fn process_cpu_s(pid: &str) -> Option<f64> {
    stat_cpu_s(&format!("/proc/{pid}/stat")).map(|(_, s)| s)
}

/// CPU seconds and name of each thread of a process, by thread id; empty where unavailable.
fn thread_cpu_s(pid: u32) -> BTreeMap<String, (String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    let tids = tasks.filter_map(|t| t.ok()).map(|t| t.file_name().to_string_lossy().into_owned()).take(10_000);
    tids.filter_map(|tid| Some((tid.clone(), stat_cpu_s(&format!("/proc/{pid}/task/{tid}/stat"))?))).collect()
}

/// The CPU seconds used between two [`thread_cpu_s`] readings, summed by thread name, largest first.
fn cpu_by_thread_name(
    before: &BTreeMap<String, (String, f64)>,
    after: &BTreeMap<String, (String, f64)>,
) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let earlier = before.get(tid).map_or(0.0, |(_, c)| *c);
        // Pools number their threads (`sled-io-3`): count them together, as `sled-io-*`.
        let pool = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let key = if pool.len() < name.len() { format!("{pool}*") } else { name.clone() };
        *by_name.entry(key).or_default() += cpu - earlier;
    }
    let mut out: Vec<(String, f64)> = by_name.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// The result of a run.
struct Report {
    url: String,
    edges: u32,
    entities: u32,
    batch_updates: u32,
    in_flight: u32,
    duration_s: u64,
    durability: &'static str,
    compression: &'static str,
    nproc: usize,
    load_s: f64,
    batches: u64,
    applied: u64,
    stale: u64,
    rejected: u64,
    duplicates: u64,
    unacked: u64,
    first_rejection: Option<String>,
    latency_us: Histogram<u64>,
    first_send: Option<Instant>,
    last_ack: Option<Instant>,
    loadgen_cpu_s: Option<f64>,
    /// CPU seconds of the spawned cloud during the run, by thread name, largest first.
    cloud_cpu_s: Option<Vec<(String, f64)>>,
    /// Peak resident memory of the spawned cloud, in MiB.
    cloud_peak_rss_mib: Option<f64>,
}

impl Report {
    fn new(flags: &Flags, url: &str, load_s: f64) -> anyhow::Result<Report> {
        Ok(Report {
            url: url.to_owned(),
            edges: flags.edges,
            entities: flags.entities,
            batch_updates: flags.batch_updates,
            in_flight: flags.in_flight,
            duration_s: flags.duration,
            durability: if flags.cloud.is_some() { "server-configured" } else { flags.durability.as_str() },
            compression: flags.compression.as_str(),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_s,
            batches: 0,
            applied: 0,
            stale: 0,
            rejected: 0,
            duplicates: 0,
            unacked: 0,
            first_rejection: None,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create a histogram")?,
            first_send: None,
            last_ack: None,
            loadgen_cpu_s: None,
            cloud_cpu_s: None,
            cloud_peak_rss_mib: None,
        })
    }

    fn add(&mut self, e: EdgeResult) -> anyhow::Result<()> {
        self.batches += e.batches;
        self.applied += e.applied;
        self.stale += e.stale;
        self.rejected += e.rejected;
        self.duplicates += e.duplicates;
        self.unacked += e.unacked;
        if self.first_rejection.is_none() {
            self.first_rejection = e.first_rejection;
        }
        self.latency_us.add(&e.latency_us).context("cannot merge latency histograms")?;
        self.first_send = match (self.first_send, e.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ack = self.last_ack.max(e.last_ack);
        Ok(())
    }

    fn cloud_cpu_total_s(&self) -> Option<f64> {
        self.cloud_cpu_s.as_ref().map(|t| t.iter().map(|(_, c)| c).sum())
    }

    fn durable(&self) -> u64 {
        self.applied + self.stale
    }

    fn elapsed_s(&self) -> f64 {
        match (self.first_send, self.last_ack) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn per_s(&self, n: u64) -> f64 {
        let s = self.elapsed_s();
        if s > 0.0 { n as f64 / s } else { 0.0 }
    }

    fn latency_ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() { 0.0 } else { self.latency_us.value_at_quantile(q) as f64 / 1000.0 }
    }

    fn max_latency_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }

    fn human(&self) -> String {
        let mut s = String::new();
        let cpu = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} s"));
        let _ = writeln!(s, "twin-loadgen: durable ingest over gRPC");
        let _ = writeln!(
            s,
            "  settings:  cloud={} edges={} entities={} batch-updates={} in-flight={} duration={}s \
             durability={} compression={} nproc={}",
            self.url,
            self.edges,
            self.entities,
            self.batch_updates,
            self.in_flight,
            self.duration_s,
            self.durability,
            self.compression,
            self.nproc
        );
        let _ = writeln!(
            s,
            "  load:      {} entities in {:.2} s ({:.0}/s)",
            self.entities,
            self.load_s,
            if self.load_s > 0.0 { f64::from(self.entities) / self.load_s } else { 0.0 }
        );
        let _ = writeln!(
            s,
            "  durable:   {} updates ({} applied, {} stale) in {:.2} s = {:.0} updates/s",
            self.durable(),
            self.applied,
            self.stale,
            self.elapsed_s(),
            self.per_s(self.durable())
        );
        let _ = writeln!(
            s,
            "  batches:   {} acked ({:.1}/s), {} rejected updates, {} duplicates, {} unacked",
            self.batches,
            self.per_s(self.batches),
            self.rejected,
            self.duplicates,
            self.unacked
        );
        let _ = writeln!(
            s,
            "  ack (ms):  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.max_latency_ms(),
            self.latency_us.mean() / 1000.0
        );
        let _ =
            writeln!(s, "  cpu:       loadgen {}, cloud {}", cpu(self.loadgen_cpu_s), cpu(self.cloud_cpu_total_s()));
        if let Some(threads) = &self.cloud_cpu_s {
            let shown: Vec<String> =
                threads.iter().filter(|(_, c)| *c >= 0.05).map(|(n, c)| format!("{n} {c:.1} s")).collect();
            let _ = writeln!(s, "  cloud cpu by thread: {}", shown.join(", "));
        }
        if let Some(rss) = self.cloud_peak_rss_mib {
            let _ = writeln!(s, "  cloud peak rss: {rss:.0} MiB");
        }
        s
    }

    fn json(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.2}"));
        format!(
            "{{\"cloud\":{},\"edges\":{},\"entities\":{},\"batch_updates\":{},\"in_flight\":{},\"duration_s\":{},\
             \"durability\":{},\"compression\":{},\"nproc\":{},\"load_s\":{:.3},\"durable_updates\":{},\
             \"applied\":{},\"stale\":{},\"rejected\":{},\"duplicates\":{},\"unacked\":{},\"batches\":{},\
             \"elapsed_s\":{:.3},\"updates_per_s\":{:.1},\"ack_p50_ms\":{:.3},\"ack_p90_ms\":{:.3},\
             \"ack_p99_ms\":{:.3},\"ack_max_ms\":{:.3},\"loadgen_cpu_s\":{},\"cloud_cpu_s\":{},\
             \"cloud_peak_rss_mib\":{}}}",
            json_string(&self.url),
            self.edges,
            self.entities,
            self.batch_updates,
            self.in_flight,
            self.duration_s,
            json_string(self.durability),
            json_string(self.compression),
            self.nproc,
            self.load_s,
            self.durable(),
            self.applied,
            self.stale,
            self.rejected,
            self.duplicates,
            self.unacked,
            self.batches,
            self.elapsed_s(),
            self.per_s(self.durable()),
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.max_latency_ms(),
            opt(self.loadgen_cpu_s),
            opt(self.cloud_cpu_total_s()),
            opt(self.cloud_peak_rss_mib)
        )
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

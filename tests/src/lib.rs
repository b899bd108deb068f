//! Shared helpers for City Twin's integration and end-to-end tests: an in-process cloud on
//! `127.0.0.1:0`, the real `cloud` binary as a child process, an ingest-stream client, and builders for
//! entities and batches. Every wait is bounded.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Streaming, transport::Channel};
use twin_proto::pb::{
    self, admin_service_client::AdminServiceClient, ingest_service_client::IngestServiceClient,
    twin_service_client::TwinServiceClient,
};

pub mod fault_proxy;
pub use fault_proxy::{Fault, FaultProxy};
pub mod mosquitto;
pub use mosquitto::MosquittoBroker;
pub mod xvfb;
pub use xvfb::XvfbDisplay;
pub mod watchdog;

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Connects a gRPC channel to `addr`, retrying for up to [`WAIT`] while the server starts.
pub async fn connect(addr: SocketAddr) -> Result<Channel> {
    watchdog::arm();
    Ok(twin_client::connect(&format!("http://{addr}"), WAIT).await?)
}

/// gRPC clients of one cloud.
#[derive(Debug, Clone)]
pub struct Clients {
    /// The channel.
    pub channel: Channel,
}

impl Clients {
    /// TwinService.
    pub fn twin(&self) -> TwinServiceClient<Channel> {
        TwinServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
    /// AdminService.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone()).max_encoding_message_size(64 << 20)
    }
    /// IngestService.
    pub fn ingest(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::new(self.channel.clone()).max_encoding_message_size(64 << 20)
    }
}

/// A cloud service running inside the test process, on a temp sled dir.
#[derive(Debug)]
pub struct InProcessCloud {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its clients.
    pub clients: Clients,
    /// Its data directory (kept until the cloud is dropped).
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), cloud::ServeError>>,
}

impl InProcessCloud {
    /// Starts a cloud with default settings on a fresh temp dir.
    pub async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a cloud on a fresh temp dir after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut cloud::RawConfig)) -> Result<Self> {
        let tempdir = tempfile::tempdir()?;
        let dir = tempdir.path().to_path_buf();
        let mut cloud = Self::start_in(&dir, tweak).await?;
        cloud._tempdir = Some(tempdir);
        Ok(cloud)
    }

    /// Starts a cloud on `dir` (e.g. to reopen a store a stopped cloud left).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut cloud::RawConfig)) -> Result<Self> {
        watchdog::arm();
        let mut raw =
            cloud::RawConfig { data_dir: dir.to_path_buf(), listen: "127.0.0.1:0".into(), ..Default::default() };
        tweak(&mut raw);
        let settings = raw.validate()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(cloud::run(settings, listener, shutdown.clone()));
        let channel = connect(addr).await?;
        Ok(InProcessCloud {
            addr,
            clients: Clients { channel },
            dir: dir.to_path_buf(),
            _tempdir: None,
            shutdown,
            task,
        })
    }

    /// Stops it the way Ctrl-C does and waits until the store is closed.
    pub async fn stop(self) -> Result<Option<tempfile::TempDir>> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await.context("cloud did not stop in time")???;
        Ok(self._tempdir)
    }
}

/// A binary of this workspace (`cloud`, `city-load`, ...), built once per test run (a no-op when fresh).
pub fn binary(name: &str) -> Result<PathBuf> {
    watchdog::arm();
    static TARGET_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = TARGET_DIR
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "--workspace", "--bins"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("cargo build --workspace --bins failed: {status}"));
            }
            // target/<profile>/deps/e2e-<hash> -> target/<profile>
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .ok_or_else(|| "test binary has no target dir".into())
        })
        .clone()
        .map_err(|e| anyhow!(e))?;
    let bin = dir.join(name);
    if bin.exists() { Ok(bin) } else { bail!("{} was not built", bin.display()) }
}

/// The `cloud` binary.
pub fn cloud_binary() -> Result<PathBuf> {
    binary("cloud")
}

/// Sends SIGTERM to a child process (its clean shutdown).
pub fn sigterm(child: &Child) -> Result<()> {
    let pid = child.id() as libc::pid_t;
    // libc::kill is a plain syscall wrapper; the pid is our own child, not yet reaped.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc != 0 {
        bail!("kill(SIGTERM) failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A child process of a test: killed on drop, stopped with SIGKILL or SIGTERM.
#[derive(Debug)]
pub struct ChildProcess {
    name: &'static str,
    child: Child,
}

impl ChildProcess {
    /// Spawns `command` with a piped stdout and waits (bounded) for a stdout line starting with `marker`,
    /// returning the process and the rest of that line. Later stdout lines go to `lines`, if given.
    pub fn spawn_until(
        name: &'static str,
        command: Command,
        marker: &'static str,
        lines: Option<std::sync::mpsc::Sender<String>>,
    ) -> Result<(Self, String)> {
        Self::spawn_until_within(name, command, marker, lines, WAIT)
    }

    /// As [`ChildProcess::spawn_until`], waiting at most `wait` for the marker (for processes that do much
    /// before they are ready, e.g. load a whole city).
    pub fn spawn_until_within(
        name: &'static str,
        mut command: Command,
        marker: &'static str,
        lines: Option<std::sync::mpsc::Sender<String>>,
        wait: Duration,
    ) -> Result<(Self, String)> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(marker) {
                    let _ = tx.send(rest.trim().to_owned());
                } else if let Some(l) = &lines {
                    let _ = l.send(line);
                }
            }
        });
        match rx.recv_timeout(wait) {
            Ok(rest) => Ok((ChildProcess { name, child }, rest)),
            Err(e) => {
                let _ = child.kill();
                let why = match e {
                    std::sync::mpsc::RecvTimeoutError::Timeout => format!("within {wait:?}"),
                    std::sync::mpsc::RecvTimeoutError::Disconnected => "before its output ended".into(),
                };
                bail!("{name} did not print {marker:?} {why}");
            }
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits (bounded) for the exit status. Async so that the test's own gRPC connections
    /// keep running and can answer a server's GOAWAY while it drains.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        sigterm(&self.child)?;
        self.exit_status("SIGTERM").await
    }

    /// Closes its stdin (when the command piped it), the way a supervisor's death closes a lifeline pipe,
    /// then waits (bounded) for the exit status.
    pub async fn close_stdin(&mut self) -> Result<ExitStatus> {
        drop(self.child.stdin.take().context("its stdin is not a pipe")?);
        self.exit_status("its stdin closing").await
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn exit_status(&mut self, after: &str) -> Result<ExitStatus> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not exit within {WAIT:?} of {after}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The processes whose parent is `pid` and that still run (a zombie, exited and not yet reaped, does not count),
/// read from `/proc`.
pub fn running_children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| proc_state(p).is_some_and(|(state, parent)| parent == pid && state != 'Z'))
        .collect()
}

/// Every process descended from `pid` (its children, theirs, and so on), zombies included.
pub fn descendants(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, proc_state(p)?.1)))
        .collect();
    let mut found = vec![pid];
    let mut next = 0;
    while let Some(&parent) = found.get(next) {
        found.extend(parents.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p));
        next += 1;
    }
    found.split_off(1)
}

/// Whether `pid` still runs (a zombie does not).
pub fn is_running(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The state letter and the parent pid of `pid`, from `/proc/PID/stat` (after the command name, which is in
/// parentheses and may hold spaces).
fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The real `cloud` binary running as a child process.
#[derive(Debug)]
pub struct CloudProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    process: ChildProcess,
}

impl CloudProcess {
    /// Starts `cloud --listen 127.0.0.1:0 --data-dir DIR ARGS..` and waits for its listening line.
    pub fn spawn(data_dir: &Path, args: &[&str]) -> Result<Self> {
        Self::spawn_with_env(data_dir, args, &[])
    }

    /// As [`CloudProcess::spawn`], with extra environment variables (e.g. `TWIN__` settings). A `--listen`
    /// in `args` (e.g. the address of a cloud that was killed) overrides the free port.
    pub fn spawn_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::spawn_from(Self::command(data_dir, args, env)?)
    }

    /// As [`CloudProcess::spawn_with_env`] with no arguments, its stdin a pipe the test holds, as `citytwin`
    /// starts it ([`CloudProcess::close_stdin`] closes it).
    pub fn spawn_with_stdin_pipe(data_dir: &Path, env: &[(&str, &str)]) -> Result<Self> {
        let mut command = Self::command(data_dir, &[], env)?;
        command.stdin(Stdio::piped());
        Self::spawn_from(command)
    }

    fn command(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Command> {
        let mut command = Command::new(cloud_binary()?);
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command.arg("--data-dir").arg(data_dir).args(args).env("TWIN__LOG", "warn").envs(env.iter().copied());
        Ok(command)
    }

    fn spawn_from(command: Command) -> Result<Self> {
        let (process, addr) = ChildProcess::spawn_until("cloud", command, "cloud listening on ", None)?;
        Ok(CloudProcess { addr: addr.parse().context("bad listening address")?, process })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Closes its stdin (spawned with [`CloudProcess::spawn_with_stdin_pipe`]), then waits (bounded) for the
    /// exit status.
    pub async fn close_stdin(&mut self) -> Result<ExitStatus> {
        self.process.close_stdin().await
    }

    /// Clients connected to it.
    pub async fn clients(&self) -> Result<Clients> {
        Ok(Clients { channel: connect(self.addr).await? })
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        self.process.terminate().await
    }
}

/// The real `edge` binary running as a child process.
#[derive(Debug)]
pub struct EdgeProcess {
    /// What it printed on start (`edge ID running: ...` without the leading `edge `).
    pub started: String,
    /// Its later stdout lines (e.g. the `stopped` summary).
    pub lines: std::sync::mpsc::Receiver<String>,
    process: ChildProcess,
}

impl EdgeProcess {
    /// Starts `edge ARGS..` (logging at `warn` unless `TWIN_EDGE__LOG` is in `env`) and waits until it runs.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut command = Command::new(binary("edge")?);
        command.args(args).env("TWIN_EDGE__LOG", "warn").envs(env.iter().copied());
        let (tx, lines) = std::sync::mpsc::channel();
        let (process, started) = ChildProcess::spawn_until("edge", command, "edge ", Some(tx))?;
        Ok(EdgeProcess { started, lines, process })
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        self.process.terminate().await
    }
}

/// One edge's ingest stream.
#[derive(Debug)]
pub struct EdgeStream {
    /// The server's welcome.
    pub welcome: pb::Welcome,
    tx: mpsc::Sender<pb::IngestRequest>,
    rx: Streaming<pb::IngestResponse>,
}

impl EdgeStream {
    /// Opens a stream and says hello as `edge_id`.
    pub async fn open(clients: &Clients, edge_id: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(hello(edge_id)).await?;
        let mut rx = clients.ingest().ingest(ReceiverStream::new(rx)).await?.into_inner();
        let first = tokio::time::timeout(WAIT, rx.message()).await.context("no welcome in time")??;
        let welcome = match first.and_then(|m| m.message) {
            Some(pb::ingest_response::Message::Welcome(w)) => w,
            other => bail!("expected welcome, got {other:?}"),
        };
        Ok(EdgeStream { welcome, tx, rx })
    }

    /// Sends a batch without waiting for its ack.
    pub async fn send(&self, batch: pb::Batch) -> Result<()> {
        let msg = pb::IngestRequest { message: Some(pb::ingest_request::Message::Batch(batch)) };
        self.tx.send(msg).await.map_err(|_| anyhow!("ingest stream closed"))
    }

    /// Sends any request (for protocol tests).
    pub async fn send_raw(&self, msg: pb::IngestRequest) -> Result<()> {
        self.tx.send(msg).await.map_err(|_| anyhow!("ingest stream closed"))
    }

    /// The next message from the server: an ack, or the status that ended the stream.
    pub async fn next_ack(&mut self) -> Result<Result<pb::Ack, tonic::Status>> {
        match tokio::time::timeout(WAIT, self.rx.message()).await.context("no ack in time")? {
            Ok(Some(pb::IngestResponse { message: Some(pb::ingest_response::Message::Ack(a)) })) => Ok(Ok(a)),
            Ok(other) => bail!("expected an ack, got {other:?}"),
            Err(status) => Ok(Err(status)),
        }
    }

    /// Sends a batch and waits for its ack.
    pub async fn send_and_ack(&mut self, batch: pb::Batch) -> Result<pb::Ack> {
        let seq = batch.seq;
        self.send(batch).await?;
        let ack = self.next_ack().await?.map_err(|s| anyhow!("stream ended: {s}"))?;
        if ack.seq != seq {
            bail!("ack for seq {} while waiting for {seq}", ack.seq);
        }
        Ok(ack)
    }
}

/// A hello message.
pub fn hello(edge_id: &str) -> pb::IngestRequest {
    pb::IngestRequest {
        message: Some(pb::ingest_request::Message::Hello(pb::Hello { edge_id: edge_id.into(), protocol_version: 1 })),
    }
}

/// The id of test air-quality station `i`.
pub fn station_id(i: usize) -> String {
    format!("urn:ngsi-ld:AirQualityObserved:test:{i:05}")
}

/// An air-quality station entity at (lon, lat).
pub fn station(i: usize, lon: f64, lat: f64) -> pb::Entity {
    entity(&station_id(i), "AirQualityObserved", lon, lat)
}

/// An entity of `entity_type` at a point.
pub fn entity(id: &str, entity_type: &str, lon: f64, lat: f64) -> pb::Entity {
    pb::Entity {
        id: id.into(),
        r#type: entity_type.into(),
        geometry: Some(pb::Geometry {
            shape: Some(pb::geometry::Shape::Point(pb::GeoPoint { lon, lat })),
            height_m: 0.0,
        }),
        ..Default::default()
    }
}

/// A number value.
pub fn number(v: f64) -> pb::Value {
    pb::Value { kind: Some(pb::value::Kind::Number(v)) }
}

/// An update naming entity and attribute in full.
pub fn update(entity_id: &str, attribute: &str, value: pb::Value, offset_ms: i64) -> pb::Update {
    pb::Update {
        entity: Some(pb::update::Entity::EntityId(entity_id.into())),
        attribute: Some(pb::update::Attribute::AttributeName(attribute.into())),
        value: Some(value),
        observed_offset_ms: offset_ms,
    }
}

/// A batch of updates relative to `base_time_unix_ms`.
pub fn batch(seq: u64, base_time_unix_ms: i64, updates: Vec<pb::Update>) -> pb::Batch {
    pb::Batch { seq, base_time_unix_ms, updates, ..Default::default() }
}

/// Loads entities through AdminService and checks nothing was rejected.
pub async fn load(clients: &Clients, entities: Vec<pb::Entity>) -> Result<pb::LoadEntitiesResponse> {
    let r = clients.admin().load_entities(pb::LoadEntitiesRequest { entities }).await?.into_inner();
    if !r.rejected.is_empty() {
        bail!("load rejected entities: {:?}", r.rejected);
    }
    Ok(r)
}

/// The reported number of an entity's attribute, via Get.
pub async fn reported_number(clients: &Clients, id: &str, attribute: &str) -> Result<Option<(f64, i64)>> {
    let e = clients.twin().get(pb::GetRequest { id: id.into(), field_mask: None }).await?.into_inner();
    Ok(e.attributes.iter().find(|a| a.name == attribute).and_then(|a| match a.reported.as_ref()?.kind {
        Some(pb::value::Kind::Number(v)) => Some((v, a.observed_at_unix_ms)),
        _ => None,
    }))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The reported value of an entity's attribute, via Get; `None` when the entity or the value is missing.
pub async fn reported(clients: &Clients, id: &str, attribute: &str) -> Result<Option<pb::value::Kind>> {
    let e = match clients.twin().get(pb::GetRequest { id: id.into(), field_mask: None }).await {
        Ok(e) => e.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
        Err(status) => return Err(status.into()),
    };
    Ok(e.attributes.iter().find(|a| a.name == attribute).and_then(|a| a.reported.as_ref()?.kind.clone()))
}

/// The reported value of an entity's attribute and its observation time (unix ms), via Get; `None` when the
/// entity or the value is missing.
pub async fn reported_at(clients: &Clients, id: &str, attribute: &str) -> Result<Option<(pb::value::Kind, i64)>> {
    let Some(e) = entity_of(clients, id).await? else { return Ok(None) };
    Ok(e.attributes
        .iter()
        .find(|a| a.name == attribute)
        .and_then(|a| Some((a.reported.as_ref()?.kind.clone()?, a.observed_at_unix_ms))))
}

/// When the newest of an entity's reported values was observed (unix ms), via Get; `None` when the entity is
/// missing or has no reported value. Tests that wait for an edge to send something new wait for this to move
/// rather than for one attribute: a single value (an hourly AQI, say) can stay the same for a while, and the
/// deadband then sends nothing for it.
pub async fn newest_observation(clients: &Clients, id: &str) -> Result<Option<i64>> {
    let Some(e) = entity_of(clients, id).await? else { return Ok(None) };
    Ok(e.attributes.iter().filter(|a| a.reported.is_some()).map(|a| a.observed_at_unix_ms).max())
}

/// The entity `id`, via Get; `None` when there is none.
async fn entity_of(clients: &Clients, id: &str) -> Result<Option<pb::Entity>> {
    match clients.twin().get(pb::GetRequest { id: id.into(), field_mask: None }).await {
        Ok(e) => Ok(Some(e.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

/// The colour at the centre of a PNG, or `None` if it cannot be read (yet).
pub fn png_centre(path: &Path) -> Option<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let (w, h) = (info.width as usize, info.height as usize);
    let i = ((h / 2) * w + w / 2) * 4;
    Some([buf[i], buf[i + 1], buf[i + 2]])
}

/// Polls `cond` every 20 ms until it holds; an error naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// CPU seconds (user + system) used so far by this process's threads, summed by thread name; empty where
/// `/proc` is not there. Threads that have ended are not counted.
pub fn thread_cpu_s() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return by_name };
    for task in tasks.flatten() {
        let (Ok(comm), Ok(stat)) =
            (std::fs::read_to_string(task.path().join("comm")), std::fs::read_to_string(task.path().join("stat")))
        else {
            continue;
        };
        // Fields after the `(comm)`: utime and stime are fields 14 and 15 (clock ticks, 100/s).
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
        *by_name.entry(comm.trim().to_owned()).or_insert(0.0) += ticks as f64 / 100.0;
    }
    by_name
}

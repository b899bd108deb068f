//! `citytwin`: runs the whole Changsha demonstration (cloud, city, one edge agent per district, viewer) until
//! Ctrl-C, then stops every part cleanly. See the `demo` library for what each step does.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use demo::{
    city::{self, CityLoad},
    part::{Ended, Part, PartError},
    plan::{self, DemoOptions, ViewerMode},
};
use futures::future::{join_all, select_all};
use tokio_util::sync::CancellationToken;

/// Run the City Twin demonstration: cloud, Changsha, an edge agent per district, and the viewer.
#[derive(Debug, Parser)]
#[command(name = "citytwin", version)]
struct Flags {
    /// The data folder: the cloud's store, the edges' outboxes and the snapshots live under it.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data_dir: PathBuf,
    /// The cloud's gRPC address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: String,
    /// The districts to run an edge agent for: `all`, or some of yuelu, kaifu, furong, tianxin, yuhua.
    #[arg(long, value_name = "LIST", default_value = "all")]
    districts: String,
    /// Simulated seconds per real second (60: a sensor sampled every minute changes every second).
    #[arg(long, value_name = "FACTOR", default_value_t = 60.0)]
    speed: f64,
    /// The viewer: auto (a window when there is a display, snapshots otherwise), window, headless or off.
    #[arg(long, value_name = "MODE", default_value = "auto")]
    viewer: String,
    /// How often headless snapshots are rewritten.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Log filter of every part, e.g. `info`.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    log: String,
    /// Seed of the demonstration city.
    #[arg(long, default_value_t = twin_city::DEFAULT_SEED)]
    seed: u64,
    /// How long the cloud keeps history (the simulators write thousands of updates a second).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    history: Duration,
}

/// How long a part may take to print its ready line (edges build the city first; the viewer lists it).
const READY_WITHIN: Duration = Duration::from_secs(180);
/// How long a part may take to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let flags = Flags::parse();
    let options = match options(&flags) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("citytwin: {e:#}");
            return ExitCode::from(2);
        }
    };
    // A part that did not stop cleanly fails the run (`run` said so on stderr).
    twin_telemetry::runtime::block_on("citytwin", async {
        run(options).await.map(|clean| if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

fn options(flags: &Flags) -> anyhow::Result<DemoOptions> {
    let exe = std::env::current_exe().context("cannot find the citytwin binary's own path")?;
    let bin_dir = exe.parent().map(Path::to_path_buf).context("the citytwin binary has no folder")?;
    let mode = ViewerMode::parse(&flags.viewer)?.resolve(plan::has_display(|k| std::env::var_os(k)));
    let options = DemoOptions {
        bin_dir,
        data_dir: flags.data_dir.clone(),
        listen: flags.listen.clone(),
        districts: plan::parse_districts(&flags.districts)?,
        speed: flags.speed,
        viewer: mode,
        every: flags.every,
        log: flags.log.clone(),
        seed: flags.seed,
        history: flags.history,
    };
    options.check()?;
    Ok(options)
}

/// The running parts, stopped in reverse order of start.
#[derive(Debug, Default)]
struct Running {
    cloud: Option<Part>,
    edges: Vec<Part>,
    viewer: Option<Part>,
}

impl Running {
    fn all_mut(&mut self) -> impl Iterator<Item = &mut Part> {
        self.cloud.iter_mut().chain(self.edges.iter_mut()).chain(self.viewer.iter_mut())
    }

    /// Stops the viewer, then the edges together (they still reach the cloud for their last sends), then
    /// the cloud, and says how each ended. True when every part stopped cleanly.
    async fn stop(mut self) -> bool {
        let mut ended: Vec<(String, Ended)> = Vec::new();
        if let Some(viewer) = self.viewer.as_mut() {
            ended.push((viewer.name.clone(), viewer.stop(GRACE).await));
        }
        let edges = join_all(self.edges.iter_mut().map(|e| async { (e.name.clone(), e.stop(GRACE).await) })).await;
        ended.extend(edges);
        if let Some(cloud) = self.cloud.as_mut() {
            ended.push((cloud.name.clone(), cloud.stop(GRACE).await));
        }
        let clean = ended.iter().all(|(_, e)| e.clean());
        let parts: Vec<String> = ended.iter().map(|(name, e)| format!("{name} {e}")).collect();
        // Scripts and tests read this line.
        say(&format!("citytwin stopped: {}", parts.join(", ")));
        clean
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the demonstration until a signal or until a part ends; true when everything stopped cleanly.
async fn run(options: DemoOptions) -> anyhow::Result<bool> {
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop_signal().await;
            stop.cancel();
        }
    });
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create the data folder {}", options.data_dir.display()))?;
    let data = std::fs::canonicalize(&options.data_dir).unwrap_or_else(|_| options.data_dir.clone());
    let mut running = Running::default();
    let outcome = start(&options, &stop, &mut running).await;
    let clean = match outcome {
        Ok(summary) => {
            print_summary(&options, &data, &summary);
            let window = options.viewer == ViewerMode::Window;
            let why = watch(&stop, &mut running, window).await;
            eprintln!("citytwin: {why}; stopping every part");
            let stopped_by_user = why == Why::Signal || why == Why::WindowClosed;
            running.stop().await && stopped_by_user
        }
        Err(e) if stop.is_cancelled() => {
            eprintln!("citytwin: stopped while starting ({e:#})");
            running.stop().await
        }
        Err(e) => {
            eprintln!("citytwin: {e:#}");
            running.stop().await;
            false
        }
    };
    Ok(clean)
}

/// What the demonstration found out while starting, for the summary.
#[derive(Debug)]
struct Started {
    addr: String,
    city: String,
    entities: usize,
    load: CityLoad,
    load_time: Duration,
    example_id: String,
}

/// Starts the cloud, loads the city if needed, starts the edges and the viewer. Parts started so far are in
/// `running`, so the caller can stop them on an error or a signal.
async fn start(options: &DemoOptions, stop: &CancellationToken, running: &mut Running) -> anyhow::Result<Started> {
    let seed = options.seed;
    // The city is built while the cloud starts.
    let city = tokio::task::spawn_blocking(move || twin_city::changsha(seed));
    let (cloud, addr) = Part::start(&options.cloud(), READY_WITHIN, GRACE, stop).await?;
    running.cloud = Some(cloud);
    let url = format!("http://{addr}");
    let city = city.await.context("building the city failed")?;

    let channel = tokio::select! {
        c = twin_client::connect(&url, city::CONNECT_WAIT) => c?,
        () = stop.cancelled() => bail!("stopped"),
    };
    let mut progress = twin_client::Progress::new(&format!("loading {}", city.name));
    let loading = Instant::now();
    let catalog = twin_model::Catalog::builtin();
    let load = tokio::select! {
        l = city::ensure_loaded(channel, &catalog, &city, |done, total| progress.update(done, total)) => l?,
        () = stop.cancelled() => bail!("stopped while loading {}; the next run finishes the load", city.name),
    };
    let load_time = loading.elapsed();
    match &load {
        CityLoad::AlreadyLoaded => eprintln!("citytwin: {} is already in the cloud", city.name),
        CityLoad::Loaded { loaded, unchanged } => eprintln!(
            "citytwin: loaded {}: {loaded} entities new, {unchanged} unchanged, in {:.1} s",
            city.name,
            load_time.as_secs_f64()
        ),
    }

    let edges = join_all(
        options
            .districts
            .iter()
            .map(|d| async { Part::start(&options.edge(*d, &url), READY_WITHIN, GRACE, stop).await }),
    )
    .await;
    let mut first_error: Option<PartError> = None;
    for edge in edges {
        match edge {
            Ok((part, _)) => running.edges.push(part),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    if let Some(spec) = options.viewer(&url) {
        let (viewer, _) = Part::start(&spec, READY_WITHIN, GRACE, stop).await?;
        running.viewer = Some(viewer);
    }
    // A station an edge of this run updates, for the grpcurl example.
    let slug = options.districts.first().map_or("", |d| d.slug());
    let example_id = city
        .of_type("AirQualityObserved")
        .find(|e| e.header.id.as_str().contains(&format!(":{slug}:")))
        .or_else(|| city.entities.first())
        .map(|e| e.header.id.to_string())
        .unwrap_or_default();
    Ok(Started { addr, city: city.name.clone(), entities: city.entities.len(), load, load_time, example_id })
}

fn print_summary(options: &DemoOptions, data: &Path, s: &Started) {
    let edges: Vec<String> = options.districts.iter().map(|d| plan::edge_id(*d)).collect();
    let city = match s.load {
        CityLoad::AlreadyLoaded => format!("{} ({} entities), already loaded", s.city, s.entities),
        CityLoad::Loaded { .. } => {
            format!("{} ({} entities), loaded in {:.1} s", s.city, s.entities, s.load_time.as_secs_f64())
        }
    };
    let viewer = match options.viewer {
        ViewerMode::Window | ViewerMode::Auto => "a window".to_owned(),
        ViewerMode::Headless => {
            let dir = data.join("snapshots");
            format!(
                "snapshots every {} in {} (city.png, cbd.png)",
                humantime::format_duration(options.every),
                dir.display()
            )
        }
        ViewerMode::Off => "off".to_owned(),
    };
    let text = format!(
        "\nCity Twin is running.\n  cloud   {addr}, store in {store} (history kept {history})\n  city    {city}\n  edges   {edges} at {speed}x \
         speed, outboxes in {data}/edge-*\n  viewer  {viewer}\n\nAsk the API (grpcurl, server reflection is on):\n  \
         grpcurl -plaintext -d '{{\"id\":\"{id}\"}}' {addr} twin.v1.TwinService/Get\n  grpcurl -plaintext -d \
         '{{\"filter\":{{\"types\":[\"AirQualityObserved\"]}}}}' {addr} twin.v1.TwinService/Watch\n\nCtrl-C stops everything; the \
         next run carries on from {data}.\n",
        addr = s.addr,
        store = data.join("cloud").display(),
        edges = edges.join(", "),
        speed = options.speed,
        data = data.display(),
        id = s.example_id,
        history = humantime::format_duration(options.history),
    );
    eprintln!("{text}");
    // Scripts and tests read this line.
    say(&format!(
        "citytwin running: cloud {}, data {}, city {} {}, {} edges, viewer {:?}",
        s.addr,
        data.display(),
        s.city,
        if s.load == CityLoad::AlreadyLoaded { "already loaded" } else { "loaded" },
        edges.len(),
        options.viewer
    ));
}

/// Why the demonstration stops.
#[derive(Debug, PartialEq, Eq)]
enum Why {
    Signal,
    WindowClosed,
    PartEnded(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Signal => write!(f, "asked to stop"),
            Why::WindowClosed => write!(f, "the viewer window was closed"),
            Why::PartEnded(what) => write!(f, "{what}"),
        }
    }
}

/// Waits for a stop signal or for any part to end by itself.
async fn watch(stop: &CancellationToken, running: &mut Running, window: bool) -> Why {
    let ends: Vec<_> = running.all_mut().map(|p| Box::pin(async move { (p.name.clone(), p.exited().await) })).collect();
    if ends.is_empty() {
        stop.cancelled().await;
        return Why::Signal;
    }
    tokio::select! {
        () = stop.cancelled() => Why::Signal,
        ((name, ended), _, _) = select_all(ends) => {
            if window && name == "viewer" && ended.clean() {
                Why::WindowClosed
            } else {
                Why::PartEnded(format!("{name} ended unexpectedly ({ended})"))
            }
        }
    }
}

/// SIGINT (Ctrl-C), SIGTERM, or SIGHUP (the terminal closed): the parts run in their own process groups, so
/// only citytwin hears these, and it must stop them.
async fn stop_signal() {
    let hangup = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = twin_telemetry::signal::shutdown_signal() => {}
        () = hangup => {}
    }
}

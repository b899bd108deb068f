//! `viewer`: the City Twin viewer. `viewer snapshot` renders the city to a PNG with no window.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use viewer::{
    camera::{Camera, PRESETS},
    client,
    live::{KnownEntities, LiveEvent, LiveState, follow},
    pick::Picked,
    render::{COLOR_FORMAT, CityRenderer, Gpu, Offscreen},
    scene::{Layer, Scene},
    snapshot,
    window::Source,
};

#[derive(Debug, Parser)]
#[command(name = "viewer", version, about = "City Twin viewer: the live city in 3D, and headless PNG snapshots")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Renders one frame to a PNG, with no window and no display.
    Snapshot {
        /// Render the demonstration city generated locally (no cloud needed).
        #[arg(long, conflicts_with = "cloud")]
        offline: bool,
        /// Render the city a cloud holds, e.g. http://127.0.0.1:50051.
        #[arg(long, value_name = "URL")]
        cloud: Option<String>,
        /// The seed of the demonstration city, with --offline.
        #[arg(long, default_value_t = twin_city::DEFAULT_SEED)]
        seed: u64,
        /// Camera preset: city, cbd, orange-isle (or any park's key), or entity:ID for a close look at one
        /// sensor or building.
        #[arg(long, default_value = "city")]
        camera: String,
        /// Where to write the PNG.
        #[arg(long, default_value = "city.png")]
        out: PathBuf,
        /// Width in pixels.
        #[arg(long, default_value_t = 1920)]
        width: u32,
        /// Height in pixels.
        #[arg(long, default_value_t = 1080)]
        height: u32,
        /// Layers to leave out: land, roads, buildings, sensors.
        #[arg(long = "hide", value_name = "LAYER")]
        hide: Vec<String>,
        /// Highlight this sensor or building as if an operator had picked it.
        #[arg(long, value_name = "ID")]
        select: Option<String>,
    },
    /// Opens the operator window: the live city with camera, layers, search and picking.
    Window {
        /// Render the demonstration city generated locally.
        #[arg(long, conflicts_with = "cloud")]
        offline: bool,
        /// The cloud, e.g. http://127.0.0.1:50051.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
        cloud: String,
        /// The seed of the demonstration city, with --offline.
        #[arg(long, default_value_t = twin_city::DEFAULT_SEED)]
        seed: u64,
        /// The camera to start with.
        #[arg(long, default_value = "city")]
        camera: String,
        /// Start with this sensor or building selected, the camera on it.
        #[arg(long, value_name = "ID")]
        select: Option<String>,
    },
    /// Follows a cloud and writes a snapshot every few seconds (for machines without a display).
    Headless {
        /// The cloud, e.g. http://127.0.0.1:50051.
        #[arg(long, value_name = "URL")]
        cloud: String,
        /// Where to write the PNGs (`<camera>.png`, rewritten each time; `:` and `/` become `_`).
        #[arg(long, default_value = "snapshots")]
        dir: PathBuf,
        /// How often to write them, e.g. 5s.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        every: std::time::Duration,
        /// Cameras to write, comma-separated: presets, landmarks or entity:ID.
        #[arg(long, default_value = "city,cbd", value_delimiter = ',')]
        cameras: Vec<String>,
        /// Width in pixels.
        #[arg(long, default_value_t = 1280)]
        width: u32,
        /// Height in pixels.
        #[arg(long, default_value_t = 720)]
        height: u32,
    },
}

fn layer(name: &str) -> anyhow::Result<Layer> {
    Ok(match name {
        "land" => Layer::Land,
        "roads" => Layer::Roads,
        "buildings" => Layer::Buildings,
        "sensors" => Layer::Sensors,
        other => bail!("unknown layer {other:?}: use land, roads, buildings or sensors"),
    })
}

/// A preset, a landmark, or `entity:ID` for a close look at one sensor or building.
fn resolve_camera(scene: &Scene, name: &str) -> anyhow::Result<Camera> {
    match name.strip_prefix("entity:") {
        Some(id) => match scene.find(id).with_context(|| format!("no sensor or building {id:?} in this city"))? {
            Picked::Sensor(i) => {
                // Aim at the glyph's middle, not its foot.
                let g = &scene.glyphs[i];
                Ok(Camera::focus(glam::Vec3::from(g.center) + glam::Vec3::Y * g.size, 120.0))
            }
            building => {
                let (at, distance) = scene.focus(building).context("a building without a footprint")?;
                Ok(Camera::focus(at, distance))
            }
        },
        None => Camera::preset(scene, name).with_context(|| {
            let parks: Vec<&str> = scene.landmarks.iter().map(|l| l.key.as_str()).collect();
            format!("unknown camera {name:?}: use one of {PRESETS:?}, entity:ID or a landmark of this city {parks:?}")
        }),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Snapshot { offline, cloud, seed, camera, out, width, height, hide, select } => {
            if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
                bail!("--width and --height must be within 16..=8192, got {width}x{height}");
            }
            let hidden = hide.iter().map(|h| layer(h)).collect::<anyhow::Result<Vec<_>>>()?;
            let started = Instant::now();
            let entities = match (offline, cloud) {
                (true, _) => twin_city::changsha(seed).entities,
                (false, Some(url)) => {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    let (entities, _) = runtime.block_on(async {
                        let channel = client::connect(&url).await?;
                        client::list_all(channel, |_| {}).await
                    })?;
                    entities
                }
                (false, None) => bail!("say where the city comes from: --cloud URL or --offline"),
            };
            let scene = Scene::build(&entities);
            let cam = resolve_camera(&scene, &camera)?;
            let selected = select
                .map(|id| {
                    scene.find(&id).with_context(|| format!("--select: no sensor or building {id:?} in this city"))
                })
                .transpose()?;
            let gpu = Gpu::headless()?;
            let built = started.elapsed();
            let image = snapshot::render(&gpu, &scene, &cam, (width, height), &hidden, selected)?;
            image.write_png(&out).with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "viewer: {} ({width}x{height}, camera {camera}, adapter {} / {:?}) in {:.1} s (scene {:.1} s): {} building \
                 triangles, {} sensors",
                out.display(),
                gpu.adapter.name,
                gpu.adapter.backend,
                started.elapsed().as_secs_f64(),
                built.as_secs_f64(),
                scene.buildings.triangles(),
                scene.glyphs.len()
            );
            Ok(())
        }
        Command::Window { offline, cloud, seed, camera, select } => {
            let source = if offline { Source::Offline(seed) } else { Source::Cloud(cloud) };
            Ok(viewer::window::run(source, camera, select)?)
        }
        Command::Headless { cloud, dir, every, cameras, width, height } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(headless(cloud, dir, every, cameras, width, height))
        }
    }
}

/// Follows the cloud and rewrites the snapshots every `every` until Ctrl-C or SIGTERM.
async fn headless(
    url: String,
    dir: PathBuf,
    every: std::time::Duration,
    cameras: Vec<String>,
    width: u32,
    height: u32,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (entities, revision) = client::list_all(client::connect(&url).await?, |_| {}).await?;
    let gpu = Gpu::headless()?;
    let mut scene = Scene::build(&entities);
    let mut live = LiveState::new(&entities, &scene, revision);
    let mut renderer = CityRenderer::new(&gpu, &scene, COLOR_FORMAT);
    // Before the line below: a supervisor may send SIGTERM as soon as it reads it.
    let stop = twin_telemetry::signal::shutdown_signal();
    println!("viewer: {} entities from {url}; writing {} every {every:?}", entities.len(), dir.display());
    let mut known = KnownEntities::new(entities);
    let target = Offscreen::new(&gpu, width, height);
    for name in &cameras {
        resolve_camera(&scene, name)?;
    }
    let (tx, mut events) = tokio::sync::mpsc::channel(256);
    let follower = tokio::spawn(follow(url.clone(), revision, tx));
    std::io::Write::flush(&mut std::io::stdout()).ok();
    let mut tick = tokio::time::interval(every);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                // New buildings, roads or districts: rebuild once they have settled.
                if let Some(entities) = known.rebuild_due(Instant::now()) {
                    scene = Scene::build(&entities);
                    live = LiveState::new(&entities, &scene, live.revision);
                    renderer = CityRenderer::new(&gpu, &scene, COLOR_FORMAT);
                    known = KnownEntities::new(entities);
                }
                for name in &cameras {
                    let image = target.render(&gpu, &renderer, &resolve_camera(&scene, name)?)?;
                    let file = name.replace([':', '/'], "_");
                    let path = dir.join(format!("{file}.png"));
                    // Write then rename, so a reader never sees half a file.
                    let partial = dir.join(format!(".{file}.png.partial"));
                    image.write_png(&partial)?;
                    std::fs::rename(&partial, &path)?;
                }
            }
            event = events.recv() => match event {
                Some(LiveEvent::Changes(response)) => {
                    let applied = live.apply(&mut scene, &response);
                    if !applied.added.is_empty() {
                        renderer.reload_glyphs(&gpu, &scene);
                    }
                    renderer.apply(&gpu, &scene, &applied.dirty);
                    known.absorb(&response, applied, Instant::now());
                }
                Some(LiveEvent::Relisted(entities, revision)) => {
                    scene = Scene::build(&entities);
                    live = LiveState::new(&entities, &scene, revision);
                    renderer = CityRenderer::new(&gpu, &scene, COLOR_FORMAT);
                    known = KnownEntities::new(entities);
                }
                Some(LiveEvent::Connected) => eprintln!("viewer: following {url}"),
                Some(LiveEvent::Disconnected(why)) => eprintln!("viewer: lost the cloud ({why}); reconnecting"),
                None => break,
            },
        }
    }
    drop(events);
    follower.await.ok();
    println!("viewer: stopped; the last snapshots are in {}", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("viewer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

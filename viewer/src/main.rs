//! `viewer`: the City Twin viewer. `viewer snapshot` renders the city to a PNG with no window.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use viewer::{
    camera::{Camera, PRESETS},
    client,
    render::Gpu,
    scene::{Layer, Scene},
    snapshot,
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
        /// Camera preset: city, cbd, orange-isle (or any park's key), or entity:ID for a close look at one.
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Snapshot { offline, cloud, seed, camera, out, width, height, hide } => {
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
            let cam = match camera.strip_prefix("entity:") {
                Some(id) => {
                    let at = scene.glyph_position(id).with_context(|| format!("no sensor {id:?} in this city"))?;
                    // Aim at the glyph's middle, not its foot.
                    Camera::focus(at + glam::Vec3::Y * viewer::scene::GLYPH_SIZE, 120.0)
                }
                None => Camera::preset(&scene, &camera).with_context(|| {
                    let parks: Vec<&str> = scene.landmarks.iter().map(|l| l.key.as_str()).collect();
                    format!("unknown camera {camera:?}: use one of {PRESETS:?}, entity:ID or a landmark of this city {parks:?}")
                })?,
            };
            let gpu = Gpu::headless()?;
            let built = started.elapsed();
            let image = snapshot::render(&gpu, &scene, &cam, width, height, &hidden)?;
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
    }
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

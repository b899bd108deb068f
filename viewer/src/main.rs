//! `viewer`: the City Twin viewer. `viewer snapshot` renders the city to a PNG with no window.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use viewer::{
    camera::{Camera, PRESETS},
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
        #[arg(long)]
        offline: bool,
        /// The seed of the demonstration city, with --offline.
        #[arg(long, default_value_t = twin_city::DEFAULT_SEED)]
        seed: u64,
        /// Camera preset: city, cbd, orange-isle (or any park's key).
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
        Command::Snapshot { offline, seed, camera, out, width, height, hide } => {
            if !offline {
                bail!("snapshot needs --offline (rendering from a cloud is not built yet)");
            }
            if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
                bail!("--width and --height must be within 16..=8192, got {width}x{height}");
            }
            let hidden = hide.iter().map(|h| layer(h)).collect::<anyhow::Result<Vec<_>>>()?;
            let started = Instant::now();
            let city = twin_city::changsha(seed);
            let scene = Scene::build(&city.entities);
            let cam = Camera::preset(&scene, &camera).with_context(|| {
                let parks: Vec<&str> = scene.landmarks.iter().map(|l| l.key.as_str()).collect();
                format!("unknown camera {camera:?}: use one of {PRESETS:?} or a landmark of this city {parks:?}")
            })?;
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

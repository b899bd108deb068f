//! `city-load`: loads a city into a running cloud through the API: the Changsha demonstration city by
//! default, or the buildings of a GeoJSON file. Loading again changes nothing.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::Context;
use clap::Parser;

/// Load a city into a City Twin cloud.
#[derive(Debug, Parser)]
#[command(name = "city-load", version)]
struct Flags {
    /// The cloud's gRPC address.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    cloud: String,
    /// Load the buildings of this GeoJSON FeatureCollection instead of the demonstration city.
    #[arg(long, value_name = "FILE")]
    geojson: Option<PathBuf>,
    /// Seed of the demonstration city.
    #[arg(long, default_value_t = twin_city::DEFAULT_SEED)]
    seed: u64,
    /// Entities per LoadEntities call.
    #[arg(long, default_value_t = 2_000)]
    chunk: usize,
    /// How long to wait for the cloud to accept connections, in seconds.
    #[arg(long, default_value_t = 30)]
    wait_s: u64,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("city-load: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("city-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let started = Instant::now();
    let city = match &flags.geojson {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "city".into());
            twin_city::geojson::import(&text, &name).with_context(|| format!("cannot import {}", path.display()))?
        }
        None => twin_city::changsha(flags.seed),
    };
    eprintln!("city-load: {} with {} entities built in {:.2?}", city.name, city.entities.len(), started.elapsed());
    let channel = twin_client::connect(&flags.cloud, std::time::Duration::from_secs(flags.wait_s)).await?;
    let catalog = twin_model::Catalog::builtin();
    let mut progress = twin_client::Progress::new(&format!("loading {}", city.name));
    let loading = Instant::now();
    let summary = twin_client::load_entities(channel, &catalog, &city.entities, flags.chunk, |done, total| {
        progress.update(done, total)
    })
    .await?;
    eprintln!(
        "city-load: {} entities loaded, {} unchanged, {} attribute values applied, {} rejected, in {:.2?} (revision {})",
        summary.loaded,
        summary.unchanged,
        summary.attributes_applied,
        summary.rejected.len(),
        loading.elapsed(),
        summary.revision
    );
    for r in summary.rejected.iter().take(10) {
        eprintln!("  rejected entity {} {}: {}", r.index, r.entity_id, r.message);
    }
    anyhow::ensure!(
        summary.rejected.is_empty(),
        "the cloud rejected {} entities or attributes",
        summary.rejected.len()
    );
    Ok(())
}

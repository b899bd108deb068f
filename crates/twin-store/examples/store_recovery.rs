//! How long a restart takes after a crash, by how much change log it replays: the cost that
//! `checkpoint_interval` bounds (a restart replays the log written since the last checkpoint).
//!
//! `cargo run --release -p twin-store --example store_recovery -- 1500000` writes 1,500,000 updates (30 s of
//! log at 50,000 updates/s) over 10,000 air-quality stations x 5 attributes in batches of 500 (fsync
//! durability, no checkpoint during the writes) in a child process that then exits without closing the store,
//! as a crash would; then opens the store here and prints how long the open took.

mod common;

use std::{sync::Arc, time::Instant};

use twin_model::{AttrName, Catalog, Value, now_unix_ms};
use twin_store::{AttributeUpdate, Store, StoreConfig, WriteBatch};

const ENTITIES: usize = 10_000;
const ATTRIBUTES: [&str; 5] = ["pm25", "pm10", "no2", "so2", "o3"];
const BATCH: usize = 500;

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.checkpoint_interval = std::time::Duration::from_secs(3600);
    config
}

/// The child: writes `updates` and exits without closing the store.
async fn write(dir: &std::path::Path, updates: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(config(dir), Arc::new(Catalog::builtin()))?;
    let ids = common::register_stations(&store, ENTITIES).await?;
    let attrs: Vec<AttrName> = ATTRIBUTES.iter().map(|a| AttrName::new(a)).collect::<Result<_, _>>()?;
    let slots = ENTITIES * attrs.len();
    let t0 = now_unix_ms() - 3_600_000;
    let started = Instant::now();
    let mut k = 0usize;
    while k < updates {
        let batch = (0..BATCH.min(updates - k))
            .map(|_| {
                k += 1;
                AttributeUpdate {
                    entity: ids[k % ENTITIES].clone(),
                    attribute: attrs[(k / ENTITIES) % attrs.len()].clone(),
                    value: Value::Number((k % 1000) as f64 / 10.0),
                    // Each attribute moves forward in time, so none is stale.
                    observed_at: t0 + (k / slots) as i64 * 10,
                }
            })
            .collect();
        store.write(WriteBatch { updates: batch, ..Default::default() }).await?;
    }
    println!("wrote {updates} updates in {:.1} s; exiting without closing the store", started.elapsed().as_secs_f64());
    std::process::exit(0);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--write") => {
            let dir = args.next().ok_or("--write DIR N")?;
            let updates = args.next().ok_or("--write DIR N")?.parse()?;
            return write(std::path::Path::new(&dir), updates).await;
        }
        Some(n) => run(n.parse()?),
        None => run(1_500_000),
    }
}

fn run(updates: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--write")
        .arg(dir.path())
        .arg(updates.to_string())
        .status()?;
    if !status.success() {
        return Err(format!("the writer failed: {status}").into());
    }
    let started = Instant::now();
    let store = Store::open(config(dir.path()), Arc::new(Catalog::builtin()))?;
    let opened = started.elapsed();
    println!(
        "open after the crash: {:.2} s (replayed the log of {updates} updates and wrote a checkpoint of it), revision {}",
        opened.as_secs_f64(),
        store.revision()
    );
    store.close();
    Ok(())
}

//! Memory and throughput of sustained store writes: prints the process's resident memory every 100,000
//! updates, so growth per update shows (sled 0.34 grows with every small rewrite; see the crate docs).
//!
//! `cargo run --release -p twin-store --example store_memory -- 1500` writes 1,500 batches of 2,000 updates
//! over 10,000 air-quality stations (3 attributes each) into a temp dir with the default configuration.

mod common;

use std::{sync::Arc, time::Instant};

use twin_model::{AttrName, Catalog, Value, now_unix_ms};
use twin_store::{AttributeUpdate, Store, StoreConfig, WriteBatch};

const ENTITIES: usize = 10_000;
const BATCH: usize = 2_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next());
    kib.and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()), Arc::new(Catalog::builtin()))?;
    let ids = common::register_stations(&store, ENTITIES).await?;
    let attrs = [AttrName::new("pm25")?, AttrName::new("pm10")?, AttrName::new("no2")?];
    let t0 = now_unix_ms() - 3_600_000;
    let start = Instant::now();
    let mut k = 0usize;
    for b in 0..batches {
        let updates = (0..BATCH)
            .map(|_| {
                k += 1;
                AttributeUpdate {
                    entity: ids[k % ENTITIES].clone(),
                    attribute: attrs[(k / ENTITIES) % attrs.len()].clone(),
                    value: Value::Number((k % 100) as f64),
                    // Each attribute's observations move forward in time, so none is stale.
                    observed_at: t0 + (k / (ENTITIES * attrs.len())) as i64 * 10,
                }
            })
            .collect();
        store.write(WriteBatch { updates, ..Default::default() }).await?;
        if (b + 1) % (100_000 / BATCH) == 0 {
            let rate = k as f64 / start.elapsed().as_secs_f64();
            println!("{k:>9} updates {:>7.0} MiB rss {rate:>9.0} updates/s", rss_mib());
        }
    }
    tokio::task::spawn_blocking(move || store.close()).await?;
    Ok(())
}

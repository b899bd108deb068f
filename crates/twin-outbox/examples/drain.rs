//! Outbox throughput for BENCHMARKS.md: appends 1,000,000 updates in appends of 2,000 (each one durable),
//! then reopens (recovery) and drains: reads every sealed batch in seq order and acks it, as the uplink
//! does after an outage.
//!
//! `cargo run --release -p twin-outbox --example drain [updates] [dir]`

use std::{error::Error, time::Instant};

use twin_model::{AttrName, EntityId, Value};
use twin_outbox::{Outbox, OutboxConfig, OutboxUpdate};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().join("outbox"));
    let config = OutboxConfig { disk_budget_bytes: 4 << 30, ..OutboxConfig::new(&dir) };

    // 5,000 sensors of 4 attributes, typical city entity ids.
    let entities: Vec<EntityId> = (0..5_000)
        .map(|i| EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:changsha:yuelu:{i:05}")))
        .collect::<Result<_, _>>()?;
    let attributes: Vec<AttrName> =
        ["pm25", "pm10", "no2", "temperature"].iter().map(|a| AttrName::new(a)).collect::<Result<_, _>>()?;
    let t0 = 1_700_000_000_000;
    let update = |i: usize| OutboxUpdate {
        entity: entities[(i / attributes.len()) % entities.len()].clone(),
        attribute: attributes[i % attributes.len()].clone(),
        value: Value::Number(i as f64 * 0.25),
        observed_at: t0 + i as i64,
    };

    let outbox = Outbox::open(config.clone())?;
    let started = Instant::now();
    let mut chunk = Vec::with_capacity(2_000);
    for start in (0..total).step_by(2_000) {
        chunk.clear();
        chunk.extend((start..(start + 2_000).min(total)).map(update));
        outbox.append(&chunk)?;
    }
    outbox.seal()?;
    let append_s = started.elapsed().as_secs_f64();
    let stats = outbox.stats();
    println!(
        "append: {total} updates in {append_s:.2} s = {:.0} updates/s ({} batches, {:.1} MB encoded, fsync {})",
        total as f64 / append_s,
        stats.sealed_batches,
        stats.used_bytes as f64 / 1e6,
        config.fsync
    );
    drop(outbox);

    let started = Instant::now();
    let outbox = Outbox::open(config)?;
    let open_s = started.elapsed().as_secs_f64();
    println!("reopen (recovery): {open_s:.2} s, {} latest values", outbox.latest().len());

    let started = Instant::now();
    let latest = outbox.latest();
    let latest_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut after, mut drained) = (0, 0usize);
    loop {
        let batches = outbox.sealed_after(after, 16)?;
        let Some(last) = batches.last() else { break };
        after = last.seq;
        drained += batches.iter().map(|b| b.updates.len()).sum::<usize>();
        outbox.ack(after)?;
    }
    let drain_s = started.elapsed().as_secs_f64();
    println!(
        "drain: latest snapshot of {} in {:.3} s; {drained} updates read and acked in {drain_s:.2} s = {:.0} updates/s",
        latest.len(),
        latest_s,
        drained as f64 / drain_s
    );
    if drained != total {
        return Err(format!("drained {drained} of {total}").into());
    }
    Ok(())
}

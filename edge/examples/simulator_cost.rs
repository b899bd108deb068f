//! The simulator's sampling cost on the real demonstration city, for the figure in the `simulator`
//! module docs (meaningful in a release build):
//!
//! `cargo run --release -p edge --example simulator_cost`

use std::{collections::BTreeMap, time::Instant};

use edge::simulator::{Simulator, SimulatorConfig};

/// 2024-06-03 13:00 local (a Monday), in Unix ms.
const MONDAY_1PM: i64 = 1_717_390_800_000;

fn main() -> anyhow::Result<()> {
    let city = twin_city::changsha(twin_city::DEFAULT_SEED);
    for district in ["yuelu", "kaifu", "furong", "tianxin", "yuhua", "all"] {
        let config = SimulatorConfig { district: district.to_owned(), ..SimulatorConfig::default() };
        let sim = Simulator::new(&config, &city)?;
        let mut out = Vec::new();
        sim.readings_at(MONDAY_1PM, MONDAY_1PM, &mut out); // warm up the attribute tables and the buffer
        let rounds = 5;
        let start = Instant::now();
        for r in 0..rounds {
            out.clear();
            sim.readings_at(MONDAY_1PM + r * 60_000, MONDAY_1PM, &mut out);
        }
        let per_tick = start.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "{district:>8}: {:>7} entities, {:>7} readings, {:>7.1} ms per tick ({:.2} us per entity)",
            sim.entities().len(),
            out.len(),
            per_tick * 1e3,
            per_tick * 1e6 / sim.entities().len() as f64,
        );
    }
    // Where the time goes in one district, by type.
    let mut by_type: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let types: Vec<String> =
        city.count_by_type().into_keys().filter(|t| !twin_signals::live_attributes(t).is_empty()).collect();
    for ty in types {
        let config =
            SimulatorConfig { district: "furong".into(), types: Some(vec![ty.clone()]), ..SimulatorConfig::default() };
        let Ok(sim) = Simulator::new(&config, &city) else { continue };
        let mut out = Vec::new();
        sim.readings_at(MONDAY_1PM, MONDAY_1PM, &mut out);
        let start = Instant::now();
        for r in 0..5 {
            out.clear();
            sim.readings_at(MONDAY_1PM + r * 60_000, MONDAY_1PM, &mut out);
        }
        by_type.insert(ty, (sim.entities().len(), start.elapsed().as_secs_f64() / 5.0 * 1e3));
    }
    for (ty, (n, ms)) in by_type {
        println!("  furong {ty:<24} {n:>6} entities {ms:>7.2} ms");
    }
    Ok(())
}

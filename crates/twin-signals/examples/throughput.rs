//! Samples 10,000 mixed entities for one time step and prints samples per second.
//!
//! `cargo run --release -p twin-signals --example throughput`

use std::{collections::BTreeMap, time::Instant};

use twin_model::{EntityId, EntityStatic, GeoPoint, Geometry, Shape, TypeName};
use twin_signals::{Environment, live_attributes, sample};

/// A district's mix, roughly: many spots, lights and bins, fewer stations.
const MIX: &[(&str, usize)] = &[
    ("ParkingSpot", 20),
    ("Streetlight", 20),
    ("WasteContainer", 12),
    ("TrafficFlowObserved", 8),
    ("TrafficSignal", 6),
    ("Bus", 5),
    ("FireHydrant", 5),
    ("Building", 5),
    ("NoiseLevelObserved", 3),
    ("AirQualityObserved", 2),
    ("PhotovoltaicMeasurement", 3),
    ("EVChargingStation", 2),
    ("OffStreetParking", 2),
    ("Defibrillator", 2),
    ("WeatherObserved", 1),
    ("Substation", 1),
    ("RiverGauge", 1),
    ("RainGauge", 1),
    ("RetentionPark", 1),
    ("Ambulance", 1),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total_weight: usize = MIX.iter().map(|(_, w)| w).sum();
    let mut entities = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let mut pick = i % total_weight;
        let ty = MIX
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or("Streetlight", |m| m.0);
        let p = GeoPoint { lon: 112.85 + (i % 100) as f64 * 0.002, lat: 28.1 + (i / 100) as f64 * 0.002 };
        let shape = if ty == "Bus" {
            Shape::Line(vec![p, GeoPoint { lon: p.lon + 0.03, lat: p.lat + 0.02 }])
        } else {
            Shape::Point(p)
        };
        entities.push(EntityStatic {
            id: EntityId::new(&format!("urn:ngsi-ld:{ty}:changsha:bench:{i:05}"))?,
            entity_type: TypeName::new(ty)?,
            geometry: Some(Geometry { shape, height_m: 0.0 }),
            relationships: BTreeMap::new(),
        });
    }
    let env = Environment::new(1);
    let t = 1_717_390_800_000; // 2024-06-03 13:00 local, a Monday
    // Warm up (builds the attribute tables once).
    let _ = sample(&env, &entities[0], t);
    let rounds = 5;
    let start = Instant::now();
    let mut values = 0usize;
    for r in 0..rounds {
        for e in &entities {
            values += sample(&env, e, t + r * 5_000).len();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = (entities.len() * rounds as usize) as f64;
    println!(
        "{} entities x {rounds} steps: {:.0} samples/s ({:.1} us/sample, {:.1} ms per 10k step), {:.0} values/s; {} live attributes on a bus",
        entities.len(),
        samples / elapsed,
        elapsed / samples * 1e6,
        elapsed / rounds as f64 * 1e3,
        values as f64 / elapsed,
        live_attributes("Bus").len(),
    );
    Ok(())
}

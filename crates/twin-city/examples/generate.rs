//! Generates the Changsha demonstration city and prints the entity count per type and the time taken.
//!
//! `cargo run --release -p twin-city --example generate [seed]`

use std::time::Instant;

fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(twin_city::DEFAULT_SEED);
    let start = Instant::now();
    let city = twin_city::changsha(seed);
    let elapsed = start.elapsed();
    let hash_start = Instant::now();
    let hash = city.content_hash();
    let hash_elapsed = hash_start.elapsed();
    println!("city {} (seed {seed}): {} entities", city.name, city.len());
    for (entity_type, n) in city.count_by_type() {
        println!("  {entity_type:<26} {n:>7}");
    }
    println!("generated in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    println!("content hash {hash:016x} in {:.1} ms", hash_elapsed.as_secs_f64() * 1e3);
}

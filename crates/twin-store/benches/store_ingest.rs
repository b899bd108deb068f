//! Store-only ingest throughput: `Store::write` of attribute-update batches into a real sled store in a
//! temporary directory (no gRPC), with each durability mode.
//!
//! Groups `store_ingest/fsync` and `store_ingest/os_buffered`, batch sizes 1000 and 5000 updates over
//! 10,000 AirQualityObserved sensors (pm25, pm10, no2). Throughput is in updates (elements) per second.
//! One batch is written at a time, so every batch pays its own group commit (flush, and fsync with
//! `Fsync`): this is the latency-bound single-writer case, not the pipelined peak.
//!
//! Run: `cargo bench -p twin-store --bench store_ingest` (add `-- --quick` for a rough number).

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use twin_model::{AttrName, Catalog, EntityId, EntityStatic, Geometry, TypeName, Value};
use twin_store::{AttributeUpdate, Durability, Store, StoreConfig, WriteBatch, WriteOutcome};

const ENTITIES: usize = 10_000;
const BATCH_SIZES: [usize; 2] = [1000, 5000];
/// The attributes updated, with the value range generated for each (inside the catalog's range).
const ATTRIBUTES: [(&str, f64, f64); 3] = [("pm25", 5.0, 300.0), ("pm10", 10.0, 500.0), ("no2", 5.0, 200.0)];
const SLOTS: usize = ENTITIES * ATTRIBUTES.len();

/// A store with the sensors loaded, and a cursor over its (entity, attribute) slots.
struct Fixture {
    // Dropped after the store is closed (see `Drop`).
    _dir: tempfile::TempDir,
    store: Store,
    rt: tokio::runtime::Runtime,
    ids: Vec<EntityId>,
    attributes: Vec<AttrName>,
    /// Updates generated so far; slot `n % SLOTS`, pass `n / SLOTS`.
    generated: u64,
    /// Observed time of pass 0; each pass over all slots adds 1 ms, so every update is newer than the
    /// previous one of its slot (last writer wins would otherwise count it as stale).
    start_ms: i64,
}

impl Fixture {
    fn new(durability: Durability) -> Fixture {
        let dir = tempfile::Builder::new().prefix("store-ingest-bench-").tempdir().expect("temp dir");
        let mut config = StoreConfig::new(dir.path().join("db"));
        config.durability = durability;
        let store = Store::open(config, Arc::new(Catalog::builtin())).expect("open store");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let entity_type = TypeName::new("AirQualityObserved").expect("type name");
        let ids: Vec<EntityId> = (0..ENTITIES)
            .map(|i| EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:bench:{i:06}")).expect("entity id"))
            .collect();
        let upserts = ids
            .iter()
            .enumerate()
            .map(|(i, id)| EntityStatic {
                id: id.clone(),
                entity_type: entity_type.clone(),
                geometry: Some(Geometry::point(112.94 + (i % 100) as f64 * 1e-3, 28.23 + (i / 100) as f64 * 1e-3)),
                relationships: Default::default(),
            })
            .collect();
        let outcome =
            rt.block_on(store.write(WriteBatch { origin: None, upserts, updates: Vec::new() })).expect("load entities");
        match outcome {
            WriteOutcome::Applied(s) => assert!(s.rejected.is_empty(), "entities rejected: {:?}", s.rejected.first()),
            WriteOutcome::Duplicate { .. } => panic!("a load without origin cannot be a duplicate"),
        }
        let attributes = ATTRIBUTES.iter().map(|(name, _, _)| AttrName::new(name).expect("attribute name")).collect();
        // An hour ago, so even a long run stays well before the store's clock.
        let start_ms = twin_model::now_unix_ms() - 3_600_000;
        Fixture { _dir: dir, store, rt, ids, attributes, generated: 0, start_ms }
    }

    fn batch(&mut self, n: usize) -> WriteBatch {
        let mut updates = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = (self.generated % SLOTS as u64) as usize;
            let pass = (self.generated / SLOTS as u64) as i64;
            let (entity, attribute) = (slot / ATTRIBUTES.len(), slot % ATTRIBUTES.len());
            let (_, low, high) = ATTRIBUTES[attribute];
            // Deterministic, varied, in range.
            let unit = (self.generated.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            updates.push(AttributeUpdate {
                entity: self.ids[entity].clone(),
                attribute: self.attributes[attribute].clone(),
                value: Value::Number(low + (high - low) * unit),
                observed_at: self.start_ms + pass,
            });
            self.generated += 1;
        }
        WriteBatch { origin: None, upserts: Vec::new(), updates }
    }

    /// Writes `iters` batches of `n` updates one after the other; returns the time spent in `Store::write`.
    fn write_batches(&mut self, n: usize, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let batch = self.batch(n);
            let start = Instant::now();
            let outcome = self.rt.block_on(self.store.write(batch)).expect("store write");
            total += start.elapsed();
            match black_box(outcome) {
                WriteOutcome::Applied(s) => {
                    assert!(s.rejected.is_empty(), "updates rejected: {:?}", s.rejected.first());
                    assert_eq!(s.applied as usize, n, "every update must be newer than the stored one");
                }
                WriteOutcome::Duplicate { .. } => panic!("a write without origin cannot be a duplicate"),
            }
        }
        total
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.close();
    }
}

fn store_ingest(c: &mut Criterion) {
    for (name, durability) in [("fsync", Durability::Fsync), ("os_buffered", Durability::OsBuffered)] {
        let mut fixture = Fixture::new(durability);
        let mut group = c.benchmark_group(format!("store_ingest/{name}"));
        // Each iteration takes tens of milliseconds: flat sampling keeps 10 samples within the time.
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        for n in BATCH_SIZES {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("batch_updates", n), &n, |b, &n| {
                b.iter_custom(|iters| fixture.write_batches(n, iters));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, store_ingest);
criterion_main!(benches);

//! The simulator source: drives the sensors of one district of the demonstration city (or all of them)
//! with the deterministic signal models of `twin-signals`, and sends their readings to the agent.
//!
//! **Selection.** The simulator drives every entity of the city whose `refDistrict` is the configured
//! district and whose type has live signals ([`twin_signals::live_attributes`]): the sensors and devices,
//! and also buildings (energy use, occupancy), bridges (structural monitoring) and parks (visitors).
//! `all` is the union of the districts. `types` narrows that to some types, `max_entities` caps it for a
//! small box while keeping every type (see [`SimulatorConfig::max_entities`]). The entities are sorted
//! by id, so the same config and city always give the same list in the same order.
//!
//! **Time model: two clocks.** The signals run on a *simulated* clock that starts at `start_unix_ms`
//! (default: when the simulator starts) and advances `speed` times faster than real time, so at
//! `speed = 60` a day's rush hours, sunset and waste rounds pass in 24 minutes. Each reading's
//! `observed_at` is the *real* clock (the box's wall clock when the tick's sample was taken): the cloud
//! rejects observations more than a day ahead of its clock, which a sped-up simulated clock would pass
//! after 24 minutes at `speed = 60`, and the deadband's heartbeats and the outbox's disk budget are about
//! real time on the 5G link, not simulated time. The cost is that attribute *values* that are times
//! (`WasteContainer.lastEmptiedAt`, `Defibrillator.lastSelfTestAt`) are simulated times, ahead of
//! `observed_at` when `speed > 1`.
//!
//! **Ticks.** Every `tick` of real time the simulator samples every entity at the simulated time
//! `start + elapsed_real x speed` (so a late or skipped tick loses no simulated time). A missed tick is
//! delayed, never burst ([`MissedTickBehavior::Delay`]): after a stall (a full channel because the outbox
//! is slow) it samples once straight away, then waits a whole tick, instead of sending several samples of
//! nearly the same moment to a consumer that is already behind. Sampling runs on the blocking pool in
//! chunks of [`CHUNK_ENTITIES`] entities, each sent as one `Vec<Reading>` as soon as it is ready, so no
//! async thread is held for more than a moment and the channel's backpressure applies per chunk.
//!
//! **Cost** (release build, one core of the 2-core development box, measured by
//! `cargo run --release -p edge --example simulator_cost`): about 1 us per entity
//! per tick, so Furong (11,377 entities, 32,050 readings) takes about 10 ms, the biggest district, Yuelu
//! (65,937 entities: the whole west bank), about 75 ms, and the whole city (143,963 entities, 435,692
//! readings) about 130 ms. Buildings are 74,634 of the city's entities; solar roofs are the dearest per
//! entity (about 14 us, for their integrated daily energy). At the default 1 s tick a district costs
//! 1-8% of a core before the deadband.

use std::{
    collections::{BTreeMap, HashSet},
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use twin_city::{City, changsha::districts::District};
use twin_model::{AttrName, Catalog, Entity, UnixMs, Value, now_unix_ms};
use twin_outbox::OutboxUpdate;
use twin_signals::{Environment, live_attributes, sample_entity_into};

use crate::source::{Counter, Reading, ReadingSender};

/// The `district` value that selects every district.
pub const ALL_DISTRICTS: &str = "all";
/// How often the simulator samples by default, in real time.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);
/// The shortest tick: below it the simulator would spend its time waking up, not sampling.
pub const MIN_TICK: Duration = Duration::from_millis(10);
/// How many entities are sampled per blocking call and sent per `Vec<Reading>` (about 3,000 readings).
pub const CHUNK_ENTITIES: usize = 1_000;
/// The simulated clock's valid range: the catalog's timestamps, 2000-01-01 .. 2100-01-01.
const SIM_TIME_RANGE: Range<UnixMs> = twin_model::MIN_OBSERVED_AT..4_102_444_800_000;

/// The simulator's configuration, under `[simulator]` in the edge's TOML config:
///
/// ```toml
/// [simulator]
/// district = "furong"        # or "all"
/// speed = 60                 # simulated seconds per real second
/// seed = 2024                # the city's and the signals' seed
/// tick = "1s"                # how often every sensor is sampled (real time)
/// types = ["AirQualityObserved", "TrafficFlowObserved"]   # optional: only these types
/// max_entities = 2000        # optional: cap for a small box
/// start_unix_ms = 1717344000000                           # optional: simulated start (default: now)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Whose sensors to drive: a district slug (`yuelu`, `kaifu`, `furong`, `tianxin`, `yuhua`) or `all`.
    pub district: String,
    /// Simulated seconds per real second: 1 is real time, 60 shows a day in 24 minutes. Finite, above 0.
    pub speed: f64,
    /// The demonstration city's seed, which fixes which sensors exist (it must be the seed of the city the
    /// cloud holds, so the ids match) and also seeds the signals (weather, episodes, behaviour).
    pub seed: u64,
    /// How often every entity is sampled, in real time, e.g. `1s` or `500ms`; at least [`MIN_TICK`].
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Only entities of these types (each must be a catalog type with live signals). Unset: every type.
    pub types: Option<Vec<String>>,
    /// At most this many entities (at least 1). The cap is shared fairly between the types selected
    /// (a type with fewer entities than its share keeps them all), and each type's pick is spread evenly
    /// over its ids, so a small box still shows every kind of sensor across the district.
    pub max_entities: Option<usize>,
    /// Where the simulated clock starts, Unix ms (2000..2100). Unset: the real time at start.
    pub start_unix_ms: Option<UnixMs>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            district: ALL_DISTRICTS.to_owned(),
            speed: 1.0,
            seed: twin_city::DEFAULT_SEED,
            tick: DEFAULT_TICK,
            types: None,
            max_entities: None,
            start_unix_ms: None,
        }
    }
}

/// A problem with the simulator's configuration. Each message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulatorError {
    /// `district` is neither a district of the city nor `all`.
    #[error("simulator.district: unknown district {given:?}; valid: {valid}")]
    UnknownDistrict {
        /// The value given.
        given: String,
        /// The valid values, comma-separated.
        valid: String,
    },
    /// `speed` is zero, negative or not finite.
    #[error("simulator.speed: {value} must be a finite number above 0")]
    BadSpeed {
        /// The value given.
        value: f64,
    },
    /// `tick` is shorter than [`MIN_TICK`].
    #[error("simulator.tick: {tick:?} is shorter than the minimum of {min:?}", min = MIN_TICK)]
    TickTooShort {
        /// The value given.
        tick: Duration,
    },
    /// A name in `types` is not a catalog type, or the type has no live signals.
    #[error("simulator.types: {name:?} {problem}")]
    BadType {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `max_entities` is zero.
    #[error("simulator.max_entities: must be at least 1")]
    ZeroMaxEntities,
    /// `start_unix_ms` is outside the range the catalog accepts for times.
    #[error("simulator.start_unix_ms: {value} is outside 2000-01-01 .. 2100-01-01 (946684800000 .. 4102444800000)")]
    BadStart {
        /// The value given.
        value: UnixMs,
    },
    /// Nothing in the city matches the district and types.
    #[error("simulator: no entity of the city with live signals is in district {district:?}{types}")]
    NoEntities {
        /// The district given.
        district: String,
        /// ` with types [..]` when `types` was given, else empty.
        types: String,
    },
}

impl SimulatorConfig {
    /// Checks every field that needs no city: speed, tick, types, max_entities, the start, and the
    /// district against the demonstration city's districts. [`Simulator::new`] calls it too; call it
    /// early to report a bad config before spending seconds generating the city.
    pub fn validate(&self) -> Result<(), SimulatorError> {
        if self.district != ALL_DISTRICTS && !District::ALL.iter().any(|d| d.slug() == self.district) {
            let slugs = District::ALL.iter().map(|d| d.slug());
            return Err(unknown_district(&self.district, slugs));
        }
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(SimulatorError::BadSpeed { value: self.speed });
        }
        if self.tick < MIN_TICK {
            return Err(SimulatorError::TickTooShort { tick: self.tick });
        }
        if let Some(types) = &self.types {
            let catalog = Catalog::builtin();
            for name in types {
                if catalog.get(name).is_none() {
                    return Err(SimulatorError::BadType { name: name.clone(), problem: "is not a catalog type" });
                }
                if live_attributes(name).is_empty() {
                    return Err(SimulatorError::BadType { name: name.clone(), problem: "has no live signals" });
                }
            }
        }
        if self.max_entities == Some(0) {
            return Err(SimulatorError::ZeroMaxEntities);
        }
        if let Some(start) = self.start_unix_ms
            && !SIM_TIME_RANGE.contains(&start)
        {
            return Err(SimulatorError::BadStart { value: start });
        }
        Ok(())
    }
}

fn unknown_district<'a>(given: &str, slugs: impl Iterator<Item = &'a str>) -> SimulatorError {
    let valid: Vec<&str> = std::iter::once(ALL_DISTRICTS).chain(slugs).collect();
    SimulatorError::UnknownDistrict { given: given.to_owned(), valid: valid.join(", ") }
}

/// The simulated clock: starts at `start_unix_ms` and runs `speed` times faster than real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimClock {
    /// The simulated time at real elapsed time zero, Unix ms.
    pub start_unix_ms: UnixMs,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl SimClock {
    /// The simulated time after `elapsed` of real time.
    pub fn at(&self, elapsed: Duration) -> UnixMs {
        // Computed from the total elapsed time, not summed per tick, so rounding never accumulates.
        let advanced_ms = (elapsed.as_nanos() as f64 * self.speed / 1e6).round() as i64;
        self.start_unix_ms.saturating_add(advanced_ms)
    }
}

/// The simulator's counters, shared with whoever reports on it.
#[derive(Debug, Default)]
pub struct SimulatorStats {
    /// Ticks whose readings were all sent.
    pub ticks: Counter,
    /// Readings sent.
    pub readings: Counter,
    /// The simulated time of the last tick whose readings were all sent; 0 before the first.
    last_simulated_at: AtomicI64,
}

impl SimulatorStats {
    /// The simulated time of the last tick whose readings were all sent, if any was.
    pub fn last_simulated_at(&self) -> Option<UnixMs> {
        Some(self.last_simulated_at.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }
}

/// The simulator: the selected entities and how to drive them. See the module docs.
#[derive(Debug)]
pub struct Simulator {
    env: Environment,
    entities: Vec<Entity>,
    district: String,
    speed: f64,
    tick: Duration,
    start_unix_ms: Option<UnixMs>,
}

impl Simulator {
    /// Validates `config` and selects the entities of `city` to drive: those whose `refDistrict` is the
    /// district (any district for `all`) and whose type has live signals, filtered by `types`, capped by
    /// `max_entities`, sorted by id. `city` should be `twin_city::changsha(config.seed)`. The district is
    /// found among the city's `District` entities by the last segment of its id
    /// (`urn:ngsi-ld:District:changsha:furong`).
    pub fn new(config: &SimulatorConfig, city: &City) -> Result<Simulator, SimulatorError> {
        config.validate()?;
        let districts: Vec<(&str, &str)> = city
            .of_type("District")
            .map(|d| {
                let id = d.id().as_str();
                (id.rsplit(':').next().unwrap_or(id), id)
            })
            .collect();
        let wanted: HashSet<&str> = if config.district == ALL_DISTRICTS {
            districts.iter().map(|(_, id)| *id).collect()
        } else {
            match districts.iter().find(|(slug, _)| *slug == config.district) {
                Some((_, id)) => HashSet::from([*id]),
                None => return Err(unknown_district(&config.district, districts.iter().map(|(slug, _)| *slug))),
            }
        };
        let types: Option<HashSet<&str>> = config.types.as_ref().map(|t| t.iter().map(String::as_str).collect());
        let mut entities: Vec<Entity> = city
            .entities
            .iter()
            .filter(|e| {
                let ty = e.header.entity_type.as_str();
                !live_attributes(ty).is_empty()
                    && types.as_ref().is_none_or(|t| t.contains(ty))
                    && e.header.relationships.get("refDistrict").is_some_and(|d| wanted.contains(d.as_str()))
            })
            .cloned()
            .collect();
        entities.sort_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
        if let Some(max) = config.max_entities {
            entities = cap_fairly(entities, max);
        }
        if entities.is_empty() {
            let types = config.types.as_ref().map_or(String::new(), |t| format!(" with types {t:?}"));
            return Err(SimulatorError::NoEntities { district: config.district.clone(), types });
        }
        Ok(Simulator {
            env: Environment::new(config.seed),
            entities,
            district: config.district.clone(),
            speed: config.speed,
            tick: config.tick,
            start_unix_ms: config.start_unix_ms,
        })
    }

    /// The entities driven, sorted by id, with their static attributes (to register them with the cloud).
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// The district driven (a slug, or `all`).
    pub fn district(&self) -> &str {
        &self.district
    }

    /// The tick, in real time.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The simulated clock this simulator would start now: from `start_unix_ms`, or the real time now.
    pub fn clock(&self) -> SimClock {
        SimClock { start_unix_ms: self.start_unix_ms.unwrap_or_else(now_unix_ms), speed: self.speed }
    }

    /// Appends the readings of every entity at simulated time `sim_t` to `out`, each stamped with
    /// `observed_at` (the real time; see the module docs). Deterministic in the seed, the entities and
    /// `sim_t`. Every value is inside the catalog's range for its attribute.
    pub fn readings_at(&self, sim_t: UnixMs, observed_at: UnixMs, out: &mut Vec<Reading>) {
        self.readings_of(0..self.entities.len(), sim_t, observed_at, out);
    }

    /// [`Simulator::readings_at`] for the entities in `range` only.
    fn readings_of(&self, range: Range<usize>, sim_t: UnixMs, observed_at: UnixMs, out: &mut Vec<Reading>) {
        // One buffer for every entity's values: sampling allocates only the text values themselves.
        let mut values: Vec<(AttrName, Value)> = Vec::with_capacity(16);
        for e in &self.entities[range] {
            sample_entity_into(&self.env, e, sim_t, &mut values);
            out.extend(values.drain(..).map(|(attribute, value)| Reading {
                entity_type: e.header.entity_type.clone(),
                update: OutboxUpdate { entity: e.header.id.clone(), attribute, value, observed_at },
            }));
        }
    }

    /// Starts the simulator on the current Tokio runtime: every tick it samples every entity and sends
    /// the readings on `out` in chunks of [`CHUNK_ENTITIES`] entities, waiting when the channel is full.
    /// It stops when `shutdown` is cancelled (also while sampling or waiting on a full channel; the tick
    /// in progress is then abandoned) or when the receiver is dropped.
    pub fn spawn(self, out: ReadingSender, shutdown: CancellationToken) -> (JoinHandle<()>, Arc<SimulatorStats>) {
        let stats = Arc::new(SimulatorStats::default());
        let span = tracing::info_span!("simulator", district = %self.district, entities = self.entities.len());
        let handle = tokio::spawn(run(Arc::new(self), out, shutdown, stats.clone()).instrument(span));
        (handle, stats)
    }
}

/// Caps `entities` (sorted by id) at `max`, sharing the cap fairly between types and spreading each
/// type's pick evenly over its ids. The result is sorted by id.
fn cap_fairly(entities: Vec<Entity>, max: usize) -> Vec<Entity> {
    if entities.len() <= max {
        return entities;
    }
    let mut by_type: BTreeMap<String, Vec<Entity>> = BTreeMap::new();
    for e in entities {
        by_type.entry(e.header.entity_type.to_string()).or_default().push(e);
    }
    // Water-filling: the smallest types first, each taking at most an equal share of what is left, so
    // what a small type cannot use goes to the bigger ones. Ties broken by name, for determinism.
    let mut order: Vec<(usize, String)> = by_type.iter().map(|(t, v)| (v.len(), t.clone())).collect();
    order.sort();
    let mut left = max;
    let mut picked = Vec::with_capacity(max);
    for (i, (n, ty)) in order.iter().enumerate() {
        let take = (*n).min(left / (order.len() - i));
        left -= take;
        if let Some(all) = by_type.get(ty) {
            picked.extend((0..take).map(|k| all[k * n / take].clone()));
        }
    }
    picked.sort_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
    picked
}

async fn run(sim: Arc<Simulator>, out: ReadingSender, shutdown: CancellationToken, stats: Arc<SimulatorStats>) {
    let clock = sim.clock();
    tracing::info!(speed = clock.speed, start_unix_ms = clock.start_unix_ms, "simulator started");
    let started = Instant::now();
    let mut ticks = tokio::time::interval(sim.tick);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let n = sim.entities.len();
    // The last chunk's size, so the next chunk's buffer is allocated once at about the right size.
    let mut chunk_capacity = 0;
    'ticks: loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let sim_t = clock.at(started.elapsed());
        let observed_at = now_unix_ms();
        let mut first = 0;
        while first < n {
            let range = first..(first + CHUNK_ENTITIES).min(n);
            first = range.end;
            let job = {
                let sim = sim.clone();
                tokio::task::spawn_blocking(move || {
                    let mut chunk = Vec::with_capacity(chunk_capacity);
                    sim.readings_of(range, sim_t, observed_at, &mut chunk);
                    chunk
                })
            };
            let chunk = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'ticks,
                joined = job => match joined {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        // A panic in a signal model is a bug; stopping is better than a district gone quiet
                        // one chunk at a time.
                        tracing::error!(error = %e, "simulator sampling failed; simulator stopped");
                        return;
                    }
                },
            };
            chunk_capacity = chunk.len();
            let len = chunk.len() as u64;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'ticks,
                sent = out.send(chunk.into()) => if sent.is_err() {
                    tracing::info!("reading receiver closed; simulator stopped");
                    return;
                },
            }
            stats.readings.add(len);
        }
        stats.ticks.add(1);
        stats.last_simulated_at.store(sim_t, Ordering::Relaxed);
    }
    tracing::info!(ticks = stats.ticks.get(), readings = stats.readings.get(), "simulator stopped");
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeSet, HashMap},
        sync::OnceLock,
    };

    use tokio::sync::mpsc;
    use twin_city::DEFAULT_SEED;

    use super::*;

    /// 2024-06-03 13:00 local (a Monday), in Unix ms.
    const MONDAY_1PM: UnixMs = 1_717_390_800_000;
    const SLUGS: [&str; 5] = ["yuelu", "kaifu", "furong", "tianxin", "yuhua"];

    /// The city, generated once per test binary (seconds in a debug build).
    fn city() -> &'static City {
        static CITY: OnceLock<City> = OnceLock::new();
        CITY.get_or_init(|| twin_city::changsha(DEFAULT_SEED))
    }

    fn config(district: &str) -> SimulatorConfig {
        SimulatorConfig { district: district.to_owned(), ..SimulatorConfig::default() }
    }

    fn with_types(district: &str, types: &[&str]) -> SimulatorConfig {
        SimulatorConfig { types: Some(types.iter().map(|t| t.to_string()).collect()), ..config(district) }
    }

    fn ids(sim: &Simulator) -> Vec<&str> {
        sim.entities().iter().map(|e| e.id().as_str()).collect()
    }

    /// The entities a district should have, counted without the simulator's code.
    fn independent_count(slug: &str) -> usize {
        let district = format!("urn:ngsi-ld:District:changsha:{slug}");
        city()
            .entities
            .iter()
            .filter(|e| {
                e.header.relationships.get("refDistrict").map(|d| d.as_str()) == Some(district.as_str())
                    && !live_attributes(e.header.entity_type.as_str()).is_empty()
            })
            .count()
    }

    #[test]
    fn config_reads_from_toml_with_defaults_and_rejects_unknown_fields() {
        #[derive(Debug, Deserialize)]
        struct Edge {
            simulator: SimulatorConfig,
        }
        let edge: Edge = toml::from_str(
            "[simulator]\ndistrict = \"furong\"\nspeed = 60\ntick = \"500ms\"\ntypes = [\"Bus\"]\nmax_entities = 10\n",
        )
        .unwrap();
        let c = edge.simulator;
        assert_eq!((c.district.as_str(), c.speed, c.tick), ("furong", 60.0, Duration::from_millis(500)));
        assert_eq!(
            (c.seed, c.types.clone(), c.max_entities, c.start_unix_ms),
            (DEFAULT_SEED, Some(vec!["Bus".into()]), Some(10), None)
        );
        c.validate().unwrap();
        let empty: Edge = toml::from_str("[simulator]\n").unwrap();
        assert_eq!(empty.simulator, SimulatorConfig::default());
        assert_eq!(
            (empty.simulator.district.as_str(), empty.simulator.speed, empty.simulator.tick),
            ("all", 1.0, DEFAULT_TICK)
        );
        let typo = toml::from_str::<Edge>("[simulator]\nspeeed = 2.0\n").unwrap_err().to_string();
        assert!(typo.contains("speeed"), "{typo}");
        // The config round-trips, as `--print-config` prints it.
        let printed = toml::to_string(&SimulatorConfig { start_unix_ms: Some(MONDAY_1PM), ..c.clone() }).unwrap();
        assert_eq!(toml::from_str::<SimulatorConfig>(&printed).unwrap().start_unix_ms, Some(MONDAY_1PM));
    }

    #[test]
    fn invalid_config_names_the_field_and_the_problem() {
        let bad = |c: SimulatorConfig| c.validate().unwrap_err();
        let e = bad(config("westside"));
        assert_eq!(
            e.to_string(),
            "simulator.district: unknown district \"westside\"; valid: all, yuelu, kaifu, furong, tianxin, yuhua"
        );
        for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(bad(SimulatorConfig { speed, ..config("all") }), SimulatorError::BadSpeed { .. }));
        }
        assert!(bad(SimulatorConfig { speed: 0.0, ..config("all") }).to_string().starts_with("simulator.speed:"));
        let e = bad(SimulatorConfig { tick: Duration::ZERO, ..config("all") });
        assert!(e.to_string().starts_with("simulator.tick:"), "{e}");
        let e = bad(with_types("all", &["Bus", "Spaceship"]));
        assert_eq!(e.to_string(), "simulator.types: \"Spaceship\" is not a catalog type");
        let e = bad(with_types("all", &["RoadSegment"]));
        assert_eq!(e.to_string(), "simulator.types: \"RoadSegment\" has no live signals");
        assert_eq!(bad(SimulatorConfig { max_entities: Some(0), ..config("all") }), SimulatorError::ZeroMaxEntities);
        let e = bad(SimulatorConfig { start_unix_ms: Some(0), ..config("all") });
        assert!(e.to_string().starts_with("simulator.start_unix_ms: 0 "), "{e}");
        // Simulator::new validates too, and checks the district against the city it is given.
        let tiny = City { name: "tiny".into(), entities: city().entities[..1].to_vec() };
        let e = Simulator::new(&config("furong"), &tiny).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("simulator.district: unknown district \"furong\"; valid: all, {}", ids_of(&tiny))
        );
        let e = Simulator::new(&config("all"), &City { name: "empty".into(), entities: vec![] }).unwrap_err();
        assert!(matches!(e, SimulatorError::NoEntities { .. }), "{e}");
    }

    /// The slugs of a city's districts, comma-separated.
    fn ids_of(c: &City) -> String {
        c.of_type("District").map(|d| d.id().as_str().rsplit(':').next().unwrap()).collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn a_district_is_its_sensors_sorted_and_all_is_the_union() {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for slug in SLUGS {
            let sim = Simulator::new(&config(slug), city()).unwrap();
            assert_eq!(sim.entities().len(), independent_count(slug), "{slug}");
            assert!(sim.entities().len() > 5_000, "{slug}: {}", sim.entities().len());
            let district = format!("urn:ngsi-ld:District:changsha:{slug}");
            assert!(sim.entities().iter().all(|e| e.header.relationships["refDistrict"].as_str() == district));
            let ids = ids(&sim);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{slug} is not sorted by id");
            total += ids.len();
            union.extend(ids.into_iter().map(str::to_owned));
        }
        let all = Simulator::new(&config("all"), city()).unwrap();
        assert_eq!(all.entities().len(), total);
        assert_eq!(ids(&all).into_iter().map(str::to_owned).collect::<BTreeSet<_>>(), union);
        // Every type with live signals that the city has is driven; nothing without them is.
        let driven: BTreeSet<&str> = all.entities().iter().map(|e| e.header.entity_type.as_str()).collect();
        let live: BTreeSet<String> =
            city().count_by_type().into_keys().filter(|t| !live_attributes(t).is_empty()).collect();
        assert_eq!(driven, live.iter().map(String::as_str).collect());
        // The demonstration city's districts are exactly the ones `validate` knows.
        assert_eq!(ids_of(city()), SLUGS.join(", "));
    }

    #[test]
    fn types_filter_and_max_entities() {
        let sim = Simulator::new(&with_types("furong", &["AirQualityObserved", "Bus"]), city()).unwrap();
        let district = "urn:ngsi-ld:District:changsha:furong";
        let expected = |ty: &str| {
            city().of_type(ty).filter(|e| e.header.relationships["refDistrict"].as_str() == district).count()
        };
        assert_eq!(sim.entities().len(), expected("AirQualityObserved") + expected("Bus"));
        assert!(expected("AirQualityObserved") > 0 && expected("Bus") > 0);

        let full = Simulator::new(&config("furong"), city()).unwrap();
        let capped_config = SimulatorConfig { max_entities: Some(300), ..config("furong") };
        let capped = Simulator::new(&capped_config, city()).unwrap();
        assert_eq!(capped.entities().len(), 300);
        assert_eq!(ids(&capped), ids(&Simulator::new(&capped_config, city()).unwrap()), "the cap is deterministic");
        let all_ids: BTreeSet<&str> = ids(&full).into_iter().collect();
        assert!(ids(&capped).iter().all(|id| all_ids.contains(id)));
        assert!(ids(&capped).windows(2).all(|w| w[0] < w[1]));
        // Every type keeps a share: small types keep all theirs, big ones split the rest evenly.
        let count = |s: &Simulator| {
            let mut m: HashMap<String, usize> = HashMap::new();
            for e in s.entities() {
                *m.entry(e.header.entity_type.to_string()).or_default() += 1;
            }
            m
        };
        let (full_counts, capped_counts) = (count(&full), count(&capped));
        assert_eq!(full_counts.len(), capped_counts.len(), "a type was dropped: {capped_counts:?}");
        let biggest_share = capped_counts.values().max().copied().unwrap();
        for (ty, n) in &full_counts {
            let kept = capped_counts[ty];
            assert!(kept == *n || kept + 1 >= biggest_share, "{ty}: {kept} of {n}, {capped_counts:?}");
        }
        // A cap above the district's size changes nothing.
        let loose = Simulator::new(&SimulatorConfig { max_entities: Some(1_000_000), ..config("furong") }, city());
        assert_eq!(ids(&loose.unwrap()), ids(&full));
    }

    #[test]
    fn simulated_time_advances_at_speed() {
        let clock = SimClock { start_unix_ms: MONDAY_1PM, speed: 60.0 };
        assert_eq!(clock.at(Duration::ZERO), MONDAY_1PM);
        assert_eq!(clock.at(Duration::from_secs(1)), MONDAY_1PM + 60_000);
        assert_eq!(clock.at(Duration::from_secs(24 * 60)), MONDAY_1PM + 86_400_000, "a day in 24 minutes");
        let slow = SimClock { start_unix_ms: MONDAY_1PM, speed: 0.5 };
        assert_eq!(slow.at(Duration::from_millis(1_001)), MONDAY_1PM + 501);
        // No drift from summing rounded steps: a week of 1 ms ticks at 1.5x lands where it should.
        let odd = SimClock { start_unix_ms: 0, speed: 1.5 };
        assert_eq!(odd.at(Duration::from_secs(7 * 86_400)), 7 * 86_400 * 1_500);
        let fixed = Simulator::new(&SimulatorConfig { start_unix_ms: Some(MONDAY_1PM), ..config("furong") }, city());
        assert_eq!(fixed.unwrap().clock().start_unix_ms, MONDAY_1PM);
        let before = now_unix_ms();
        let now = Simulator::new(&config("furong"), city()).unwrap().clock().start_unix_ms;
        assert!((before..=now_unix_ms()).contains(&now), "the default start is now");
    }

    #[test]
    fn readings_are_deterministic_valid_and_agree_with_the_city() {
        let sim = Simulator::new(&config("furong"), city()).unwrap();
        let catalog = Catalog::builtin();
        let observed_at = MONDAY_1PM + 5;
        let mut first = Vec::new();
        sim.readings_at(MONDAY_1PM, observed_at, &mut first);
        let mut again = Vec::new();
        sim.readings_at(MONDAY_1PM, observed_at, &mut again);
        assert_eq!(first, again);
        let by_id: HashMap<&str, &Entity> = sim.entities().iter().map(|e| (e.id().as_str(), e)).collect();
        let mut seen = HashSet::new();
        for r in &first {
            let u = &r.update;
            let e = by_id[u.entity.as_str()];
            assert_eq!(r.entity_type, e.header.entity_type);
            assert_eq!(u.observed_at, observed_at);
            assert!(live_attributes(r.entity_type.as_str()).contains(&u.attribute.as_str()));
            let checked = catalog
                .check_value(&r.entity_type, &u.attribute, u.value.clone())
                .unwrap_or_else(|v| panic!("{} {} = {}: {v}", u.entity, u.attribute, u.value));
            assert_eq!(checked, u.value);
            // A nameplate the city publishes is reported unchanged, so the cloud's totals do not jump.
            if twin_signals::nameplate_attributes(r.entity_type.as_str()).contains(&u.attribute.as_str()) {
                assert_eq!(Some(&u.value), e.reported(u.attribute.as_str()), "{} {}", u.entity, u.attribute);
            }
            seen.insert(u.entity.as_str());
        }
        assert_eq!(seen.len(), sim.entities().len(), "every entity reports");
        // Appends, so a caller can batch several ticks; another simulated time gives other values.
        let mut later = Vec::new();
        sim.readings_at(MONDAY_1PM + 6 * 3_600_000, observed_at, &mut later);
        assert_eq!(later.len(), first.len() - count_optional(&first) + count_optional(&later));
        assert_ne!(later, first);
        sim.readings_at(MONDAY_1PM, observed_at, &mut later);
        assert_eq!(&later[later.len() - first.len()..], &first[..]);
    }

    /// Readings of attributes only some entities report (an electric bus's state of charge).
    fn count_optional(readings: &[Reading]) -> usize {
        readings.iter().filter(|r| r.update.attribute.as_str() == "stateOfCharge").count()
    }

    fn fast_config(types: &[&str]) -> SimulatorConfig {
        SimulatorConfig {
            speed: 3_600.0,
            tick: Duration::from_millis(20),
            start_unix_ms: Some(MONDAY_1PM),
            ..with_types("furong", types)
        }
    }

    #[tokio::test]
    async fn spawn_sends_readings_every_tick_and_stops_on_shutdown() {
        let sim = Simulator::new(&fast_config(&["AirQualityObserved", "WeatherObserved"]), city()).unwrap();
        let entities: BTreeSet<String> = sim.entities().iter().map(|e| e.id().to_string()).collect();
        let (tx, mut rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let real_start = std::time::Instant::now();
        let before = now_unix_ms();
        let (handle, stats) = sim.spawn(tx, shutdown.clone());
        let mut batches = 0;
        let mut readings = 0;
        while batches < 5 {
            let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            // A small simulator sends one chunk per tick, with every entity in it.
            let reporting: BTreeSet<String> = batch.iter().map(|r| r.update.entity.to_string()).collect();
            assert_eq!(reporting, entities);
            assert!(batch.iter().all(|r| (before..=now_unix_ms()).contains(&r.update.observed_at)), "real clock");
            readings += batch.len() as u64;
            batches += 1;
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), handle).await.unwrap().unwrap();
        let real_elapsed = real_start.elapsed();
        assert!(stats.ticks.get() >= 5, "{}", stats.ticks.get());
        assert!(stats.readings.get() >= readings, "{} of {readings}", stats.readings.get());
        // The simulated clock ran at 3600x: 20 ms ticks are 72 s of simulated time each.
        let sim_elapsed = stats.last_simulated_at().unwrap() - MONDAY_1PM;
        assert!(sim_elapsed >= 3 * 72_000, "{sim_elapsed} ms after {} ticks", stats.ticks.get());
        assert!(
            sim_elapsed as f64 <= real_elapsed.as_secs_f64() * 1_000.0 * 3_600.0,
            "{sim_elapsed} in {real_elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_tick_of_a_district_comes_in_chunks_of_the_readings_at_its_simulated_time() {
        let config = SimulatorConfig {
            speed: 60.0,
            tick: Duration::from_secs(3_600),
            start_unix_ms: Some(MONDAY_1PM),
            ..config("furong")
        };
        let sim = Simulator::new(&config, city()).unwrap();
        let n = sim.entities().len();
        assert!(n > 3 * CHUNK_ENTITIES, "{n}");
        let (tx, mut rx) = mpsc::channel(2);
        let shutdown = CancellationToken::new();
        let (handle, stats) = sim.spawn(tx, shutdown.clone());
        let mut got = Vec::new();
        for _ in 0..n.div_ceil(CHUNK_ENTITIES) {
            let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.unwrap().unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= 20 * CHUNK_ENTITIES, "{}", chunk.len());
            got.extend(chunk);
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), handle).await.unwrap().unwrap();
        // One tick (the next is an hour away), sampled at the simulated time it reports.
        assert!(rx.try_recv().is_err());
        let sim_t = stats.last_simulated_at().unwrap();
        assert!((MONDAY_1PM..MONDAY_1PM + 60 * 5_000).contains(&sim_t), "{sim_t}");
        let mut expected = Vec::new();
        Simulator::new(&config, city()).unwrap().readings_at(sim_t, 0, &mut expected);
        assert_eq!((stats.ticks.get(), stats.readings.get()), (1, expected.len() as u64));
        let key = |r: &Reading| (r.update.entity.clone(), r.update.attribute.clone(), r.update.value.clone());
        assert!(got.iter().map(key).eq(expected.iter().map(key)), "the chunks are the tick's readings, in order");
    }

    #[tokio::test]
    async fn shutdown_stops_it_while_it_waits_on_a_full_channel() {
        let sim = Simulator::new(&fast_config(&["AirQualityObserved"]), city()).unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let (handle, stats) = sim.spawn(tx, shutdown.clone());
        // The first chunk fills the channel; later ticks wait on it.
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert!(!first.is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ticks = stats.ticks.get();
        assert!(ticks <= 2, "ticks went on with nobody receiving: {ticks}");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), handle).await.expect("stops promptly").unwrap();
        // Dropping the receiver stops it too.
        let sim = Simulator::new(&fast_config(&["AirQualityObserved"]), city()).unwrap();
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let (handle, _) = sim.spawn(tx, CancellationToken::new());
        tokio::time::timeout(Duration::from_secs(1), handle).await.expect("stops when the receiver is gone").unwrap();
    }
}

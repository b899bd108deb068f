//! Deterministic signal models for every City Twin sensor type, for the edge simulator.
//!
//! A sensor's values are a pure function of `(seed, entity, time)`: the same inputs always give the
//! same values, on any machine and with any later version of the dependencies (the hashing is
//! implemented here). Values follow daily patterns (rush hours, the sun, work hours, waste rounds),
//! weather (rain episodes lasting hours, pollution episodes lasting days) and plausible correlations
//! (congestion raises NO2 and noise nearby), and always lie inside the catalog's valid ranges.
//! State that depends on the past (bin fill, river level, stored storm water, daily energy) is
//! computed in closed form from the time, never by stepping from an epoch.
//!
//! Modules:
//! - [`environment`]: [`Environment`], the city-wide conditions (weather, rain, pollution episodes,
//!   traffic demand, the sun) for a seed.
//! - `sun`: the sun's elevation (Astronomical Almanac low-precision formulas).
//! - `clock`: local time (UTC+8), weekdays and the seasons.
//! - `noise`: stable hashing (FNV-1a, splitmix64) and smooth value noise.
//! - `model`: the sampling context and a range-checked output buffer shared by the models.
//! - `transport`, `air` (air quality, noise, weather stations), `energy`, `waste`, `water`, `safety`
//!   (defibrillators, ambulances, hydrants), `structures` (buildings, bridges, parks): the models.
//!
//! Entry points: [`sample`] (the values of one entity at one time), [`sample_entity`] and
//! [`sample_entity_into`] (the same for an entity with static attributes, whose nameplate values win),
//! [`live_attributes`] and [`nameplate_attributes`].

pub mod environment;

mod air;
mod clock;
mod energy;
mod model;
mod noise;
mod safety;
mod structures;
mod sun;
mod transport;
mod waste;
mod water;

pub use environment::{CHANGSHA, Environment, Weather};
pub use noise::{fnv1a, splitmix64};

use std::collections::BTreeMap;

use twin_model::{AttrName, AttributeState, Entity, EntityStatic, UnixMs, Value};

use model::{Ctx, Out};

/// The live attributes of each type that has live signals, as [`sample`] produces them.
const LIVE: &[(&str, &[&str])] = &[
    (
        "TrafficFlowObserved",
        &["intensity", "averageVehicleSpeed", "occupancy", "averageHeadwayTime", "congested", "congestionLevel"],
    ),
    ("TrafficSignal", &["phase", "phaseRemainingS", "cycleTimeS", "mode", "status"]),
    ("ParkingSpot", &["status"]),
    ("OffStreetParking", &["availableSpotNumber", "totalSpotNumber", "occupancy", "status"]),
    ("Bus", &["location", "speed", "heading", "occupancy", "delayS", "status", "stateOfCharge"]),
    (
        "AirQualityObserved",
        &[
            "pm25",
            "pm10",
            "no2",
            "so2",
            "co",
            "o3",
            "o3Avg8h",
            "temperature",
            "relativeHumidity",
            "aqi",
            "aqiLevel",
            "aqiCategory",
            "primaryPollutant",
        ],
    ),
    ("NoiseLevelObserved", &["LAeq", "LAmax", "LA90", "periodS"]),
    (
        "WeatherObserved",
        &[
            "temperature",
            "relativeHumidity",
            "dewPoint",
            "windSpeed",
            "windGust",
            "windDirection",
            "precipitation",
            "atmosphericPressure",
            "solarRadiation",
            "visibility",
        ],
    ),
    ("Streetlight", &["powerState", "illuminanceLevel", "powerConsumption", "status"]),
    ("Substation", &["load", "loadFactor", "voltage", "temperature", "status"]),
    ("PhotovoltaicMeasurement", &["activePower", "dailyEnergy", "peakPower", "status"]),
    ("EVChargingStation", &["capacity", "availableCapacity", "power", "status", "enabled"]),
    ("WasteContainer", &["fillingLevel", "temperature", "cargoWeight", "status", "lastEmptiedAt"]),
    ("RiverGauge", &["waterLevel", "flow", "alertLevel"]),
    ("RainGauge", &["precipitation", "dailyPrecipitation"]),
    ("RetentionPark", &["storedVolume", "capacity", "fillRatio", "waterLevel", "inflow", "outflow", "outletGateOpen"]),
    ("Defibrillator", &["status", "batteryLevel", "padsExpireAt", "lastSelfTestAt", "cabinetOpen"]),
    ("Ambulance", &["location", "speed", "heading", "status"]),
    ("FireHydrant", &["pressure", "status"]),
    ("Building", &["energyUse", "occupancyRatio"]),
    ("Bridge", &["deckDisplacement", "vibrationAcceleration"]),
    ("Park", &["visitorCount"]),
];

/// Which attributes of a type are live signals, i.e. what [`sample`] may produce for it (for the
/// edge's deadband config). Empty for types with no live signal (`District`, `RoadSegment`,
/// `WaterBody`, `TerrainTile`, `EdgeNode`, which reports itself) and for unknown types.
///
/// Nameplate values that the readings depend on (see [`nameplate_attributes`]) are included, so the free
/// spaces, fill ratios and power a device reports always agree with the totals it reports.
/// `Bus.stateOfCharge` comes only from electric buses.
pub fn live_attributes(entity_type: &str) -> &'static [&'static str] {
    LIVE.iter().find(|(t, _)| *t == entity_type).map_or(&[], |(_, names)| names)
}

/// The nameplate attributes of each type: fixed properties of a device (its size, its rating) that it
/// reports with its readings and that the readings depend on.
const NAMEPLATE: &[(&str, &[&str])] = &[
    ("OffStreetParking", &["totalSpotNumber"]),
    ("EVChargingStation", &["capacity"]),
    ("RetentionPark", &["capacity"]),
    ("PhotovoltaicMeasurement", &["peakPower"]),
    ("NoiseLevelObserved", &["periodS"]),
];

/// The live attributes of a type that are nameplate values (a car park's total spaces, a solar
/// installation's peak power): [`sample_entity`] takes them from the entity's static attributes when it
/// has them, so a city that publishes them and the simulated device never disagree. Empty for other types.
pub fn nameplate_attributes(entity_type: &str) -> &'static [&'static str] {
    NAMEPLATE.iter().find(|(t, _)| *t == entity_type).map_or(&[], |(_, names)| names)
}

/// The values a sensor reports at `t`: every live attribute of its type (see [`live_attributes`]),
/// each inside the catalog's valid range. Deterministic in `(env seed, entity id, t)`; the entity's
/// geometry places it (the city centre when it has none) and a bus follows its line geometry.
/// Nameplate values (see [`nameplate_attributes`]) are derived from the id alone; use [`sample_entity`]
/// for an entity whose static attributes already give them. Empty for types with no live signal.
pub fn sample(env: &Environment, entity: &EntityStatic, t: UnixMs) -> Vec<(AttrName, Value)> {
    let mut values = Vec::new();
    sample_with(env, entity, None, t, &mut values);
    values
}

/// Like [`sample`], for an entity with its attributes: a nameplate value the entity already holds as a
/// static attribute (the Changsha city sets a car park's total spaces from its footprint) is reported as
/// is and drives the readings (free spaces, fill ratios, power), so the simulated device agrees with the
/// city. A static value that is not a positive number inside the catalog's range is ignored.
pub fn sample_entity(env: &Environment, entity: &Entity, t: UnixMs) -> Vec<(AttrName, Value)> {
    let mut values = Vec::new();
    sample_entity_into(env, entity, t, &mut values);
    values
}

/// [`sample_entity`] into a buffer: `values` is cleared, then filled, so a caller sampling many entities
/// reuses one allocation.
pub fn sample_entity_into(env: &Environment, entity: &Entity, t: UnixMs, values: &mut Vec<(AttrName, Value)>) {
    sample_with(env, &entity.header, Some(&entity.attributes), t, values);
}

fn sample_with(
    env: &Environment,
    entity: &EntityStatic,
    statics: Option<&BTreeMap<AttrName, AttributeState>>,
    t: UnixMs,
    values: &mut Vec<(AttrName, Value)>,
) {
    let Some(mut out) = Out::for_type(entity.entity_type.as_str(), values) else {
        values.clear();
        return;
    };
    let c = Ctx::new(env, entity, statics, t);
    match entity.entity_type.as_str() {
        "TrafficFlowObserved" => transport::traffic_flow(&c, &mut out),
        "TrafficSignal" => transport::traffic_signal(&c, &mut out),
        "ParkingSpot" => transport::parking_spot(&c, &mut out),
        "OffStreetParking" => transport::off_street_parking(&c, &mut out),
        "Bus" => transport::bus(&c, &mut out),
        "AirQualityObserved" => air::air_quality(&c, &mut out),
        "NoiseLevelObserved" => air::noise_level(&c, &mut out),
        "WeatherObserved" => air::weather_station(&c, &mut out),
        "Streetlight" => energy::streetlight(&c, &mut out),
        "Substation" => energy::substation(&c, &mut out),
        "PhotovoltaicMeasurement" => energy::photovoltaic(&c, &mut out),
        "EVChargingStation" => energy::ev_charging(&c, &mut out),
        "WasteContainer" => waste::container(&c, &mut out),
        "RiverGauge" => water::river_gauge(&c, &mut out),
        "RainGauge" => water::rain_gauge(&c, &mut out),
        "RetentionPark" => water::retention_park(&c, &mut out),
        "Defibrillator" => safety::defibrillator(&c, &mut out),
        "Ambulance" => safety::ambulance(&c, &mut out),
        "FireHydrant" => safety::fire_hydrant(&c, &mut out),
        "Building" => structures::building(&c, &mut out),
        "Bridge" => structures::bridge(&c, &mut out),
        "Park" => structures::park(&c, &mut out),
        _ => {}
    }
    *values = out.values;
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Determinism and the daily patterns the edge simulator relies on.

mod common;

use common::{DAY, HOUR, MONDAY, entity};
use twin_model::aqi::{Concentrations, china_aqi};
use twin_model::{UnixMs, Value};
use twin_signals::{Environment, sample};

fn num(values: &[(twin_model::AttrName, Value)], name: &str) -> f64 {
    values.iter().find(|(n, _)| n.as_str() == name).and_then(|(_, v)| v.as_f64()).unwrap_or_else(|| panic!("{name}"))
}

fn get<'a>(values: &'a [(twin_model::AttrName, Value)], name: &str) -> &'a Value {
    &values.iter().find(|(n, _)| n.as_str() == name).unwrap_or_else(|| panic!("{name}")).1
}

fn at(day: i64, hour: f64) -> UnixMs {
    MONDAY + day * DAY + (hour * HOUR as f64) as i64
}

#[test]
fn same_inputs_same_values_other_seed_other_values() {
    let (a, b) = (Environment::new(7), Environment::new(8));
    for ty in ["AirQualityObserved", "TrafficFlowObserved", "Bus", "WasteContainer", "WeatherObserved"] {
        let e = entity(ty, 1);
        let t = at(2, 10.3);
        assert_eq!(sample(&a, &e, t), sample(&Environment::new(7), &e, t), "{ty}");
        let differs = (0..24).any(|h| sample(&a, &e, at(2, h as f64)) != sample(&b, &e, at(2, h as f64)));
        assert!(differs, "{ty}: a different seed changes nothing");
    }
}

#[test]
fn weekday_rush_hour_traffic_beats_the_night() {
    let env = Environment::new(1);
    for i in 0..5 {
        let e = entity("TrafficFlowObserved", i);
        for day in 0..5 {
            let rush = sample(&env, &e, at(day, 8.0));
            let night = sample(&env, &e, at(day, 3.0));
            assert!(num(&rush, "intensity") > 2.0 * num(&night, "intensity"), "day {day} entity {i}");
            assert!(num(&rush, "averageVehicleSpeed") < num(&night, "averageVehicleSpeed"));
        }
    }
}

#[test]
fn no2_is_higher_in_the_rush_than_at_night() {
    let env = Environment::new(2);
    let e = entity("AirQualityObserved", 3);
    let mean = |hour: f64| (0..5).map(|d| num(&sample(&env, &e, at(d, hour)), "no2")).sum::<f64>() / 5.0;
    assert!(mean(8.5) > 1.3 * mean(3.0), "rush {} night {}", mean(8.5), mean(3.0));
    // O3 peaks in the afternoon, not at night.
    let o3 = |hour: f64| (0..7).map(|d| num(&sample(&env, &e, at(d, hour)), "o3")).sum::<f64>() / 7.0;
    assert!(o3(15.0) > o3(3.0));
}

#[test]
fn aqi_fields_agree_with_the_concentrations() {
    let env = Environment::new(3);
    let e = entity("AirQualityObserved", 0);
    for step in 0..(7 * 24) {
        let v = sample(&env, &e, MONDAY + step * HOUR);
        let report = china_aqi(&Concentrations {
            pm25: Some(num(&v, "pm25")),
            pm10: Some(num(&v, "pm10")),
            so2_1h: Some(num(&v, "so2")),
            no2_1h: Some(num(&v, "no2")),
            co_1h: Some(num(&v, "co")),
            o3_1h: Some(num(&v, "o3")),
            o3_8h: Some(num(&v, "o3Avg8h")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(num(&v, "aqi"), f64::from(report.aqi));
        assert_eq!(num(&v, "aqiLevel"), f64::from(report.level));
        assert_eq!(get(&v, "aqiCategory"), &Value::Text(report.category.as_str().to_owned()));
        assert_eq!(get(&v, "primaryPollutant"), &Value::Text(report.primary_pollutant_text()));
    }
}

#[test]
fn streetlights_on_at_night_off_at_midday() {
    let env = Environment::new(4);
    for i in 0..10 {
        let e = entity("Streetlight", i);
        for day in 0..7 {
            let night = sample(&env, &e, at(day, 23.0));
            let noon = sample(&env, &e, at(day, 13.0));
            assert_eq!(get(&night, "powerState"), &Value::Bool(true));
            assert_eq!(get(&noon, "powerState"), &Value::Bool(false));
            assert!(num(&night, "powerConsumption") > 10.0 * num(&noon, "powerConsumption") || i > 0);
            // Dimmed after midnight.
            let late = sample(&env, &e, at(day, 2.0));
            assert!(num(&late, "illuminanceLevel") < num(&night, "illuminanceLevel"));
        }
    }
}

#[test]
fn solar_is_dark_at_midnight_and_produces_at_noon_on_a_dry_day() {
    let env = Environment::new(5);
    let e = entity("PhotovoltaicMeasurement", 2);
    let dry =
        (0..28).find(|&d| env.rain_between_mm(at(d, 0.0), at(d + 1, 0.0)) == 0.0).expect("a dry day within four weeks");
    assert_eq!(num(&sample(&env, &e, at(dry, 0.0)), "activePower"), 0.0);
    let noon = sample(&env, &e, at(dry, 12.5));
    assert!(num(&noon, "activePower") > 0.1 * num(&noon, "peakPower"), "{noon:?}");
    // The day's energy only grows through the day.
    let energy = |h: f64| num(&sample(&env, &e, at(dry, h)), "dailyEnergy");
    assert!(energy(9.0) < energy(12.0) && energy(12.0) < energy(17.0) && energy(17.0) <= energy(23.5));
}

#[test]
fn waste_bins_drop_after_their_round() {
    let env = Environment::new(6);
    for i in 0..5 {
        let e = entity("WasteContainer", i);
        let mut drops = 0;
        let mut prev = num(&sample(&env, &e, MONDAY), "fillingLevel");
        let mut t = MONDAY;
        while t < MONDAY + 7 * DAY {
            t += 10 * 60_000;
            let v = sample(&env, &e, t);
            let fill = num(&v, "fillingLevel");
            if fill < prev - 0.1 {
                drops += 1;
                // The drop is the round: lastEmptiedAt is within the last ten minutes.
                let emptied = num(&v, "lastEmptiedAt") as i64;
                assert!(t - emptied <= 10 * 60_000, "bin {i} at {t}");
            }
            prev = fill;
        }
        assert!(drops >= 5, "bin {i} emptied only {drops} times in a week");
    }
}

#[test]
fn river_rises_after_rain() {
    let env = Environment::new(9);
    let e = entity("RiverGauge", 0);
    let episodes = env.rain_episodes(MONDAY, MONDAY + 28 * DAY);
    let (start, end) = episodes
        .iter()
        .copied()
        .find(|&(s, e)| env.rain_between_mm(s, e) > 5.0)
        .expect("a real rain episode within four weeks");
    let before = num(&sample(&env, &e, start - HOUR), "waterLevel");
    let after = num(&sample(&env, &e, end + 6 * HOUR), "waterLevel");
    assert!(after > before + 0.05, "before {before} after {after}");
    // The retention parks fill too.
    let park = entity("RetentionPark", 0);
    assert!(num(&sample(&env, &park, end), "storedVolume") > num(&sample(&env, &park, start - HOUR), "storedVolume"));
}

#[test]
fn buses_move_in_service_and_park_at_night() {
    let env = Environment::new(10);
    for i in 0..4 {
        let e = entity("Bus", i);
        let night = sample(&env, &e, at(1, 3.0));
        assert_eq!(get(&night, "status"), &Value::Text("parked".into()));
        let p0 = get(&sample(&env, &e, at(1, 10.0)), "location").clone();
        let p1 = get(&sample(&env, &e, at(1, 10.1)), "location").clone();
        assert_ne!(p0, p1, "bus {i} does not move");
        let rush = (0..5).map(|d| num(&sample(&env, &e, at(d, 8.5)), "occupancy")).sum::<f64>();
        let late = (0..5).map(|d| num(&sample(&env, &e, at(d, 21.5)), "occupancy")).sum::<f64>();
        assert!(rush > late);
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Changsha city publishes nameplate values (a car park's total spaces, a solar roof's peak power) as
//! static attributes; the simulated devices must report the same values, and readings consistent with
//! them. Guards the jump in the cloud's totals when the simulator starts (city issue).

use std::sync::OnceLock;

use twin_city::{City, DEFAULT_SEED};
use twin_model::{Catalog, Entity, Value};
use twin_signals::{Environment, live_attributes, nameplate_attributes, sample_entity};

/// 2024-06-03 13:00 local, a Monday: car parks busy, the sun up.
const MONDAY_1PM: i64 = 1_717_390_800_000;

fn num(values: &[(twin_model::AttrName, Value)], name: &str) -> f64 {
    values.iter().find(|(n, _)| n.as_str() == name).and_then(|(_, v)| v.as_f64()).unwrap_or_else(|| panic!("no {name}"))
}

/// The city, generated once per test binary (seconds in a debug build).
fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| twin_city::changsha(DEFAULT_SEED))
}

#[test]
fn simulated_nameplates_equal_the_city_static_values() {
    let city = city();
    let env = Environment::new(DEFAULT_SEED);
    let catalog = Catalog::builtin();
    let mut checked = 0;
    let with_nameplates: Vec<&Entity> =
        city.entities.iter().filter(|e| !nameplate_attributes(e.header.entity_type.as_str()).is_empty()).collect();
    for e in with_nameplates {
        let ty = e.header.entity_type.as_str();
        for t in [MONDAY_1PM, MONDAY_1PM + 11 * 3_600_000] {
            let values = sample_entity(&env, e, t);
            for name in nameplate_attributes(ty) {
                assert!(live_attributes(ty).contains(name), "{ty}.{name} is a nameplate but not live");
                let stat = e.reported(name).unwrap_or_else(|| panic!("{} has no static {name}", e.id()));
                let live = &values.iter().find(|(n, _)| n.as_str() == *name).unwrap().1;
                assert_eq!(live, stat, "{} {name}: simulated {live} but the city says {stat}", e.id());
            }
            for (name, value) in &values {
                catalog.check_value(&e.header.entity_type, name, value.clone()).unwrap();
            }
            match ty {
                "OffStreetParking" => {
                    let (free, total) = (num(&values, "availableSpotNumber"), num(&values, "totalSpotNumber"));
                    assert!((0.0..=total).contains(&free), "{}: {free} free of {total}", e.id());
                    let occupancy = num(&values, "occupancy");
                    assert!((occupancy - (total - free) / total).abs() < 1e-3, "{}", e.id());
                }
                "EVChargingStation" => {
                    let (free, cap) = (num(&values, "availableCapacity"), num(&values, "capacity"));
                    assert!((0.0..=cap).contains(&free), "{}: {free} free of {cap}", e.id());
                }
                "RetentionPark" => {
                    let (stored, cap) = (num(&values, "storedVolume"), num(&values, "capacity"));
                    assert!(stored <= cap + 0.5, "{}: {stored} stored of {cap}", e.id());
                    assert!((num(&values, "fillRatio") - stored / cap).abs() < 1e-3, "{}", e.id());
                }
                "PhotovoltaicMeasurement" => {
                    assert!(num(&values, "activePower") <= num(&values, "peakPower"), "{}", e.id());
                }
                _ => {}
            }
            checked += 1;
        }
    }
    // Every car park, charger, basin, solar roof and noise monitor of the city, at two times.
    let expected: usize =
        ["OffStreetParking", "EVChargingStation", "RetentionPark", "PhotovoltaicMeasurement", "NoiseLevelObserved"]
            .iter()
            .map(|t| city.of_type(t).count())
            .sum();
    assert!(expected > 4_000, "{expected}");
    assert_eq!(checked, 2 * expected);
}

#[test]
fn the_city_sets_no_other_live_attribute_statically() {
    // A live attribute the city also sets, other than a nameplate, would jump when the simulator starts.
    let city = city();
    for e in &city.entities {
        let ty = e.header.entity_type.as_str();
        for name in e.attributes.keys() {
            if live_attributes(ty).contains(&name.as_str()) {
                assert!(nameplate_attributes(ty).contains(&name.as_str()), "{ty}.{name} is static and live");
            }
        }
    }
}

#[test]
fn an_entity_without_static_nameplates_samples_as_before() {
    let city = city();
    let env = Environment::new(7);
    for ty in
        ["OffStreetParking", "EVChargingStation", "RetentionPark", "PhotovoltaicMeasurement", "NoiseLevelObserved"]
    {
        let e = city.of_type(ty).next().unwrap();
        let bare = Entity::new(e.header.clone());
        assert_eq!(sample_entity(&env, &bare, MONDAY_1PM), twin_signals::sample(&env, &e.header, MONDAY_1PM));
        // A nonsense static value (zero spaces, a negative capacity) is ignored rather than reported.
        let mut broken = e.clone();
        for name in nameplate_attributes(ty) {
            broken.attributes.get_mut(*name).unwrap().reported.as_mut().unwrap().value = Value::Integer(0);
        }
        assert_eq!(sample_entity(&env, &broken, MONDAY_1PM), twin_signals::sample(&env, &e.header, MONDAY_1PM));
    }
}

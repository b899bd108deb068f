use super::*;

fn name(s: &str) -> AttrName {
    AttrName::new(s).unwrap()
}

#[test]
fn builtin_catalog_loads() {
    let c = Catalog::builtin();
    assert!(c.get("AirQualityObserved").is_some());
}

#[test]
fn check_value_names_the_rule() {
    let c = Catalog::builtin();
    let t = TypeName::new("AirQualityObserved").unwrap();
    assert_eq!(c.check_value(&t, &name("pm25"), Value::Integer(35)), Ok(Value::Number(35.0)));
    let err = c.check_value(&t, &name("pm25"), Value::Number(-1.0)).unwrap_err();
    assert!(matches!(err, Violation::OutOfRange { .. }));
    assert_eq!(err.to_string(), "attribute pm25 value -1 is outside its valid range 0..=1000");
    let err = c.check_value(&t, &name("pm25"), Value::Number(f64::NAN)).unwrap_err();
    assert!(matches!(err, Violation::NotFinite { .. }), "{err}");
    let err = c.check_value(&t, &name("bogus"), Value::Number(1.0)).unwrap_err();
    assert_eq!(err.to_string(), "type AirQualityObserved has no attribute bogus");
    let err = c.check_value(&t, &name("pm25"), Value::Bool(true)).unwrap_err();
    assert_eq!(err.code(), "wrong_kind");
    let unknown = TypeName::new("Unicorn").unwrap();
    assert_eq!(c.check_value(&unknown, &name("x"), Value::Bool(true)), Err(Violation::UnknownType(unknown)));
}

#[test]
fn extra_types_load_and_duplicates_are_refused() {
    let mut c = Catalog::builtin();
    let n = c
        .extend_from_toml(
            "[BeeHive]\ndomain = \"environment\"\n[BeeHive.attributes]\nbees = { kind = \"integer\", min = 0 }\n",
            "extra.toml",
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(c.get("BeeHive").is_some());
    let err = c.extend_from_toml("[BeeHive]\ndomain = \"x\"\n", "again.toml").unwrap_err();
    assert_eq!(err.to_string(), "catalog again.toml: type BeeHive is already defined");
    let err =
        c.extend_from_toml("[Bad]\ndomain = \"x\"\nattributes = { a = { kind = \"bool\", min = 1 } }\n", "f.toml");
    assert!(matches!(err, Err(CatalogError::BadAttribute { .. })));
    let err = c.extend_from_toml("[Odd]\ndomain = 1\n", "f.toml").unwrap_err();
    assert!(matches!(err, CatalogError::Parse { .. }), "{err}");
}

// --- The built-in catalog's content. These guard the data in catalog/builtin.toml: each fails if a
// domain, a range, a relationship or a commandable flag goes missing or turns into nonsense.

use std::collections::BTreeSet;

use crate::aqi::{AqiCategory, Concentrations, china_aqi};

/// The domains DESIGN.md says the built-in catalog covers.
const DOMAINS: [&str; 9] =
    ["city", "transport", "environment", "energy", "waste", "water", "health", "buildings", "edge"];

/// The units the catalog may use (UCUM-style symbols); a typo such as `ug/m³` or `C` fails.
const UNITS: [&str; 25] = [
    "ug/m3", "mg/m3", "km/h", "m/s", "m/s2", "veh/h", "dB(A)", "Cel", "%", "hPa", "m", "mm", "km2", "m3", "m3/s",
    "mm/h", "kW", "kWh", "W", "W/m2", "kV", "bar", "s", "B", "deg",
];

/// Units not in the list above, each used on purpose.
const OTHER_UNITS: [&str; 2] = ["t", "kg"];

/// Marks a counter that may grow without bound, the one accepted reason for a missing max.
const UNBOUNDED: &str = "(unbounded counter)";

fn builtin_attrs() -> Vec<(String, String, AttributeDef)> {
    let c = Catalog::builtin();
    let mut out = Vec::new();
    for (t, def) in c.types() {
        for (a, ad) in &def.attributes {
            out.push((t.to_string(), a.to_string(), ad.clone()));
        }
    }
    out
}

#[test]
fn every_domain_has_types_and_no_type_has_an_unknown_domain() {
    let c = Catalog::builtin();
    for d in DOMAINS {
        assert!(c.types().any(|(_, t)| t.domain == d), "no type in domain {d}");
    }
    for (name, t) in c.types() {
        assert!(DOMAINS.contains(&t.domain.as_str()), "{name} has unknown domain {:?}", t.domain);
        assert!(!t.description.is_empty(), "{name} has no description");
        assert!(!t.attributes.is_empty(), "{name} has no attributes");
    }
    // The types the rest of the system names.
    for name in [
        "District",
        "RoadSegment",
        "Bridge",
        "WaterBody",
        "Park",
        "TerrainTile",
        "TrafficFlowObserved",
        "TrafficSignal",
        "ParkingSpot",
        "OffStreetParking",
        "Bus",
        "AirQualityObserved",
        "NoiseLevelObserved",
        "WeatherObserved",
        "Streetlight",
        "Substation",
        "PhotovoltaicMeasurement",
        "EVChargingStation",
        "WasteContainer",
        "RiverGauge",
        "RainGauge",
        "RetentionPark",
        "Defibrillator",
        "Ambulance",
        "FireHydrant",
        "Building",
        "EdgeNode",
    ] {
        assert!(c.get(name).is_some(), "type {name} is missing");
    }
}

#[test]
fn every_numeric_attribute_has_a_sane_range() {
    for (t, a, d) in builtin_attrs() {
        if !matches!(d.kind, ValueKind::Number | ValueKind::Integer) {
            continue;
        }
        let Some(min) = d.min else { panic!("{t}.{a} has no min") };
        match d.max {
            Some(max) => {
                assert!(min < max, "{t}.{a}: min {min} is not below max {max}");
                assert!(!d.description.contains(UNBOUNDED), "{t}.{a} has a max but says it is unbounded");
            }
            None => assert!(d.description.contains(UNBOUNDED), "{t}.{a} has no max and no stated reason"),
        }
        if d.kind == ValueKind::Integer {
            for b in [d.min, d.max].into_iter().flatten() {
                assert_eq!(b.fract(), 0.0, "{t}.{a}: integer bound {b} is not whole");
            }
        }
        let unit = d.unit.as_deref().unwrap_or("");
        // Nothing physical is negative except the quantities that really can be.
        let may_be_negative = matches!(unit, "Cel" | "m" | "mm" | "s" | "m3/s");
        assert!(min >= 0.0 || may_be_negative, "{t}.{a}: min {min} below zero for unit {unit:?}");
        // Fractions and percentages.
        if unit == "%" {
            assert!(min >= 0.0 && d.max <= Some(100.0), "{t}.{a}: percentage outside 0..100");
        }
        if d.description.contains("fraction") && unit.is_empty() {
            assert_eq!(min, 0.0, "{t}.{a}");
            assert!(d.max <= Some(1.5), "{t}.{a}: a fraction above 1.5");
        }
    }
}

#[test]
fn units_are_known_and_descriptions_present() {
    for (t, a, d) in builtin_attrs() {
        assert!(!d.description.is_empty(), "{t}.{a} has no description");
        assert!(!d.description.contains('\n'), "{t}.{a}: description is not one line");
        if let Some(u) = &d.unit {
            assert!(UNITS.contains(&u.as_str()) || OTHER_UNITS.contains(&u.as_str()), "{t}.{a}: unknown unit {u:?}");
            assert!(
                matches!(d.kind, ValueKind::Number | ValueKind::Integer),
                "{t}.{a}: unit on a {} attribute",
                d.kind
            );
        }
    }
    // Spot checks of units that matter to consumers.
    let c = Catalog::builtin();
    let unit = |t: &str, a: &str| c.get(t).and_then(|d| d.attributes.get(a)).and_then(|d| d.unit.clone());
    assert_eq!(unit("AirQualityObserved", "co").as_deref(), Some("mg/m3"));
    assert_eq!(unit("AirQualityObserved", "pm25").as_deref(), Some("ug/m3"));
    assert_eq!(unit("NoiseLevelObserved", "LAeq").as_deref(), Some("dB(A)"));
    assert_eq!(unit("WeatherObserved", "relativeHumidity").as_deref(), Some("%"));
    assert_eq!(unit("TrafficFlowObserved", "intensity").as_deref(), Some("veh/h"));
}

#[test]
fn text_value_sets_are_usable() {
    for (t, a, d) in builtin_attrs() {
        let Some(values) = &d.values else { continue };
        assert!(!values.is_empty(), "{t}.{a}: empty value set");
        let distinct: BTreeSet<&String> = values.iter().collect();
        assert_eq!(distinct.len(), values.len(), "{t}.{a}: duplicate values");
        let max = d.max_len.unwrap_or(DEFAULT_MAX_TEXT_LEN);
        for v in values {
            assert!(!v.is_empty() && v.len() <= max, "{t}.{a}: value {v:?} does not fit");
            assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()), "{t}.{a}: value {v:?} is not a plain token");
        }
    }
}

#[test]
fn field_types_carry_refdistrict_and_relationships_point_at_types() {
    let c = Catalog::builtin();
    for (name, t) in c.types() {
        if t.domain != "city" {
            assert!(t.relationships.iter().any(|r| r == "refDistrict"), "{name} does not list refDistrict");
        }
        let distinct: BTreeSet<&String> = t.relationships.iter().collect();
        assert_eq!(distinct.len(), t.relationships.len(), "{name}: duplicate relationship");
        for r in &t.relationships {
            let target = r.strip_prefix("ref").unwrap_or_else(|| panic!("{name}: relationship {r} is not ref*"));
            // A hospital is a Building of category "hospital".
            let target = if target == "Hospital" { "Building" } else { target };
            assert!(c.get(target).is_some(), "{name}.{r} points at no type in the catalog");
        }
    }
    let has = |t: &str, r: &str| c.get(t).is_some_and(|d| d.relationships.iter().any(|x| x == r));
    for t in ["TrafficFlowObserved", "TrafficSignal", "Streetlight", "ParkingSpot", "NoiseLevelObserved"] {
        assert!(has(t, "refRoadSegment"), "{t} lacks refRoadSegment");
    }
    for t in ["Defibrillator", "PhotovoltaicMeasurement", "OffStreetParking"] {
        assert!(has(t, "refBuilding"), "{t} lacks refBuilding");
    }
    assert!(has("RiverGauge", "refWaterBody"));
}

#[test]
fn only_real_controls_are_commandable() {
    let commandable: BTreeSet<String> =
        builtin_attrs().into_iter().filter(|(_, _, d)| d.commandable).map(|(t, a, _)| format!("{t}.{a}")).collect();
    let expected: BTreeSet<String> = [
        "Streetlight.powerState",
        "Streetlight.illuminanceLevel",
        "TrafficSignal.mode",
        "TrafficSignal.cycleTimeS",
        "EVChargingStation.enabled",
        "RetentionPark.outletGateOpen",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(commandable, expected);
    let c = Catalog::builtin();
    let light = c.get("Streetlight").unwrap();
    assert_eq!(light.attributes[&name("powerState")].kind, ValueKind::Bool);
    let dim = &light.attributes[&name("illuminanceLevel")];
    assert_eq!((dim.kind, dim.min, dim.max), (ValueKind::Number, Some(0.0), Some(1.0)));
}

#[test]
fn aqi_attributes_match_aqi_rs() {
    let c = Catalog::builtin();
    let t = c.get("AirQualityObserved").unwrap();
    let categories: Vec<&str> = AqiCategory::ALL.iter().map(|c| c.as_str()).collect();
    let values = t.attributes[&name("aqiCategory")].values.clone().unwrap_or_default();
    assert_eq!(values, categories);
    let aqi = &t.attributes[&name("aqi")];
    assert_eq!((aqi.kind, aqi.min, aqi.max), (ValueKind::Integer, Some(0.0), Some(f64::from(crate::aqi::AQI_MAX))));
    let level = &t.attributes[&name("aqiLevel")];
    assert_eq!((level.min, level.max), (Some(1.0), Some(6.0)));
    for a in ["pm25", "pm10", "no2", "so2", "co", "o3"] {
        assert!(t.attributes.contains_key(&name(a)), "AirQualityObserved.{a} is missing");
    }

    // A report from aqi.rs stores without a violation, heavy pollution and ties included.
    let ty = TypeName::new("AirQualityObserved").unwrap();
    for conc in [
        Concentrations { pm25: Some(12.0), pm10: Some(30.0), ..Default::default() },
        Concentrations { pm25: Some(75.0), pm10: Some(150.0), ..Default::default() },
        Concentrations { pm25: Some(900.0), pm10: Some(900.0), co: Some(70.0), ..Default::default() },
    ] {
        let r = china_aqi(&conc).unwrap();
        let values = [
            ("aqi", Value::Integer(i64::from(r.aqi))),
            ("aqiLevel", Value::Integer(i64::from(r.level))),
            ("aqiCategory", Value::Text(r.category.as_str().to_owned())),
            ("primaryPollutant", Value::Text(r.primary_pollutant_text())),
        ];
        for (a, v) in values {
            assert!(c.check_value(&ty, &name(a), v.clone()).is_ok(), "{a} = {v:?} from {conc:?}");
        }
    }
}

#[test]
fn realistic_readings_pass_and_nonsense_is_refused() {
    let c = Catalog::builtin();
    let ok = |t: &str, a: &str, v: Value| c.check_value(&TypeName::new(t).unwrap(), &name(a), v);
    assert!(ok("WeatherObserved", "relativeHumidity", Value::Number(100.0)).is_ok());
    assert!(ok("WeatherObserved", "temperature", Value::Number(-52.3)).is_ok()); // Mohe, 1969
    assert!(ok("WeatherObserved", "precipitation", Value::Number(201.9)).is_ok()); // Zhengzhou, 2021
    assert!(ok("AirQualityObserved", "pm10", Value::Number(3000.0)).is_ok()); // a northern dust storm
    assert!(ok("Bus", "location", Value::Point(crate::GeoPoint { lon: 112.94, lat: 28.23 })).is_ok());
    assert!(ok("TrafficSignal", "mode", Value::Text("adaptive".into())).is_ok());
    assert!(ok("EdgeNode", "bytesSent", Value::Integer(i64::MAX)).is_ok());
    assert!(ok("EdgeNode", "lastAckAt", Value::Integer(1_767_225_600_000)).is_ok());

    let code = |t: &str, a: &str, v: Value| ok(t, a, v).unwrap_err().code();
    assert_eq!(code("WeatherObserved", "relativeHumidity", Value::Number(101.0)), "out_of_range");
    assert_eq!(code("AirQualityObserved", "no2", Value::Number(-3.0)), "out_of_range");
    assert_eq!(code("AirQualityObserved", "aqiLevel", Value::Integer(7)), "out_of_range");
    assert_eq!(code("AirQualityObserved", "aqiCategory", Value::Text("lightly polluted".into())), "not_allowed");
    assert_eq!(code("TrafficFlowObserved", "occupancy", Value::Number(1.2)), "out_of_range");
    assert_eq!(code("WasteContainer", "fillingLevel", Value::Number(-0.1)), "out_of_range");
    assert_eq!(code("TrafficSignal", "phase", Value::Text("blue".into())), "not_allowed");
    assert_eq!(code("Streetlight", "powerState", Value::Text("on".into())), "wrong_kind");
    // A timestamp in seconds instead of milliseconds lands in 1970 and is refused.
    assert_eq!(code("EdgeNode", "lastAckAt", Value::Integer(1_767_225_600)), "out_of_range");
    assert_eq!(code("EdgeNode", "outboxDepth", Value::Integer(-1)), "out_of_range");
}

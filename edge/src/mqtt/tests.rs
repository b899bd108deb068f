//! Unit tests of the MQTT configuration, the mapper and the bridge's small helpers. The bridge against a
//! real broker is tested in `edge/tests/mqtt.rs`.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use twin_model::{AttrName, Catalog, EntityId, GeoPoint, IdError, TypeName, Value, ValueKind, Violation};
use twin_outbox::OutboxUpdate;

use super::{bridge::LogBudget, *};
use crate::source::Reading;

/// 2024-05-01T00:00:00Z.
const T0: i64 = 1_714_521_600_000;
/// When the test messages arrive: an hour after [`T0`].
const ARRIVAL: i64 = T0 + 3_600_000;

fn config(toml_text: &str) -> MqttConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("test config does not parse: {e}\n{toml_text}"))
}

fn mapper(toml_text: &str) -> Mapper {
    config(toml_text).mapper(&Catalog::builtin()).unwrap()
}

fn mapping_error(toml_text: &str) -> String {
    match config(toml_text).mapper(&Catalog::builtin()) {
        Ok(_) => panic!("expected a configuration error for\n{toml_text}"),
        Err(e) => e.to_string(),
    }
}

/// Mappings covering every source of id and time, and every value kind.
const MAPPINGS: &str = r#"
[[mappings]]
name = "air"
topic = "city/air/+"
entity_type = "AirQualityObserved"
entity_id = { field = "id" }
observed_at = { field = "dateObserved.value", format = "rfc3339" }
attributes = { pm25 = "pm25.value", no2 = "/no2/value", aqi = "aqi", aqiCategory = "category" }

[[mappings]]
name = "buses"
topic = "fleet/+/position"
entity_type = "Bus"
entity_id = { topic_level = 1, template = "urn:ngsi-ld:Bus:{}" }
observed_at = { field = "ts", format = "unix_s" }
attributes = { location = "loc", speed = "/a.b/speed", routeCode = "route" }

[[mappings]]
name = "lamps"
topic = "lamps/#"
entity_type = "Streetlight"
entity_id = { field = "/dev/ids/1", template = "urn:ngsi-ld:Streetlight:{}" }
observed_at = { field = "t", format = "unix_ms" }
attributes = { powerState = "on" }

[[mappings]]
name = "noise"
topic = "noise/#"
entity_type = "NoiseLevelObserved"
entity_id = { topic_level = 2 }
attributes = { LAeq = "laeq" }
"#;

/// A mapping of `Bus.speed` from field `s`, the id from field `id`.
fn bus_mapping(name: &str, topic: &str) -> String {
    format!(
        "[[mappings]]\nname = \"{name}\"\ntopic = \"{topic}\"\nentity_type = \"Bus\"\n\
         entity_id = {{ field = \"id\" }}\nattributes = {{ speed = \"s\" }}\n"
    )
}

fn reading(entity_type: &str, id: &str, attribute: &str, value: Value, observed_at: i64) -> Reading {
    Reading {
        entity_type: TypeName::new(entity_type).unwrap(),
        update: OutboxUpdate {
            entity: EntityId::new(id).unwrap(),
            attribute: AttrName::new(attribute).unwrap(),
            value,
            observed_at,
        },
    }
}

fn map(m: &Mapper, topic: &str, payload: &str) -> Result<Mapped, Unmappable> {
    m.map(topic, payload.as_bytes(), ARRIVAL)
}

fn map_ok(m: &Mapper, topic: &str, payload: &str) -> Vec<Reading> {
    let mapped = map(m, topic, payload).unwrap_or_else(|e| panic!("{e}"));
    assert!(mapped.bad_fields.is_empty(), "unexpected bad fields: {:?}", mapped.bad_fields);
    mapped.readings
}

fn map_err(m: &Mapper, topic: &str, payload: &str) -> Unmappable {
    match map(m, topic, payload) {
        Ok(mapped) => panic!("expected {topic} {payload} to be unmappable, got {mapped:?}"),
        Err(e) => e,
    }
}

/// The one bad field of a message that has no good one.
fn bad_field(m: &Mapper, topic: &str, payload: &str) -> Unmappable {
    let mapped = map(m, topic, payload).unwrap_or_else(|e| panic!("{e}"));
    assert!(mapped.readings.is_empty(), "{:?}", mapped.readings);
    assert_eq!(mapped.bad_fields.len(), 1, "{:?}", mapped.bad_fields);
    mapped.bad_fields.into_iter().next().unwrap()
}

const AIR_ID: &str = "urn:ngsi-ld:AirQualityObserved:t:1";

fn air(fields: &str) -> String {
    format!(r#"{{"id": "{AIR_ID}", "dateObserved": {{"type": "DateTime", "value": "2024-05-01T00:00:00Z"}}{fields}}}"#)
}

// ---------------------------------------------------------------------------------------------------
// configuration

#[test]
fn the_documented_example_is_valid_and_maps_its_example_messages() {
    #[derive(serde::Deserialize)]
    struct EdgeFile {
        mqtt: MqttConfig,
    }
    let file: EdgeFile = toml::from_str(include_str!("example.toml")).unwrap();
    let m = file.mqtt.mapper(&Catalog::builtin()).unwrap();
    assert_eq!(m.filters().collect::<Vec<_>>(), ["city/airquality/+", "/city/+/attrs"]);
    let payload = r#"{"id": "urn:ngsi-ld:AirQualityObserved:yl:7",
        "dateObserved": {"value": "2024-05-01T08:00:00+08:00"}, "pm25": {"value": 35.5}, "no2": {"value": 41}}"#;
    let id = "urn:ngsi-ld:AirQualityObserved:yl:7";
    assert_eq!(
        map_ok(&m, "city/airquality/yl-7", payload),
        [
            reading("AirQualityObserved", id, "no2", Value::Number(41.0), T0),
            reading("AirQualityObserved", id, "pm25", Value::Number(35.5), T0),
        ],
        "+08:00 is taken off, and an integer for a number attribute is widened"
    );
    assert_eq!(
        map_ok(&m, "/city/lamp-0042/attrs", r#"{"on": true, "t": 1714550400000}"#),
        [reading(
            "Streetlight",
            "urn:ngsi-ld:Streetlight:lamp-0042",
            "powerState",
            Value::Bool(true),
            1_714_550_400_000
        )]
    );
}

#[test]
fn defaults_round_trip_and_the_password_is_not_printed() {
    let c = config("");
    assert_eq!(c, MqttConfig::default());
    assert_eq!((c.host.as_str(), c.port, c.qos, c.clean_session), ("127.0.0.1", 1883, 1, false));
    assert_eq!((c.keep_alive, c.max_payload_bytes), (Duration::from_secs(30), 64 * 1024));
    assert_eq!((c.reconnect_min, c.reconnect_max), (Duration::from_millis(200), Duration::from_secs(5)));
    c.validate().unwrap();

    let mut c = config(MAPPINGS);
    c.username = Some("edge".into());
    c.password = Some("s3cret".into());
    let printed = toml::to_string(&c).unwrap();
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
    let back: MqttConfig = toml::from_str(&printed).unwrap();
    assert_eq!(back.mappings, c.mappings, "what --print-config shows reads back");
    assert_eq!(back.keep_alive, c.keep_alive);
}

#[test]
fn unknown_keys_are_refused() {
    for bad in [
        "hots = \"x\"\n",
        "[[mappings]]\ntopic = \"a\"\nentity_type = \"Bus\"\nentity_id = { field = \"id\" }\nattributes = {}\n\
         colour = 1\n",
        "[[mappings]]\ntopic = \"a\"\nentity_type = \"Bus\"\nentity_id = { feld = \"id\" }\nattributes = {}\n",
        "[[mappings]]\ntopic = \"a\"\nentity_type = \"Bus\"\nentity_id = { field = \"id\" }\nattributes = {}\n\
         observed_at = { field = \"t\", format = \"unix_ns\" }\n",
    ] {
        assert!(toml::from_str::<MqttConfig>(bad).is_err(), "accepted:\n{bad}");
    }
}

#[test]
fn bad_broker_settings_name_the_setting() {
    let check = |tweak: fn(&mut MqttConfig), setting: &str| {
        let mut c = config(MAPPINGS);
        tweak(&mut c);
        match c.validate() {
            Err(MqttConfigError::Setting { setting: s, .. }) if s == setting => {}
            other => panic!("expected a {setting} error, got {other:?}"),
        }
        assert!(c.mapper(&Catalog::builtin()).is_err(), "mapper() validates the settings too");
    };
    check(|c| c.host = " ".into(), "host");
    check(|c| c.port = 0, "port");
    check(|c| c.client_id = String::new(), "client_id");
    check(|c| c.keep_alive = Duration::from_millis(500), "keep_alive");
    check(|c| c.keep_alive = Duration::from_secs(70_000), "keep_alive");
    check(|c| c.qos = 2, "qos");
    check(|c| c.max_payload_bytes = 0, "max_payload_bytes");
    check(|c| c.reconnect_min = Duration::ZERO, "reconnect_min");
    check(|c| c.reconnect_max = Duration::from_millis(10), "reconnect_max");
    check(|c| c.password = Some("x".into()), "password");

    let mut c = config(MAPPINGS);
    c.client_id = String::new();
    c.clean_session = true;
    c.keep_alive = Duration::ZERO;
    c.validate().expect("an empty client id is fine with a clean session; keep-alive 0 turns pings off");
    let err = MqttConfig { keep_alive: Duration::from_millis(1500), ..config("") }.validate();
    assert!(err.is_ok(), "a fraction above one second is accepted (MQTT rounds it down): {err:?}");
}

#[test]
fn bad_mappings_name_the_mapping_and_the_problem() {
    let one = |entity: &str, rest: &str| {
        format!("[[mappings]]\ntopic = \"city/air/+/state\"\nentity_type = \"{entity}\"\n{rest}\n")
    };
    let id_field = "entity_id = { field = \"id\" }";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "mqtt: no mappings"),
        (one("Unicorn", &format!("{id_field}\nattributes = {{ horn = \"h\" }}")), "unknown entity type Unicorn"),
        (one("Unicorn/x", &format!("{id_field}\nattributes = {{ horn = \"h\" }}")), "entity_type \"Unicorn/x\""),
        (
            one("AirQualityObserved", &format!("{id_field}\nattributes = {{ pm26 = \"p\" }}")),
            "type AirQualityObserved has no attribute pm26 (it has: aqi, aqiCategory, aqiLevel, co,",
        ),
        (one("AirQualityObserved", &format!("{id_field}\nattributes = {{}}")), "no attributes"),
        (
            one("AirQualityObserved", "entity_id = { topic_level = 4 }\nattributes = { pm25 = \"p\" }"),
            "entity_id.topic_level 4 is beyond the topic filter city/air/+/state (levels 0..=3)",
        ),
        (
            one("AirQualityObserved", "entity_id = { }\nattributes = { pm25 = \"p\" }"),
            "entity_id needs exactly one of field or topic_level",
        ),
        (
            one("AirQualityObserved", "entity_id = { field = \"id\", topic_level = 2 }\nattributes = { pm25 = \"p\" }"),
            "entity_id needs exactly one of field or topic_level",
        ),
        (
            one(
                "AirQualityObserved",
                "entity_id = { topic_level = 2, template = \"urn:x\" }\nattributes = { pm25 = \"p\" }",
            ),
            "entity_id.template \"urn:x\" has no {} to put the value in",
        ),
        (
            one(
                "AirQualityObserved",
                "entity_id = { topic_level = 2, template = \"{}:{}\" }\nattributes = { pm25 = \"p\" }",
            ),
            "has more than one {}",
        ),
        (
            one(
                "AirQualityObserved",
                "entity_id = { topic_level = 2, template = \"urn x:{}\" }\nattributes = { pm25 = \"p\" }",
            ),
            "entity_id.template \"urn x:{}\" cannot make a valid id",
        ),
        (
            one("AirQualityObserved", &format!("{id_field}\nattributes = {{ pm25 = \"\" }}")),
            "attribute pm25: the field is empty",
        ),
        (
            one("AirQualityObserved", &format!("{id_field}\nattributes = {{ pm25 = \"a..b\" }}")),
            "attribute pm25: field \"a..b\" has an empty part",
        ),
        (
            one("AirQualityObserved", &format!("{id_field}\nattributes = {{ pm25 = \"/a~2\" }}")),
            "attribute pm25: field \"/a~2\" is not a valid JSON pointer",
        ),
        (
            one("AirQualityObserved", "entity_id = { field = \"\" }\nattributes = { pm25 = \"p\" }"),
            "entity_id.field: the field is empty",
        ),
        (
            one(
                "AirQualityObserved",
                &format!(
                    "{id_field}\nattributes = {{ pm25 = \"p\" }}\n\
                     observed_at = {{ field = \"t.\", format = \"unix_ms\" }}"
                ),
            ),
            "observed_at.field: field \"t.\" has an empty part",
        ),
    ];
    for (text, expected) in cases {
        let err = mapping_error(&text);
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
        if !text.is_empty() {
            assert!(err.starts_with("mqtt mapping #0 (city/air/+/state): "), "the mapping is named: {err}");
        }
    }
}

#[test]
fn invalid_topic_filters_are_refused() {
    for (filter, why) in [
        ("", "it is empty"),
        ("a/#/b", "# must be the last level"),
        ("a/b#", "+ and # must each fill a whole level"),
        ("a/+b/c", "+ and # must each fill a whole level"),
        ("a/\0", "NUL"),
    ] {
        let mut c = config(MAPPINGS);
        c.mappings[1].topic = filter.to_owned();
        let err = c.mapper(&Catalog::builtin()).unwrap_err().to_string();
        assert!(err.starts_with("mqtt mapping \"buses\": topic filter"), "{err}");
        assert!(err.contains(why), "{err:?} does not say {why:?}");
    }
    let mut c = config(MAPPINGS);
    c.mappings[1].topic = "a/".repeat(40_000);
    assert!(c.mapper(&Catalog::builtin()).unwrap_err().to_string().contains("longer than 65535 bytes"));
}

#[test]
fn a_mapping_shadowed_by_an_earlier_one_is_refused() {
    let mapping = bus_mapping;
    let err = mapping_error(&(mapping("all", "fleet/#") + &mapping("one", "fleet/+/position")));
    assert_eq!(
        err,
        "mqtt mapping \"one\": topic filter fleet/+/position can never match: \"all\" (filter fleet/#) comes first \
         and takes every topic it would"
    );
    assert!(mapping_error(&(mapping("a", "x/y") + &mapping("b", "x/y"))).contains("can never match"));
    // Overlapping but not covering: either can match topics the other does not, so both are kept and the
    // first wins where they overlap.
    let m = mapper(&(mapping("a", "x/+/c") + &mapping("b", "x/b/+") + &mapping("c", "x/#")));
    assert_eq!(m.filters().collect::<Vec<_>>(), ["x/+/c", "x/b/+", "x/#"]);
    // The more specific filter first is the way to special-case part of a tree.
    mapper(&(mapping("one", "fleet/7/position") + &mapping("all", "fleet/#")));
}

#[test]
fn topic_filters_match_as_mqtt_says() {
    let table = [
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b", "a", false),
        ("a/+", "a/b", true),
        ("a/+", "a/", true),
        ("a/+", "a", false),
        ("a/+", "a/b/c", false),
        ("+/+", "/b", true),
        ("a/#", "a", true),
        ("a/#", "a/b/c", true),
        ("a/#", "ab", false),
        ("#", "a/b", true),
        ("#", "$SYS/broker", false),
        ("+/broker", "$SYS/broker", false),
        ("$SYS/#", "$SYS/broker", true),
        ("/city/+/attrs", "/city/x/attrs", true),
        ("/city/+/attrs", "city/x/attrs", false),
    ];
    for (filter, topic, expected) in table {
        let m = mapper(&bus_mapping("m", filter));
        let got = !matches!(m.map(topic, b"{}", ARRIVAL), Err(Unmappable::NoMapping { .. }));
        assert_eq!(got, expected, "filter {filter} topic {topic}");
    }
}

// ---------------------------------------------------------------------------------------------------
// field sources

#[test]
fn entity_ids_come_from_fields_topic_levels_and_templates() {
    let m = mapper(MAPPINGS);
    // A field, as is.
    let r = map_ok(&m, "city/air/x", &air(r#", "pm25": {"value": 10}"#));
    assert_eq!(r[0].update.entity.as_str(), AIR_ID);
    // A topic level through a template.
    let r = map_ok(&m, "fleet/Y1-07/position", r#"{"ts": 1714521600, "route": "Y1"}"#);
    assert_eq!(r, [reading("Bus", "urn:ngsi-ld:Bus:Y1-07", "routeCode", Value::Text("Y1".into()), T0)]);
    // An integer field through a template, found by a JSON pointer into an array.
    let r = map_ok(&m, "lamps/district-3", &format!(r#"{{"dev": {{"ids": ["x", 42]}}, "t": {T0}, "on": false}}"#));
    assert_eq!(r, [reading("Streetlight", "urn:ngsi-ld:Streetlight:42", "powerState", Value::Bool(false), T0)]);
    // A topic level under `#`, and the arrival time when the mapping reads none.
    let r = map_ok(&m, "noise/site/urn:ngsi-ld:NoiseLevelObserved:n1/extra", r#"{"laeq": 61.5}"#);
    assert_eq!(
        r,
        [reading("NoiseLevelObserved", "urn:ngsi-ld:NoiseLevelObserved:n1", "LAeq", Value::Number(61.5), ARRIVAL)]
    );
}

#[test]
fn entity_id_problems_are_unmappable_messages() {
    let m = mapper(MAPPINGS);
    let pm = r#""pm25": {"value": 10}"#;
    let e = map_err(&m, "city/air/x", &format!("{{{pm}}}"));
    assert_eq!(e.to_string(), "topic \"city/air/x\": entity id field \"id\" is missing or empty");
    assert_eq!(e.code(), "entity_id_missing");
    assert_eq!(map_err(&m, "city/air/x", &format!("{{\"id\": null, {pm}}}")).code(), "entity_id_missing");
    let e = map_err(&m, "city/air/x", &format!("{{\"id\": true, {pm}}}"));
    assert_eq!(e.to_string(), "topic \"city/air/x\": entity id field \"id\" is boolean, not a string or an integer");
    assert_eq!(map_err(&m, "city/air/x", &format!("{{\"id\": 1.5, {pm}}}")).code(), "entity_id_wrong_kind");
    let e = map_err(&m, "city/air/x", &format!("{{\"id\": \"has space\", {pm}}}"));
    assert!(
        matches!(&e, Unmappable::EntityIdInvalid { id, reason: IdError::BadCharacter { .. }, .. } if id == "has space"),
        "{e:?}"
    );
    assert_eq!(map_err(&m, "city/air/x", &format!("{{\"id\": \"\", {pm}}}")).code(), "entity_id_missing");
    // `noise/#` matches `noise` itself, which has no level 2.
    let e = map_err(&m, "noise", r#"{"laeq": 50}"#);
    assert_eq!(e.to_string(), "topic \"noise\": entity id topic level 2 is missing or empty");
    // An empty topic level is no id, even though the template would make a valid one of it.
    let e = map_err(&m, "fleet//position", r#"{"ts": 1714521600, "route": "Y1"}"#);
    assert_eq!(e.to_string(), "topic \"fleet//position\": entity id topic level 1 is missing or empty");
}

#[test]
fn attribute_fields_follow_dotted_paths_and_json_pointers() {
    let m = mapper(MAPPINGS);
    // `/a.b/speed`: a key with a dot, only expressible as a pointer.
    let r = map_ok(&m, "fleet/7/position", r#"{"ts": 1714521600, "a.b": {"speed": 31.5}, "a": {"b": {"speed": 1}}}"#);
    assert_eq!(r, [reading("Bus", "urn:ngsi-ld:Bus:7", "speed", Value::Number(31.5), T0)]);
    // Escapes: ~1 is / and ~0 is ~.
    let m2 = mapper(
        "[[mappings]]\ntopic = \"t\"\nentity_type = \"Bus\"\n\
         entity_id = { field = \"/i~1d\" }\nattributes = { speed = \"/s~0p/0\" }\n",
    );
    let r = map_ok(&m2, "t", r#"{"i/d": "bus-1", "s~p": [12, 13]}"#);
    assert_eq!(r, [reading("Bus", "bus-1", "speed", Value::Number(12.0), ARRIVAL)]);
    // A dotted path walks arrays by index too; a non-index key into an array finds nothing.
    let m3 = mapper(
        "[[mappings]]\ntopic = \"t\"\nentity_type = \"Bus\"\nentity_id = { field = \"id\" }\n\
         attributes = { speed = \"v.1\", heading = \"v.x\" }\n",
    );
    let r = map_ok(&m3, "t", r#"{"id": "b", "v": [1, 2]}"#);
    assert_eq!(r, [reading("Bus", "b", "speed", Value::Number(2.0), ARRIVAL)]);
}

#[test]
fn observed_times_in_every_format() {
    let m = mapper(MAPPINGS);
    let rfc = |s: &str| {
        let payload = format!(r#"{{"id": "{AIR_ID}", "dateObserved": {{"value": "{s}"}}, "pm25": {{"value": 1}}}}"#);
        map(&m, "city/air/x", &payload).map(|r| r.readings[0].update.observed_at)
    };
    assert_eq!(rfc("2024-05-01T00:00:00Z"), Ok(T0));
    assert_eq!(rfc("2024-05-01t00:00:00z"), Ok(T0));
    assert_eq!(rfc("2024-05-01T00:00:00.250Z"), Ok(T0 + 250));
    assert_eq!(rfc("2024-05-01T08:00:00+08:00"), Ok(T0));
    assert_eq!(rfc("2024-04-30T18:30:00.5-05:30"), Ok(T0 + 500));
    assert_eq!(rfc("2024-05-01T00:00:00+00:00"), Ok(T0));
    assert_eq!(rfc("2024-05-01 00:00:00Z"), Ok(T0), "RFC 3339 allows a space for the T");
    for bad in [
        "2024-05-01T00:00:00",
        "2024-05-01",
        "yesterday",
        "2024-05-01T00:00:00+8:00",
        "2024-05-01T00:00:00+24:00",
        "2024-05-01T00:00:00+00:00+08:00",
        "2024-05-01T00:00:00.Z",
    ] {
        let e = rfc(bad).unwrap_err();
        assert_eq!(e.code(), "timestamp_unparseable", "{bad}: {e}");
        assert!(e.to_string().contains("the zone is required"), "{e}");
    }
    assert_eq!(rfc("1999-12-31T23:59:59Z").unwrap_err().code(), "timestamp_implausible");

    let unix_s = |v: &str| {
        let payload = format!(r#"{{"ts": {v}, "route": "Y1"}}"#);
        map(&m, "fleet/7/position", &payload).map(|r| r.readings[0].update.observed_at)
    };
    assert_eq!(unix_s("1714521600"), Ok(T0));
    assert_eq!(unix_s("1714521600.25"), Ok(T0 + 250));
    assert_eq!(unix_s("\"1714521600\""), Ok(T0), "quoted numbers are read");
    assert_eq!(unix_s("\"soon\"").unwrap_err().code(), "timestamp_unparseable");
    assert_eq!(unix_s("true").unwrap_err().code(), "timestamp_unparseable");
    assert_eq!(unix_s("null").unwrap_err().code(), "timestamp_missing");
    let e = unix_s("1714521600000").unwrap_err();
    assert_eq!(e.code(), "timestamp_implausible", "milliseconds where seconds are expected: {e}");
    assert!(e.to_string().contains("check the device's clock and the format"), "{e}");
    assert_eq!(unix_s("1e300").unwrap_err().code(), "timestamp_implausible");
    assert_eq!(unix_s("-5").unwrap_err().code(), "timestamp_implausible");

    let unix_ms = |v: &str| {
        let payload = format!(r#"{{"dev": {{"ids": [0, 1]}}, "t": {v}, "on": true}}"#);
        map(&m, "lamps/x", &payload).map(|r| r.readings[0].update.observed_at)
    };
    assert_eq!(unix_ms(&T0.to_string()), Ok(T0));
    assert_eq!(unix_ms(&format!("{T0}.7")), Ok(T0 + 1), "fractions of a millisecond round");
    assert_eq!(
        unix_ms(&(ARRIVAL + 24 * 3_600_000).to_string()),
        Ok(ARRIVAL + 24 * 3_600_000),
        "a day ahead is the limit"
    );
    assert_eq!(unix_ms(&(ARRIVAL + 24 * 3_600_000 + 1).to_string()).unwrap_err().code(), "timestamp_implausible");
    assert_eq!(unix_ms("18446744073709551615").unwrap_err().code(), "timestamp_implausible");
    let e = map_err(&m, "lamps/x", r#"{"dev": {"ids": [0, 1]}, "on": true}"#);
    assert_eq!(e.to_string(), "topic \"lamps/x\": timestamp field \"t\" is missing");
    let e = unix_ms("\"x\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        "topic \"lamps/x\": timestamp field \"t\" value \"x\" is not a unix_ms time \
         (milliseconds since 1970 as a number)"
    );
}

// ---------------------------------------------------------------------------------------------------
// value kinds

#[test]
fn values_are_converted_to_the_catalog_kind() {
    let m = mapper(MAPPINGS);
    let one = |fields: &str| {
        let r = map_ok(&m, "city/air/x", &air(fields));
        assert_eq!(r.len(), 1, "{r:?}");
        r.into_iter().next().unwrap().update.value
    };
    assert_eq!(one(r#", "pm25": {"value": 12}"#), Value::Number(12.0), "an integer is a number");
    assert_eq!(one(r#", "pm25": {"value": 1.5e1}"#), Value::Number(15.0));
    assert_eq!(one(r#", "aqi": 87"#), Value::Integer(87));
    assert_eq!(one(r#", "aqi": 87.0"#), Value::Integer(87), "an integral float is an integer");
    assert_eq!(one(r#", "category": "good""#), Value::Text("good".into()));

    let loc = |json: &str| {
        let r = map_ok(&m, "fleet/7/position", &format!(r#"{{"ts": 1714521600, "loc": {json}}}"#));
        r.into_iter().next().unwrap().update.value
    };
    let p = Value::Point(GeoPoint { lon: 112.94, lat: 28.23 });
    assert_eq!(loc(r#"{"lon": 112.94, "lat": 28.23}"#), p);
    assert_eq!(loc(r#"[112.94, 28.23]"#), p);
    assert_eq!(loc(r#"[112.94, 28.23, 41.0]"#), p, "a GeoJSON altitude is ignored");
    assert_eq!(loc(r#"{"type": "Point", "coordinates": [112.94, 28.23]}"#), p);
}

#[test]
fn wrong_kinds_and_catalog_violations_are_bad_fields() {
    let m = mapper(MAPPINGS);
    let bad = |fields: &str| bad_field(&m, "city/air/x", &air(fields));
    let e = bad(r#", "pm25": {"value": "12"}"#);
    assert_eq!(
        e.to_string(),
        "topic \"city/air/x\": field \"pm25.value\" is a string, but attribute pm25 takes number values"
    );
    assert!(matches!(&e, Unmappable::WrongKind { expected: ValueKind::Number, .. }), "{e:?}");
    assert!(
        bad(r#", "aqi": 87.5"#)
            .to_string()
            .contains("is a number with a fraction, but attribute aqi takes integer values")
    );
    assert!(bad(r#", "aqi": 18446744073709551615"#).to_string().contains("an integer beyond 64 bits"));
    assert_eq!(bad(r#", "aqi": true"#).code(), "wrong_kind");
    assert_eq!(bad(r#", "category": 3"#).code(), "wrong_kind");
    assert_eq!(bad(r#", "pm25": {"value": [1]}"#).code(), "wrong_kind");

    let e = bad(r#", "pm25": {"value": 1000.5}"#);
    assert_eq!(
        e.to_string(),
        "topic \"city/air/x\": field \"pm25.value\": attribute pm25 value 1000.5 is outside its valid range 0..=1000"
    );
    assert!(matches!(e, Unmappable::Invalid { violation: Violation::OutOfRange { .. }, .. }));
    let e = bad(r#", "pm25": {"value": -1e308}"#);
    assert!(matches!(e, Unmappable::Invalid { violation: Violation::OutOfRange { .. }, .. }), "{e:?}");
    let e = bad(r#", "category": "splendid""#);
    assert!(matches!(e, Unmappable::Invalid { violation: Violation::NotAllowed { .. }, .. }), "{e:?}");
    let e = bad(r#", "aqi": 501"#);
    assert!(matches!(e, Unmappable::Invalid { violation: Violation::OutOfRange { .. }, .. }), "{e:?}");

    let loc = |json: &str| bad_field(&m, "fleet/7/position", &format!(r#"{{"ts": 1714521600, "loc": {json}}}"#));
    assert_eq!(loc(r#"{"lon": 200, "lat": 28}"#).code(), "invalid", "outside WGS84");
    assert_eq!(loc(r#"{"lon": "112", "lat": 28}"#).code(), "wrong_kind");
    assert_eq!(loc(r#"[112.94]"#).code(), "wrong_kind");
    assert_eq!(loc(r#"{"type": "LineString", "coordinates": [[1, 2], [3, 4]]}"#).code(), "wrong_kind");
    assert_eq!(loc(r#""112.94,28.23""#).code(), "wrong_kind");
    let long_route = format!(r#""{}""#, "x".repeat(33));
    let e = bad_field(&m, "fleet/7/position", &format!(r#"{{"ts": 1714521600, "route": {long_route}}}"#));
    assert!(matches!(e, Unmappable::Invalid { violation: Violation::TextTooLong { .. }, .. }), "{e:?}");
}

#[test]
fn a_bad_field_does_not_hide_the_good_ones() {
    let m = mapper(MAPPINGS);
    let mapped = map(
        &m,
        "city/air/x",
        &air(r#", "pm25": {"value": 20}, "no2": {"value": "high"}, "aqi": 999, "category": "good""#),
    )
    .unwrap();
    assert_eq!(
        mapped.readings,
        [
            reading("AirQualityObserved", AIR_ID, "aqiCategory", Value::Text("good".into()), T0),
            reading("AirQualityObserved", AIR_ID, "pm25", Value::Number(20.0), T0),
        ]
    );
    let codes: Vec<_> = mapped.bad_fields.iter().map(Unmappable::code).collect();
    assert_eq!(codes, ["invalid", "wrong_kind"], "each bad field is reported on its own (aqi, then no2)");

    // Every present field bad: no reading, each field reported; the bridge counts the message unmappable.
    let mapped = map(&m, "city/air/x", &air(r#", "pm25": {"value": -3}, "aqi": "x""#)).unwrap();
    assert!(mapped.readings.is_empty());
    assert_eq!(mapped.bad_fields.len(), 2);

    // Absent and null fields are skipped, not errors...
    let r = map_ok(&m, "city/air/x", &air(r#", "pm25": {"value": null}, "no2": {"value": 7}, "aqi": null"#));
    assert_eq!(r, [reading("AirQualityObserved", AIR_ID, "no2", Value::Number(7.0), T0)]);
    // ...but a message with none of the fields is unmappable.
    let e = map_err(&m, "city/air/x", &air(r#", "pm10": 3, "pm25": null"#));
    assert_eq!(
        e.to_string(),
        "topic \"city/air/x\": none of the mapped attribute fields (aqi, category, /no2/value, pm25.value) is present"
    );
}

// ---------------------------------------------------------------------------------------------------
// whole messages

#[test]
fn message_level_problems() {
    let m = mapper(MAPPINGS).with_max_payload_bytes(100);
    assert_eq!(m.max_payload_bytes(), 100);
    let e = map_err(&m, "elsewhere/x", "{}");
    assert_eq!(e.to_string(), "topic \"elsewhere/x\": no mapping matches it");

    let e = m.map("city/air/x", &[b' '; 101], ARRIVAL).unwrap_err();
    assert_eq!(e.to_string(), "topic \"city/air/x\": payload is 101 bytes; the limit is 100");
    assert!(m.map("city/air/x", &[b' '; 100], ARRIVAL).is_err_and(|e| e.code() == "not_json"), "100 bytes are parsed");

    let e = map_err(&m, "city/air/x", "{\"id\": \n  oops}");
    assert!(matches!(e, Unmappable::NotJson { line: 2, column: 3, .. }), "{e:?}");
    assert_eq!(e.to_string(), "topic \"city/air/x\": payload is not JSON: expected value at line 2 column 3");
    assert_eq!(map_err(&m, "city/air/x", "").code(), "not_json");
    assert_eq!(map_err(&m, "city/air/x", "{\"a\": 1} trailing").code(), "not_json");
    assert_eq!(m.map("city/air/x", b"{\"id\": \"\xff\"}", ARRIVAL).unwrap_err().code(), "not_json");
    assert_eq!(map_err(&m, "city/air/x", "NaN").code(), "not_json", "JSON has no NaN");

    let e = map_err(&m, "city/air/x", "[1, 2]");
    assert_eq!(e.to_string(), "topic \"city/air/x\": payload is a JSON array, not an object");
    assert_eq!(map_err(&m, "city/air/x", "42").code(), "not_object");
    assert_eq!(map_err(&m, "city/air/x", "\"s\"").code(), "not_object");
    assert_eq!(map_err(&m, "city/air/x", "null").code(), "not_object");
}

#[test]
fn hostile_topics_and_values_are_clipped_in_messages() {
    let m = mapper(MAPPINGS);
    let topic = format!("elsewhere/{}", "é".repeat(500));
    let e = map_err(&m, &topic, "{}").to_string();
    assert!(e.len() < 200, "{e}");
    assert!(e.contains("..."), "{e}");
    let payload = format!(r#"{{"ts": "{}", "speed": 1}}"#, "9".repeat(5000));
    let e = map_err(&m, "fleet/1/position", &payload);
    assert!(e.to_string().len() < 400, "{e}");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let m = mapper(MAPPINGS);
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    assert_eq!(m.map("city/air/x", deep.as_bytes(), ARRIVAL).unwrap_err().code(), "too_large");
    let m = m.with_max_payload_bytes(1 << 20);
    assert_eq!(m.map("city/air/x", deep.as_bytes(), ARRIVAL).unwrap_err().code(), "not_json");
}

/// Guards against panics (slicing, arithmetic, recursion) on whatever a broker delivers.
#[test]
fn random_input_never_panics() {
    let m = mapper(MAPPINGS);
    let mut rng = SmallRng::seed_from_u64(0x6d71_7474);
    let topics =
        ["city/air/x", "fleet/7/position", "lamps/a/b", "noise", "noise/a/b", "x", "", "$SYS/a", "fleet//position"];
    let good = [
        air(r#", "pm25": {"value": 20}, "no2": {"value": 3}, "aqi": 50, "category": "good""#),
        r#"{"ts": 1714521600, "loc": [112.9, 28.2], "a.b": {"speed": 3}, "route": "Y1"}"#.to_owned(),
        format!(r#"{{"dev": {{"ids": ["a", "b"]}}, "t": {T0}, "on": true}}"#),
        r#"{"laeq": 40}"#.to_owned(),
    ];
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "true",
        "1e999",
        "-0",
        "1.5",
        "18446744073709551616",
        "\"\\u0000\"",
        "\"2024-05-01T00:00:00+99:99\"",
        "\"é\"",
        "\"\\ud800\"",
        "{\"value\": ",
        "[1, 2, 3]",
        "\"~1\"",
    ];
    let mut ok = 0;
    for i in 0..30_000u32 {
        let topic = topics[rng.random_range(0..topics.len())];
        let payload: Vec<u8> = match i % 3 {
            // Random bytes.
            0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
            // A good payload with bytes flipped, cut or duplicated.
            1 => {
                let mut p = good[rng.random_range(0..good.len())].clone().into_bytes();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..p.len());
                    match rng.random_range(0..3) {
                        0 => p[at] = rng.random(),
                        1 => p.truncate(at),
                        _ => p.insert(at, p[at]),
                    }
                    if p.is_empty() {
                        break;
                    }
                }
                p
            }
            // A good payload with a value replaced by a random JSON fragment.
            _ => {
                let p = &good[rng.random_range(0..good.len())];
                let cut = rng.random_range(0..p.len());
                let mut s = p.as_bytes()[..cut].to_vec();
                s.extend_from_slice(fragments[rng.random_range(0..fragments.len())].as_bytes());
                let rest = rng.random_range(cut..=p.len());
                s.extend_from_slice(&p.as_bytes()[rest..]);
                s
            }
        };
        let arrival = rng.random_range(i64::MIN / 2..i64::MAX / 2);
        let _ = m.map(topic, &payload, arrival);
        if let Ok(mapped) = m.map(topic, &payload, ARRIVAL) {
            ok += mapped.readings.len();
        }
    }
    assert!(ok > 0, "some mutated payloads still map");

    // The time parser on its own, with random short strings around the RFC 3339 shape.
    let alphabet = b"0123456789-+:TZtz. eE";
    for _ in 0..50_000 {
        let len = rng.random_range(0..32);
        let s: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect();
        let _ = super::mapper::parse_rfc3339(&s);
        let mut t = "2024-05-01T00:00:00.5+08:00".to_owned().into_bytes();
        let at = rng.random_range(0..t.len());
        t[at] = alphabet[rng.random_range(0..alphabet.len())];
        let _ = super::mapper::parse_rfc3339(std::str::from_utf8(&t).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------------
// bridge helpers

#[test]
fn the_log_budget_limits_lines_and_counts_the_rest() {
    let mut b = LogBudget::new(2, Duration::from_secs(60));
    let t = Instant::now();
    assert_eq!(b.admit(t), Some(0));
    assert_eq!(b.admit(t + Duration::from_secs(1)), Some(0));
    assert_eq!(b.admit(t + Duration::from_secs(2)), None);
    assert_eq!(b.admit(t + Duration::from_secs(59)), None);
    assert_eq!(b.admit(t + Duration::from_secs(60)), Some(2), "a new window reports what was left out");
    assert_eq!(b.admit(t + Duration::from_secs(61)), Some(0));
    assert_eq!(b.admit(t + Duration::from_secs(62)), None);
    b.reset();
    assert_eq!(b.admit(t + Duration::from_secs(63)), Some(1), "reset opens a new window");
}

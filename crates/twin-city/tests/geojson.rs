#![allow(clippy::unwrap_used, clippy::expect_used)]
//! GeoJSON import (issue 3, part 3): a hand-made fixture, and one test per kind of invalid input.

use twin_city::geojson::{FeatureRef, ImportError, import};
use twin_model::{Catalog, Shape, Value};

const FIXTURE: &str = include_str!("fixtures/buildings.geojson");

fn height(city: &twin_city::City, id: &str) -> f64 {
    city.get(id).unwrap_or_else(|| panic!("no {id}")).reported("height").and_then(Value::as_f64).unwrap()
}

#[test]
fn imports_the_fixture_as_buildings() {
    let city = import(FIXTURE, "Test Town").unwrap();
    assert_eq!(city.name, "Test Town");
    assert_eq!(city.len(), 5, "{:?}", city.entities.iter().map(|e| e.id().to_string()).collect::<Vec<_>>());
    assert!(city.entities.iter().all(|e| e.header.entity_type.as_str() == "Building"));
    let tower = city.get("urn:ngsi-ld:Building:test-town:way-101").unwrap();
    assert_eq!(tower.reported("height"), Some(&Value::Number(45.5)));
    assert_eq!(tower.reported("floorsAboveGround"), Some(&Value::Integer(14)));
    assert_eq!(tower.reported("category"), Some(&Value::Text("office".into())));
    assert_eq!(tower.reported("name"), Some(&Value::Text("Test Tower".into())));
    let g = tower.header.geometry.as_ref().unwrap();
    assert_eq!(g.height_m, 45.5);
    assert!(matches!(&g.shape, Shape::Polygon(r) if r.len() == 4), "the ring is stored open");
    assert_eq!(height(&city, "urn:ngsi-ld:Building:test-town:way-102"), 24.0);
    let school = city.get("urn:ngsi-ld:Building:test-town:way-103").unwrap();
    assert_eq!(school.reported("floorsAboveGround"), Some(&Value::Integer(5)));
    assert_eq!(height(&city, "urn:ngsi-ld:Building:test-town:way-103"), 16.0);
    assert_eq!(school.reported("category"), Some(&Value::Text("education".into())));
    // A MultiPolygon becomes one building per part; no height tags means the default levels.
    for part in ["urn:ngsi-ld:Building:test-town:104:1", "urn:ngsi-ld:Building:test-town:104:2"] {
        assert_eq!(height(&city, part), 9.6);
    }
    let catalog = Catalog::builtin();
    for e in &city.entities {
        for (name, state) in &e.attributes {
            let v = state.reported.as_ref().unwrap().value.clone();
            assert_eq!(catalog.check_value(&e.header.entity_type, name, v.clone()), Ok(v), "{} {name}", e.id());
        }
        let g = e.header.geometry.clone().unwrap();
        assert_eq!(g.clone().validated().unwrap(), g);
    }
    assert_eq!(import(FIXTURE, "Test Town").unwrap().content_hash(), city.content_hash());
}

fn collection(feature: &str) -> String {
    format!(r#"{{"type": "FeatureCollection", "features": [{feature}]}}"#)
}

fn feature(id: &str, props: &str, geometry: &str) -> String {
    format!(r#"{{"type": "Feature", "id": "{id}", "properties": {props}, "geometry": {geometry}}}"#)
}

const SQUARE: &str = r#"{"type": "Polygon", "coordinates": [[[1, 1], [1.001, 1], [1.001, 1.001], [1, 1]]]}"#;

fn named(index: usize, id: &str) -> FeatureRef {
    FeatureRef { index, id: Some(id.to_owned()) }
}

#[test]
fn bad_json_names_line_and_column() {
    let err = import("{\n  \"type\": \"FeatureCollection\",\n  \"features\": [,]\n}", "x").unwrap_err();
    assert!(matches!(err, ImportError::Json { line: 3, .. }), "{err}");
    assert!(err.to_string().starts_with("invalid JSON at line 3, column"), "{err}");
}

#[test]
fn not_a_feature_collection() {
    let err = import(r#"{"type": "Feature"}"#, "x").unwrap_err();
    assert!(matches!(err, ImportError::NotFeatureCollection(_)), "{err}");
    assert!(matches!(import("[1, 2]", "x").unwrap_err(), ImportError::NotFeatureCollection(_)));
    assert!(matches!(
        import(r#"{"type": "FeatureCollection"}"#, "x").unwrap_err(),
        ImportError::NotFeatureCollection(_)
    ));
}

#[test]
fn a_feature_that_is_not_a_feature() {
    let err = import(&collection(r#"{"type": "Point"}"#), "x").unwrap_err();
    assert_eq!(err, ImportError::NotFeature { feature: FeatureRef { index: 0, id: None } });
}

#[test]
fn missing_geometry_names_the_feature() {
    let ok = feature("way/1", "{}", SQUARE);
    let bad = feature("way/2", "{}", "null");
    let err = import(&collection(&format!("{ok}, {bad}")), "x").unwrap_err();
    assert_eq!(err, ImportError::MissingGeometry { feature: named(1, "way/2") });
    assert_eq!(err.to_string(), "feature 1 (id \"way/2\"): missing geometry");
    let absent = r#"{"type": "Feature", "properties": {}}"#;
    assert!(matches!(import(&collection(absent), "x").unwrap_err(), ImportError::MissingGeometry { .. }));
}

#[test]
fn unsupported_geometry_type() {
    let err =
        import(&collection(&feature("n1", "{}", r#"{"type": "Point", "coordinates": [1, 1]}"#)), "x").unwrap_err();
    assert_eq!(err, ImportError::UnsupportedGeometry { feature: named(0, "n1"), geometry_type: "Point".into() });
}

#[test]
fn malformed_coordinates() {
    let err = import(&collection(&feature("w", "{}", r#"{"type": "Polygon", "coordinates": 5}"#)), "x").unwrap_err();
    assert!(matches!(err, ImportError::MalformedCoordinates { .. }), "{err}");
}

#[test]
fn unclosed_ring() {
    let g = r#"{"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 2]]]}"#;
    let err = import(&collection(&feature("w", "{}", g)), "x").unwrap_err();
    assert_eq!(
        err,
        ImportError::UnclosedRing { feature: named(0, "w"), ring: "0".into(), first: [1.0, 1.0], last: [1.0, 2.0] }
    );
}

#[test]
fn too_few_positions() {
    let g = r#"{"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [1, 1]]]}"#;
    let err = import(&collection(&feature("w", "{}", g)), "x").unwrap_err();
    assert_eq!(err, ImportError::TooFewPositions { feature: named(0, "w"), ring: "0".into(), got: 3 });
    let repeated = r#"{"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 1], [1, 1]]]}"#;
    let err = import(&collection(&feature("w", "{}", repeated)), "x").unwrap_err();
    assert_eq!(err, ImportError::TooFewPositions { feature: named(0, "w"), ring: "0".into(), got: 2 });
}

#[test]
fn bad_coordinates() {
    let g = r#"{"type": "Polygon", "coordinates": [[[1, 1], [200, 1], [2, 2], [1, 1]]]}"#;
    let err = import(&collection(&feature("w", "{}", g)), "x").unwrap_err();
    assert!(matches!(&err, ImportError::BadCoordinates { position: 1, ring, .. } if ring == "0"), "{err}");
    let g = r#"{"type": "MultiPolygon", "coordinates": [[[[1, 1], [2, 1], [2, 2], [1, 1]]], [[[1, 1], ["a", 1], [2, 2], [1, 1]]]]}"#;
    let err = import(&collection(&feature("w", "{}", g)), "x").unwrap_err();
    assert!(
        matches!(&err, ImportError::BadCoordinates { position: 1, ring, .. } if ring == "polygon 1 ring 0"),
        "{err}"
    );
    let g = r#"{"type": "Polygon", "coordinates": [[[1, 1], [2], [2, 2], [1, 1]]]}"#;
    assert!(matches!(
        import(&collection(&feature("w", "{}", g)), "x").unwrap_err(),
        ImportError::BadCoordinates { .. }
    ));
}

#[test]
fn bad_height_and_levels() {
    for h in [r#""tall""#, "-3", "5000", "true"] {
        let err = import(&collection(&feature("w", &format!(r#"{{"height": {h}}}"#), SQUARE)), "x").unwrap_err();
        assert_eq!(err, ImportError::BadHeight { feature: named(0, "w"), value: h.to_owned() }, "{h}");
    }
    for l in [r#""many""#, "2.5", "-1", "500"] {
        let err =
            import(&collection(&feature("w", &format!(r#"{{"building:levels": {l}}}"#), SQUARE)), "x").unwrap_err();
        assert_eq!(err, ImportError::BadLevels { feature: named(0, "w"), value: l.to_owned() }, "{l}");
    }
}

#[test]
fn bad_city_name() {
    assert_eq!(import(&collection(""), "!!").unwrap_err(), ImportError::BadCityName("!!".into()));
    assert!(import(r#"{"type": "FeatureCollection", "features": []}"#, "empty").unwrap().is_empty());
}

//! Shared fixtures: one entity of every type with live signals, placed in Changsha.

use std::collections::BTreeMap;

use twin_model::{Catalog, EntityId, EntityStatic, GeoPoint, Geometry, Shape, TypeName, UnixMs};

/// 2024-06-03 00:00 local (a Monday), in Unix ms.
pub const MONDAY: UnixMs = 1_717_344_000_000;
/// One hour in ms.
pub const HOUR: UnixMs = 3_600_000;
/// One day in ms.
pub const DAY: UnixMs = 24 * HOUR;

/// An entity of `entity_type` numbered `i`, at a point near the city centre (buses on a line).
pub fn entity(entity_type: &str, i: usize) -> EntityStatic {
    let lon = 112.93 + (i % 17) as f64 * 0.004;
    let lat = 28.18 + (i % 13) as f64 * 0.003;
    let shape = if entity_type == "Bus" && i.is_multiple_of(2) {
        Shape::Line(vec![
            GeoPoint { lon, lat },
            GeoPoint { lon: lon + 0.02, lat: lat + 0.01 },
            GeoPoint { lon: lon + 0.03, lat: lat + 0.03 },
        ])
    } else {
        Shape::Point(GeoPoint { lon, lat })
    };
    EntityStatic {
        id: EntityId::new(&format!("urn:ngsi-ld:{entity_type}:changsha:test:{i:04}")).unwrap(),
        entity_type: TypeName::new(entity_type).unwrap(),
        geometry: Some(Geometry { shape, height_m: 0.0 }),
        relationships: BTreeMap::new(),
    }
}

/// Every type of the built-in catalog.
#[allow(dead_code)] // used by some test binaries only
pub fn all_types() -> Vec<String> {
    Catalog::builtin().types().map(|(t, _)| t.as_str().to_owned()).collect()
}

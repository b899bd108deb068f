//! Entity builders for the viewer's tests (unit and integration alike, so they live here rather than in
//! each test file).

use twin_model::{AttrName, AttributeState, Entity, EntityId, EntityStatic, Geometry, Reported, TypeName, Value};

/// An entity of `entity_type` with `geometry` and no attributes.
///
/// # Panics
/// If `id` or `entity_type` is not a valid name: these are fixed strings in tests.
pub fn entity(id: &str, entity_type: &str, geometry: Geometry) -> Entity {
    Entity::new(EntityStatic {
        id: EntityId::new(id).expect("a valid test id"),
        entity_type: TypeName::new(entity_type).expect("a valid test type"),
        geometry: Some(geometry),
        relationships: Default::default(),
    })
}

/// The edge box `urn:ngsi-ld:EdgeNode:<name>` at (lon, lat), serving `district` and, when given, reporting
/// `link_state`.
///
/// # Panics
/// If `name` or `district` does not make a valid id.
pub fn edge_box(name: &str, lon: f64, lat: f64, district: &str, link_state: Option<&str>) -> Entity {
    let mut e = entity(&format!("urn:ngsi-ld:EdgeNode:{name}"), crate::scene::EDGE_NODE, Geometry::point(lon, lat));
    e.header
        .relationships
        .insert(AttrName::new("refDistrict").expect("a valid name"), EntityId::new(district).expect("a valid test id"));
    if let Some(state) = link_state {
        let reported = Reported { value: Value::Text(state.into()), observed_at: 1, received_at: 1, revision: 1 };
        e.attributes.insert(
            AttrName::new("linkState").expect("a valid name"),
            AttributeState { reported: Some(reported), desired: None },
        );
    }
    e
}

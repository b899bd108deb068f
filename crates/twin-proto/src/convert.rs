//! Conversions between the wire types ([`crate::pb`]) and the domain model ([`twin_model`]).
//!
//! Wire -> model validates (ids, geometry, required fields) and fails with [`ConvertError`], which names
//! the field. Model -> wire cannot fail.

use std::collections::BTreeMap;

use twin_model::{
    AttrName, AttributeState, Entity, EntityId, EntityStatic, GeoPoint, Geometry, GeometryError, IdError, Shape,
    TypeName, Value,
};

use crate::pb;

/// Why a wire message does not convert into the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// A required field is not set.
    #[error("{0} is required")]
    MissingField(&'static str),
    /// An id or name field is malformed.
    #[error("{field}: {source}")]
    InvalidId {
        /// The field.
        field: &'static str,
        /// Why.
        source: IdError,
    },
    /// The geometry is invalid.
    #[error("geometry: {0}")]
    Geometry(#[from] GeometryError),
}

impl ConvertError {
    fn id(field: &'static str) -> impl FnOnce(IdError) -> ConvertError {
        move |source| ConvertError::InvalidId { field, source }
    }
}

impl TryFrom<pb::Value> for Value {
    type Error = ConvertError;
    fn try_from(v: pb::Value) -> Result<Self, ConvertError> {
        use pb::value::Kind;
        Ok(match v.kind.ok_or(ConvertError::MissingField("value"))? {
            Kind::Number(n) => Value::Number(n),
            Kind::Integer(i) => Value::Integer(i),
            Kind::Boolean(b) => Value::Bool(b),
            Kind::Text(t) => Value::Text(t),
            Kind::Point(p) => Value::Point(p.into()),
        })
    }
}

impl From<&Value> for pb::Value {
    fn from(v: &Value) -> Self {
        use pb::value::Kind;
        let kind = match v {
            Value::Number(n) => Kind::Number(*n),
            Value::Integer(i) => Kind::Integer(*i),
            Value::Bool(b) => Kind::Boolean(*b),
            Value::Text(t) => Kind::Text(t.clone()),
            Value::Point(p) => Kind::Point((*p).into()),
        };
        pb::Value { kind: Some(kind) }
    }
}

impl From<pb::GeoPoint> for GeoPoint {
    fn from(p: pb::GeoPoint) -> Self {
        GeoPoint { lon: p.lon, lat: p.lat }
    }
}

impl From<GeoPoint> for pb::GeoPoint {
    fn from(p: GeoPoint) -> Self {
        pb::GeoPoint { lon: p.lon, lat: p.lat }
    }
}

fn points(ps: Vec<pb::GeoPoint>) -> Vec<GeoPoint> {
    ps.into_iter().map(GeoPoint::from).collect()
}

fn pb_points(ps: &[GeoPoint]) -> Vec<pb::GeoPoint> {
    ps.iter().map(|p| (*p).into()).collect()
}

impl TryFrom<pb::Geometry> for Geometry {
    type Error = ConvertError;
    fn try_from(g: pb::Geometry) -> Result<Self, ConvertError> {
        use pb::geometry::Shape as S;
        let shape = match g.shape.ok_or(ConvertError::MissingField("geometry.shape"))? {
            S::Point(p) => Shape::Point(p.into()),
            S::Line(l) => Shape::Line(points(l.points)),
            S::Polygon(p) => Shape::Polygon(points(p.exterior)),
        };
        Ok(Geometry { shape, height_m: g.height_m }.validated()?)
    }
}

impl From<&Geometry> for pb::Geometry {
    fn from(g: &Geometry) -> Self {
        use pb::geometry::Shape as S;
        let shape = match &g.shape {
            Shape::Point(p) => S::Point((*p).into()),
            Shape::Line(ps) => S::Line(pb::LineString { points: pb_points(ps) }),
            Shape::Polygon(ps) => S::Polygon(pb::Polygon { exterior: pb_points(ps) }),
        };
        pb::Geometry { shape: Some(shape), height_m: g.height_m }
    }
}

/// The static part (id, type, geometry, relationships) of a wire entity; its attributes are converted
/// separately because each one is validated against the catalog on its own.
impl TryFrom<&pb::Entity> for EntityStatic {
    type Error = ConvertError;
    fn try_from(e: &pb::Entity) -> Result<Self, ConvertError> {
        let id = EntityId::new(&e.id).map_err(ConvertError::id("id"))?;
        let entity_type = TypeName::new(&e.r#type).map_err(ConvertError::id("type"))?;
        let geometry = e.geometry.clone().map(Geometry::try_from).transpose()?;
        let mut relationships = BTreeMap::new();
        for r in &e.relationships {
            let name = AttrName::new(&r.name).map_err(ConvertError::id("relationships.name"))?;
            let target = EntityId::new(&r.target_id).map_err(ConvertError::id("relationships.target_id"))?;
            relationships.insert(name, target);
        }
        Ok(EntityStatic { id, entity_type, geometry, relationships })
    }
}

/// The wire form of the static part of an entity, with no attributes.
pub fn header_to_pb(h: &EntityStatic, revision: u64) -> pb::Entity {
    pb::Entity {
        id: h.id.to_string(),
        r#type: h.entity_type.to_string(),
        geometry: h.geometry.as_ref().map(pb::Geometry::from),
        attributes: Vec::new(),
        relationships: h
            .relationships
            .iter()
            .map(|(name, target)| pb::Relationship { name: name.to_string(), target_id: target.to_string() })
            .collect(),
        revision,
    }
}

/// The wire form of one attribute; `unit` comes from the catalog.
pub fn attribute_to_pb(name: &AttrName, state: &AttributeState, unit: Option<&str>) -> pb::Attribute {
    let mut a =
        pb::Attribute { name: name.to_string(), unit: unit.unwrap_or_default().to_owned(), ..Default::default() };
    if let Some(r) = &state.reported {
        a.reported = Some((&r.value).into());
        a.observed_at_unix_ms = r.observed_at;
        a.received_at_unix_ms = r.received_at;
        a.revision = r.revision;
    }
    if let Some(d) = &state.desired {
        a.desired = Some((&d.value).into());
        a.desired_at_unix_ms = d.observed_at;
        a.revision = a.revision.max(d.revision);
    }
    a
}

/// The whole entity in wire form; `unit` looks attribute units up in the catalog.
pub fn entity_to_pb<'a>(e: &Entity, unit: impl Fn(&AttrName) -> Option<&'a str>) -> pb::Entity {
    let mut out = header_to_pb(&e.header, e.revision);
    out.attributes = e.attributes.iter().map(|(n, s)| attribute_to_pb(n, s, unit(n))).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_round_trips_through_the_wire() {
        let wire = pb::Entity {
            id: "urn:ngsi-ld:Building:test:1".into(),
            r#type: "Building".into(),
            geometry: Some(pb::Geometry {
                shape: Some(pb::geometry::Shape::Polygon(pb::Polygon {
                    exterior: vec![
                        pb::GeoPoint { lon: 112.0, lat: 28.0 },
                        pb::GeoPoint { lon: 112.001, lat: 28.0 },
                        pb::GeoPoint { lon: 112.001, lat: 28.001 },
                    ],
                })),
                height_m: 42.0,
            }),
            relationships: vec![pb::Relationship { name: "refDistrict".into(), target_id: "urn:d:1".into() }],
            ..Default::default()
        };
        let header = EntityStatic::try_from(&wire).unwrap();
        assert_eq!(header.geometry.as_ref().unwrap().height_m, 42.0);
        assert_eq!(header_to_pb(&header, 0), wire);
    }

    #[test]
    fn bad_wire_input_names_the_field() {
        let mut wire = pb::Entity { id: "has space".into(), r#type: "Building".into(), ..Default::default() };
        let err = EntityStatic::try_from(&wire).unwrap_err();
        assert!(err.to_string().starts_with("id: entity id has a character not allowed"), "{err}");
        wire.id = "urn:x".into();
        wire.geometry = Some(pb::Geometry { shape: None, height_m: 0.0 });
        assert_eq!(EntityStatic::try_from(&wire).unwrap_err(), ConvertError::MissingField("geometry.shape"));
        assert_eq!(Value::try_from(pb::Value { kind: None }).unwrap_err(), ConvertError::MissingField("value"));
    }
}
